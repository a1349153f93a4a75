package entra

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/dirgate/dirgate/clock"
	"github.com/dirgate/dirgate/cloudapi"
	"github.com/dirgate/dirgate/config"
)

// PasswordGrant checks a user's password with the resource-owner password
// credentials grant (ROPC) at the tenant's token endpoint: an answer 200
// means the password is right; the tokens are read and thrown away.
//
// Microsoft discourages the grant and it has limits an administrator must
// know: it fails for accounts that must do MFA, for federated domains (AD
// FS or another identity provider checks their passwords), for guests and
// personal accounts, and for passwordless accounts. Every failed attempt
// counts towards Entra's smart lockout, so callers throttle per user
// before calling Check (authn does).
//
// Check sends one request and never retries: a retried password would
// count twice against the account.
type PasswordGrant struct {
	// TokenURL is {authority}/{tenant}/oauth2/v2.0/token.
	TokenURL string
	// ClientID is the app registration's application (client) ID.
	ClientID string
	// ClientAuth returns the parameters that authenticate a confidential
	// client (client_secret, or client_assertion_type and a fresh
	// client_assertion); nil for a public client.
	ClientAuth func() (url.Values, error)
	// HTTP sends the request (nil: a client without a timeout); the
	// caller's context bounds the request. No redirect is followed,
	// whatever its CheckRedirect.
	HTTP *http.Client
}

// NewPasswordGrant prepares password checks for the connector e, as a
// confidential client authenticated by the connector's secret or
// certificate (a fresh client assertion per check). hc sends the requests
// (see PasswordGrant.HTTP).
func NewPasswordGrant(e *config.Entra, hc *http.Client) (*PasswordGrant, error) {
	ts, err := NewTokenSource(e, hc, clock.Real)
	if err != nil {
		return nil, err
	}
	return &PasswordGrant{TokenURL: TokenURL(e), ClientID: e.ClientID, ClientAuth: ts.clientAuth, HTTP: hc}, nil
}

// clientAuth returns the parameters that authenticate the app in a token
// request: its secret, or a client assertion signed now.
func (ts *TokenSource) clientAuth() (url.Values, error) {
	if ts.key == nil {
		return url.Values{"client_secret": {ts.cfg.ClientSecret}}, nil
	}
	assertion, err := ts.assertion()
	if err != nil {
		return nil, err
	}
	return url.Values{
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {assertion},
	}, nil
}

// maxErrorBody bounds the error body read from the token endpoint, and
// maxTokenBody the successful answer drained before the connection is
// reused.
const (
	maxErrorBody = 64 << 10
	maxTokenBody = 1 << 20
)

// ErrPasswordGrant marks a password check that got no answer from the
// token endpoint (network, TLS, an unreadable answer): the password was
// neither accepted nor refused. A refusal is an *STSError instead.
var ErrPasswordGrant = errors.New("entra: password grant failed")

// Check reports whether password is username's. It returns nil when the
// token endpoint accepts it, an *STSError when the endpoint refuses (the
// failure class says why), and an error wrapping ErrPasswordGrant when
// there is no usable answer. username is the user's userPrincipalName.
func (g *PasswordGrant) Check(ctx context.Context, username, password string) error {
	form := url.Values{
		"grant_type": {"password"},
		"client_id":  {g.ClientID},
		"username":   {username},
		"password":   {password},
		// openid alone asks for the least: no Graph permission is
		// involved, so no consent beyond sign-in is needed.
		"scope": {"openid"},
	}
	if g.ClientAuth != nil {
		auth, err := g.ClientAuth()
		if err != nil {
			return fmt.Errorf("%w: client credential: %w", ErrPasswordGrant, err)
		}
		for k, v := range auth {
			form[k] = v
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrPasswordGrant, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// Go re-posts the form, password included, on a 307 or 308 to
	// whatever host the Location names: follow no redirect.
	resp, err := cloudapi.NoRedirects(g.HTTP).Do(req)
	if err != nil {
		// *url.Error quotes the URL only, never the form: no password.
		return fmt.Errorf("%w: %w", ErrPasswordGrant, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 3 {
		return fmt.Errorf("%w: the token endpoint answered HTTP %d, a redirect, which dirgate does not follow with a password; check authority_url",
			ErrPasswordGrant, resp.StatusCode)
	}
	if resp.StatusCode == http.StatusOK {
		// The tokens are not kept: drain them so the connection is reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxTokenBody))
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if err != nil {
		return fmt.Errorf("%w: reading the answer (HTTP %d): %w", ErrPasswordGrant, resp.StatusCode, err)
	}
	return DecodeSTSError(resp.StatusCode, body)
}

// Host is the token endpoint's host, for audit lines.
func (g *PasswordGrant) Host() string {
	u, err := url.Parse(g.TokenURL)
	if err != nil {
		return ""
	}
	return u.Host
}
