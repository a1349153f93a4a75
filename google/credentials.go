package google

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"golang.org/x/oauth2"
	googleoauth "golang.org/x/oauth2/google"

	"github.com/dirgate/dirgate/clock"
	"github.com/dirgate/dirgate/cloudapi"
	"github.com/dirgate/dirgate/config"
)

// Scopes are the OAuth scopes dirgate asks for, the least that lists
// users, groups and members: domain-wide delegation must grant exactly
// these to the service account's client ID. (group.readonly covers
// members.list; group.member.readonly is not needed.)
var Scopes = []string{
	"https://www.googleapis.com/auth/admin.directory.user.readonly",
	"https://www.googleapis.com/auth/admin.directory.group.readonly",
}

// NewTokenCache prepares the credentials of g: JWT-bearer grants signed
// with the service account's key, for the scopes above, impersonating
// g.Admin, sent to g.TokenURL through hc. Tokens are renewed by clk. The
// key (which configuration loading checked) is read at the first token
// request.
func NewTokenCache(g *config.Google, hc *http.Client, clk clock.Clock) *cloudapi.TokenCache {
	return &cloudapi.TokenCache{Clock: clk, Fetch: func() (*oauth2.Token, error) {
		cfg, err := googleoauth.JWTConfigFromJSON([]byte(g.ServiceAccountKey.Reveal()), Scopes...)
		if err != nil {
			return nil, fmt.Errorf("google: the service account key %s: %w", g.ServiceAccountKeyFile, err)
		}
		cfg.Subject = g.Admin
		cfg.TokenURL = g.TokenURL
		// A redirect would re-send the signed assertion to its Location.
		ctx := context.WithValue(context.Background(), oauth2.HTTPClient, cloudapi.NoRedirects(hc))
		issued := clk.Now()
		t, err := cfg.TokenSource(ctx).Token()
		if err != nil {
			return nil, decodeTokenError(err, cfg.Email, g.Admin)
		}
		cloudapi.ExpiryFromNow(t, issued)
		return t, nil
	}}
}

// TokenError is the token endpoint's refusal, with what it means for a
// service account with domain-wide delegation and the fix.
type TokenError struct {
	Status            int
	Code, Description string
	// Fix says what to change, for an administrator.
	Fix string
}

func (e *TokenError) Error() string {
	s := fmt.Sprintf("the token endpoint refused (HTTP %d %s", e.Status, e.Code)
	if e.Description != "" {
		s += ": " + e.Description
	}
	return s + "); " + e.Fix
}

// decodeTokenError reads Google's OAuth error ({"error": "...",
// "error_description": "..."}) out of a failed token request.
func decodeTokenError(err error, serviceAccount, admin string) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response == nil {
		return fmt.Errorf("google: getting a token: %w", err)
	}
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	_ = json.Unmarshal(re.Body, &body)
	return DecodeTokenError(re.Response.StatusCode, body.Error, body.Description, serviceAccount, admin)
}

// DecodeTokenError explains a token endpoint refusal (Test Connection
// decodes alike).
func DecodeTokenError(status int, code, description, serviceAccount, admin string) *TokenError {
	e := &TokenError{Status: status, Code: code, Description: description}
	desc := strings.ToLower(description)
	switch {
	case code == "unauthorized_client":
		e.Fix = fmt.Sprintf("domain-wide delegation is missing for the service account %s, or does not grant every scope: in the Admin console (Security > Access and data control > API controls > Domain-wide delegation) add its client ID with exactly the scopes %s", serviceAccount, strings.Join(Scopes, ","))
	case code == "invalid_grant" && strings.Contains(desc, "email or user id"):
		e.Fix = fmt.Sprintf("the admin to impersonate, %s, is not a user of the Workspace account; set google.admin to the address of an administrator", admin)
	case code == "invalid_grant" && strings.Contains(desc, "signature"):
		e.Fix = "the key was revoked or is not the service account's; create a new JSON key and point service_account_key_file at it"
	case code == "invalid_grant" && (strings.Contains(desc, "short-lived") || strings.Contains(desc, "timeframe")):
		e.Fix = "this machine's clock is off; synchronise it (NTP)"
	case code == "disabled_client" || strings.Contains(desc, "disabled"):
		e.Fix = "the service account or its key is disabled; enable it in IAM > Service accounts"
	default:
		e.Fix = "check the service account key and domain-wide delegation"
	}
	return e
}

// DirectoryFix says what to change for a Directory API refusal, or "".
func DirectoryFix(he *cloudapi.HTTPError, admin string) string {
	switch {
	case retryable(he) || he.Status == http.StatusTooManyRequests:
		return "the Directory API's quota stayed exceeded through every retry; lower google.requests_per_minute, or raise the quota in the Cloud console"
	case he.Status == http.StatusForbidden && strings.EqualFold(he.Code, "insufficientPermissions"):
		return "the token lacks a scope; grant domain-wide delegation exactly the scopes " + strings.Join(Scopes, ",")
	case he.Status == http.StatusForbidden && (strings.EqualFold(he.Code, "accessNotConfigured") || strings.EqualFold(he.Code, "SERVICE_DISABLED")):
		return "the Admin SDK API is not enabled in the service account's Cloud project; enable it (APIs & Services > Library > Admin SDK API)"
	case he.Status == http.StatusForbidden:
		return fmt.Sprintf("%s may not read the directory; impersonate a super administrator, or give %s an admin role with the Users and Groups read privileges", admin, admin)
	case he.Status == http.StatusBadRequest || he.Status == http.StatusNotFound:
		return "check google.customer and google.domain: the account or domain is not known to Google"
	}
	return ""
}
