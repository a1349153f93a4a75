package admin

import (
	"net/url"
	"strings"
	"testing"
)

// TestConsentOtherTenant: consent granted in a tenant other than the
// connector's, configured by ID, is refused in plain words; one configured
// by domain name, or an answer without a tenant, cannot be compared.
func TestConsentOtherTenant(t *testing.T) {
	const ours, theirs = "8f0e3c2a-1b2c-4d5e-9f00-0123456789ab", "11111111-2222-4333-8444-555555555555"
	for _, tc := range []struct {
		configured, returned, status, says string
	}{
		{ours, theirs, "failed", "granted in another tenant (" + theirs + ") than this connector's (" + ours + ")"},
		{ours, strings.ToUpper(ours), "ok", "granted admin consent"},
		{ours, "", "ok", "granted admin consent"},
		{"contoso.onmicrosoft.com", theirs, "ok", "for tenant " + theirs},
		{"8f0e3c2a-1b2c-4d5e-9f00-0123456789zz", theirs, "ok", "granted admin consent"},
	} {
		q := url.Values{"admin_consent": {"True"}}
		if tc.returned != "" {
			q.Set("tenant", tc.returned)
		}
		status, msg := consentOutcome(q, tc.configured)
		if status != tc.status || !strings.Contains(msg, tc.says) {
			t.Errorf("configured %s, returned %q: %s %q, want %s with %q", tc.configured, tc.returned, status, msg, tc.status, tc.says)
		}
	}
}
