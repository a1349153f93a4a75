package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/authn"
	"github.com/dirgate/dirgate/proxy"
	dirsync "github.com/dirgate/dirgate/sync"
)

// TestFrontEndTLS serves dirgate's own LDAP listeners with a certificate:
// LDAPS, StartTLS on the plain port, and require_tls_for_bind refusing
// passwords in clear. The test slapd's server certificate (SAN 127.0.0.1)
// stands in for dirgate's.
func TestFrontEndTLS(t *testing.T) {
	e := loadEnv(t)
	cfg := parseConfig(t, connectorYAML(t, e, "corp", e.Get(t, "DIRGATE_OL_HOST"), ""))
	cfg.LDAP.RequireTLSForBind = true
	cfg.LDAP.StartTLS = true
	gw := startGateway(t, cfg)
	if _, err := gw.sync(t, "corp", dirsync.Options{}); err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(e.Get(t, "DIRGATE_OL_SERVER_CERT"), e.Get(t, "DIRGATE_OL_SERVER_KEY"))
	if err != nil {
		t.Fatal(err)
	}
	auth, err := authn.New(cfg, gw.store, gw.store.States(), gw.log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = auth.Close() })
	srv, err := proxy.New(cfg, gw.store, auth, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, gw.log)
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := net.Listen("tcp", "127.0.0.1:0")
	secure, _ := net.Listen("tcp", "127.0.0.1:0")
	go func() { _ = srv.Serve(plain, false) }()
	go func() { _ = srv.Serve(secure, true) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})

	pem, err := os.ReadFile(e.Get(t, "DIRGATE_OL_CA"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	tlsCfg := &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}
	pw := e.Get(t, "DIRGATE_OL_USER_PW")

	// Plain: a password bind is refused before StartTLS.
	c, err := ldap.DialURL("ldap://" + plain.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Bind("user00001@example.test", pw); !ldap.IsErrorWithCode(err, ldap.LDAPResultConfidentialityRequired) {
		t.Fatalf("bind in clear with require_tls_for_bind: %v", err)
	}
	if err := c.StartTLS(tlsCfg); err != nil {
		t.Fatalf("StartTLS: %v", err)
	}
	if err := c.Bind("user00001@example.test", pw); err != nil {
		t.Fatalf("bind after StartTLS: %v", err)
	}
	if who, err := c.WhoAmI(nil); err != nil || !strings.Contains(who.AuthzID, "user00001") {
		t.Fatalf("WhoAmI after StartTLS: %+v %v", who, err)
	}

	// LDAPS, verified against the CA; StartTLS is not offered there.
	s, err := ldap.DialURL("ldaps://"+secure.Addr().String(), ldap.DialWithTLSConfig(tlsCfg))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Bind("user00001@example.test", pw); err != nil {
		t.Fatalf("LDAPS bind: %v", err)
	}
	if err := s.StartTLS(tlsCfg); err == nil {
		t.Fatal("StartTLS accepted on an LDAPS connection")
	}

	// The OpenLDAP client, as an application would use it.
	if _, err := exec.LookPath("ldapwhoami"); err == nil {
		cmd := exec.Command("ldapwhoami", "-x", "-ZZ", "-H", "ldap://"+plain.Addr().String(), "-D", "user00002@example.test", "-w", pw)
		cmd.Env = append(os.Environ(), "LDAPTLS_CACERT="+e.Get(t, "DIRGATE_OL_CA"), "LDAPTLS_REQCERT=demand")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "user00002") {
			t.Fatalf("ldapwhoami -ZZ: %v %s", err, out)
		}
	}
}
