package oidc

import (
	"errors"
	"strings"
	"testing"
)

func TestGoogleClaims(t *testing.T) {
	u := GoogleUpstream(Upstream{Name: "gws"}, "", []string{"Example.com", "example.org", "example.com"})
	if u.Discovery != GoogleIssuer || u.JoinClaim != "sub" || u.Label != "Google" || u.AuthParams.Get("hd") != "*" {
		t.Fatalf("upstream %+v", u)
	}
	if one := GoogleUpstream(Upstream{}, "http://127.0.0.1:8/", []string{"example.com"}); one.AuthParams.Get("hd") != "example.com" || one.Discovery != "http://127.0.0.1:8" {
		t.Fatalf("one domain: %+v", one)
	}
	anyDomain := GoogleUpstream(Upstream{}, "", nil)
	for _, tc := range []struct {
		name   string
		u      Upstream
		claims map[string]any
		refuse string // part of the message shown; "" accepts
	}{
		{"workspace account", u, map[string]any{"hd": "example.com", "email_verified": true}, ""},
		{"second domain, any case", u, map[string]any{"hd": "EXAMPLE.org", "email_verified": true}, ""},
		{"email_verified as a string", u, map[string]any{"hd": "example.com", "email_verified": "true"}, ""},
		{"personal account", u, map[string]any{"email_verified": true}, "personal account. Sign in with your account of example.com or example.org."},
		{"another workspace", u, map[string]any{"hd": "other.test", "email_verified": true}, "belongs to other.test, which does not sign in here"},
		{"email not verified", u, map[string]any{"hd": "example.com", "email_verified": false}, "not verified the email address"},
		{"email_verified missing", u, map[string]any{"hd": "example.com"}, "not verified"},
		{"email_verified \"false\"", u, map[string]any{"hd": "example.com", "email_verified": "false"}, "not verified"},
		{"no domains: any workspace", anyDomain, map[string]any{"hd": "other.test", "email_verified": true}, ""},
		{"no domains: personal refused", anyDomain, map[string]any{"email_verified": true}, "personal account. Sign in with your organisation's account."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.u.CheckClaims(tc.u.Discovery, tc.claims)
			var r *UpstreamRefusal
			switch {
			case tc.refuse == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.refuse != "" && (!errors.As(err, &r) || !strings.Contains(r.Message, tc.refuse)):
				t.Fatalf("got %v, want a refusal saying %q", err, tc.refuse)
			}
		})
	}
}

func TestDescribeGoogleError(t *testing.T) {
	for code, want := range map[string]string{
		"admin_policy_enforced": "under API controls in the Admin console (admin_policy_enforced).",
		"access_denied":         "you cancelled, or declined",
		"something_new":         "something_new.",
	} {
		if got := DescribeGoogleError(code, "ignored"); !strings.Contains(got, want) {
			t.Errorf("%s: %q, want %q", code, got, want)
		}
	}
}
