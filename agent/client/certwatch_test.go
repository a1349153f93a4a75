package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestCertExpiryWarned: the agent warns, at start and on each daily
// check, once its certificate expires within 30 days, telling to enroll
// again; not before.
func TestCertExpiryWarned(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name string
		left time.Duration
		want string // "" for no warning
	}{
		{"a year left", 365 * 24 * time.Hour, ""},
		{"31 days left", 31 * 24 * time.Hour, ""},
		{"10 days left", 10 * 24 * time.Hour, "expires in 240h0m0s; enroll the agent again"},
		{"expired", -time.Hour, "has expired and the hub refuses it; enroll the agent again"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := &lockedBuffer{}
			a := &Agent{id: &Identity{AgentID: "ag-1", Cert: tls.Certificate{Leaf: &x509.Certificate{NotAfter: now.Add(tt.left)}}},
				log: slog.New(slog.NewTextHandler(logs, nil))}
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan struct{})
			go func() { a.watchCert(ctx); close(done) }()
			if tt.want == "" {
				time.Sleep(50 * time.Millisecond)
			} else {
				waitLog(t, logs, tt.want)
			}
			cancel()
			<-done
			if tt.want == "" && logs.String() != "" {
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

func waitLog(t *testing.T, logs *lockedBuffer, want string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), want); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q:\n%s", want, logs)
		}
	}
}
