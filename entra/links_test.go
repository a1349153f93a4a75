package entra

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/clock"
	"github.com/dirgate/dirgate/cloudapi"
	"github.com/dirgate/dirgate/config"
	dirsync "github.com/dirgate/dirgate/sync"
)

// linkingGraph is a tenant's token endpoint and Graph on one server whose
// users delta page links to next (a URL naming another host, or a path
// on this one); the groups round ends at once.
func linkingGraph(t *testing.T, next func(self string) string) *Source {
	return scriptedGraph(t, func(self string, r *http.Request) any {
		if r.URL.Path == "/v1.0/users/delta" && !r.URL.Query().Has("$deltatoken") && !r.URL.Query().Has("$skiptoken") {
			return map[string]any{"value": []any{}, "@odata.nextLink": next(self)}
		}
		return map[string]any{"value": []any{}, "@odata.deltaLink": self + r.URL.Path + "?$deltatoken=D"}
	})
}

// scriptedGraph is a tenant's token endpoint and Graph on one server, whose
// Graph requests get the JSON of page(the server's URL, the request), and
// a source for it.
func scriptedGraph(t *testing.T, page func(self string, r *http.Request) any) *Source {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token") {
			_, _ = w.Write([]byte(`{"access_token":"SECRET","token_type":"Bearer","expires_in":3600}`))
			return
		}
		_ = json.NewEncoder(w).Encode(page(srv.URL, r))
	}))
	t.Cleanup(srv.Close)
	t.Setenv("DIRGATE_TEST_ENTRA_SECRET", "app-secret")
	cfg, err := config.Parse("t.yaml", []byte(fmt.Sprintf(`connectors:
  - name: m365
    type: entra
    entra: {tenant: contoso.example, client_id: %s, client_secret_env: DIRGATE_TEST_ENTRA_SECRET, authority_url: %q, graph_url: %q}
`, testClientID, srv.URL, srv.URL)))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(&cfg.Connectors[0], nil, cloudapi.WithClock(clock.NewFake(time.Unix(0, 0))))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// elsewhere is a host that must receive nothing.
func elsewhere(t *testing.T) (*httptest.Server, *atomic.Int32) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// TestForeignNextLink: a nextLink to another scheme or host than
// graph_url's is not followed, and the error names the host, not the
// link's tokens.
func TestForeignNextLink(t *testing.T) {
	evil, hits := elsewhere(t)
	for name, next := range map[string]func(string) string{
		"another host": func(string) string { return evil.URL + "/v1.0/users/delta?$skiptoken=SKIP" },
		"another scheme": func(self string) string {
			return strings.Replace(self, "http:", "https:", 1) + "/v1.0/users/delta?$skiptoken=SKIP"
		},
		"relative": func(string) string { return "/v1.0/users/delta?$skiptoken=SKIP" },
	} {
		t.Run(name, func(t *testing.T) {
			_, err := linkingGraph(t, next).Full(context.Background(), func(*cache.Entry) error { return nil })
			if !errors.Is(err, errForeignLink) || strings.Contains(err.Error(), "SKIP") {
				t.Errorf("err = %v, want errForeignLink without the skiptoken", err)
			}
		})
	}
	if hits.Load() != 0 {
		t.Fatalf("the other host got %d requests", hits.Load())
	}
}

// TestForeignCursorLink: a stored cursor whose delta link is not on
// graph_url's host (graph_url changed, or the cursor was tampered with)
// is invalid, so that a full round from graph_url follows, and the link
// is not requested.
func TestForeignCursorLink(t *testing.T) {
	evil, hits := elsewhere(t)
	s := linkingGraph(t, func(self string) string { return self + "/v1.0/users/delta?$skiptoken=P" })
	l, err := s.Full(context.Background(), func(*cache.Entry) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	var cur map[string]any
	if err := json.Unmarshal(l.Cursor, &cur); err != nil {
		t.Fatal(err)
	}
	if _, err := decodeCursor(l.Cursor, s.conn.Entra.GraphURL); err != nil {
		t.Fatalf("the cursor Full left is refused: %v", err)
	}
	cur["users"] = evil.URL + "/v1.0/users/delta?$deltatoken=D"
	raw, _ := json.Marshal(cur)
	_, err = s.Changes(context.Background(), raw, nil, func(dirsync.Change) error { return nil })
	if !errors.Is(err, dirsync.ErrCursorInvalid) || hits.Load() != 0 {
		t.Fatalf("err = %v, other host got %d requests; want ErrCursorInvalid and none", err, hits.Load())
	}
}
