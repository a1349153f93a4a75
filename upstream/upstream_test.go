package upstream

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dirgate/dirgate/internal/testpki"
)

func TestStrictTLSFailures(t *testing.T) {
	ca, other := testpki.NewCA(t, "test CA"), testpki.NewCA(t, "other CA")
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
		{"good", ca.Issue(t, ec, "127.0.0.1", later), EncryptionStrict, ""},
		{"expired", ca.Issue(t, ec, "127.0.0.1", time.Now().Add(-time.Hour)), EncryptionStrict, "expired"},
		{"name mismatch", ca.Issue(t, ec, "127.0.0.9", later), EncryptionStrict, "name mismatch"},
		{"unknown CA", other.Issue(t, ec, "127.0.0.1", later), EncryptionStrict, "unknown CA"},
		{"weak key", ca.Issue(t, weak, "127.0.0.1", later), EncryptionStrict, "weak key"},
		{"relaxed accepts unknown CA", other.Issue(t, ec, "127.0.0.1", later), EncryptionRelaxed, ""},
		{"relaxed accepts expired", ca.Issue(t, ec, "127.0.0.9", time.Now().Add(-time.Hour)), EncryptionRelaxed, ""},
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			port := testpki.ServeTLS(t, c.cert)
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
