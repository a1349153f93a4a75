package entra

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDecodeSTSError(t *testing.T) {
	body := func(oauthErr, desc, codes string) string {
		return `{"error":"` + oauthErr + `","error_description":"` + desc + `","error_codes":` + codes +
			`,"timestamp":"2026-01-09 02:02:12Z","trace_id":"trace-1","correlation_id":"corr-1"}`
	}
	cases := []struct {
		name     string
		status   int
		body     string
		code     int
		class    FailureClass
		verified bool
		fix      string // a fragment of Fix; "" = Fix is empty
	}{
		{"wrong password", 400, body("invalid_grant", `AADSTS50126: Error validating credentials due to invalid username or password.\r\nTrace ID: x`, "[50126]"), 50126, FailureInvalidCredentials, false, ""},
		{"unknown user", 400, body("invalid_grant", "AADSTS50034: The user account does not exist", "[50034]"), 50034, FailureUnknownUser, false, "next sync"},
		{"disabled", 400, body("invalid_grant", "AADSTS50057: The user account is disabled.", "[50057]"), 50057, FailureDisabled, false, "Block sign in"},
		{"locked", 400, body("invalid_grant", "AADSTS50053: locked", "[50053]"), 50053, FailureLocked, false, "unlock"},
		{"expired", 400, body("invalid_grant", "AADSTS50055: The password is expired.", "[50055]"), 50055, FailurePasswordExpired, true, "new password"},
		{"mfa", 400, body("interaction_required", "AADSTS50076: Due to a configuration change ...", "[50076]"), 50076, FailureInteractionRequired, true, "OIDC login"},
		{"conditional access", 400, body("invalid_grant", "AADSTS53003: Access has been blocked by Conditional Access policies.", "[53003]"), 53003, FailureBlocked, true, "trace ID"},
		{"consent", 400, body("invalid_grant", "AADSTS65001: The user or administrator has not consented", "[65001]"), 65001, FailureConsentMissing, false, "Connect Entra ID"},
		{"consent declined", 400, body("access_denied", "AADSTS65004: User declined to consent to access the app.", "[65004]"), 65004, FailureConsentMissing, false, "Privileged Role Administrator"},
		{"wrong secret", 401, body("invalid_client", "AADSTS7000215: Invalid client secret provided.", "[7000215]"), 7000215, FailureAppMisconfigured, false, "client_secret_env"},
		{"public client flows", 400, body("invalid_client", "AADSTS7000218: The request body must contain client_assertion or client_secret", "[7000218]"), 7000218, FailureAppMisconfigured, false, "Allow public client flows"},
		{"unknown app", 400, body("unauthorized_client", "AADSTS700016: Application not found", "[700016]"), 700016, FailureAppMisconfigured, false, "client_id"},
		{"tenant", 400, body("invalid_request", "AADSTS90002: Tenant not found.", "[90002]"), 90002, FailureTenantNotFound, false, "usgov"},
		{"loop", 400, body("invalid_grant", "AADSTS50196: loop detected", "[50196]"), 50196, FailureUnavailable, false, "after a pause"},
		// Without error_codes the code comes from the description's prefix.
		{"code from description", 400, `{"error":"invalid_grant","error_description":"AADSTS50057: disabled"}`, 50057, FailureDisabled, false, "Block sign in"},
		// error_codes wins over the description: only the code is trusted.
		{"codes over description", 400, body("invalid_grant", "AADSTS50057: disabled", "[50126, 50057]"), 50126, FailureInvalidCredentials, false, ""},
		// An unknown code falls back to the OAuth error.
		{"unknown code, interaction", 400, body("interaction_required", "AADSTS99999: new", "[99999]"), 99999, FailureInteractionRequired, false, "OIDC login"},
		{"unknown code, invalid_client", 401, body("invalid_client", "", "[12345]"), 12345, FailureAppMisconfigured, false, "app registration"},
		{"no code, consent_required", 400, `{"error":"consent_required"}`, 0, FailureConsentMissing, false, "admin consent"},
		{"garbage, 503", 503, `<html>down</html>`, 0, FailureUnavailable, false, "after a pause"},
		{"garbage, 429", 429, ``, 0, FailureUnavailable, false, "after a pause"},
		{"garbage, 400", 400, `not json`, 0, FailureUnknown, false, "error page"},
		{"description not a code", 400, `{"error":"bogus","error_description":"AADSTSxyz"}`, 0, FailureUnknown, false, "error page"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := DecodeSTSError(tc.status, []byte(tc.body))
			if e.Code != tc.code || e.Class != tc.class || e.PasswordVerified != tc.verified {
				t.Fatalf("got code %d class %s verified %v, want %d %s %v", e.Code, e.Class, e.PasswordVerified, tc.code, tc.class, tc.verified)
			}
			if e.Status != tc.status || e.What == "" {
				t.Errorf("status %d what %q", e.Status, e.What)
			}
			if tc.fix == "" && e.Fix != "" || !strings.Contains(e.Fix, tc.fix) {
				t.Errorf("fix %q, want it to contain %q", e.Fix, tc.fix)
			}
			if strings.Contains(tc.body, "trace-1") && (e.TraceID != "trace-1" || !strings.Contains(e.Error(), "trace-1")) {
				t.Errorf("trace ID lost: %q / %s", e.TraceID, e.Error())
			}
		})
	}
}

func TestSTSErrorLabel(t *testing.T) {
	cases := []struct {
		e    STSError
		want string
	}{
		{STSError{Status: 400, OAuthError: "invalid_grant", Code: 50126}, "AADSTS50126"},
		{STSError{Status: 400, OAuthError: "invalid_client"}, "invalid_client"},
		{STSError{Status: 502}, "HTTP 502"},
	}
	for _, tc := range cases {
		if got := tc.e.Label(); got != tc.want {
			t.Errorf("Label() = %q, want %q", got, tc.want)
		}
	}
}

func TestEveryClassHasAName(t *testing.T) {
	for c := FailureUnknown; c <= FailureUnavailable; c++ {
		if strings.HasPrefix(c.String(), "class(") {
			t.Errorf("class %d has no name", c)
		}
	}
	for n, c := range codes {
		if c.what == "" {
			t.Errorf("AADSTS%d has no meaning", n)
		}
		if c.class != FailureInvalidCredentials && c.fix == "" {
			t.Errorf("AADSTS%d (%s) has no fix", n, c.class)
		}
	}
}

func FuzzDecodeSTSError(f *testing.F) {
	f.Add(400, []byte(`{"error":"invalid_grant","error_description":"AADSTS50126: x","error_codes":[50126],"trace_id":"t"}`))
	f.Add(401, []byte(`{"error":"invalid_client","error_description":"AADSTS7000215: x"}`))
	f.Add(400, []byte(`{"error_description":"AADSTS99999999999999999999: overflow"}`))
	f.Add(503, []byte(`<html>`))
	f.Add(400, []byte(`{"error":["not","a string"],"error_codes":"x"}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		e := DecodeSTSError(status, body)
		if e == nil || e.What == "" {
			t.Fatalf("no meaning for %q", body)
		}
		if len(e.Description) > maxDescription || !utf8.ValidString(e.Description) {
			t.Fatalf("description not bounded or not UTF-8: %d bytes", len(e.Description))
		}
		if e.Class != FailureInvalidCredentials && e.Fix == "" {
			t.Fatalf("class %s without a fix", e.Class)
		}
		_ = e.Error()
		_ = e.Label()
	})
}
