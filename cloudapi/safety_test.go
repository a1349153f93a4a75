package cloudapi

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/dirgate/dirgate/clock"
)

// recorder is a server that must receive nothing: it counts requests and
// keeps the Authorization headers it saw.
type recorder struct {
	*httptest.Server
	hits atomic.Int32
	auth atomic.Value
}

func newRecorder(t *testing.T) *recorder {
	r := &recorder{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.hits.Add(1)
		r.auth.Store(req.Header.Get("Authorization"))
		_, _ = w.Write([]byte(`{}`))
	}))
	t.Cleanup(r.Close)
	return r
}

func staticTokens() *TokenCache {
	return &TokenCache{Fetch: func() (*oauth2.Token, error) {
		return &oauth2.Token{AccessToken: "SECRET", Expiry: time.Now().Add(time.Hour)}, nil
	}}
}

// TestAuthorizedClientFollowsNoRedirect: an API answer redirecting to
// another host is an error, and the other host receives nothing (Go
// would re-send a header the transport adds, and re-POST a body on
// 307/308).
func TestAuthorizedClientFollowsNoRedirect(t *testing.T) {
	for _, status := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			evil := newRecorder(t)
			api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, evil.URL+"/steal", status)
			}))
			defer api.Close()
			c := &Client{HTTP: staticTokens().AuthorizedClient(api.Client(), api.URL), Clock: clock.NewFake(time.Unix(0, 0))}
			err := c.GetJSON(context.Background(), api.URL+"/v1.0/users", new(any))
			var he *HTTPError
			if !errors.As(err, &he) || he.Status != status {
				t.Errorf("err = %v, want the %d as *HTTPError", err, status)
			}
			if n := evil.hits.Load(); n != 0 {
				t.Fatalf("the redirect's host got %d requests (Authorization %q)", n, evil.auth.Load())
			}
		})
	}
}

// TestBearerOnlyToAPIBases: the token is attached only for the scheme and
// host of the configured bases; a request elsewhere is not sent at all.
func TestBearerOnlyToAPIBases(t *testing.T) {
	api, other := newRecorder(t), newRecorder(t)
	for _, tc := range []struct {
		name  string
		bases []string
		url   string
		sent  bool
	}{
		{"the API base", []string{api.URL + "/v1.0"}, api.URL + "/v1.0/users?$skiptoken=x", true},
		{"any of several bases", []string{other.URL, api.URL}, api.URL + "/x", true},
		{"another host", []string{api.URL}, other.URL + "/steal?$skiptoken=x", false},
		{"another scheme", []string{strings.Replace(api.URL, "http://", "https://", 1)}, api.URL + "/x", false},
		{"no base configured", nil, api.URL + "/x", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := api.hits.Load() + other.hits.Load()
			resp, err := staticTokens().AuthorizedClient(http.DefaultClient, tc.bases...).Get(tc.url)
			if err == nil {
				resp.Body.Close()
			}
			sent := api.hits.Load()+other.hits.Load() > before
			if sent != tc.sent || (err == nil) != tc.sent {
				t.Fatalf("sent %v (err %v), want sent %v", sent, err, tc.sent)
			}
			if !tc.sent && !errors.Is(err, ErrForeignHost) {
				t.Errorf("err = %v, want ErrForeignHost", err)
			}
		})
	}
}

// TestErrorsCarryNoStateTokens: transport, HTTP and decode errors, and
// the retry log lines, name the path but not the query holding paging
// and delta tokens.
func TestErrorsCarryNoStateTokens(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	status := func(code int, body string) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(code)
			_, _ = w.Write([]byte(body))
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	for _, tc := range []struct {
		name string
		base string
	}{
		{"transport", closed.URL},
		{"HTTP", status(500, `{"error":{"code":"x"}}`).URL},
		{"throttled", status(429, ``).URL},
		{"decode", status(200, `{"value":[`).URL},
	} {
		for _, q := range []string{"$deltatoken=SECRETDELTA", "$skiptoken=SECRETSKIP", "pageToken=SECRETPAGE"} {
			t.Run(tc.name+" "+q, func(t *testing.T) {
				var logs bytes.Buffer
				c := &Client{HTTP: http.DefaultClient, Clock: clock.NewFake(time.Unix(0, 0)), MaxRetries: 2,
					Log: slog.New(slog.NewTextHandler(&logs, nil))}
				err := c.GetJSON(context.Background(), tc.base+"/v1.0/users/delta?"+q, new(any))
				if err == nil {
					t.Fatal("no error")
				}
				for what, s := range map[string]string{"error": err.Error(), "log": logs.String()} {
					if strings.Contains(s, "SECRET") || strings.Contains(strings.ToLower(s), "token=") {
						t.Errorf("%s carries the token: %s", what, s)
					}
				}
			})
		}
	}
}

// TestNotRetried: an answer over the size limit and a certificate that
// does not verify would fail the same way again.
func TestNotRetried(t *testing.T) {
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(bytes.Repeat([]byte("x"), 100))
	}))
	defer big.Close()
	untrusted := httptest.NewTLSServer(http.NotFoundHandler())
	defer untrusted.Close()
	for _, tc := range []struct {
		name string
		url  string
		want error
	}{
		{"too large", big.URL, ErrTooLarge},
		{"untrusted certificate", untrusted.URL, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clock.NewFake(time.Unix(0, 0))
			c := &Client{HTTP: http.DefaultClient, Clock: clk, MaxBody: 10}
			_, err := c.Get(context.Background(), tc.url)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if clk.Slept() != 0 || errors.Is(err, ErrRetriesExhausted) {
				t.Errorf("retried (slept %v): %v", clk.Slept(), err)
			}
		})
	}
}

func TestSameOrigin(t *testing.T) {
	for _, tc := range []struct {
		link, base string
		want       bool
	}{
		{"https://graph.microsoft.com/v1.0/users/delta?$deltatoken=x", "https://graph.microsoft.com", true},
		{"https://GRAPH.microsoft.com:443/v1.0/x", "https://graph.microsoft.com/", true},
		{"http://127.0.0.1:8080/x", "http://127.0.0.1:8080", true},
		{"http://graph.microsoft.com/x", "https://graph.microsoft.com", false},
		{"https://graph.microsoft.com.evil/x", "https://graph.microsoft.com", false},
		{"https://evil@graph.microsoft.com/x", "https://graph.microsoft.com", true},
		{"https://127.0.0.1:8081/x", "https://127.0.0.1:8080", false},
		{"/v1.0/relative", "https://graph.microsoft.com", false},
		{"", "", false},
		{"https://graph.microsoft.com/x", "", false},
	} {
		if got := SameOrigin(tc.link, tc.base); got != tc.want {
			t.Errorf("SameOrigin(%q, %q) = %v, want %v", tc.link, tc.base, got, tc.want)
		}
	}
}
