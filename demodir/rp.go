package demodir

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"sync"

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

	mu       sync.Mutex
	provider *gooidc.Provider
	conf     *oauth2.Config
}

// NewRP returns the demo application for issuer, mounted at base (the
// issuer's URL + "/demo").
func NewRP(issuer string) *RP { return &RP{issuer: issuer, base: issuer + "/demo"} }

// RedirectURI is the callback to register for the demo client.
func (rp *RP) RedirectURI() string { return rp.base + "/callback" }

func (rp *RP) setup(ctx context.Context) (*gooidc.Provider, *oauth2.Config, error) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.provider == nil {
		p, err := gooidc.NewProvider(ctx, rp.issuer)
		if err != nil {
			return nil, nil, err
		}
		rp.provider = p
		rp.conf = &oauth2.Config{ClientID: RPClientID, ClientSecret: RPSecret, Endpoint: p.Endpoint(),
			RedirectURL: rp.RedirectURI(), Scopes: []string{"openid", "email", "profile", "groups"}}
	}
	return rp.provider, rp.conf, nil
}

var rpPage = template.Must(template.New("rp").Parse(`<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>dirgate demo app</title><style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto}pre{background:#f4f5f7;padding:1rem;overflow:auto}</style></head>
<body><h1>dirgate demo app</h1>
{{if .Claims}}<p>Signed in through dirgate. The ID token's claims:</p><pre>{{.Claims}}</pre><p><a href="start">Sign in again</a></p>
{{else}}<p>This small application signs you in with dirgate's OpenID Connect provider.</p>
<p><a href="start">Sign in</a> with a demo user, e.g. <code>alice@demo.dirgate</code> / <code>alice-pw</code>.</p>{{end}}
{{if .Error}}<p role="alert">{{.Error}}</p>{{end}}
</body></html>`))

// ServeHTTP serves /demo/, /demo/start and /demo/callback.
func (rp *RP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	switch r.URL.Path {
	case "/demo/", "/demo":
		_ = rpPage.Execute(w, map[string]string{})
	case "/demo/start":
		_, conf, err := rp.setup(r.Context())
		if err != nil {
			_ = rpPage.Execute(w, map[string]string{"Error": err.Error()})
			return
		}
		verifier, state := oauth2.GenerateVerifier(), random()
		http.SetCookie(w, &http.Cookie{Name: "demo_pkce", Value: verifier, Path: "/demo/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
		http.SetCookie(w, &http.Cookie{Name: "demo_state", Value: state, Path: "/demo/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
		http.Redirect(w, r, conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), gooidc.Nonce(state)), http.StatusFound)
	case "/demo/callback":
		claims, err := rp.callback(r)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			_ = rpPage.Execute(w, map[string]string{"Error": err.Error()})
			return
		}
		_ = rpPage.Execute(w, map[string]string{"Claims": claims})
	default:
		http.NotFound(w, r)
	}
}

func (rp *RP) callback(r *http.Request) (string, error) {
	p, conf, err := rp.setup(r.Context())
	if err != nil {
		return "", err
	}
	if e := r.URL.Query().Get("error"); e != "" {
		return "", fmt.Errorf("the provider answered %s: %s", e, r.URL.Query().Get("error_description"))
	}
	v, err1 := r.Cookie("demo_pkce")
	st, err2 := r.Cookie("demo_state")
	if err1 != nil || err2 != nil || st.Value != r.URL.Query().Get("state") {
		return "", fmt.Errorf("the sign-in state does not match; start again")
	}
	tok, err := conf.Exchange(r.Context(), r.URL.Query().Get("code"), oauth2.VerifierOption(v.Value))
	if err != nil {
		return "", fmt.Errorf("code exchange: %w", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := p.Verifier(&gooidc.Config{ClientID: RPClientID}).Verify(r.Context(), raw)
	if err != nil || idt.Nonce != st.Value {
		return "", fmt.Errorf("ID token: %v", err)
	}
	var c map[string]any
	if err := idt.Claims(&c); err != nil {
		return "", err
	}
	b, _ := json.MarshalIndent(c, "", "  ")
	return string(b), nil
}

func random() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
