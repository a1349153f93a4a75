package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/dirgate/dirgate/admin"
	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/cluster/registry"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/metrics"
	"github.com/dirgate/dirgate/state"
	dirsync "github.com/dirgate/dirgate/sync"
	"github.com/dirgate/dirgate/sync/agentsource"
	"github.com/dirgate/dirgate/testconn"
)

// adminBackend adapts the running server's parts to the admin package.
type adminBackend struct {
	sched   *dirsync.Scheduler
	store   *cache.Store
	history state.Sync // run history
	cfg     func() *config.Config
	cluster *clusterView // nil without a cluster section
	agents  *agentHub    // nil without an agent section
	log     *slog.Logger // set by newAdmin
	probe   probeMemo
}

// probeMemo is what /readyz remembers of the shared status between
// probes, so that a database outage neither fails nor hides it.
type probeMemo struct {
	mu      sync.Mutex
	shared  []dirsync.ConnectorStatus // the last shared status read
	failing bool                      // the last read failed (logged once per outage)
}

// clusterView is a replica's cluster mode as the admin server shows it
// (admin.Cluster).
type clusterView struct {
	name   string               // cluster.replica_name
	db     registry.DB          // the cluster's database
	leader func() bool          // whether this replica holds the sync lease
	lag    func() time.Duration // the change-log follower's lag (changelog.Log.Lag)
	head   registry.HeadFunc    // changelog.Log.Head
	// throttle tells where failed sign-ins are counted
	// (state.Fallback.Shared); nil: in the shared store.
	throttle func() (shared bool, since time.Time)
}

// statusTimeout bounds a status read, so that a page answers while
// PostgreSQL does not.
const statusTimeout = 5 * time.Second

func (v *clusterView) Replica() string { return v.name }
func (v *clusterView) Leader() bool    { return v.leader() }

// Lag is the follower's lag on a standby. The leader's cache is where
// the log's records come from, and its follower is paused (its lag would
// only count the time since it last read the head): zero.
func (v *clusterView) Lag() time.Duration {
	if v.leader() {
		return 0
	}
	return v.lag()
}

// ThrottleShared implements admin.ClusterThrottle.
func (v *clusterView) ThrottleShared() (bool, time.Time) {
	if v.throttle == nil {
		return true, time.Time{}
	}
	return v.throttle()
}

func (v *clusterView) Status(ctx context.Context) (*registry.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	return registry.Read(ctx, v.db, registry.ReadOptions{Head: v.head})
}

func (b *adminBackend) Status(ctx context.Context) ([]dirsync.ConnectorStatus, error) {
	return b.sched.Status(ctx)
}

// probeTimeout bounds the shared-status read of a readiness probe: load
// balancers give a probe about a second.
const probeTimeout = 500 * time.Millisecond

// ProbeStatus is the connectors' status as /readyz judges it
// (admin.ProbeStatus). A single instance's history is in its cache: it is
// Status. A replica judges each connector's cache age on its own cache:
// the last success is the latest successful run the cache holds, the runs
// that came with the change-log records it applied (a standby whose
// follower is stuck ages, whatever the leader did). The shared status
// (state, last run, running, held plans) is read within probeTimeout; when
// the read fails the last one read stands in, and the failure is logged,
// never a readiness failure by itself (the lag rule judges the outage). A
// connector whose cache holds no run yet (its state came in a snapshot,
// which carries none) takes the shared last success once the cache has
// applied the log up to it.
func (b *adminBackend) ProbeStatus(ctx context.Context) ([]dirsync.ConnectorStatus, error) {
	if b.cluster == nil {
		return b.Status(ctx)
	}
	shared := b.sharedStatus(ctx)
	_, at, err := b.store.Position()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	var out []dirsync.ConnectorStatus
	for _, c := range b.cfg().Connectors {
		st := dirsync.ConnectorStatus{Name: c.Name, Type: c.Type, State: "unknown"}
		for _, s := range shared {
			if s.Name == c.Name {
				st = s
			}
		}
		runs, err := b.store.Runs(ctx, c.Name, 50)
		if err != nil {
			return nil, err
		}
		last := lastSuccess(runs)
		if last.IsZero() && !st.LastSuccess.After(at) {
			last = st.LastSuccess
		}
		st.LastSuccess, st.CacheAge = last, 0
		if !last.IsZero() {
			st.CacheAge = now.Sub(last)
		}
		out = append(out, st)
	}
	return out, nil
}

// sharedStatus reads the scheduler's status within probeTimeout, or
// returns the last one read.
func (b *adminBackend) sharedStatus(ctx context.Context) []dirsync.ConnectorStatus {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	sts, err := b.sched.Status(ctx)
	m := &b.probe
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case err == nil:
		if m.failing {
			b.log.Info("/readyz: the shared sync status is readable again")
		}
		m.shared, m.failing = sts, false
	case !m.failing:
		m.failing = true
		b.log.Warn("/readyz: the shared sync status cannot be read; judging readiness on this replica's cache and change-log lag", "err", err)
	}
	return m.shared
}

// lastSuccess is the end of the latest run among runs (newest first) that
// succeeded and applied: not failed, blocked or dry.
func lastSuccess(runs []state.Run) time.Time {
	for _, r := range runs {
		if r.Error == "" && r.Blocked == "" && !r.DryRun {
			return r.End
		}
	}
	return time.Time{}
}

func (b *adminBackend) SyncNow(ctx context.Context, name string, o dirsync.Options) (*dirsync.Result, error) {
	return b.sched.SyncNow(ctx, name, o)
}

func (b *adminBackend) Blocked(name string) (*dirsync.Result, bool) { return b.sched.Blocked(name) }

func (b *adminBackend) TestConnection(ctx context.Context, name string) (*testconn.Report, error) {
	c, ok := b.cfg().Connector(name)
	if !ok {
		return nil, fmt.Errorf("%w: %q", dirsync.ErrUnknownConnector, name)
	}
	if c.ViaAgent() && b.agents != nil {
		return testconn.RunAgent(ctx, c, agentsource.Tester{Hub: b.agents.hub}), nil
	}
	return testconn.Run(ctx, c), nil
}

// AgentReady is the agent rule of /readyz (admin.AgentReadiness).
func (b *adminBackend) AgentReady(name string, now time.Time) (bool, string) {
	c, ok := b.cfg().Connector(name)
	if !ok {
		return true, ""
	}
	return b.agents.ready(c, now)
}

func (b *adminBackend) Runs(ctx context.Context, name string, limit int) ([]state.Run, error) {
	return b.history.Runs(ctx, name, limit)
}

func (b *adminBackend) Store() *cache.Store { return b.store }

// newAdmin builds the admin listener's server: API, console, /metrics,
// /healthz and /readyz.
func newAdmin(cfg *config.Config, b *adminBackend, log *slog.Logger) (*http.Server, error) {
	o := admin.Options{Token: cfg.Admin.Token.Reveal(), MaxCacheAge: cfg.Admin.MaxCacheAge.Std(), Logger: log,
		Version: version, Metrics: metrics.Handler(), EntraApps: entraApps(cfg), PublicURL: cfg.Admin.PublicURL}
	if b.cluster != nil { // not a nil *clusterView in the interface
		o.Cluster, o.MaxLag = b.cluster, cfg.Cluster.MaxLag.Std()
	}
	if b.agents != nil {
		var replicas func(context.Context) (map[string][]string, error)
		if b.cluster != nil {
			db := b.cluster.db
			replicas = func(ctx context.Context) (map[string][]string, error) { return registry.ConnectedAgents(ctx, db) }
		}
		o.Agents = newAgentsView(b.agents.hub, b.agents.store, b.cfg, cfg.Agent.Advertise, replicas)
	}
	b.log = log
	h := admin.New(b, o)
	srv, err := httpServer(h, cfg.Admin.TLS)
	if err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	// "Synchronize now" and CLI syncs run inside the request: a write
	// timeout would cut off a long full sync's answer.
	srv.WriteTimeout = 0
	return srv, nil
}
