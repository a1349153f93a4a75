package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/cluster/changelog"
	"github.com/dirgate/dirgate/cluster/lease"
	"github.com/dirgate/dirgate/cluster/registry"
	"github.com/dirgate/dirgate/cluster/schema"
	"github.com/dirgate/dirgate/cluster/syncreq"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/metrics"
	"github.com/dirgate/dirgate/state"
	"github.com/dirgate/dirgate/state/pgstate"
	dirsync "github.com/dirgate/dirgate/sync"
)

// leaseName is the lease whose holder runs the syncs.
const leaseName = "sync"

// compactEvery paces the leader's change-log upkeep.
const compactEvery = 5 * time.Minute

// leaseConns bounds the lease's own pool: one renewal at a time, and one
// spare for the release at shutdown.
const leaseConns = 2

// replica is this process's part in a cluster: the shared database, the
// sync lease, the change log and the "Synchronize now" queue. Exactly one
// replica, the lease's holder, runs the scheduler and publishes; the others
// follow the change log, and their on-demand syncs go to the leader.
type replica struct {
	cfg  *config.Cluster
	log  *slog.Logger
	pool *pgxpool.Pool
	// leasePool is the lease's own: its renewals must not wait for a
	// connection behind the sign-ins on pool, or a busy leader would lose
	// its lease.
	leasePool *pgxpool.Pool
	holder    string
	lease     *lease.Lease
	queue     *syncreq.Queue
	clog      *changelog.Log
	reg       *registry.Registry
	// path is the configuration file, for messages.
	path string
	// schemaLater: the database was unreachable at the start, so run
	// does the schema step before taking part in the cluster.
	schemaLater bool
	// agentIDs returns the agents connected to this replica's agent
	// listener (nil without one), for its heartbeat.
	agentIDs func() []string
	// agentURL is this replica's agent listener as agents reach it
	// (agent.advertise), "" without one.
	agentURL string
	agents   state.Agents // the enrolled sync agents, in the database

	// Set by run.
	store *cache.Store
	sched *dirsync.Scheduler

	mu        sync.Mutex
	leading   bool
	stopFollw context.CancelFunc // nil while not following
	followed  chan struct{}      // closed when the follower stopped
}

// openReplica connects to the cluster's database and brings its schema up
// to date (cluster.migrate auto) or checks that it is (manual).
func openReplica(ctx context.Context, cfg *config.Config, log *slog.Logger) (_ *replica, err error) {
	c := cfg.Cluster
	pool, err := clusterPool(ctx, c)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			pool.Close()
		}
	}()
	r := &replica{cfg: c, log: log.With("replica", c.ReplicaName), pool: pool, holder: holderID(c.ReplicaName), path: cfg.Path}
	if err := r.schema(ctx); err != nil {
		if !unreachable(err) {
			return nil, err
		}
		// The cache is intact: serve LDAP from it. Taking part in the
		// cluster waits for the database (run), and OIDC fails closed
		// until its keys can be read (lateProvider).
		log.Warn("cluster: the database is unreachable: serving LDAP from this replica's cache; the schema check, the change log, the lease and OIDC wait for it",
			"err", err)
		r.schemaLater = true
	}
	lc := pool.Config()
	lc.MinConns, lc.MaxConns = 0, leaseConns
	leasePool, err := pgxpool.NewWithConfig(ctx, lc)
	if err != nil {
		return nil, fmt.Errorf("cluster: connect to PostgreSQL: %w", err)
	}
	defer func() {
		if err != nil {
			leasePool.Close()
		}
	}()
	r.leasePool = leasePool
	if cfg.Agent != nil {
		r.agentURL = cfg.Agent.Advertise
	}
	if r.lease, err = lease.New(leasePool, lease.Config{Name: leaseName, Holder: r.holder, TTL: c.LeaseTTL.Std(), Logger: log}); err != nil {
		return nil, err
	}
	r.queue = syncreq.New(pool, syncreq.Config{Requester: r.holder, Poll: c.PollInterval.Std(), Logger: log})
	if r.clog, err = changelog.New(pool, changelog.Options{Logger: log, PollInterval: c.PollInterval.Std()}); err != nil {
		return nil, err
	}
	log.Info("cluster mode", "replica", c.ReplicaName, "holder", r.holder, "database", databaseName(c.Postgres))
	return r, nil
}

// schema brings the database's schema up to date (cluster.migrate auto)
// or checks that it is (manual).
func (r *replica) schema(ctx context.Context) error {
	if r.cfg.Migrate == config.MigrateAuto {
		applied, err := schema.Apply(ctx, r.pool)
		if err != nil {
			return fmt.Errorf("cluster: migrate the database schema: %w", err)
		}
		if len(applied) > 0 {
			r.log.Info("cluster: database schema migrated", "applied", applied)
		}
		return nil
	}
	pending, err := schema.Pending(ctx, r.pool)
	if err != nil {
		return fmt.Errorf("cluster: check the database schema: %w", err)
	}
	if len(pending) > 0 {
		return fmt.Errorf("cluster: %d database migrations are pending (%s) and cluster.migrate is manual: run `dirgate migrate -c %s` first",
			len(pending), strings.Join(pending, ", "), r.path)
	}
	return nil
}

// awaitSchema retries the schema step of a replica that started without
// its database until it succeeds (true) or ctx ends (false).
func (r *replica) awaitSchema(ctx context.Context) bool {
	ok := retryBackoff(ctx, func() error { return r.schema(ctx) }, func(err error, next time.Duration) {
		r.log.Warn("cluster: the database schema step failed; retrying", "err", err, "retry_in", next)
	})
	if ok {
		r.log.Info("cluster: the database answers: joining the cluster")
	}
	return ok
}

// unreachable tells whether err is a failure to reach the database (no
// connection could be made), rather than one of what it answered.
func unreachable(err error) bool {
	var ce *pgconn.ConnectError
	return errors.As(err, &ce)
}

// holderID names this process run: the replica's name, the process and a
// random part, so a restarted replica never inherits its predecessor's
// lease term.
func holderID(name string) string {
	return fmt.Sprintf("%s/%d/%s", name, os.Getpid(), strings.ToLower(rand.Text()[:8]))
}

// databaseName is the URL's host and database, for the start-up log.
func databaseName(u string) string {
	_, rest, _ := strings.Cut(u, "@")
	if rest == "" {
		_, rest, _ = strings.Cut(u, "://")
	}
	rest, _, _ = strings.Cut(rest, "?")
	return rest
}

// states returns the state stores in the database; the throttle counts on
// this replica alone while the database fails.
func (r *replica) states(log *slog.Logger) (state.Stores, error) {
	pg, err := pgstate.New(r.pool, r.cfg.Key())
	if err != nil {
		return state.Stores{}, fmt.Errorf("cluster: %w", err)
	}
	st := pg.Stores()
	r.agents = pg
	st.Throttle = state.NewFallback(st.Throttle, state.NewMemoryThrottle(cache.MaxThrottleKeys), log)
	return st, nil
}

// prepare sets the engine and the scheduler up for the cluster: runs are
// recorded as they start, so a dead leader's are found, and on-demand runs
// go to the leader.
func (r *replica) prepare(eng *dirsync.Engine, sched *dirsync.Scheduler, store *cache.Store) (err error) {
	r.store, r.sched = store, sched
	r.reg, err = registry.New(r.pool, registry.Config{Name: r.cfg.ReplicaName, Holder: r.holder, AdminURL: r.cfg.AdvertiseAdmin, AgentURL: r.agentURL,
		Version: version, Position: store.Position, Lag: r.clog.Lag, Leader: r.isLeader, Agents: r.agentIDs, Logger: r.log})
	if err != nil {
		return err
	}
	eng.RecordStarts()
	sched.SetForward(r.queue.Do)
	return nil
}

// peers returns the agent URLs of the live replicas (Welcome's peers);
// nil before the registry's first heartbeat.
func (r *replica) peers() []string {
	if r.reg == nil {
		return nil
	}
	return r.reg.Peers()
}

func (r *replica) isLeader() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.leading
}

// run takes part in the cluster until ctx ends: it follows the change log,
// beats in the registry and campaigns for the lease, leading when it holds
// it. On return the lease is released and every term's work has stopped.
func (r *replica) run(ctx context.Context) {
	if r.schemaLater && !r.awaitSchema(ctx) {
		return
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() { defer wg.Done(); _ = r.reg.Run(ctx) }()
	r.follow(ctx)
	defer r.stopFollow()
	var term chan struct{} // closed when the latest term's work ended
	_ = r.lease.Run(ctx, func(st lease.Status) {
		r.mu.Lock()
		r.leading = st.Leader
		r.mu.Unlock()
		metrics.ClusterEpoch.Set(float64(st.Fence.Epoch))
		// Beat at once, so that status shows the change now rather than
		// at the next heartbeat.
		go func() { _ = r.reg.Beat(ctx) }()
		if !st.Leader {
			metrics.ClusterLeader.Set(0)
			return
		}
		metrics.ClusterLeader.Set(1)
		prev, done := term, make(chan struct{})
		term = done
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done)
			if prev != nil {
				<-prev // one term's work at a time, in order
			}
			r.lead(ctx, st.Ctx, st.Fence)
		}()
	})
}

// lead does a term's work until its context ends: catch the cache up with
// the log (the previous leader's last commits), publish every commit under
// the term's fence, answer queued sync requests and run the schedule. The
// term's context carries the fence, so the shared sync state refuses the
// writes of its runs once a successor leads (lease.WithFence).
func (r *replica) lead(ctx, term context.Context, f lease.Fence) {
	r.log.Info("cluster: leading the syncs", "epoch", f.Epoch)
	defer r.log.Info("cluster: no longer leading the syncs", "epoch", f.Epoch)
	r.stopFollow()
	defer func() {
		if ctx.Err() == nil {
			r.follow(ctx)
		}
	}()
	since, ok := r.begin(term)
	if !ok {
		return
	}
	term = lease.WithFence(term, f)
	behind := make(chan struct{}, 1)
	r.store.SetPublisher(behindSignal{r.clog.FencedPublisher(r.lease, f), behind})
	defer r.store.SetPublisher(nil)
	// A connector the log has no whole state of (a cache older than the
	// log: a single instance turned leader) is published now, so a new
	// replica does not wait for the first compaction to serve it.
	if err := r.clog.EnsureBases(term, r.store); err != nil && term.Err() == nil {
		r.log.Warn("cluster: publishing the whole state of connectors the change log lacks failed; the next compaction retries", "err", err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(2)
	go func() { defer wg.Done(); r.upkeep(term, behind) }()
	go func() { defer wg.Done(); r.queue.Serve(term, f, r.sched.RunHere) }()
	r.sched.Lead(term, since)
}

// behindSignal publishes through the log's publisher and signals behind
// when the log refused a commit because the cache lacks some of its
// records: the term's upkeep catches up at once rather than at its next
// compaction, and commits publish again.
type behindSignal struct {
	cache.Publisher
	behind chan<- struct{}
}

// Publish implements cache.Publisher.
func (p behindSignal) Publish(ctx context.Context, rec *cache.Record) (uint64, error) {
	seq, err := p.Publisher.Publish(ctx, rec)
	if errors.Is(err, changelog.ErrBehind) {
		select {
		case p.behind <- struct{}{}:
		default: // a catch-up is pending already
		}
	}
	return seq, err
}

// begin starts a term: it reads the database clock, the term's start by
// which the scheduler tells an earlier term's unfinished runs from this
// one's (the replicas' clocks may differ), and applies the log's records
// the cache lacks. It retries until both succeed or the term ends: a
// leader syncing on a stale cache would publish changes computed against
// a state the others do not have.
func (r *replica) begin(term context.Context) (since time.Time, ok bool) {
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		err := r.pool.QueryRow(term, `SELECT clock_timestamp()`).Scan(&since)
		if err == nil {
			err = r.clog.CatchUp(term, r.store)
		}
		if err == nil {
			return since, true
		}
		if term.Err() != nil {
			return since, false
		}
		r.log.Warn("cluster: catching up with the change log before leading; retrying", "err", err, "retry_in", wait)
		select {
		case <-term.Done():
			return since, false
		case <-time.After(wait):
		}
	}
}

// upkeep keeps the change log short while the term lasts, and catches the
// cache up with the log as soon as a publish found it behind (behind).
func (r *replica) upkeep(term context.Context, behind <-chan struct{}) {
	t := time.NewTicker(compactEvery)
	defer t.Stop()
	for {
		select {
		case <-term.Done():
			return
		case <-behind:
			if err := r.clog.CatchUp(term, r.store); err != nil && term.Err() == nil {
				r.log.Warn("cluster: catching up with the change log after a refused publish", "err", err)
			}
		case <-t.C:
			if err := r.clog.Compact(term, r.store); err != nil && term.Err() == nil {
				r.log.Warn("cluster: change-log compaction failed", "err", err)
			}
		}
	}
}

// follow starts applying the change log to the cache.
func (r *replica) follow(ctx context.Context) {
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	r.mu.Lock()
	r.stopFollw, r.followed = cancel, done
	r.mu.Unlock()
	go func() {
		defer close(done)
		_ = r.clog.Follow(fctx, r.store)
	}()
}

// stopFollow stops the follower and waits for it; a no-op when none runs.
func (r *replica) stopFollow() {
	r.mu.Lock()
	cancel, done := r.stopFollw, r.followed
	r.stopFollw, r.followed = nil, nil
	r.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// view is what the admin server shows of this replica.
func (r *replica) view() *clusterView {
	return &clusterView{name: r.cfg.ReplicaName, db: r.pool, leader: r.isLeader, lag: r.clog.Lag, head: r.clog.Head}
}

// close releases the database connections.
func (r *replica) close() {
	r.leasePool.Close()
	r.pool.Close()
}
