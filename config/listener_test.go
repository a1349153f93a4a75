package config

import (
	"strings"
	"testing"
	"time"
)

// TestListenerLimits: the connection limits of issue 13 have defaults that
// follow max_connections and idle_timeout, and nonsense is refused.
func TestListenerLimits(t *testing.T) {
	for _, tc := range []struct {
		ldap                string
		first, read         time.Duration
		maxConn, perAddress int
	}{
		{"", 10 * time.Second, 30 * time.Second, 1024, 256},
		{"ldap: {max_connections: 100}", 10 * time.Second, 30 * time.Second, 100, 25},
		{"ldap: {max_connections: 2}", 10 * time.Second, 30 * time.Second, 2, 1},
		{"ldap: {idle_timeout: 5s}", 5 * time.Second, 30 * time.Second, 1024, 256},
		{"ldap: {first_request_timeout: 3s, read_timeout: 1m, max_connections_per_address: 1024}", 3 * time.Second, time.Minute, 1024, 1024},
	} {
		l := mustParse(t, minimal+tc.ldap).LDAP
		if l.FirstRequestTimeout.Std() != tc.first || l.ReadTimeout.Std() != tc.read || l.MaxConnections != tc.maxConn || l.MaxConnectionsPerAddress != tc.perAddress {
			t.Errorf("%q: got first %s, read %s, max %d, per address %d; want %s, %s, %d, %d", tc.ldap,
				l.FirstRequestTimeout, l.ReadTimeout, l.MaxConnections, l.MaxConnectionsPerAddress, tc.first, tc.read, tc.maxConn, tc.perAddress)
		}
	}
	for ldap, want := range map[string]string{
		"ldap: {first_request_timeout: 0s}":                            "ldap.first_request_timeout",
		"ldap: {first_request_timeout: 1h}":                            "longer than idle_timeout",
		"ldap: {read_timeout: -1s}":                                    "ldap.read_timeout",
		"ldap: {max_connections_per_address: 0}":                       "ldap.max_connections_per_address",
		"ldap: {max_connections: 10, max_connections_per_address: 11}": "from 1 to 10",
	} {
		if got := parseErr(t, minimal+ldap); !strings.Contains(got, want) {
			t.Errorf("%q: error %q does not mention %q", ldap, got, want)
		}
	}
}
