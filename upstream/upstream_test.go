package upstream

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

type pki struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func newCA(t *testing.T) pki {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return pki{c, key}
}

func (ca pki) issue(t *testing.T, key crypto.Signer, ip string, notAfter time.Time) tls.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "server"},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: notAfter,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		IPAddresses: []net.IP{net.ParseIP(ip)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// serveTLS accepts TLS connections with cert and completes handshakes.
func serveTLS(t *testing.T, cert tls.Certificate) int {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				_ = c.(*tls.Conn).Handshake()
				time.Sleep(200 * time.Millisecond)
				c.Close()
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestStrictTLSFailures(t *testing.T) {
	ca, other := newCA(t), newCA(t)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	cases := []struct {
		name string
		cert tls.Certificate
		mode string
		want string // "" = success
	}{
		{"good", ca.issue(t, ec, "127.0.0.1", later), EncryptionStrict, ""},
		{"expired", ca.issue(t, ec, "127.0.0.1", time.Now().Add(-time.Hour)), EncryptionStrict, "expired"},
		{"name mismatch", ca.issue(t, ec, "127.0.0.9", later), EncryptionStrict, "name mismatch"},
		{"unknown CA", other.issue(t, ec, "127.0.0.1", later), EncryptionStrict, "unknown CA"},
		{"weak key", ca.issue(t, weak, "127.0.0.1", later), EncryptionStrict, "weak key"},
		{"relaxed accepts unknown CA", other.issue(t, ec, "127.0.0.1", later), EncryptionRelaxed, ""},
		{"relaxed accepts expired", ca.issue(t, ec, "127.0.0.9", time.Now().Add(-time.Hour)), EncryptionRelaxed, ""},
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			port := serveTLS(t, c.cert)
			tg := &Target{Name: "t", Hosts: []string{"127.0.0.1"}, Port: port, Encryption: c.mode, TLSMode: TLSModeLDAPS, RootCAs: pool, Timeout: 2 * time.Second}
			conn, err := tg.DialHost(context.Background(), "127.0.0.1")
			if c.want == "" {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				conn.Close()
				return
			}
			var de *DialError
			if !errors.As(err, &de) || de.Step != StepTLS || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want a TLS error mentioning %q", err, c.want)
			}
		})
	}
}

func TestFailoverOrderAndUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("127.0.0.2 not usable: %v", err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	tg := &Target{Name: "t", Hosts: []string{"127.0.0.3", "127.0.0.2"}, Port: port, Encryption: EncryptionNone, Timeout: time.Second}
	conn, host, err := tg.Dial(context.Background())
	if err != nil || host != "127.0.0.2" {
		t.Fatalf("failover: host %q err %v", host, err)
	}
	conn.Close()
	tg.Hosts = []string{"127.0.0.3", "127.0.0.4"}
	_, _, err = tg.Dial(context.Background())
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "127.0.0.4:"+strconv.Itoa(port)) {
		t.Fatalf("both down: %v", err)
	}
	var de *DialError
	if !errors.As(err, &de) || de.Step != StepTCP {
		t.Fatalf("want a tcp step error, got %v", err)
	}
}
