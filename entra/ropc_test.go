package entra

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestPasswordGrantRequest checks the request against the documented
// form, with a handler standing in for the token endpoint.
func TestPasswordGrantRequest(t *testing.T) {
	var got url.Values
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/tenant-1/oauth2/v2.0/token" ||
			r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			http.Error(w, "bad request shape", http.StatusTeapot)
			return
		}
		_ = r.ParseForm()
		got = r.PostForm
		if got.Get("password") != "right" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_grant","error_description":"AADSTS50126: x","error_codes":[50126],"trace_id":"tr"}`))
			return
		}
		_, _ = w.Write([]byte(`{"token_type":"Bearer","access_token":"a","id_token":"i"}`))
	}))
	defer srv.Close()

	cases := []struct {
		name     string
		auth     func() (url.Values, error)
		password string
		want     FailureClass // -1: accepted
		wantForm url.Values
	}{
		{"public client, right", nil, "right", -1, url.Values{"client_secret": nil}},
		{"secret, right", func() (url.Values, error) { return url.Values{"client_secret": {"s3"}}, nil }, "right", -1,
			url.Values{"client_secret": {"s3"}}},
		{"secret, wrong", func() (url.Values, error) { return url.Values{"client_secret": {"s3"}}, nil }, "wrong", FailureInvalidCredentials,
			url.Values{"client_secret": {"s3"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := &PasswordGrant{TokenURL: srv.URL + "/tenant-1/oauth2/v2.0/token", ClientID: "app-1", ClientAuth: tc.auth, HTTP: srv.Client()}
			err := g.Check(context.Background(), "ann@contoso.example", tc.password)
			var se *STSError
			switch {
			case tc.want == -1 && err != nil:
				t.Fatalf("Check: %v", err)
			case tc.want != -1 && (!errors.As(err, &se) || se.Class != tc.want):
				t.Fatalf("Check: %v, want class %s", err, tc.want)
			}
			want := url.Values{"grant_type": {"password"}, "client_id": {"app-1"}, "username": {"ann@contoso.example"},
				"password": {tc.password}, "scope": {"openid"}}
			for k, v := range tc.wantForm {
				if v != nil {
					want[k] = v
				}
			}
			if got.Encode() != want.Encode() {
				t.Errorf("form %s, want %s", got.Encode(), want.Encode())
			}
		})
	}
	if h := (&PasswordGrant{TokenURL: srv.URL + "/t/oauth2/v2.0/token"}).Host(); !strings.HasPrefix(srv.URL, "http://"+h) || h == "" {
		t.Errorf("Host() = %q for %s", h, srv.URL)
	}
}

// TestPasswordGrantNoAnswer: a token endpoint that cannot be reached, or
// a client credential that cannot be built, neither accepts nor refuses.
func TestPasswordGrantNoAnswer(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	tokenURL := srv.URL + "/t/oauth2/v2.0/token"
	srv.Close()
	cases := []struct {
		name string
		g    PasswordGrant
	}{
		{"unreachable", PasswordGrant{TokenURL: tokenURL}},
		{"credential", PasswordGrant{TokenURL: tokenURL, ClientAuth: func() (url.Values, error) { return nil, errors.New("no key") }}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.g.Check(context.Background(), "ann@contoso.example", "secret-password")
			var se *STSError
			if !errors.Is(err, ErrPasswordGrant) || errors.As(err, &se) {
				t.Fatalf("Check: %v, want ErrPasswordGrant", err)
			}
			if strings.Contains(err.Error(), "secret-password") {
				t.Fatalf("the error quotes the password: %v", err)
			}
		})
	}
}
