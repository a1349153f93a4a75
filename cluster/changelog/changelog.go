// Package changelog replicates directory data between the replicas of a
// cluster through PostgreSQL: the leader's cache publishes every commit as
// a record (cache.Record) in the table changelog, numbered in commit order,
// and every other replica applies the records to its own cache in that
// order (Follow). Records older than their connector's latest whole state
// (a Base record) are pruned, so a new replica, or one that was away for
// long, starts from each connector's Base.
package changelog

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dirgate/dirgate/cluster/schema/migration"
	"github.com/dirgate/dirgate/metrics"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the change log's migrations (versions 200 to 299, see
// package schema).
func Migrations() []migration.Migration {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the embedded directory exists
	}
	return migration.MustParse(sub)
}

// Migrate creates the change log's tables. A server migrates every dirgate
// table at once with package schema; this serves the package's own tests.
func Migrate(ctx context.Context, db migration.DB) error {
	if _, err := migration.Apply(ctx, db, Migrations()); err != nil {
		return fmt.Errorf("changelog: %w", err)
	}
	return nil
}

// channel is the NOTIFY channel a publish signals its seq on.
const channel = "dirgate_changelog"

// Options tunes a Log; zero values pick the defaults.
type Options struct {
	Logger *slog.Logger
	// PollInterval is how often Follow reads the head even without a
	// notification (default 2s): the safety net for a lost LISTEN.
	PollInterval time.Duration
	// PartSize is the size of the parts a compressed record is split into
	// (default 4 MiB): what a publisher or a follower holds of a record's
	// compressed bytes at a time.
	PartSize int
	// CompactDeltas is how many delta records of a connector after its
	// last Base make Compact publish a new Base (default 500); so do
	// deltas whose compressed size passes the Base's.
	CompactDeltas int
	// PruneGrace is how long a record superseded by a later Base is kept,
	// for followers reading it (default 10 minutes).
	PruneGrace time.Duration
	// Timeout bounds every call to PostgreSQL (default 30s): a publish
	// runs under the cache's write lock, which a database that stopped
	// answering must not hold for the minutes TCP takes to give up. A
	// record's parts are written and read one call each, and the
	// transaction that publishes a record of several parts has Timeout
	// plus an eighth of it for every part it moves.
	Timeout time.Duration
}

// Log is the change log in one PostgreSQL schema (the pool's search path).
type Log struct {
	pool    *pgxpool.Pool
	log     *slog.Logger
	opt     Options
	channel string // a test listens elsewhere to break LISTEN
	codecs  codecs

	// What Lag is computed from (times on the local monotonic clock).
	mu         sync.Mutex
	atHead     bool      // whether the cache was at the head when last checked
	lastAtHead time.Time // when it was last found at the head (or New)
	lastCheck  time.Time // when the head was last read
	following  int       // running Follow calls
}

// New returns the change log on pool.
func New(pool *pgxpool.Pool, o Options) (*Log, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 2 * time.Second
	}
	if o.PartSize <= 0 {
		o.PartSize = 4 << 20
	}
	if o.CompactDeltas <= 0 {
		o.CompactDeltas = 500
	}
	if o.PruneGrace <= 0 {
		o.PruneGrace = 10 * time.Minute
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	now := time.Now()
	return &Log{pool: pool, log: o.Logger, opt: o, channel: channel, lastAtHead: now, lastCheck: now}, nil
}

// bound limits one call to PostgreSQL to the Timeout option.
func (l *Log) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, l.opt.Timeout)
}

// head is the log's head row: the newest sequence number given out, the
// time its record was committed (0 and the Unix epoch for an empty log)
// and the log's identity.
type head struct {
	seq uint64
	at  time.Time
	log string
}

func (l *Log) head(ctx context.Context) (head, error) {
	ctx, cancel := l.bound(ctx)
	defer cancel()
	var h head
	var seq int64
	err := l.pool.QueryRow(ctx, `SELECT seq, at, log_id FROM changelog_head WHERE id = 1`).Scan(&seq, &h.at, &h.log)
	if err != nil {
		return head{}, fmt.Errorf("changelog: read head: %w", err)
	}
	h.seq, h.at = uint64(seq), h.at.UTC()
	return h, nil
}

// Head returns the newest sequence number given out and the time its
// record was committed (0 and the Unix epoch for an empty log).
func (l *Log) Head(ctx context.Context) (seq uint64, at time.Time, err error) {
	h, err := l.head(ctx)
	return h.seq, h.at, err
}

// Lag is how stale this replica's cache may be: zero while it is known to
// be at the log's head, otherwise the time since it last was (on this
// process's clock; since New before the first time). The cache is at the
// head when a head read finds its position there with no connector
// waiting for a Base (CatchUp), and when it publishes a record itself. It
// is not once a catch-up fails (a record it cannot apply, PostgreSQL
// unreachable) or a publish finds it behind; and while Follow runs, not
// once the head was not read for two poll intervals. The leader's Lag is
// thus zero once its term's CatchUp succeeded, as long as its publishes
// succeed.
func (l *Log) Lag() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	overdue := l.following > 0 && now.Sub(l.lastCheck) > 2*l.opt.PollInterval
	if l.atHead && !overdue {
		return 0
	}
	return now.Sub(l.lastAtHead)
}

// checked records a successful head read, begun at asOf, that found the
// cache at the head or not. The cache is known at the head as of the
// read's start, not its end: a record committed while the read ran is not
// in what it saw.
func (l *Log) checked(atHead bool, asOf time.Time) {
	l.mu.Lock()
	now := time.Now()
	l.lastCheck, l.atHead = now, atHead
	if atHead && asOf.After(l.lastAtHead) {
		l.lastAtHead = asOf
	}
	l.mu.Unlock()
	metrics.ChangelogLag.Set(l.Lag().Seconds())
}

// behind records that the cache is not known to be at the head.
func (l *Log) behind() {
	l.mu.Lock()
	l.atHead = false
	l.mu.Unlock()
	metrics.ChangelogLag.Set(l.Lag().Seconds())
}

// hasSyncTables reports whether pgstate's tables exist in the schema, so
// that the log also works (in its own tests) without them.
func hasSyncTables(ctx context.Context, tx pgx.Tx) (bool, error) {
	var ok bool
	err := tx.QueryRow(ctx, `SELECT to_regclass('sync_cursor') IS NOT NULL AND to_regclass('sync_run') IS NOT NULL`).Scan(&ok)
	return ok, err
}
