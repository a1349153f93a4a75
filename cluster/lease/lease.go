// Package lease elects one leader among dirgate replicas through a lease row
// in PostgreSQL, and fences the leader's writes with the lease's epoch.
//
// Every time comparison uses the database clock; a replica's own clock only
// paces its renewals, so clock skew between replicas cannot produce two
// leaders. Each acquisition increments the epoch, and every leader write runs
// in a transaction that first checks (holder, epoch, not expired) on the
// lease row (see Fence), so a paused or partitioned ex-leader cannot write
// once its lease expired, whatever it believes locally.
package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DB is what the lease needs from PostgreSQL; *pgxpool.Pool and *pgx.Conn
// satisfy it.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error)
}

// Config tunes a Lease. Name and Holder are required.
type Config struct {
	// Name of the lease (one row per name), e.g. "sync".
	Name string
	// Holder identifies this process, unique per process run (host, pid and a
	// random part): a restarted replica must not inherit its predecessor's
	// term.
	Holder string
	// TTL is how long an acquisition or renewal lasts by the database clock.
	// Default 15s.
	TTL time.Duration
	// RenewInterval paces the leader's renewals. Default TTL/3.
	RenewInterval time.Duration
	// RenewDeadline bounds how long after its last successful renewal the
	// leader keeps leading while a renewal hangs; it must stay below TTL so
	// the leader steps down before the lease can expire. Default 2·TTL/3.
	RenewDeadline time.Duration
	// RetryInterval paces a standby's acquisition attempts. Default TTL/3.
	RetryInterval time.Duration
	// Logger receives leadership changes and renewal failures. Default
	// slog.Default().
	Logger *slog.Logger
}

// Status is a leadership change reported by Run.
type Status struct {
	// Leader tells whether this process now leads.
	Leader bool
	// Fence is the term that began (Leader) or ended (!Leader).
	Fence Fence
	// Ctx is cancelled the moment the term ends, before the end is
	// reported; leader work should run under it. Nil when !Leader.
	Ctx context.Context
}

// Lease campaigns for and holds one named lease.
type Lease struct {
	db     DB
	cfg    Config
	log    *slog.Logger
	fenced chan int64 // epochs whose writes were refused, for Run to step down
}

// New checks cfg, fills in its defaults and returns a Lease on db. The lease
// table must exist (Migrate).
func New(db DB, cfg Config) (*Lease, error) {
	if cfg.Name == "" || cfg.Holder == "" {
		return nil, errors.New("lease: name and holder are required")
	}
	if cfg.TTL == 0 {
		cfg.TTL = 15 * time.Second
	}
	if cfg.RenewInterval == 0 {
		cfg.RenewInterval = cfg.TTL / 3
	}
	if cfg.RenewDeadline == 0 {
		cfg.RenewDeadline = 2 * cfg.TTL / 3
	}
	if cfg.RetryInterval == 0 {
		cfg.RetryInterval = cfg.TTL / 3
	}
	if cfg.TTL < time.Millisecond || cfg.RenewInterval <= 0 || cfg.RetryInterval <= 0 ||
		cfg.RenewInterval >= cfg.RenewDeadline || cfg.RenewDeadline >= cfg.TTL {
		return nil, fmt.Errorf("lease: need 0 < renew interval (%v) < renew deadline (%v) < TTL (%v) and a positive retry interval (%v)",
			cfg.RenewInterval, cfg.RenewDeadline, cfg.TTL, cfg.RetryInterval)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Lease{db: db, cfg: cfg, log: log.With("lease", cfg.Name, "holder", cfg.Holder), fenced: make(chan int64, 1)}, nil
}

// acquireSQL takes the lease when it is free, expired, or already ours from a
// term this process gave up (a failed renewal steps down locally while the
// row may still name us); every acquisition opens a new epoch, so writes
// still in flight from the given-up term are fenced out. The conflicting
// row is locked and the WHERE re-evaluated on its newest version, so of
// concurrent contenders exactly one gets a row back.
const acquireSQL = `INSERT INTO leader_lease AS l (name, holder, epoch, expires_at)
VALUES ($1, $2, 1, clock_timestamp() + $3 * interval '1 millisecond')
ON CONFLICT (name) DO UPDATE
SET holder = excluded.holder, epoch = l.epoch + 1, expires_at = excluded.expires_at
WHERE l.expires_at <= clock_timestamp() OR l.holder = excluded.holder
RETURNING epoch`

// renewSQL extends the term only while it is unexpired by the database clock.
const renewSQL = `UPDATE leader_lease SET expires_at = clock_timestamp() + $4 * interval '1 millisecond'
WHERE name = $1 AND holder = $2 AND epoch = $3 AND expires_at > clock_timestamp()`

// releaseSQL expires the term now, so a standby takes over on its next
// attempt instead of after the TTL.
const releaseSQL = `UPDATE leader_lease SET expires_at = clock_timestamp()
WHERE name = $1 AND holder = $2 AND epoch = $3 AND expires_at > clock_timestamp()`

// errLost means a renewal found the term gone (expired or taken over).
var errLost = errors.New("lease: lost")

// acquire makes one attempt; ok is false when another holder has the lease.
func (l *Lease) acquire(ctx context.Context) (f Fence, ok bool, err error) {
	f = Fence{Name: l.cfg.Name, Holder: l.cfg.Holder}
	err = l.db.QueryRow(ctx, acquireSQL, f.Name, f.Holder, l.cfg.TTL.Milliseconds()).Scan(&f.Epoch)
	if errors.Is(err, pgx.ErrNoRows) {
		return Fence{}, false, nil
	}
	if err != nil {
		return Fence{}, false, fmt.Errorf("lease: acquire: %w", err)
	}
	return f, true, nil
}

// renew extends f's term, or returns errLost when it is over.
func (l *Lease) renew(ctx context.Context, f Fence) error {
	tag, err := l.db.Exec(ctx, renewSQL, f.Name, f.Holder, f.Epoch, l.cfg.TTL.Milliseconds())
	if err != nil {
		return fmt.Errorf("lease: renew: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return errLost
	}
	return nil
}

// release ends f's term in the database; a term already over is no error.
func (l *Lease) release(ctx context.Context, f Fence) error {
	if _, err := l.db.Exec(ctx, releaseSQL, f.Name, f.Holder, f.Epoch); err != nil {
		return fmt.Errorf("lease: release: %w", err)
	}
	return nil
}

// term is the leadership Run currently holds.
type term struct {
	fence   Fence
	cancel  context.CancelFunc
	renewed time.Time // local monotonic time the last successful renewal was sent
}

// Run campaigns until ctx ends: as a standby it tries to acquire every
// RetryInterval, as the leader it renews every RenewInterval. A renewal that
// fails, finds the term gone, or does not succeed within RenewDeadline of the
// previous one ends the term at once. onChange is called (from Run's
// goroutine: it must not block) on every change; when ctx ends a held term
// is released so a standby takes over without waiting for the TTL. Run
// returns nil after ctx ends.
func (l *Lease) Run(ctx context.Context, onChange func(Status)) error {
	var cur *term
	end := func(reason string, err error) {
		cur.cancel()
		l.log.Warn("lease: stepped down", "epoch", cur.fence.Epoch, "reason", reason, "err", err)
		onChange(Status{Fence: cur.fence})
		cur = nil
	}
	for {
		wait := l.cfg.RetryInterval
		if cur == nil {
			sent := time.Now()
			f, ok, err := l.acquire(ctx)
			switch {
			case err != nil && ctx.Err() == nil:
				l.log.Warn("lease: acquisition failed", "err", err)
			case ok:
				tctx, cancel := context.WithCancel(ctx)
				cur = &term{fence: f, cancel: cancel, renewed: sent}
				l.log.Info("lease: leading", "epoch", f.Epoch)
				onChange(Status{Leader: true, Fence: f, Ctx: tctx})
				wait = l.cfg.RenewInterval
			}
		} else {
			sent := time.Now()
			rctx, cancel := context.WithDeadline(ctx, cur.renewed.Add(l.cfg.RenewDeadline))
			err := l.renew(rctx, cur.fence)
			cancel()
			switch {
			case ctx.Err() != nil:
			case errors.Is(err, errLost):
				end("lease expired or taken over", nil)
			case err != nil:
				end("renewal failed", err)
			default:
				cur.renewed = sent
				wait = l.cfg.RenewInterval
			}
		}
		select {
		case <-ctx.Done():
			if cur != nil {
				l.shutdown(ctx, cur)
				end("shutting down", nil)
			}
			return nil
		case e := <-l.fenced:
			if cur != nil && cur.fence.Epoch == e {
				end("a write was fenced", nil)
			}
		case <-time.After(wait):
		}
	}
}

// Do runs fn as a fenced write of term f on the lease's database (see
// Fence.Do). When the fence refuses it, Run ends the term at once instead of
// at its next renewal.
func (l *Lease) Do(ctx context.Context, f Fence, fn func(pgx.Tx) error) error {
	err := f.Do(ctx, l.db, fn)
	if errors.Is(err, ErrFenced) {
		select {
		case l.fenced <- f.Epoch:
		default: // a refusal is already pending; one is enough
		}
	}
	return err
}

// shutdown releases cur's term; it gets its own short deadline because ctx
// is already done.
func (l *Lease) shutdown(ctx context.Context, cur *term) {
	cur.cancel() // stop leader work before the standby may start
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.cfg.RetryInterval)
	defer cancel()
	if err := l.release(rctx, cur.fence); err != nil {
		l.log.Warn("lease: release failed; a standby takes over when the TTL ends", "err", err)
	}
}
