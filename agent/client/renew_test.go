package client

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dirgate/dirgate/agent/pki"
	"github.com/dirgate/dirgate/agent/wire"
	"github.com/dirgate/dirgate/config"
)

// TestCertRenewedWithRealHub: an agent whose certificate is due renews it
// with the hub: the new key and certificate are stored, the hub pins the
// new certificate, the connection made with the old one stays up and
// answers, and once the old certificate nears its expiry the connection
// is made again with the new one.
func TestCertRenewedWithRealHub(t *testing.T) {
	h, store, url := startRealHub(t, nil)
	f := agentFile(t, url, offlineConnector)
	id, _ := enrollWith(t, h, url, f)
	a, ctx := runAgent(t, f, id, slog.New(slog.DiscardHandler))
	waitFor(t, "the agent to connect", func() bool { n, _ := h.Connected("corp"); return n == 1 })
	old := id.Cert.Leaf

	// Not due: nothing happens.
	a.checkCert(ctx, renewAt(old).Add(-time.Hour))
	if a.current().cert.Leaf != old {
		t.Fatal("renewed before it was due")
	}
	a.checkCert(ctx, renewAt(old).Add(time.Hour))
	renewed := a.current().cert.Leaf
	if pki.Fingerprint(renewed) == pki.Fingerprint(old) {
		t.Fatal("not renewed")
	}
	stored, err := store.Agent(t.Context(), id.AgentID)
	if err != nil || stored.Fingerprint != pki.Fingerprint(renewed) || stored.PreviousFingerprint != pki.Fingerprint(old) {
		t.Fatalf("the hub's record: %+v %v", stored, err)
	}
	loaded, err := LoadIdentity(f.StateDir)
	if err != nil || loaded.Cert.Leaf.SerialNumber.Cmp(renewed.SerialNumber) != 0 || loaded.AgentID != id.AgentID {
		t.Fatalf("the state directory after the renewal: %+v %v", loaded, err)
	}
	for _, name := range []string{renewedKeyFile, renewedCertFile} {
		if _, err := os.Stat(filepath.Join(f.StateDir, name)); !os.IsNotExist(err) {
			t.Fatalf("%s left behind: %v", name, err)
		}
	}

	// The connection made with the old certificate stays, and answers.
	ask := func() {
		t.Helper()
		call, err := h.Do(t.Context(), "corp", &wire.Request{Kind: wire.KindTest})
		if err != nil {
			t.Fatal(err)
		}
		if res, err := call.Wait(t.Context()); err != nil || res.Report == nil {
			t.Fatalf("test connection: %+v, %v", res, err)
		}
	}
	time.Sleep(500 * time.Millisecond) // the hub re-checks its agents every 200 ms
	ask()
	onCurrent := func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		for c := range a.conns {
			if c.ident != a.current() {
				return false
			}
		}
		return len(a.conns) == 1
	}
	if onCurrent() {
		t.Fatal("the connection made with the old certificate was made again at once")
	}
	since := h.Agents()[0].ConnectedSince
	// A week before the old certificate expires, the connection is made
	// again with the new one.
	a.checkCert(ctx, old.NotAfter.Add(-6*24*time.Hour))
	waitFor(t, "the connection with the renewed certificate", func() bool {
		st := h.Agents()
		return onCurrent() && len(st) == 1 && st[0].ConnectedSince.After(since)
	})
	ask()
}

// TestRenewalInterruptedByACrash: LoadIdentity finishes a renewal whose
// key and certificate are both on disk, and drops one that has only its
// key; either way the key and certificate it loads belong together.
func TestRenewalInterruptedByACrash(t *testing.T) {
	ca, err := pki.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	issue := func(dir string) []byte {
		t.Helper()
		key, csr := newCSR(t)
		_, certPEM, err := ca.SignAgent(csr, pki.Agent{ID: "ag-1", Connector: "corp"}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "k"), key, 0o600); err != nil {
			t.Fatal(err)
		}
		return certPEM
	}
	tests := []struct {
		name    string
		key     bool // renewed.key on disk
		cert    bool // renewed.crt on disk
		keyDone bool // renewed.key already moved over agent.key
		renewed bool // the loaded certificate is the renewed one
	}{
		{"key only: dropped", true, false, false, false},
		{"key and certificate: finished", true, true, false, true},
		{"certificate only, key moved: finished", false, true, true, true},
		// A certificate left by an earlier renewal beside another key.
		{"certificate of another key: dropped", false, true, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			oldCert := issue(dir)
			oldKey, _ := os.ReadFile(filepath.Join(dir, "k"))
			newCert := issue(dir)
			newKey, _ := os.ReadFile(filepath.Join(dir, "k"))
			write := func(name string, data []byte) {
				if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			write(keyFile, oldKey)
			write(certFile, oldCert)
			write(caFile, ca.PEM)
			write(identityFile, []byte(`{"agent_id":"ag-1","connector":"corp","hub":"https://hub"}`))
			if tt.keyDone {
				write(keyFile, newKey)
			}
			if tt.key {
				write(renewedKeyFile, newKey)
			}
			if tt.cert {
				write(renewedCertFile, newCert)
			}
			id, err := LoadIdentity(dir)
			if err != nil {
				t.Fatal(err)
			}
			want := oldCert
			if tt.renewed {
				want = newCert
			}
			wantLeaf, _ := pki.ParseCertificate(want)
			if sha256.Sum256(id.Cert.Leaf.Raw) != sha256.Sum256(wantLeaf.Raw) {
				t.Fatalf("loaded the %s certificate", map[bool]string{true: "old", false: "renewed"}[tt.renewed])
			}
			for _, name := range []string{renewedKeyFile, renewedCertFile} {
				if _, err := os.Stat(filepath.Join(dir, name)); !os.IsNotExist(err) {
					t.Fatalf("%s left behind: %v", name, err)
				}
			}
		})
	}
}

// runAgent runs an agent of f and id, logging to log, until the test
// ends; ctx is its run's.
func runAgent(t *testing.T, f *config.AgentFile, id *Identity, log *slog.Logger) (*Agent, context.Context) {
	t.Helper()
	a, err := New(Options{Config: f, Identity: id, Version: "test", Log: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = a.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return a, ctx
}

// newCSR returns a new P-256 key in PEM and a CSR for it.
func newCSR(t *testing.T) (keyPEM, csr []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if csr, err = pki.CSR(key, "agent"); err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), csr
}
