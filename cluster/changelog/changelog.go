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
	"github.com/klauspost/compress/zstd"

	"github.com/dirgate/dirgate/cluster/schema/migration"
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
	// (default 4 MiB).
	PartSize int
	// CompactDeltas is how many delta records of a connector after its
	// last Base make Compact publish a new Base (default 500); so do
	// deltas whose compressed size passes the Base's.
	CompactDeltas int
	// PruneGrace is how long a record superseded by a later Base is kept,
	// for followers reading it (default 10 minutes).
	PruneGrace time.Duration
}

// Log is the change log in one PostgreSQL schema (the pool's search path).
type Log struct {
	pool    *pgxpool.Pool
	log     *slog.Logger
	opt     Options
	channel string // a test listens elsewhere to break LISTEN
	enc     *zstd.Encoder
	dec     *zstd.Decoder

	// What Lag is computed from, as of the last successful head read.
	mu        sync.Mutex
	seen      time.Time     // when the head was last read
	lagAtSeen time.Duration // the lag then
	following int           // running Follow calls
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
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("changelog: %w", err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<30))
	if err != nil {
		return nil, fmt.Errorf("changelog: %w", err)
	}
	return &Log{pool: pool, log: o.Logger, opt: o, channel: channel, enc: enc, dec: dec, seen: time.Now()}, nil
}

// Head returns the newest sequence number given out and the time its
// record was committed (0 and the Unix epoch for an empty log).
func (l *Log) Head(ctx context.Context) (seq uint64, at time.Time, err error) {
	var s int64
	err = l.pool.QueryRow(ctx, `SELECT seq, at FROM changelog_head WHERE id = 1`).Scan(&s, &at)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("changelog: read head: %w", err)
	}
	return uint64(s), at.UTC(), nil
}

// Lag is how far this replica's cache is behind the log: the time between
// the head's record and the last one applied, as of the last head read,
// plus, while Follow runs, the time since that read once it is overdue
// (PostgreSQL unreachable). Without Follow (the leader, which caught up
// and then publishes every commit itself) it does not grow.
func (l *Log) Lag() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	lag := l.lagAtSeen
	if since := time.Since(l.seen); l.following > 0 && since > 2*l.opt.PollInterval {
		lag += since
	}
	return lag
}

// hasSyncTables reports whether pgstate's tables exist in the schema, so
// that the log also works (in its own tests) without them.
func hasSyncTables(ctx context.Context, tx pgx.Tx) (bool, error) {
	var ok bool
	err := tx.QueryRow(ctx, `SELECT to_regclass('sync_cursor') IS NOT NULL AND to_regclass('sync_run') IS NOT NULL`).Scan(&ok)
	return ok, err
}
