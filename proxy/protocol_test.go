package proxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/authn"
	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/demodir"
	"github.com/dirgate/dirgate/internal/testlog"
	"github.com/dirgate/dirgate/internal/testpki"
	"github.com/dirgate/dirgate/metrics"
	"github.com/dirgate/dirgate/passwd"
	dirsync "github.com/dirgate/dirgate/sync"
)

// proxyConfig is a configuration with appDN as service account and the
// ldap keys in ldapKeys (a YAML flow mapping's body) besides listen.
func proxyConfig(t *testing.T, ldapKeys string) *config.Config {
	t.Helper()
	hash, err := passwd.Hash(appPW)
	if err != nil {
		t.Fatal(err)
	}
	y := fmt.Sprintf(`cache: {dir: %s}
ldap: {listen: "127.0.0.1:0"%s}
service_accounts: [{dn: %q, password_hash: %q}]
connectors:
  - {name: up, type: openldap, host: 127.0.0.1, encryption: none, root_dn: "dc=dirgate", acknowledge_disabled_accounts: true}
`, t.TempDir(), ldapKeys, appDN, hash)
	cfg, err := config.Parse("test.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startProxy serves an empty cache with cfg on a plain listener, or LDAPS
// when ldaps is set, offering StartTLS with tlsCfg when it is not nil.
func startProxy(t *testing.T, cfg *config.Config, tlsCfg *tls.Config, ldaps bool) (*Server, string) {
	t.Helper()
	return startProxyLog(t, cfg, tlsCfg, ldaps, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// startProxyLog is startProxy logging to log.
func startProxyLog(t *testing.T, cfg *config.Config, tlsCfg *tls.Config, ldaps bool, log *slog.Logger) (*Server, string) {
	t.Helper()
	cfg.LDAP.StartTLS = tlsCfg != nil
	store, err := cache.Open(cfg.Cache.Dir, cache.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return serveStore(t, cfg, store, tlsCfg, ldaps, log)
}

// serveStore serves store through a proxy for cfg on a loopback port (LDAPS
// when ldaps) and shuts it down and closes store when t ends.
func serveStore(t *testing.T, cfg *config.Config, store *cache.Store, tlsCfg *tls.Config, ldaps bool, log *slog.Logger) (*Server, string) {
	t.Helper()
	auth, err := authn.New(cfg, store, store.States(), log)
	if err != nil {
		store.Close()
		t.Fatal(err)
	}
	srv, err := New(cfg, store, auth, tlsCfg, log)
	if err != nil {
		auth.Close()
		store.Close()
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		auth.Close()
		store.Close()
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln, ldaps) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		auth.Close()
		store.Close()
	})
	return srv, ln.Addr().String()
}

// syncedStore opens a cache for cfg with opts and runs one full sync of
// conn from src into it.
func syncedStore(t *testing.T, cfg *config.Config, opts cache.Options, src dirsync.Source, log *slog.Logger) *cache.Store {
	t.Helper()
	opts.Logger = log
	store, err := cache.Open(cfg.Cache.Dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dirsync.New(store, store.States(), log).Run(context.Background(), &cfg.Connectors[0], src, dirsync.Options{}); err != nil {
		store.Close()
		t.Fatal(err)
	}
	return store
}

// TestCriticalControls: a critical control dirgate does not implement is
// refused with unavailableCriticalExtension on every operation, before the
// operation runs; the same control not marked critical is ignored.
func TestCriticalControls(t *testing.T) {
	_, addr := startProxy(t, proxyConfig(t, ""), nil, false)
	unknown := ldap.NewControlString("1.2.3.4.5", true, "")
	proxiedAuthz := ldap.NewControlString("2.16.840.1.113730.3.4.18", true, "dn:uid=bob,ou=people,dc=dirgate")
	ignored := ldap.NewControlString("1.2.3.4.5", false, "")
	bindWith := func(c *ldap.Conn, ctl ldap.Control) error {
		_, err := c.SimpleBind(&ldap.SimpleBindRequest{Username: appDN, Password: appPW, Controls: []ldap.Control{ctl}})
		return err
	}
	whoAmI := func(t *testing.T, c *ldap.Conn) string {
		t.Helper()
		res, err := c.WhoAmI(nil)
		if err != nil {
			t.Fatalf("WhoAmI: %v", err)
		}
		return res.AuthzID
	}

	t.Run("bind", func(t *testing.T) {
		c := dial(t, addr)
		if err := bindWith(c, ignored); err != nil {
			t.Fatalf("bind with a non-critical unknown control: %v", err)
		}
		before := ops(t, "bind", "unavailable_critical_extension")
		if err := bindWith(c, unknown); !ldap.IsErrorWithCode(err, ldap.LDAPResultUnavailableCriticalExtension) {
			t.Fatalf("bind with a critical unknown control: %v, want unavailableCriticalExtension", err)
		}
		if got := ops(t, "bind", "unavailable_critical_extension") - before; got != 1 {
			t.Errorf("refused binds counted: %v, want 1", got)
		}
		// A failed bind leaves the connection anonymous (RFC 4511 4.2.1).
		if id := whoAmI(t, c); id != "" {
			t.Errorf("after the refused bind the connection is %q, want anonymous", id)
		}
	})
	t.Run("extended", func(t *testing.T) {
		c := bound(t, addr)
		for _, ctl := range []ldap.Control{unknown, proxiedAuthz} {
			if _, err := c.WhoAmI([]ldap.Control{ctl}); !ldap.IsErrorWithCode(err, ldap.LDAPResultUnavailableCriticalExtension) {
				t.Errorf("WhoAmI with critical %s: %v, want unavailableCriticalExtension", ctl.GetControlType(), err)
			}
		}
		if _, err := c.WhoAmI([]ldap.Control{ignored}); err != nil {
			t.Errorf("WhoAmI with a non-critical unknown control: %v", err)
		}
		_, err := c.Extended(&ldap.ExtendedRequest{Name: "1.2.3.4.5.6", Controls: []ldap.Control{unknown}})
		if !ldap.IsErrorWithCode(err, ldap.LDAPResultUnavailableCriticalExtension) {
			t.Errorf("unknown extended operation with a critical control: %v", err)
		}
	})
	t.Run("search", func(t *testing.T) {
		c := bound(t, addr)
		paging := criticalPaging{ldap.NewControlPaging(10)}
		_, err := c.Search(ldap.NewSearchRequest("dc=dirgate", ldap.ScopeWholeSubtree, 0, 0, 0, false, "(cn=*)", nil, []ldap.Control{paging}))
		if ldap.IsErrorWithCode(err, ldap.LDAPResultUnavailableCriticalExtension) {
			t.Errorf("critical paging control refused: %v", err)
		}
		_, err = c.Search(ldap.NewSearchRequest("dc=dirgate", ldap.ScopeWholeSubtree, 0, 0, 0, false, "(cn=*)", nil, []ldap.Control{proxiedAuthz}))
		if !ldap.IsErrorWithCode(err, ldap.LDAPResultUnavailableCriticalExtension) {
			t.Errorf("search with critical proxied authorization: %v", err)
		}
	})
	t.Run("modify", func(t *testing.T) {
		c := bound(t, addr)
		m := ldap.NewModifyRequest("uid=bob,ou=people,dc=dirgate", []ldap.Control{unknown})
		m.Replace("title", []string{"x"})
		if err := c.Modify(m); !ldap.IsErrorWithCode(err, ldap.LDAPResultUnavailableCriticalExtension) {
			t.Errorf("modify with a critical control: %v", err)
		}
	})
}

// criticalPaging is the paged results control marked critical, which
// go-ldap does not offer.
type criticalPaging struct{ *ldap.ControlPaging }

func (c criticalPaging) Encode() *ber.Packet {
	plain := c.ControlPaging.Encode()
	p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "Control")
	p.AppendChild(plain.Children[0])
	p.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, true, "Criticality"))
	p.AppendChild(plain.Children[1])
	return p
}

// TestExtendedResultCodes: StartTLS where it is not offered and unknown
// extended operations answer protocolError (RFC 4511 4.14.1, 4.12), StartTLS
// under TLS answers operationsError (RFC 4513 3.1.1), as slapd does.
func TestExtendedResultCodes(t *testing.T) {
	tlsCfg, client := testTLS(t)
	_, plain := startProxy(t, proxyConfig(t, ""), nil, false)
	_, withTLS := startProxy(t, proxyConfig(t, ""), tlsCfg, false)
	_, ldaps := startProxy(t, proxyConfig(t, ""), tlsCfg, true)

	// go-ldap stops reading a connection whose StartTLS failed, so the
	// next request goes on a connection of its own.
	if err := dial(t, plain).StartTLS(client); !ldap.IsErrorWithCode(err, ldap.LDAPResultProtocolError) {
		t.Errorf("StartTLS without TLS: %v, want protocolError", err)
	}
	c := dial(t, plain)
	_, err := c.Extended(&ldap.ExtendedRequest{Name: "1.2.3.4.5.6"})
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultProtocolError) || !strings.Contains(err.Error(), "1.2.3.4.5.6") {
		t.Errorf("unknown extended operation: %v, want protocolError naming the OID", err)
	}

	c = dial(t, withTLS)
	if err := c.StartTLS(client); err != nil {
		t.Fatalf("StartTLS: %v", err)
	}
	_, err = c.Extended(&ldap.ExtendedRequest{Name: "1.3.6.1.4.1.1466.20037"})
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultOperationsError) {
		t.Errorf("second StartTLS: %v, want operationsError", err)
	}

	s, err := ldap.DialURL("ldaps://"+ldaps, ldap.DialWithTLSConfig(client))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.Extended(&ldap.ExtendedRequest{Name: "1.3.6.1.4.1.1466.20037"})
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultOperationsError) {
		t.Errorf("StartTLS over LDAPS: %v, want operationsError", err)
	}
}

// testTLS returns a server TLS configuration for 127.0.0.1 and a client
// configuration that trusts it.
func testTLS(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	ca := testpki.NewCA(t, "test CA")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	cert := ca.Issue(t, key, "127.0.0.1", time.Now().Add(time.Hour))
	return &tls.Config{Certificates: []tls.Certificate{cert}}, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}
}

// ops reads dirgate_ldap_operations_total{op,result}.
func ops(t *testing.T, op, result string) float64 {
	t.Helper()
	return counterValue(t, "dirgate_ldap_operations_total", map[string]string{"op": op, "result": result})
}

// TestOperationMetrics: every operation is counted before it is answered,
// refused writes and compares included, and result labels are snake_case
// like every other label.
func TestOperationMetrics(t *testing.T) {
	_, addr := startProxy(t, proxyConfig(t, ""), nil, false)
	c := bound(t, addr)
	modify := ldap.NewModifyRequest("uid=bob,ou=people,dc=dirgate", nil)
	modify.Replace("title", []string{"x"})
	for _, tc := range []struct {
		op, result string
		code       uint16
		do         func() error
	}{
		{"modify", "unwilling_to_perform", ldap.LDAPResultUnwillingToPerform, func() error { return c.Modify(modify) }},
		{"delete", "unwilling_to_perform", ldap.LDAPResultUnwillingToPerform, func() error {
			return c.Del(ldap.NewDelRequest("uid=bob,ou=people,dc=dirgate", nil))
		}},
		{"compare", "no_such_object", ldap.LDAPResultNoSuchObject, func() error {
			_, err := c.Compare("uid=nobody,ou=people,dc=dirgate", "uid", "nobody")
			return err
		}},
		{"bind", "invalid_credentials", ldap.LDAPResultInvalidCredentials, func() error { return dial(t, addr).Bind(appDN, "wrong") }},
	} {
		before := ops(t, tc.op, tc.result)
		if err := tc.do(); !ldap.IsErrorWithCode(err, tc.code) {
			t.Fatalf("%s: %v, want code %d", tc.op, err, tc.code)
		}
		if got := ops(t, tc.op, tc.result) - before; got != 1 {
			t.Errorf("%s counted as %q: %v, want 1", tc.op, tc.result, got)
		}
	}
	snake := regexp.MustCompile(`^[a-z0-9]+(_[a-z0-9]+)*$`)
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "dirgate_ldap_operations_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if !snake.MatchString(l.GetValue()) {
					t.Errorf("label %s=%q is not snake_case", l.GetName(), l.GetValue())
				}
			}
		}
	}
}

// refusedCount reads dirgate_ldap_connections_refused_total{reason}.
func refusedCount(t *testing.T, reason string) float64 {
	t.Helper()
	return counterValue(t, "dirgate_ldap_connections_refused_total", map[string]string{"reason": reason})
}

// dialFrom opens a TCP connection to addr from the loopback address local.
func dialFrom(t *testing.T, local, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// closedWithin asserts the server closes c within d, without answering.
func closedWithin(t *testing.T, c net.Conn, d time.Duration) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(d)); err != nil {
		t.Fatal(err)
	}
	n, err := c.Read(make([]byte, 1))
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("connection still open after %v", d)
	}
	if n > 0 {
		t.Fatal("the server answered instead of closing the connection")
	}
}

// bindFrom binds as the service account over a connection from local.
func bindFrom(t *testing.T, local, addr string) error {
	t.Helper()
	c := ldap.NewConn(dialFrom(t, local, addr), false)
	c.Start()
	c.SetTimeout(5 * time.Second)
	defer c.Close()
	return c.Bind(appDN, appPW)
}

// TestConnectionLimits: connections that never send, or send a byte at a
// time, are closed long before the idle timeout; the per-address cap
// refuses the N+1th connection from one address, counted and logged once,
// while another address still gets in.
func TestConnectionLimits(t *testing.T) {
	var logs testlog.Buffer
	cfg := proxyConfig(t, ", idle_timeout: 1h, first_request_timeout: 300ms, read_timeout: 300ms, max_connections: 10, max_connections_per_address: 3")
	_, addr := startProxyLog(t, cfg, nil, false, slog.New(slog.NewTextHandler(&logs, nil)))

	// Without the limits both would stay open for the hour. They come
	// from an address of their own, so that their slots need not be free
	// before the per-address part below.
	closedWithin(t, dialFrom(t, "127.0.0.3", addr), 10*time.Second)
	slow := dialFrom(t, "127.0.0.3", addr)
	for _, b := range []byte{0x30, 0x20, 0x02, 0x01, 0x01, 0x60, 0x1b, 0x02, 0x01, 0x03} {
		if _, err := slow.Write([]byte{b}); err != nil {
			break // closed, as it should be
		}
		time.Sleep(100 * time.Millisecond)
	}
	closedWithin(t, slow, 10*time.Second)

	perAddress := refusedCount(t, "per_address")
	for range 3 {
		c := ldap.NewConn(dialFrom(t, "127.0.0.1", addr), false)
		c.Start()
		c.SetTimeout(5 * time.Second)
		t.Cleanup(func() { c.Close() })
		if err := c.Bind(appDN, appPW); err != nil {
			t.Fatalf("bind within the per-address cap: %v", err)
		}
	}
	for range 2 {
		closedWithin(t, dialFrom(t, "127.0.0.1", addr), 10*time.Second)
	}
	if err := bindFrom(t, "127.0.0.2", addr); err != nil {
		t.Fatalf("bind from another address: %v", err)
	}
	if got := refusedCount(t, "per_address") - perAddress; got != 2 {
		t.Errorf("refusals counted: %v, want 2", got)
	}
	if n := strings.Count(logs.String(), "ldap connections refused"); n != 1 {
		t.Errorf("refusals logged %d times, want once:\n%s", n, logs.String())
	}
}

// TestReloadLimits: a reload applies new connection caps and timeouts to
// the running listener.
func TestReloadLimits(t *testing.T) {
	srv, addr := startProxy(t, proxyConfig(t, ", idle_timeout: 1h, max_connections: 1"), nil, false)
	open := bound(t, addr)
	maxConns := refusedCount(t, "max_connections")
	closedWithin(t, dialFrom(t, "127.0.0.1", addr), 10*time.Second)
	if got := refusedCount(t, "max_connections") - maxConns; got != 1 {
		t.Fatalf("refusals counted: %v, want 1", got)
	}

	if err := srv.Reload(proxyConfig(t, ", idle_timeout: 300ms, first_request_timeout: 300ms, max_connections: 2, max_connections_per_address: 2")); err != nil {
		t.Fatal(err)
	}
	bound(t, addr)
	// The open connection waits for its next request under the new idle
	// timeout, and is closed; go-ldap then fails the request.
	if _, err := open.WhoAmI(nil); err != nil {
		t.Fatalf("WhoAmI: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !open.IsClosing() {
		if time.Now().After(deadline) {
			t.Fatal("the open connection was not closed under the reloaded idle timeout")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDNAttributesFilter: an extensible match with :dn: is evaluated
// against the entries' DNs (RFC 4511 4.5.1.7.7); before, its decoding cost
// the client its connection.
func TestDNAttributesFilter(t *testing.T) {
	c := bound(t, startDemo(t))
	res, err := c.Search(ldap.NewSearchRequest(demodir.Base, ldap.ScopeWholeSubtree, 0, 0, 0, false,
		"(&(ou:dn:=people)(uid=alice))", []string{"1.1"}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("(ou:dn:=people): %v, %+v", err, res)
	}
	res, err = c.Search(ldap.NewSearchRequest(demodir.Base, ldap.ScopeWholeSubtree, 0, 0, 0, false,
		"(&(ou=people)(uid=alice))", []string{"1.1"}, nil))
	if err != nil || len(res.Entries) != 0 {
		t.Fatalf("without :dn: the RDN's ou must not match: %v, %+v", err, res)
	}
}
