package authn

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
)

// entraChecker is the password checker of an entra connector whose
// authority is authorityURL.
func entraChecker(t *testing.T, authorityURL string) passwordChecker {
	t.Helper()
	t.Setenv("DIRGATE_TEST_ENTRA_SECRET", "app-secret")
	cfg, err := config.Parse("test.yaml", []byte(fmt.Sprintf(`connectors:
  - name: m365
    type: entra
    timeout: 1s
    entra: {tenant: contoso.example, client_id: 11111111-2222-3333-4444-555555555555, client_secret_env: DIRGATE_TEST_ENTRA_SECRET,
            authority_url: %q, graph_url: %q, password_check: true}
`, authorityURL, authorityURL)))
	if err != nil {
		t.Fatal(err)
	}
	a := &Authenticator{log: slog.New(slog.DiscardHandler), pools: map[string]*pool{}}
	chk, err := a.newChecker(&cfg.Connectors[0], 0, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	return chk
}

var ropcEntry = &cache.Entry{Connector: "m365", ID: "u-ann", Kind: cache.KindUser,
	Attrs: []cache.Attr{{Name: "userPrincipalName", Values: []string{"ann@contoso.example"}}}}

// TestEntraPasswordNotRedirected: a token endpoint answering 307 or 308
// (after which Go re-posts the form, password included) sends nothing to
// the Location's host, and the check fails as unavailable.
func TestEntraPasswordNotRedirected(t *testing.T) {
	for _, status := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			var stolen atomic.Int32
			evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				stolen.Add(1)
				_, _ = w.Write([]byte(`{"access_token":"x","token_type":"Bearer"}`))
			}))
			defer evil.Close()
			authority := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, evil.URL+"/token", status)
			}))
			defer authority.Close()
			_, err := entraChecker(t, authority.URL).verify(context.Background(), ropcEntry, "Ann-Passw0rd")
			if stolen.Load() != 0 {
				t.Fatalf("the redirect's host received %d requests", stolen.Load())
			}
			if ae, ok := err.(*Error); !ok || ae.Reason != ReasonUnavailable {
				t.Errorf("err = %v, want unavailable", err)
			}
		})
	}
}

// TestEntraPasswordCheckTimesOut: a token endpoint that never answers
// fails the check after the connector's timeout, whatever the caller's
// context.
func TestEntraPasswordCheckTimesOut(t *testing.T) {
	release := make(chan struct{})
	authority := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer authority.Close()
	defer close(release)
	chk := entraChecker(t, authority.URL)
	done := make(chan error, 1)
	go func() {
		_, err := chk.verify(context.Background(), ropcEntry, "pw")
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a check without an answer succeeded")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the check outlasted the connector's 1s timeout by 30s")
	}
}
