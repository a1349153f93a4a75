package demodir

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Demo relying party: `dirgate serve --demo` mounts it at /demo/ on the
// OIDC listener so a newcomer can sign in with a demo user and see the ID
// token dirgate issued. It is an ordinary OIDC client (go-oidc + x/oauth2,
// code flow with PKCE), talking to the provider over HTTP like any other.

// RPClientID and RPSecret register the demo application with the provider.
const (
	RPClientID = "demo-app"
	RPSecret   = "demo-app-secret"
)

// RP is the demo application.
type RP struct {
	issuer, base string

	mu         sync.Mutex
	provider   *gooidc.Provider
	conf       *oauth2.Config
	endSession string // the provider's end_session_endpoint
}

// NewRP returns the demo application for issuer, mounted at base (the
// issuer's URL + "/demo").
func NewRP(issuer string) *RP { return &RP{issuer: issuer, base: issuer + "/demo"} }

// RedirectURI is the callback to register for the demo client.
func (rp *RP) RedirectURI() string { return rp.base + "/callback" }

// PostLogoutRedirectURI is where the provider sends the browser back after
// the demo's sign-out; register it for the demo client.
func (rp *RP) PostLogoutRedirectURI() string { return rp.base + "/signed-out" }

func (rp *RP) setup(ctx context.Context) (*gooidc.Provider, *oauth2.Config, error) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.provider == nil {
		p, err := gooidc.NewProvider(ctx, rp.issuer)
		if err != nil {
			return nil, nil, err
		}
		var meta struct {
			EndSession string `json:"end_session_endpoint"`
		}
		if err := p.Claims(&meta); err != nil {
			return nil, nil, err
		}
		rp.provider, rp.endSession = p, meta.EndSession
		rp.conf = &oauth2.Config{ClientID: RPClientID, ClientSecret: RPSecret, Endpoint: p.Endpoint(),
			RedirectURL: rp.RedirectURI(), Scopes: []string{"openid", "email", "profile", "groups"}}
	}
	return rp.provider, rp.conf, nil
}

var rpPage = template.Must(template.New("rp").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>dirgate demo app</title>
<style>
body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0;color:#1d2430}
main{max-width:46rem;margin:6vh auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 4px #0002}
h1{font-size:1.4rem;margin:0 0 1rem}
table{border-collapse:collapse;width:100%;margin:1rem 0;font-size:.95rem}
th,td{text-align:left;vertical-align:top;padding:.45rem .6rem;border-bottom:1px solid #e2e8f0}
th{width:9rem;font-weight:600}
td code{word-break:break-all}
.time{display:block;color:#4a5568;font-size:.85rem}
a.button,button{display:inline-block;padding:.6rem 1.2rem;font:inherit;line-height:1.2;background:#2b6cb0;color:#fff;border:0;border-radius:4px;cursor:pointer;text-decoration:none}
a:focus,button:focus{outline:3px solid #2b6cb0;outline-offset:1px}
.actions{display:flex;gap:.8rem;flex-wrap:wrap;margin-top:1.2rem}
.error{background:#fde8e8;border:1px solid #c53030;color:#822727;padding:.7rem;border-radius:4px}
</style>
</head>
<body>
<main>
<h1>dirgate demo app</h1>
{{if .Claims}}
<p>You are signed in through dirgate. These are the claims of the ID token it issued:</p>
<table>
<tbody>
{{range .Claims}}<tr><th scope="row">{{.Name}}</th><td><code>{{.Raw}}</code>{{with .Time}}<span class="time">{{.}}</span>{{end}}</td></tr>
{{end}}</tbody>
</table>
<div class="actions">
{{if .EndSession}}<form method="post" action="{{.EndSession}}">
<input type="hidden" name="id_token_hint" value="{{.IDToken}}">
<input type="hidden" name="post_logout_redirect_uri" value="{{.PostLogout}}">
<button type="submit" id="sign-out">Sign out</button>
</form>{{end}}
<a class="button" href="start">Sign in again</a>
</div>
{{else if .SignedOut}}
<p role="status">You have signed out.</p>
<div class="actions"><a class="button" href="start">Sign in</a></div>
{{else}}
<p>This small application signs you in with dirgate's OpenID Connect provider.</p>
<p>Sign in with a demo user, e.g. <code>alice@demo.dirgate</code> / <code>alice-pw</code>.</p>
<div class="actions"><a class="button" href="start">Sign in</a></div>
{{end}}
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}
</main>
</body>
</html>
`))

// rpView is what the demo page shows.
type rpView struct {
	Claims     []claim
	IDToken    string // for the sign-out's id_token_hint
	EndSession string
	PostLogout string
	SignedOut  bool
	Error      string
}

// claim is one row of the claims table.
type claim struct {
	Name, Raw string
	Time      string // the readable form of a time claim, "" for others
}

// timeClaims hold NumericDate values (seconds since the epoch, RFC 7519 2).
var timeClaims = []string{"iat", "exp", "auth_time", "nbf", "updated_at"}

// claimRows lists the claims of an ID token by name, each with its JSON
// value, and time claims also as a readable UTC time.
func claimRows(payload map[string]json.RawMessage) []claim {
	rows := make([]claim, 0, len(payload))
	for name, raw := range payload {
		c := claim{Name: name, Raw: string(raw)}
		if slices.Contains(timeClaims, name) {
			if secs, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
				c.Time = time.Unix(secs, 0).UTC().Format("Mon 2 Jan 2006 15:04:05 UTC")
			}
		}
		rows = append(rows, c)
	}
	slices.SortFunc(rows, func(a, b claim) int { return cmp.Compare(a.Name, b.Name) })
	return rows
}

// ServeHTTP serves /demo/, /demo/start, /demo/callback and
// /demo/signed-out.
func (rp *RP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	switch r.URL.Path {
	case "/demo/", "/demo":
		_ = rpPage.Execute(w, rpView{})
	case "/demo/signed-out":
		_ = rpPage.Execute(w, rpView{SignedOut: true})
	case "/demo/start":
		_, conf, err := rp.setup(r.Context())
		if err != nil {
			_ = rpPage.Execute(w, rpView{Error: err.Error()})
			return
		}
		verifier, state := oauth2.GenerateVerifier(), random()
		http.SetCookie(w, &http.Cookie{Name: "demo_pkce", Value: verifier, Path: "/demo/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
		http.SetCookie(w, &http.Cookie{Name: "demo_state", Value: state, Path: "/demo/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
		http.Redirect(w, r, conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), gooidc.Nonce(state)), http.StatusFound)
	case "/demo/callback":
		view, err := rp.callback(r)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			_ = rpPage.Execute(w, rpView{Error: err.Error()})
			return
		}
		_ = rpPage.Execute(w, view)
	default:
		http.NotFound(w, r)
	}
}

func (rp *RP) callback(r *http.Request) (rpView, error) {
	p, conf, err := rp.setup(r.Context())
	if err != nil {
		return rpView{}, err
	}
	if e := r.URL.Query().Get("error"); e != "" {
		return rpView{}, fmt.Errorf("the provider answered %s: %s", e, r.URL.Query().Get("error_description"))
	}
	v, err1 := r.Cookie("demo_pkce")
	st, err2 := r.Cookie("demo_state")
	if err1 != nil || err2 != nil || st.Value != r.URL.Query().Get("state") {
		return rpView{}, fmt.Errorf("the sign-in state does not match; start again")
	}
	tok, err := conf.Exchange(r.Context(), r.URL.Query().Get("code"), oauth2.VerifierOption(v.Value))
	if err != nil {
		return rpView{}, fmt.Errorf("code exchange: %w", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := p.Verifier(&gooidc.Config{ClientID: RPClientID}).Verify(r.Context(), raw)
	if err != nil {
		return rpView{}, fmt.Errorf("ID token: %w", err)
	}
	if idt.Nonce != st.Value {
		return rpView{}, fmt.Errorf("ID token: the nonce does not match; start again")
	}
	var c map[string]json.RawMessage
	if err := idt.Claims(&c); err != nil {
		return rpView{}, err
	}
	return rpView{Claims: claimRows(c), IDToken: raw, EndSession: rp.endSession, PostLogout: rp.PostLogoutRedirectURI()}, nil
}

func random() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
