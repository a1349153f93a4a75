package oidc

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/dirgate/dirgate/authn"
	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/state"
)

func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	q, ok := requestParams(w, r)
	if !ok {
		p.errorPage(w, http.StatusBadRequest, "Bad request", "The sign-in request could not be read.")
		return
	}
	client, ok := p.clients[q.Get("client_id")]
	if !ok {
		p.errorPage(w, http.StatusBadRequest, "Unknown application", "The application that sent you here is not registered with this sign-in service.")
		return
	}
	redirect := q.Get("redirect_uri")
	if !slices.Contains(client.RedirectURIs, redirect) {
		// Never redirect to an unregistered address: that would make the
		// provider an open redirector for codes.
		p.errorPage(w, http.StatusBadRequest, "Invalid redirect address", "The application asked to return you to an address it has not registered.")
		return
	}
	fail := func(code, desc string) {
		u, _ := url.Parse(redirect)
		v := u.Query()
		v.Set("error", code)
		v.Set("error_description", desc)
		if s := q.Get("state"); s != "" {
			v.Set("state", s)
		}
		u.RawQuery = v.Encode()
		http.Redirect(w, r, u.String(), http.StatusFound)
	}
	scope := strings.Fields(q.Get("scope"))
	switch {
	case q.Get("response_type") != "code":
		fail("unsupported_response_type", "only the authorization code flow (response_type=code) is supported")
		return
	case !slices.Contains(scope, "openid"):
		fail("invalid_scope", "the openid scope is required")
		return
	case q.Get("code_challenge") != "" && q.Get("code_challenge_method") != "S256":
		fail("invalid_request", "code_challenge_method must be S256")
		return
	case client.Public && q.Get("code_challenge") == "":
		fail("invalid_request", "public clients must use PKCE (code_challenge with S256)")
		return
	case q.Get("prompt") == "none":
		fail("login_required", "the user must sign in")
		return
	case q.Get("response_mode") != "" && q.Get("response_mode") != "query":
		fail("invalid_request", "only response_mode=query is supported")
		return
	}
	req := &authRequest{
		ClientID: client.ID, ClientName: client.Name, RedirectURI: redirect, State: q.Get("state"), Nonce: q.Get("nonce"),
		Scope: scope, Challenge: q.Get("code_challenge"), CSRF: token(24), Expires: p.now().Add(15 * time.Minute),
		LoginHint: q.Get("login_hint"),
	}
	id, err := p.grants.putRequest(r.Context(), req)
	if err != nil {
		p.signInsFailed(w, "store authorization request", err)
		return
	}
	p.setCSRFCookie(w, req.CSRF)
	p.loginPage(w, http.StatusOK, id, req, req.LoginHint, "")
}

func (p *Provider) setCSRFCookie(w http.ResponseWriter, v string) {
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: v, Path: p.path + "/", HttpOnly: true, Secure: p.secure,
		SameSite: http.SameSiteStrictMode, MaxAge: 900})
}

const csrfCookie = "dirgate_csrf"

// loginForm reads a form of the login page and returns its pending
// request, checking the page's CSRF token; on failure it has answered.
// With take, the request is taken from the store (see login).
func (p *Provider) loginForm(w http.ResponseWriter, r *http.Request, take bool) (string, *authRequest, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		p.errorPage(w, http.StatusBadRequest, "Bad request", "The sign-in form could not be read.")
		return "", nil, false
	}
	id := r.PostForm.Get("request")
	read := p.grants.request
	if take {
		read = p.grants.takeRequest
	}
	req, err := read(r.Context(), id)
	switch {
	case err != nil:
		p.signInsFailed(w, "read authorization request", err)
		return "", nil, false
	case req == nil:
		p.signInExpired(w)
		return "", nil, false
	}
	cookie, err := r.Cookie(csrfCookie)
	form := r.PostForm.Get("csrf")
	if err != nil || form == "" || subtle.ConstantTimeCompare([]byte(cookie.Value), []byte(form)) != 1 ||
		subtle.ConstantTimeCompare([]byte(req.CSRF), []byte(form)) != 1 {
		p.errorPage(w, http.StatusForbidden, "Request refused", "The sign-in form did not come from this page. Go back to the application and start again.")
		return "", nil, false
	}
	return id, req, true
}

// login handles the login form. Its request is taken from the store at
// once, as finish does: a form posted more than once, to any replica, ends
// with one code, and a successful sign-in needs no other round trip to a
// shared store for it. Every other answer continues with the request, put
// back first.
func (p *Provider) login(w http.ResponseWriter, r *http.Request) {
	id, req, ok := p.loginForm(w, r, true)
	if !ok {
		return
	}
	putBack := func() bool {
		if err := p.grants.storeRequest(r.Context(), id, req); err != nil {
			p.signInsFailed(w, "store authorization request", err)
			return false
		}
		return true
	}
	login := strings.TrimSpace(r.PostForm.Get("email"))
	password := r.PostForm.Get("password")
	if u := p.upstreamFor(login); u != nil {
		// The domain signs in through its upstream only: no password
		// of it is checked here.
		if putBack() {
			p.sendUpstream(w, r, id, req, u, login)
		}
		return
	}
	if login == "" || password == "" {
		if putBack() {
			p.loginPage(w, http.StatusBadRequest, id, req, login, "Enter your email address and your password.")
		}
		return
	}
	e, err := p.signIn(r.Context(), login, password, r.RemoteAddr)
	if err != nil {
		status := http.StatusUnauthorized
		if authn.ReasonOf(err) == authn.ReasonUnavailable {
			status = http.StatusServiceUnavailable
		}
		if putBack() {
			p.loginPage(w, status, id, req, login, failureMessage(err))
		}
		return
	}
	p.issueCode(w, r, req, e)
}

// finish ends the pending request id, signed in as e: it takes the request
// from the store, so that it ends with one code although it may be ended
// more than once, on any replica, and issues the code.
func (p *Provider) finish(w http.ResponseWriter, r *http.Request, id string, e *cache.Entry) {
	req, err := p.grants.takeRequest(r.Context(), id)
	switch {
	case err != nil:
		p.signInsFailed(w, "end authorization request", err)
		return
	case req == nil:
		p.signInExpired(w)
		return
	}
	p.issueCode(w, r, req, e)
}

// issueCode ends req, taken from the store, signed in as e: it issues a
// code and sends the browser back to the application.
func (p *Provider) issueCode(w http.ResponseWriter, r *http.Request, req *authRequest, e *cache.Entry) {
	now := p.now()
	expires := now.Add(p.cfg.CodeTTL)
	code, err := p.grants.putCode(r.Context(), &codeGrant{
		ClientID: req.ClientID, RedirectURI: req.RedirectURI, Nonce: req.Nonce, Scope: req.Scope, Challenge: req.Challenge,
		Connector: e.Connector, ID: e.ID, AuthTime: now, Expires: expires,
		// Named now, so that a replay racing the first exchange revokes
		// the refresh tokens and the access token that exchange is about
		// to issue, and the exchange need not record them (a round trip
		// to a shared store). The access token's revocation lasts until
		// the latest it can expire.
		Family: token(16), AccessJTI: token(16), AccessExp: expires.Add(p.cfg.AccessTokenTTL),
	})
	if err != nil {
		p.signInsFailed(w, "store authorization code", err)
		return
	}
	u, _ := url.Parse(req.RedirectURI)
	v := u.Query()
	v.Set("code", code)
	if req.State != "" {
		v.Set("state", req.State)
	}
	v.Set("iss", p.cfg.Issuer) // RFC 9207
	u.RawQuery = v.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// signInsFailed answers a sign-in whose state could not be stored or read:
// busy when too many are in progress, otherwise temporarily unavailable
// (the state store cannot be reached); nothing is issued.
func (p *Provider) signInsFailed(w http.ResponseWriter, what string, err error) {
	if errors.Is(err, state.ErrFull) {
		p.errorPage(w, http.StatusServiceUnavailable, "Busy", "Too many sign-ins are in progress. Try again in a minute.")
		return
	}
	p.log.Error("oidc "+what, "err", err)
	p.errorPage(w, http.StatusServiceUnavailable, "Temporarily unavailable",
		"The sign-in service cannot complete sign-ins right now. Go back to the application and try again in a few minutes.")
}

// signInExpired answers a step of a sign-in that is no longer pending.
func (p *Provider) signInExpired(w http.ResponseWriter) {
	p.errorPage(w, http.StatusBadRequest, "Sign-in expired", "This sign-in took too long or was already used. Go back to the application and start again.")
}

// failureMessage is what the login page says: never whether the account
// exists, except for refusals the directory made after accepting the
// password.
func failureMessage(err error) string {
	var ae *authn.Error
	errors.As(err, &ae)
	switch authn.ReasonOf(err) {
	case authn.ReasonUnavailable:
		return "The directory cannot be reached right now. Try again in a few minutes."
	case authn.ReasonThrottled:
		return "Too many failed attempts. Wait a few minutes before trying again."
	}
	if ae != nil && ae.PasswordVerified {
		switch ae.Reason {
		case authn.ReasonPasswordExpired:
			return "Your password has expired. Change it, then sign in again."
		case authn.ReasonMustChangePassword:
			return "You must change your password before you can sign in."
		case authn.ReasonAccountExpired:
			return "Your account has expired. Contact your administrator."
		case authn.ReasonDisabled:
			return "Your account is disabled. Contact your administrator."
		case authn.ReasonRestricted:
			return "You cannot sign in at this time or from this place."
		}
	}
	return "The email address or password is not correct."
}
