package oidc

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/dirgate/dirgate/cache"
)

// refreshWith posts a refresh request of the client "wiki" for scope ("":
// none) and returns the status and the decoded answer.
func (f *fixture) refreshWith(t *testing.T, rt, scope string) (int, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	if scope != "" {
		form.Set("scope", scope)
	}
	req, _ := http.NewRequest("POST", f.srv.URL+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("wiki", secret)
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return r.StatusCode, body
}

// setDisabled has a sync disable or re-enable alice.
func (f *fixture) setDisabled(t *testing.T, disabled bool) {
	t.Helper()
	e := &cache.Entry{ID: "u-alice", DN: "uid=alice,dc=x", Kind: cache.KindUser, Disabled: disabled, Addresses: []string{"alice@x.test"}}
	if _, err := f.store.ApplyDelta(context.Background(), "corp", &cache.Delta{Upserts: []*cache.Entry{e}}, nil, nil, false); err != nil {
		t.Fatal(err)
	}
}

// TestRefreshRefusedWithoutSpending: a refresh refused for what the request
// asks (a scope not granted) or for the account (disabled) leaves the token
// live, so the client's next request with it succeeds instead of being
// taken for a stolen token's reuse.
func TestRefreshRefusedWithoutSpending(t *testing.T) {
	for _, tc := range []struct {
		name   string
		scope  string
		before func(*fixture, *testing.T)
		after  func(*fixture, *testing.T)
		code   string
	}{
		{name: "scope not granted", scope: "openid offline_access", code: "invalid_scope"},
		{name: "account disabled", code: "invalid_grant",
			before: func(f *fixture, t *testing.T) { f.setDisabled(t, true) },
			after:  func(f *fixture, t *testing.T) { f.setDisabled(t, false) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			tok := f.signInAs(t, f.conf)
			if tc.before != nil {
				tc.before(f, t)
			}
			if status, body := f.refreshWith(t, tok.RefreshToken, tc.scope); status != http.StatusBadRequest || body["error"] != tc.code {
				t.Fatalf("refused refresh: %d %v, want %s", status, body, tc.code)
			}
			if tc.after != nil {
				tc.after(f, t)
			}
			if status, body := f.refreshWith(t, tok.RefreshToken, ""); status != http.StatusOK {
				t.Fatalf("the retry after a refused refresh: %d %v", status, body)
			}
			if logs := f.logs.String(); strings.Contains(logs, "reused") {
				t.Fatalf("a refused refresh was later taken for reuse:\n%s", logs)
			}
		})
	}
}

// TestRefreshNarrowedScope: a refresh that asks for less issues tokens of
// the narrowed scope, while its successor keeps the grant's whole scope
// (RFC 6749 6), so a later refresh may ask for all of it again.
func TestRefreshNarrowedScope(t *testing.T) {
	f := newFixture(t)
	tok := f.signInAs(t, f.conf)
	granted := strings.Join(f.conf.Scopes, " ")
	status, body := f.refreshWith(t, tok.RefreshToken, "openid email")
	if status != http.StatusOK || body["scope"] != "openid email" {
		t.Fatalf("narrowed refresh: %d %v", status, body)
	}
	var ac accessClaims
	if err := f.p.keys.verify(body["access_token"].(string), &ac); err != nil || ac.Scope != "openid email" {
		t.Fatalf("the access token of a narrowed refresh has scope %q (%v)", ac.Scope, err)
	}
	var id map[string]any
	if err := f.p.keys.verify(body["id_token"].(string), &id); err != nil || id["email"] == nil || id["name"] != nil || id["groups"] != nil {
		t.Fatalf("the ID token of a narrowed refresh: %v (%v)", id, err)
	}
	rt, _ := body["refresh_token"].(string)
	g, err := f.p.grants.refresh(t.Context(), rt)
	if err != nil || g == nil || !slices.Equal(g.Scope, f.conf.Scopes) {
		t.Fatalf("the successor's grant %+v (%v), want scope %v", g, err, f.conf.Scopes)
	}
	if status, body := f.refreshWith(t, rt, granted); status != http.StatusOK || body["scope"] != granted {
		t.Fatalf("a refresh for the whole grant after a narrowed one: %d %v", status, body)
	}
}
