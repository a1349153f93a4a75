package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func newCA(t *testing.T) *CA {
	t.Helper()
	ca, err := LoadOrCreate(filepath.Join(t.TempDir(), "ca"))
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func agentKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestLoadOrCreate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	ca, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi.Mode(), err)
	}
	again, err := LoadOrCreate(dir)
	if err != nil || again.Fingerprint() != ca.Fingerprint() || len(ca.Fingerprint()) != 64 {
		t.Fatalf("reloaded CA %v, fingerprint %s want %s", err, again.Fingerprint(), ca.Fingerprint())
	}
	if err := os.Chmod(filepath.Join(dir, KeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil {
		t.Fatal("a world-readable CA key was loaded")
	}
	half := t.TempDir()
	if err := os.WriteFile(filepath.Join(half, CertFile), ca.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreate(half); err == nil {
		t.Fatal("a directory with a certificate but no key got a new CA")
	}
}

func TestSignAgent(t *testing.T) {
	ca := newCA(t)
	now := time.Now()
	good, err := CSR(agentKey(t), "agent")
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaDER, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}}, rsaKey)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384CSR, _ := CSR(p384, "x")
	b, _ := pem.Decode(good)
	tampered := append([]byte(nil), b.Bytes...)
	tampered[len(tampered)-3] ^= 0xff // in the signature
	tests := []struct {
		name string
		csr  []byte
		id   string
		want error
	}{
		{"good", good, "a1", nil},
		{"not PEM", []byte("hello"), "a1", ErrBadCSR},
		{"certificate instead", ca.PEM, "a1", ErrBadCSR},
		{"rsa key", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: rsaDER}), "a1", ErrBadCSR},
		{"p384 key", p384CSR, "a1", ErrBadCSR},
		{"bad signature", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: tampered}), "a1", ErrBadCSR},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, certPEM, err := ca.SignAgent(tt.csr, Agent{ID: tt.id, Connector: "ad"}, now)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
			if err != nil {
				return
			}
			if parsed, err := ParseCertificate(certPEM); err != nil || !parsed.Equal(c) {
				t.Fatalf("PEM: %v", err)
			}
			if d := c.NotAfter.Sub(now); d < AgentValidity-time.Minute || d > AgentValidity+time.Minute {
				t.Fatalf("valid for %v", d)
			}
			id, err := ca.VerifyAgent(c, now)
			if err != nil || id != tt.id {
				t.Fatalf("VerifyAgent: %q %v", id, err)
			}
		})
	}
	if _, _, err := ca.SignAgent(good, Agent{ID: "a/b"}, now); err == nil {
		t.Fatal("an agent ID with a slash was signed")
	}
}

func TestVerifyAgentRefuses(t *testing.T) {
	ca, other := newCA(t), newCA(t)
	now := time.Now()
	csr, _ := CSR(agentKey(t), "agent")
	foreign, _, err := other.SignAgent(csr, Agent{ID: "a1"}, now)
	if err != nil {
		t.Fatal(err)
	}
	mine, _, _ := ca.SignAgent(csr, Agent{ID: "a1"}, now)
	server, err := ca.ServerCertificate([]string{"hub.example", "127.0.0.1"}, now)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		c    *x509.Certificate
		at   time.Time
	}{
		{"another CA", foreign, now},
		{"server certificate", server.Leaf, now},
		{"expired", mine, now.Add(AgentValidity + time.Hour)},
		{"the CA itself", ca.Cert, now},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ca.VerifyAgent(tt.c, tt.at); !errors.Is(err, ErrNotAgentCert) {
				t.Fatalf("got %v, want ErrNotAgentCert", err)
			}
		})
	}
}

func TestServerCertificate(t *testing.T) {
	ca := newCA(t)
	now := time.Now()
	c, err := ca.ServerCertificate([]string{"hub.example", "127.0.0.1"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Certificate) != 2 || Fingerprint(must(x509.ParseCertificate(c.Certificate[1]))) != ca.Fingerprint() {
		t.Fatal("the chain does not carry the CA")
	}
	for _, host := range []string{"hub.example", "127.0.0.1"} {
		if _, err := c.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: host, CurrentTime: now}); err != nil {
			t.Errorf("%s: %v", host, err)
		}
	}
	if _, err := c.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "other.example", CurrentTime: now}); err == nil {
		t.Error("verified for a host it does not name")
	}
	if _, err := ca.ServerCertificate(nil, now); err == nil {
		t.Error("a certificate without hosts")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
