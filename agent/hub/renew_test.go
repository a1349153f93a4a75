package hub

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/dirgate/dirgate/agent/pki"
	"github.com/dirgate/dirgate/agent/wire"
)

// renewCert asks the hub, as agent a, for a certificate for key. It
// returns the status and the renewed agent (nil unless 200).
func (a *fakeAgent) renewCert(t *testing.T, key *ecdsa.PrivateKey, csr string) (int, *fakeAgent) {
	t.Helper()
	if csr == "" {
		b, err := pki.CSR(key, "agent")
		if err != nil {
			t.Fatal(err)
		}
		csr = string(b)
	}
	body, _ := json.Marshal(RenewRequest{CSR: csr})
	resp, err := a.f.client(&a.cert).Post(a.f.url+"/agent/v1/renew", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil
	}
	var rr RenewResponse
	if err := json.NewDecoder(resp.Body).Decode(&rr); err != nil {
		t.Fatal(err)
	}
	cert, err := pki.ParseCertificate([]byte(rr.Certificate))
	if err != nil {
		t.Fatal(err)
	}
	if rr.CA != string(a.f.ca.PEM) {
		t.Fatal("the renewal returned another CA")
	}
	if id, err := pki.AgentID(cert); err != nil || id != a.id {
		t.Fatalf("renewed certificate of agent %q (%v), want %s", id, err, a.id)
	}
	if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(&key.PublicKey) {
		t.Fatal("renewed certificate for another key")
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: a.f.ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatal(err)
	}
	r := *a
	r.cert = tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}
	return resp.StatusCode, &r
}

// TestRenewCert: an agent renews its certificate with the one it holds;
// its connection made before the renewal stays up and keeps answering,
// the renewed certificate connects, and renewals of a revoked agent, with
// a bad CSR or with a certificate renewed twice since are refused.
func TestRenewCert(t *testing.T) {
	f := newFixture(t, 20*time.Millisecond)
	a := f.newAgent(t, "ad")
	old, _ := a.connect(t, nil, answerChecks(0))

	status, r1 := a.renewCert(t, newKey(t), "")
	if status != http.StatusOK {
		t.Fatalf("renewal: %d", status)
	}
	stored, err := f.store.Agent(t.Context(), a.id)
	if err != nil || stored.Fingerprint != pki.Fingerprint(r1.cert.Leaf) || !stored.CertExpires.Equal(r1.cert.Leaf.NotAfter) ||
		stored.PreviousFingerprint != pki.Fingerprint(a.cert.Leaf) {
		t.Fatalf("stored agent after the renewal: %+v %v", stored, err)
	}
	time.Sleep(200 * time.Millisecond) // several rechecks
	select {
	case <-old.ended:
		t.Fatal("the connection made with the replaced certificate was cut")
	default:
	}
	call, err := f.h.Do(t.Context(), "ad", &wire.Request{Kind: wire.KindCheck, Check: &wire.CheckRequest{DN: "cn=x", Password: "pw"}})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := call.Wait(t.Context()); err != nil || res.Host != a.id {
		t.Fatalf("check on the connection made before the renewal: %+v %v", res, err)
	}
	if ac, status := r1.connect(t, nil, answerChecks(0)); ac == nil {
		t.Fatalf("the renewed certificate cannot connect: %d", status)
	}

	if status, _ := a.renewCert(t, newKey(t), "not a CSR"); status != http.StatusBadRequest {
		t.Fatalf("renewal with a bad CSR: %d", status)
	}
	// The replaced certificate does not renew (a copy of the old key
	// cannot take the agent's place); the renewed one does, after which
	// the first is pinned no more.
	if status, _ := a.renewCert(t, newKey(t), ""); status != http.StatusForbidden {
		t.Fatalf("renewal with the replaced certificate: %d", status)
	}
	status, r2 := r1.renewCert(t, newKey(t), "")
	if status != http.StatusOK {
		t.Fatalf("renewal with the renewed certificate: %d", status)
	}
	if ac, status := a.connect(t, nil, answerChecks(0)); ac != nil || status != http.StatusForbidden {
		t.Fatalf("a certificate renewed twice since connected: %d", status)
	}
	if err := f.h.Revoke(t.Context(), a.id); err != nil {
		t.Fatal(err)
	}
	if status, _ := r2.renewCert(t, newKey(t), ""); status != http.StatusForbidden {
		t.Fatalf("renewal of a revoked agent: %d", status)
	}
}

// TestConnectionEndsWithItsCertificate: a connection made with a
// certificate is cut when that certificate expires, though the hub still
// pins it.
func TestConnectionEndsWithItsCertificate(t *testing.T) {
	f := newFixture(t, 20*time.Millisecond)
	// Enrolled nearly a year ago: the certificate expires in 3 s.
	f.skew.Store(int64(-pki.AgentValidity + 3*time.Second))
	a := f.newAgent(t, "ad")
	f.skew.Store(0)
	ac, status := a.connect(t, nil, answerChecks(0))
	if ac == nil {
		t.Fatalf("connect: %d", status)
	}
	select {
	case <-ac.ended:
		if left := time.Until(a.cert.Leaf.NotAfter); left > 0 {
			t.Fatalf("cut %v before the certificate expired", left)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the connection outlived its certificate")
	}
}
