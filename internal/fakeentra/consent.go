package fakeentra

import (
	"net/http"
	"net/url"

	"github.com/dirgate/dirgate/internal/fakecloud"
)

// This file is the admin-consent endpoint,
// GET {authority}/{tenant}/adminconsent?client_id&redirect_uri&state: an
// unknown tenant, app or redirect URI gets an error page (never a
// redirect); otherwise the browser goes back to redirect_uri with
// admin_consent=True&tenant=<ID>&state=…, or with the error DeclineConsent
// chose.

func (t *Tenant) registerConsent() {
	t.authorityMux.HandleFunc("GET /{tenant}/adminconsent", t.serveAdminConsent)
}

// DeclineConsent makes admin consent fail with this OAuth error and AADSTS
// code, e.g. ("access_denied", 65004, "User declined to consent to access
// the app."); ("", 0, "") grants again.
func (t *Tenant) DeclineConsent(oauthErr string, code int, desc string) {
	s := &t.oidc
	s.mu.Lock()
	defer s.mu.Unlock()
	s.consent = nil
	if oauthErr != "" {
		s.consent = stsErr(http.StatusBadRequest, oauthErr, code, "%s", desc)
	}
}

// AdminConsents is how many times admin consent was granted.
func (t *Tenant) AdminConsents() int {
	s := &t.oidc
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.consents
}

func (t *Tenant) serveAdminConsent(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect, ok := t.checkClient(w, q, r.PathValue("tenant"))
	if !ok {
		return
	}
	s := &t.oidc
	s.mu.Lock()
	declined := s.consent
	if declined == nil {
		s.consents++
	}
	s.mu.Unlock()
	state := q.Get("state")
	if declined != nil {
		fakecloud.RedirectWith(w, r, redirect, errorParams(declined, state))
		return
	}
	v := url.Values{"admin_consent": {"True"}, "tenant": {t.id}}
	if state != "" {
		v.Set("state", state)
	}
	fakecloud.RedirectWith(w, r, redirect, v)
}
