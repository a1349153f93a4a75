package metrics

import "github.com/prometheus/client_golang/prometheus"

// Cluster mode's metrics. Every replica exports them; in single-process
// mode they stay at zero.
var (
	// ClusterLeader is 1 on the replica that holds the sync lease.
	ClusterLeader = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "dirgate_cluster_leader", Help: "1 if this replica holds the sync lease (runs the syncs), else 0.",
	})
	// ClusterEpoch is the fencing epoch of the lease as this replica last saw it.
	ClusterEpoch = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "dirgate_cluster_epoch", Help: "Fencing epoch of the sync lease as this replica last saw it.",
	})
	// ClusterReplicas counts the replicas seen alive in the registry.
	ClusterReplicas = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "dirgate_cluster_replicas", Help: "Replicas whose heartbeat is recent.",
	})
	// ChangelogPosition is the sequence number of the last change-log
	// record applied to (or published from) this replica's cache.
	ChangelogPosition = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "dirgate_changelog_position", Help: "Sequence number of the last change-log record in this replica's cache.",
	})
	// ChangelogHead is the newest sequence number this replica saw in
	// PostgreSQL.
	ChangelogHead = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "dirgate_changelog_head", Help: "Newest change-log sequence number seen in PostgreSQL.",
	})
	// ChangelogLag is how far this replica's cache is behind the head.
	ChangelogLag = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "dirgate_changelog_lag_seconds", Help: "Time between the newest change-log record and the last one applied here (grows while PostgreSQL is unreachable).",
	})
	// ChangelogApplied counts records applied, by kind (base, delta).
	ChangelogApplied = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dirgate_changelog_applied_total", Help: "Change-log records applied to this replica's cache.",
	}, []string{"kind"})
	// ChangelogErrors counts failed reads or applications of the change log.
	ChangelogErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "dirgate_changelog_errors_total", Help: "Failed change-log reads or applications (retried).",
	})
	// ChangelogSnapshots counts snapshot loads (a new or far-behind replica).
	ChangelogSnapshots = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "dirgate_changelog_snapshot_loads_total", Help: "Snapshots loaded because this replica was new or too far behind.",
	})
	// ThrottleShared is 1 while failure counters are shared through
	// PostgreSQL, 0 while this replica falls back to its own counters.
	ThrottleShared = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "dirgate_throttle_shared", Help: "1 while sign-in failure counters are shared through PostgreSQL, 0 while this replica counts alone.",
	})
)

func init() {
	Registry.MustRegister(ClusterLeader, ClusterEpoch, ClusterReplicas, ChangelogPosition, ChangelogHead, ChangelogLag,
		ChangelogApplied, ChangelogErrors, ChangelogSnapshots, ThrottleShared)
}
