package demodir

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dirgate/dirgate/authn"
	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/oidc"
)

// TestDemoAppClaimsAndSignOut signs in through the demo application in
// front of dirgate's provider: the claims page shows time claims as
// readable UTC times next to their raw value, and its sign-out goes
// through end_session with id_token_hint and returns to the demo.
func TestDemoAppClaimsAndSignOut(t *testing.T) {
	store, err := cache.Open(t.TempDir(), cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	g, _ := store.NewGeneration("demo")
	alice := &cache.Entry{ID: "u-alice", DN: "uid=alice,dc=demo", Kind: cache.KindUser, Addresses: []string{"alice@demo.dirgate"}}
	if err := g.Put(alice); err != nil {
		t.Fatal(err)
	}
	if err := g.Commit(context.Background(), nil, nil); err != nil {
		t.Fatal(err)
	}
	signIn := func(_ context.Context, login, password, _ string) (*cache.Entry, error) {
		if login != "alice@demo.dirgate" || password != "alice-pw" {
			return nil, &authn.Error{Reason: authn.ReasonInvalidCredentials}
		}
		return alice, nil
	}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	rp := NewRP(srv.URL)
	p, err := oidc.New(oidc.Config{Issuer: srv.URL, KeyRotation: time.Hour, IDTokenTTL: time.Hour, AccessTokenTTL: time.Hour,
		RefreshTokenTTL: time.Hour, CodeTTL: time.Minute,
		Clients: []oidc.Client{{ID: RPClientID, RedirectURIs: []string{rp.RedirectURI()}, PostLogoutRedirectURIs: []string{rp.PostLogoutRedirectURI()},
			VerifySecret: func(s string) bool { return s == RPSecret }}},
	}, store, store.States(), signIn, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/", p)
	mux.Handle("/demo/", rp)

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	get := func(resp *http.Response, err error) (string, string) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d\n%s", resp.Request.URL, resp.StatusCode, body)
		}
		return resp.Request.URL.String(), string(body)
	}
	formOf := func(page, fields string) url.Values {
		v := url.Values{}
		for _, m := range regexp.MustCompile(`name="(`+fields+`)" value="([^"]*)"`).FindAllStringSubmatch(page, -1) {
			v.Set(m[1], m[2])
		}
		return v
	}

	_, login := get(browser.Get(srv.URL + "/demo/start"))
	form := formOf(login, "request|csrf")
	form.Set("email", "alice@demo.dirgate")
	form.Set("password", "alice-pw")
	start := time.Now()
	_, page := get(browser.PostForm(srv.URL+"/login", form))
	if !strings.Contains(page, "<style>") || !strings.Contains(page, "u-alice") {
		t.Fatalf("claims page:\n%s", page)
	}
	for _, name := range []string{"iat", "exp", "auth_time"} {
		m := regexp.MustCompile(`>` + name + `</th><td><code>(\d+)</code><span class="time">([^<]+)</span>`).FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("%s is not shown with a readable time:\n%s", name, page)
		}
		secs, _ := strconv.ParseInt(m[1], 10, 64)
		shown, err := time.Parse("Mon 2 Jan 2006 15:04:05 MST", m[2])
		if err != nil || shown.Unix() != secs || !strings.HasSuffix(m[2], " UTC") {
			t.Fatalf("%s %s is shown as %q (%v)", name, m[1], m[2], err)
		}
		if d := shown.Sub(start); d < -time.Minute || d > 2*time.Hour {
			t.Fatalf("%s is %s, %s from the sign-in", name, m[2], d)
		}
	}

	action := regexp.MustCompile(`<form method="post" action="([^"]+)">`).FindStringSubmatch(page)
	if action == nil || action[1] != srv.URL+"/end_session" {
		t.Fatalf("no sign-out form to end_session:\n%s", page)
	}
	out := formOf(page, "id_token_hint|post_logout_redirect_uri")
	if out.Get("id_token_hint") == "" || out.Get("post_logout_redirect_uri") != rp.PostLogoutRedirectURI() {
		t.Fatalf("sign-out form fields: %v", out)
	}
	where, page := get(browser.PostForm(action[1], out))
	if where != rp.PostLogoutRedirectURI() || !strings.Contains(page, "You have signed out.") {
		t.Fatalf("after sign-out: %s\n%s", where, page)
	}
}
