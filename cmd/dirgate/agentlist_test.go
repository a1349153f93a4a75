package main

import (
	"strings"
	"testing"
	"time"

	"github.com/dirgate/dirgate/admin"
)

// TestAgentListCertAndLatency: `dirgate agent list` shows each agent's
// certificate expiry, flagged when it must be enrolled again, and a
// connected agent's check latency.
func TestAgentListCertAndLatency(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.Local)
	tests := []struct {
		name string
		a    admin.AgentStatus
		want []string
		not  []string
	}{
		{"connected, a year left", admin.AgentStatus{ID: "ag-1", Connector: "corp", Connected: true, LastHeartbeat: now,
			CheckLatencySeconds: 0.0173, CertExpires: now.AddDate(1, 0, 0)}, []string{"17.3ms", "2027-05-01"}, []string{"renewal overdue"}},
		{"expiring", admin.AgentStatus{ID: "ag-2", Connector: "corp", CertExpires: now.AddDate(0, 0, 10), CertExpiring: true},
			[]string{"2026-05-11 (renewal overdue)"}, nil},
		{"revoked", admin.AgentStatus{ID: "ag-3", Connector: "corp", Revoked: now, CertExpires: now.AddDate(0, 0, 10)},
			nil, []string{"2026-05-11"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			printAgents(&b, []admin.AgentStatus{tt.a}, now)
			out := b.String()
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tt.not {
				if strings.Contains(out, w) {
					t.Errorf("has %q:\n%s", w, out)
				}
			}
		})
	}
}
