package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/internal/testlog"
)

// TestCertExpiryWarned: an agent whose certificate expires within 30
// days and cannot be renewed (no hub answers) warns, at start and on each
// daily check, telling to enroll again; not before, and it tries to renew
// only once the certificate is due.
func TestCertExpiryWarned(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name  string
		left  time.Duration
		want  string // "" for no warning
		renew bool   // a renewal is tried
	}{
		{"a year left", 365 * 24 * time.Hour, "", false},
		{"200 days left", 200 * 24 * time.Hour, "", false},
		{"100 days left", 100 * 24 * time.Hour, "", true},
		{"10 days left", 10 * 24 * time.Hour, "expires in 240h0m0s and could not be renewed", true},
		{"expired", -time.Hour, "has expired and the hub refuses it and could not be renewed", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := &testlog.Buffer{}
			leaf := &x509.Certificate{NotBefore: now.Add(tt.left - 365*24*time.Hour), NotAfter: now.Add(tt.left)}
			a := &Agent{id: &Identity{AgentID: "ag-1"}, cfg: &config.AgentFile{StateDir: t.TempDir()},
				hub: "https://127.0.0.1:1", log: slog.New(slog.NewTextHandler(logs, nil))}
			a.ident.Store(newIdentityState(&tls.Certificate{Leaf: leaf}, x509.NewCertPool()))
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan struct{})
			go func() { a.watchCert(ctx); close(done) }()
			switch {
			case tt.want != "":
				waitLog(t, logs, tt.want)
			case tt.renew:
				waitLog(t, logs, "renewing the agent's certificate failed")
			default:
				time.Sleep(50 * time.Millisecond)
			}
			cancel()
			<-done
			if tt.renew != strings.Contains(logs.String(), "renewing the agent's certificate failed") {
				t.Fatalf("renewal tried: %v, want %v:\n%s", !tt.renew, tt.renew, logs)
			}
			if tt.want == "" && strings.Contains(logs.String(), "enroll the agent again") {
				t.Fatalf("warned with %s left:\n%s", tt.left, logs)
			}
			if tt.want != "" && !strings.Contains(logs.String(), "dirgate agent token create") {
				t.Fatalf("the warning does not say how to enroll again:\n%s", logs)
			}
			// The daily check warns again while it stays within 30 days.
			if warned := a.warnCert(now.Add(24 * time.Hour)); warned != (tt.want != "") {
				t.Fatalf("the next day: warned %v", warned)
			}
		})
	}
}

func waitLog(t *testing.T, logs *testlog.Buffer, want string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), want); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q:\n%s", want, logs)
		}
	}
}
