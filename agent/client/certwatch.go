package client

import (
	"context"
	"log/slog"
	"time"
)

// The agent renews its certificate well before it expires (renew.go); it
// warns at start and daily from certWarnBefore on, should that fail.
const (
	certWarnBefore = 30 * 24 * time.Hour
	certWarnEvery  = 24 * time.Hour
)

// watchCert looks after the certificate (checkCert) at once, then every
// certWarnEvery until ctx ends.
func (a *Agent) watchCert(ctx context.Context) {
	t := time.NewTicker(certWarnEvery)
	defer t.Stop()
	for {
		a.checkCert(ctx, time.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// warnCert logs a warning when the certificate expires within
// certWarnBefore of now, and reports whether it did.
func (a *Agent) warnCert(now time.Time) bool {
	leaf := a.current().cert.Leaf
	if leaf == nil {
		return false
	}
	left := leaf.NotAfter.Sub(now)
	if left >= certWarnBefore {
		return false
	}
	what := "the agent's certificate expires in " + left.Round(time.Hour).String()
	if left <= 0 {
		what = "the agent's certificate has expired and the hub refuses it"
	}
	a.log.Warn(what+" and could not be renewed (see the warnings above); if that goes on, enroll the agent again: "+
		"create a token on the hub (dirgate agent token create) and run dirgate agent enroll with it",
		slog.String("agent", a.id.AgentID), slog.Time("expiry", leaf.NotAfter))
	return true
}
