package upstream

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/internal/ldapstub"
	"github.com/dirgate/dirgate/internal/testnet"
	"github.com/dirgate/dirgate/internal/testpki"
)

// clientCert issues a TLS client certificate from ca.
func clientCert(t *testing.T, ca testpki.CA) *tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "dirgate"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestClientCertificate runs LDAPS against a server that demands a client
// certificate issued by its CA, like Google's Secure LDAP: the trusted
// certificate opens a session that answers a ping and a bind; without one,
// or with one from another CA, the refusal is a network failure that says
// the client certificate was refused, at the handshake under TLS 1.2 and
// at the first request under TLS 1.3 (where the server checks it after the
// client finished its handshake).
func TestClientCertificate(t *testing.T) {
	ca, other := testpki.NewCA(t, "server CA"), testpki.NewCA(t, "other CA")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serverCert := ca.Issue(t, key, "127.0.0.1", time.Now().Add(time.Hour))
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	answers := func(c net.Conn, id int64, op *ber.Packet) bool {
		if op.Tag == ldap.ApplicationExtendedRequest && op.Children[0].Data.String() == oidWhoAmI {
			answer(c, id, ldap.ApplicationExtendedResponse, 0, "")
			return true
		}
		return passwords(c, id, op)
	}
	serve := func(maxVersion uint16) int {
		ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
			Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.RequireAndVerifyClientCert,
			ClientCAs: roots, MaxVersion: maxVersion,
		})
		if err != nil {
			t.Fatal(err)
		}
		return testnet.Serve(t, ln, func(c net.Conn) { ldapstub.ServeConn(c, answers) })
	}
	versions := []struct {
		name string
		max  uint16
	}{{"TLS 1.2", tls.VersionTLS12}, {"TLS 1.3", tls.VersionTLS13}}
	certs := []struct {
		name string
		cert *tls.Certificate
		ok   bool
	}{{"trusted", clientCert(t, ca), true}, {"none", nil, false}, {"other CA", clientCert(t, other), false}}
	for _, v := range versions {
		port := serve(v.max)
		for _, c := range certs {
			t.Run(v.name+"/"+c.name, func(t *testing.T) {
				tg := &Target{Name: "t", Hosts: []string{"127.0.0.1"}, Port: port, Encryption: EncryptionStrict,
					TLSMode: TLSModeLDAPS, RootCAs: roots, Timeout: 2 * time.Second, ClientCert: c.cert}
				bc, _, err := tg.DialBind(context.Background())
				if err == nil {
					defer bc.Close()
					if err = bc.Ping(context.Background(), time.Second); err == nil {
						err = bc.Bind(context.Background(), time.Second, "cn=alice", "right")
					}
				}
				if c.ok {
					if err != nil {
						t.Fatalf("trusted client certificate: %v", err)
					}
					return
				}
				handshake := errors.Is(err, ErrUnreachable)
				if (!handshake && !ldap.IsErrorWithCode(err, ldap.ErrorNetwork)) ||
					!errors.Is(err, ErrClientCertRefused) {
					t.Fatalf("got %v, want the client certificate refusal as a network failure", err)
				}
				if (v.max == tls.VersionTLS12) != handshake {
					t.Fatalf("%s: refused at the handshake %v: %v", v.name, handshake, err)
				}
			})
		}
	}
}
