// Package metrics holds dirgate's Prometheus metrics in one registry that
// the admin listener serves at /metrics. Packages record into the
// collectors here; nothing else is registered globally.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

var (
	// Registry holds every dirgate metric plus the Go and process ones.
	Registry = prometheus.NewRegistry()

	// SyncRuns counts finished sync runs.
	SyncRuns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dirgate_sync_runs_total", Help: "Sync runs by connector, mode and result (ok, error, blocked, dry_run).",
	}, []string{"connector", "mode", "result"})
	// SyncDuration observes run durations.
	SyncDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "dirgate_sync_duration_seconds", Help: "Duration of sync runs.",
		Buckets: prometheus.ExponentialBuckets(0.01, 3, 10),
	}, []string{"connector", "mode"})
	// SyncChanges counts applied changes.
	SyncChanges = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dirgate_sync_changes_total", Help: "Entries added, updated and deleted by sync runs.",
	}, []string{"connector", "change"})
	// Entries is the number of cached entries.
	Entries = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "dirgate_cache_entries", Help: "Cached entries by connector and kind.",
	}, []string{"connector", "kind"})
	// LastSuccess is the time of a connector's last successful sync.
	LastSuccess = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "dirgate_sync_last_success_timestamp_seconds", Help: "Unix time of the last successful sync.",
	}, []string{"connector"})
	// LDAPOps counts LDAP operations by type and result code name.
	LDAPOps = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dirgate_ldap_operations_total", Help: "LDAP operations answered, by operation and result.",
	}, []string{"op", "result"})
	// LDAPConnectionsRefused counts LDAP connections closed on accept
	// because a connection cap was reached.
	LDAPConnectionsRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dirgate_ldap_connections_refused_total",
		Help: "LDAP connections refused on accept, by the cap that was reached (max_connections, per_address).",
	}, []string{"reason"})
	// LDAPProtocolErrors counts LDAP connections closed because the client
	// sent something that is not a valid LDAP request.
	LDAPProtocolErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "dirgate_ldap_protocol_errors_total",
		Help: "LDAP connections closed, after a Notice of Disconnection, because the client sent something that is not a valid LDAP request.",
	})
	// AuthAttempts counts password checks by protocol and result.
	AuthAttempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dirgate_auth_attempts_total", Help: "Password checks (LDAP binds and OIDC logins) by protocol and result.",
	}, []string{"protocol", "result"})
	// BindLatency observes upstream password checks.
	BindLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "dirgate_auth_duration_seconds", Help: "Duration of password checks, throttling delays included.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 3, 12),
	}, []string{"protocol"})
	// UpstreamUp is 1 when the last connection attempt to a host worked.
	UpstreamUp = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "dirgate_upstream_up", Help: "1 if the last connection to the upstream host succeeded, else 0.",
	}, []string{"connector", "host"})
)

func init() {
	Registry.MustRegister(SyncRuns, SyncDuration, SyncChanges, Entries, LastSuccess, LDAPOps, LDAPConnectionsRefused, LDAPProtocolErrors, AuthAttempts, BindLatency, UpstreamUp,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}

// Handler serves the registry in the Prometheus text format.
func Handler() http.Handler {
	return promhttp.HandlerFor(Registry, promhttp.HandlerOpts{Registry: Registry})
}

// Since is a helper for observing durations.
func Since(t time.Time) float64 { return time.Since(t).Seconds() }
