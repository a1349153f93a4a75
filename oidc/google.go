package oidc

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// GoogleIssuer is Google's OpenID issuer; its discovery document is
// beneath it.
const GoogleIssuer = "https://accounts.google.com"

// GoogleUpstream completes u for "Sign in with Google" at issuer (""
// means GoogleIssuer): the join by sub, which for a Workspace account is
// its Directory user ID; the hd hint sent to Google's account chooser;
// and ID tokens refused unless Google verified the email address and hd,
// the Workspace domain of the account, is one of domains. Google leaves
// hd out for personal accounts, so they are always refused. With no
// domains any Workspace account passes the hd check, and only the join
// (an account of this connector's customer) admits it.
func GoogleUpstream(u Upstream, issuer string, domains []string) Upstream {
	if issuer == "" {
		issuer = GoogleIssuer
	}
	u.Discovery = strings.TrimSuffix(issuer, "/")
	if u.Label == "" {
		u.Label = "Google"
	}
	u.JoinClaim = "sub"
	hosted := make([]string, 0, len(domains))
	for _, d := range domains {
		if d = strings.ToLower(d); !slices.Contains(hosted, d) {
			hosted = append(hosted, d)
		}
	}
	// The hint names one domain, or asks for any Workspace account; it
	// only shapes Google's account chooser, the claim is what counts.
	hint := "*"
	if len(hosted) == 1 {
		hint = hosted[0]
	}
	params := url.Values{}
	for k, v := range u.AuthParams {
		params[k] = v
	}
	params.Set("hd", hint)
	u.AuthParams = params
	label := u.Label
	u.CheckClaims = func(_ string, claims map[string]any) error { return checkGoogleClaims(label, hosted, claims) }
	return u
}

// checkGoogleClaims refuses an ID token of a personal account, of a
// Workspace domain not in hosted (when hosted is not empty), or whose
// email address Google has not verified.
func checkGoogleClaims(label string, hosted []string, claims map[string]any) error {
	ours := "your organisation's account"
	if len(hosted) > 0 {
		ours = "your account of " + strings.Join(hosted, " or ")
	}
	hd, _ := claims["hd"].(string)
	switch {
	case hd == "":
		return &UpstreamRefusal{Message: fmt.Sprintf("You signed in to %s with a personal account. Sign in with %s.", label, ours)}
	case len(hosted) > 0 && !slices.Contains(hosted, strings.ToLower(hd)):
		return &UpstreamRefusal{Message: fmt.Sprintf("Your %s account belongs to %s, which does not sign in here. Sign in with %s.", label, hd, ours)}
	}
	// Google has sent email_verified as a string in some token versions.
	switch v := claims["email_verified"].(type) {
	case bool:
		if v {
			return nil
		}
	case string:
		if v == "true" {
			return nil
		}
	}
	return &UpstreamRefusal{Message: fmt.Sprintf("%s has not verified the email address of your account. Contact your administrator.", label)}
}
