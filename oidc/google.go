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
	if u.DescribeError == nil {
		u.DescribeError = DescribeGoogleError
	}
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

// googleErrors say in plain words what the errors Google sends back to
// the callback mean.
var googleErrors = map[string]string{
	"access_denied":              "you cancelled, or declined to share your account with this sign-in",
	"admin_policy_enforced":      "your organisation's Google administrator does not allow this application to use your account; they can trust it under API controls in the Admin console",
	"org_internal":               "the OAuth client is limited to the users of another organisation; the administrator must make it available to yours",
	"interaction_required":       "Google needs you to sign in again",
	"login_required":             "Google needs you to sign in again",
	"consent_required":           "Google needs you to sign in again",
	"account_selection_required": "Google needs you to choose an account",
	"invalid_client":             "dirgate's OAuth client is not known to Google; the administrator must check oauth_client_id",
	"unauthorized_client":        "dirgate's OAuth client may not sign users in this way; the administrator must check the OAuth client (type Web application)",
	"redirect_uri_mismatch":      "the OAuth client does not list dirgate's redirect URI; the administrator must add it under Authorized redirect URIs",
	"invalid_request":            "Google refused the request; the administrator must check the OAuth client",
	"invalid_scope":              "Google refused the requested scopes; the administrator must check the OAuth consent screen",
	"server_error":               "Google had an internal error; try again in a few minutes",
	"temporarily_unavailable":    "Google is not available right now; try again in a few minutes",
}

// DescribeGoogleError says in a sentence why Google refused a sign-in,
// from the error it sent back to the callback.
func DescribeGoogleError(code, _ string) string {
	if what, ok := googleErrors[code]; ok {
		return what + " (" + code + ")."
	}
	return code + "."
}
