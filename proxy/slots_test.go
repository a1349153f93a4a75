package proxy

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/internal/testlog"
)

// rootDSE reads the root DSE, which an anonymous session may always do.
func rootDSE(c *ldap.Conn) error {
	_, err := c.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, 0, 0, 0, false, "(objectClass=*)", []string{"namingContexts"}, nil))
	return err
}

// TestFirstRequestTimeoutUntilEstablished: a connection idles under
// first_request_timeout, not idle_timeout, until it has an identity (a
// successful bind) or, with allow_anonymous on, until it was answered
// anything: one anonymous bind, root DSE read or failed bind does not buy a
// slot for the whole idle_timeout.
func TestFirstRequestTimeoutUntilEstablished(t *testing.T) {
	const first = 300 * time.Millisecond
	for _, tc := range []struct {
		name      string
		anonymous bool // allow_anonymous
		send      func(*ldap.Conn) error
		stays     bool
	}{
		{"anonymous bind", false, func(c *ldap.Conn) error { return c.UnauthenticatedBind("") }, false},
		{"root DSE", false, rootDSE, false},
		{"failed bind", false, func(c *ldap.Conn) error {
			if err := c.Bind(appDN, "wrong"); !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
				return err
			}
			return nil
		}, false},
		{"service account bind", false, func(c *ldap.Conn) error { return c.Bind(appDN, appPW) }, true},
		{"anonymous bind with allow_anonymous", true, func(c *ldap.Conn) error { return c.UnauthenticatedBind("") }, true},
		{"root DSE with allow_anonymous", true, rootDSE, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, addr := startProxy(t, proxyConfig(t, slotKeys(tc.anonymous)), nil, false)
			c := ldap.NewConn(dialFrom(t, "127.0.0.1", addr), false)
			c.Start()
			c.SetTimeout(5 * time.Second)
			t.Cleanup(func() { c.Close() })
			if err := tc.send(c); err != nil {
				t.Fatal(err)
			}
			if !tc.stays {
				deadline := time.Now().Add(10 * time.Second)
				for !c.IsClosing() {
					if time.Now().After(deadline) {
						t.Fatal("connection still open long after first_request_timeout")
					}
					time.Sleep(20 * time.Millisecond)
				}
				return
			}
			time.Sleep(3 * first)
			if _, err := c.WhoAmI(nil); err != nil {
				t.Fatalf("the connection did not outlive first_request_timeout: %v", err)
			}
		})
	}
}

// TestAbandonEstablishesNothing: an Abandon, which gets no answer, is no
// completed request, even with allow_anonymous on.
func TestAbandonEstablishesNothing(t *testing.T) {
	msg := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAP Request")
	msg.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 1, "MessageID"))
	msg.AppendChild(ber.NewInteger(ber.ClassApplication, ber.TypePrimitive, ldap.ApplicationAbandonRequest, 7, "Abandon Request"))
	for _, anonymous := range []bool{false, true} {
		_, addr := startProxy(t, proxyConfig(t, slotKeys(anonymous)), nil, false)
		c := dialFrom(t, "127.0.0.1", addr)
		if _, err := c.Write(msg.Bytes()); err != nil {
			t.Fatal(err)
		}
		closedWithin(t, c, 10*time.Second)
	}
}

// slotKeys are the ldap keys of the tests above: a first_request_timeout
// far shorter than idle_timeout.
func slotKeys(allowAnonymous bool) string {
	keys := ", idle_timeout: 1h, first_request_timeout: 300ms"
	if allowAnonymous {
		keys += ", allow_anonymous: true"
	}
	return keys
}

// TestProtocolErrorsRateLimited: connections closed for protocol errors are
// each counted, but logged once per interval, so that a client sending junk
// in a loop cannot flood the log.
func TestProtocolErrorsRateLimited(t *testing.T) {
	var logs testlog.Buffer
	_, addr := startProxyLog(t, proxyConfig(t, ""), nil, false, slog.New(slog.NewTextHandler(&logs, nil)))
	before := counterValue(t, "dirgate_ldap_protocol_errors_total", nil)
	const n = 5
	for range n {
		c := dialFrom(t, "127.0.0.1", addr)
		if _, err := c.Write([]byte{0x04, 0x00}); err != nil { // an OCTET STRING, not an LDAPMessage
			t.Fatal(err)
		}
		if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		// A Notice of Disconnection, then the close.
		if _, err := io.ReadAll(c); err != nil {
			t.Fatalf("the connection was not closed: %v", err)
		}
	}
	if got := counterValue(t, "dirgate_ldap_protocol_errors_total", nil) - before; got != n {
		t.Errorf("protocol errors counted: %v, want %d", got, n)
	}
	lines := 0
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "protocol error") {
			lines++
		}
	}
	if lines != 1 {
		t.Errorf("protocol errors logged on %d lines, want 1:\n%s", lines, logs.String())
	}
}
