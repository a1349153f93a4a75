package testconn

import (
	"fmt"
	"strings"
	"testing"

	"github.com/dirgate/dirgate/internal/testenv"
)

// TestGoogleSecureLDAPStep runs the password_check step against the Secure
// LDAP emulation: the trusted client certificate is accepted; one Secure
// LDAP does not trust fails the step with the Admin console fix.
func TestGoogleSecureLDAPStep(t *testing.T) {
	e := testenv.Load(t)
	secureLDAP := func(cert, key string) string {
		return fmt.Sprintf(", secure_ldap: {host: %s, port: %s, ca_file: %s, client_certificate_file: %s, client_key_file: %s, base_dn: %q}",
			e.Get(t, "DIRGATE_GSL_HOST"), e.Get(t, "DIRGATE_GSL_LDAPS_PORT"), e.Get(t, "DIRGATE_GSL_CA"),
			e.Get(t, cert), e.Get(t, key), e.Get(t, "DIRGATE_GSL_BASE"))
	}
	r := googleCase{extra: secureLDAP("DIRGATE_GSL_CLIENT_CERT", "DIRGATE_GSL_CLIENT_KEY")}.run(t)
	if s := stepOf(t, r, r.Steps[0].Host, StepPasswordCheck); !r.OK || !strings.Contains(s.Detail, "accepted the LDAP client's certificate") {
		t.Fatalf("trusted certificate:\n%s", r.Text())
	}
	r = googleCase{extra: secureLDAP("DIRGATE_GSL_UNTRUSTED_CLIENT_CERT", "DIRGATE_GSL_UNTRUSTED_CLIENT_KEY")}.run(t)
	if s := stepOf(t, r, r.Steps[0].Host, StepPasswordCheck); r.OK || s.OK || !strings.Contains(s.Detail, "Secure LDAP") ||
		!strings.Contains(s.Fix, "service status is On") {
		t.Fatalf("untrusted certificate:\n%s", r.Text())
	}
}
