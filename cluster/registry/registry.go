// Package registry keeps the list of a cluster's replicas in PostgreSQL:
// each replica's heartbeat upserts its row (who it is, where its console
// is, its change-log position, whether it leads), and Read assembles the
// cluster's status from those rows, the sync lease and the change log's
// head, for `dirgate cluster status` and the console.
package registry

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dirgate/dirgate/cluster/schema/migration"
	"github.com/dirgate/dirgate/metrics"
)

//go:embed registry.sql
var tableSQL string

//go:embed agent_url.sql
var agentURLSQL string

//go:embed lag.sql
var lagSQL string

//go:embed agents.sql
var agentsSQL string

// Migrations returns the registry's migrations (versions 400 to 499, see
// package schema).
func Migrations() []migration.Migration {
	return []migration.Migration{{Version: 400, Name: "0400_cluster_replica.sql", SQL: tableSQL},
		{Version: 401, Name: "0401_cluster_replica_agent_url.sql", SQL: agentURLSQL},
		{Version: 402, Name: "0402_cluster_replica_lag.sql", SQL: lagSQL},
		{Version: 403, Name: "0403_cluster_replica_agents.sql", SQL: agentsSQL}}
}

// DB is what the registry needs; *pgxpool.Pool satisfies it.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Defaults of Config and ReadOptions.
const (
	DefaultInterval  = 5 * time.Second
	DefaultGoneAfter = 30 * time.Second
	// forgetAfter is how long the row of a replica that stopped beating
	// stays listed (as gone) before a heartbeat deletes it: long enough to
	// notice a dead replica, short enough that renamed ones do not pile up.
	forgetAfter = 7 * 24 * time.Hour
)

// Config describes this replica to the registry. Name and Holder are
// required.
type Config struct {
	// Name is the replica's name (cluster.replica_name), unique in the
	// cluster: its row is keyed by it.
	Name string
	// Holder is the process's lease holder identity, which tells a
	// restarted replica from its previous run.
	Holder string
	// AdminURL is where the replica's console is reached
	// (cluster.advertise_admin); may be empty.
	AdminURL string
	// AgentURL is where sync agents reach the replica's agent listener
	// (agent.advertise); empty without one.
	AgentURL string
	// Version is the release the replica runs.
	Version string
	// Interval paces the heartbeats. Default DefaultInterval.
	Interval time.Duration
	// Position returns the change-log position of the replica's cache and
	// the time of that record (cache.Store.Position); nil reports 0.
	Position func() (seq uint64, at time.Time, err error)
	// Lag returns how stale the replica's cache may be (the change log's
	// Log.Lag), which the status shows; nil: the status derives it from
	// the positions.
	Lag func() time.Duration
	// Leader tells whether the replica leads the syncs now; nil: never.
	Leader func() bool
	// Agents returns the IDs of the sync agents connected to the replica;
	// nil: it runs no agent listener.
	Agents func() []string
	// Logger receives heartbeat failures. Default slog.Default().
	Logger *slog.Logger
}

// Registry beats for one replica.
type Registry struct {
	db  DB
	cfg Config
	log *slog.Logger

	mu    sync.Mutex
	peers []string // agent URLs of the live replicas, as of the last beat
}

// New checks cfg and returns the registry of this replica on db; the
// table must exist (schema.Migrate).
func New(db DB, cfg Config) (*Registry, error) {
	if cfg.Name == "" || cfg.Holder == "" {
		return nil, errors.New("registry: name and holder are required")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Registry{db: db, cfg: cfg, log: log.With("replica", cfg.Name)}, nil
}

// beatSQL upserts the replica's row on the database clock. started is
// kept while the same process beats and reset when another process (a
// restart) takes the name over.
const beatSQL = `INSERT INTO cluster_replica AS r (name, holder, admin_url, version, started, seen, position, position_at, leader, agent_url, lag_ms, agents)
VALUES ($1, $2, $3, $4, clock_timestamp(), clock_timestamp(), $5, $6, $7, $8, $9, $10)
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, admin_url = excluded.admin_url, version = excluded.version, agent_url = excluded.agent_url,
	started = CASE WHEN r.holder = excluded.holder THEN r.started ELSE excluded.started END,
	seen = excluded.seen, position = excluded.position, position_at = excluded.position_at, leader = excluded.leader, lag_ms = excluded.lag_ms,
	agents = excluded.agents`

// Beat writes the replica's row now. Run calls it on every tick; call it
// too right after a leadership change so the status shows it at once.
func (r *Registry) Beat(ctx context.Context) error {
	var seq uint64
	var at time.Time
	if r.cfg.Position != nil {
		var err error
		if seq, at, err = r.cfg.Position(); err != nil {
			return fmt.Errorf("registry: read the cache's position: %w", err)
		}
	}
	leader := r.cfg.Leader != nil && r.cfg.Leader()
	var atArg *time.Time
	if !at.IsZero() {
		atArg = &at
	}
	var lag *int64
	if r.cfg.Lag != nil {
		ms := r.cfg.Lag().Milliseconds()
		lag = &ms
	}
	var agents []string
	if r.cfg.Agents != nil {
		agents = append([]string{}, r.cfg.Agents()...) // not nil: no agent connected
	}
	if _, err := r.db.Exec(ctx, beatSQL, r.cfg.Name, r.cfg.Holder, r.cfg.AdminURL, r.cfg.Version,
		int64(seq), atArg, leader, r.cfg.AgentURL, lag, agents); err != nil {
		return fmt.Errorf("registry: heartbeat: %w", err)
	}
	if _, err := r.db.Exec(ctx, `DELETE FROM cluster_replica WHERE seen < clock_timestamp() - $1 * interval '1 second'`,
		forgetAfter.Seconds()); err != nil {
		return fmt.Errorf("registry: forget old replicas: %w", err)
	}
	return r.readPeers(ctx)
}

// readPeers reads the agent URLs of the replicas that beat within
// DefaultGoneAfter.
func (r *Registry) readPeers(ctx context.Context) error {
	rows, err := r.db.Query(ctx, `SELECT agent_url FROM cluster_replica
WHERE agent_url <> '' AND seen >= clock_timestamp() - $1 * interval '1 millisecond' ORDER BY name`, DefaultGoneAfter.Milliseconds())
	if err != nil {
		return fmt.Errorf("registry: read the agent URLs: %w", err)
	}
	urls, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("registry: read the agent URLs: %w", err)
	}
	r.mu.Lock()
	r.peers = urls
	r.mu.Unlock()
	return nil
}

// ConnectedAgents returns, for each sync agent connected to a live
// replica as of that replica's last heartbeat, the names of those
// replicas, in name order.
func ConnectedAgents(ctx context.Context, db DB) (map[string][]string, error) {
	rows, err := db.Query(ctx, `SELECT name, agent FROM cluster_replica, unnest(agents) AS agent
WHERE seen >= clock_timestamp() - $1 * interval '1 millisecond' ORDER BY name, agent`, DefaultGoneAfter.Milliseconds())
	if err != nil {
		return nil, fmt.Errorf("registry: read the connected agents: %w", err)
	}
	out := map[string][]string{}
	var name, agent string
	_, err = pgx.ForEachRow(rows, []any{&name, &agent}, func() error {
		out[agent] = append(out[agent], name)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("registry: read the connected agents: %w", err)
	}
	return out, nil
}

// Peers returns the agent URLs of the live replicas as of the last
// heartbeat (this one's included once it beat): what the hub sends agents
// in Welcome, so that each keeps a connection to every replica.
func (r *Registry) Peers() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.peers)
}

// Run beats every Interval until ctx ends, then returns nil. A failed beat
// is logged and retried at the next tick: PostgreSQL being away must not
// stop the replica, whose row then ages into "gone" for the others.
func (r *Registry) Run(ctx context.Context) error {
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	failing := false
	for {
		err := r.Beat(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil && !failing:
			r.log.Warn("cluster registry: heartbeat failed; retrying", "err", err)
		case err == nil && failing:
			r.log.Info("cluster registry: heartbeat works again")
		}
		failing = err != nil
		if err == nil {
			r.countAlive(ctx)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// countAlive records how many replicas beat recently.
func (r *Registry) countAlive(ctx context.Context) {
	var n int
	err := r.db.QueryRow(ctx, `SELECT count(*) FROM cluster_replica WHERE seen >= clock_timestamp() - $1 * interval '1 millisecond'`,
		DefaultGoneAfter.Milliseconds()).Scan(&n)
	if err == nil {
		metrics.ClusterReplicas.Set(float64(n))
	}
}
