package changelog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/metrics"
)

// entry is a record's listing: what planning needs without its data.
type entry struct {
	seq  uint64
	conn string
	base bool
}

// CatchUp applies to store, in order, every record after its position up
// to the head as it reads it. Of each connector it skips the records
// before the connector's latest Base among them, which replaces them:
// that is also how a new replica (position 0), or one whose next records
// were pruned, loads the snapshot. A new leader calls it before it syncs.
func (l *Log) CatchUp(ctx context.Context, store *cache.Store) error {
	pos, posAt, err := store.Position()
	if err != nil {
		return err
	}
	head, headAt, err := l.Head(ctx)
	if err != nil {
		return err
	}
	metrics.ChangelogHead.Set(float64(head))
	if head > pos {
		l.sawHead(headAt.Sub(posAt))
		todo, snapshot, err := l.plan(ctx, pos)
		if err != nil {
			return err
		}
		if snapshot {
			metrics.ChangelogSnapshots.Inc()
			l.log.Info("loading the change log's snapshot", "position", pos, "head", head)
		}
		for _, e := range todo {
			if err := l.apply(ctx, store, e); err != nil {
				return err
			}
		}
		if pos, posAt, err = store.Position(); err != nil {
			return err
		}
	}
	metrics.ChangelogPosition.Set(float64(pos))
	lag := time.Duration(0)
	if head > pos {
		lag = max(headAt.Sub(posAt), 0)
	}
	l.sawHead(lag)
	return nil
}

// setFollowing counts Follow calls; a replica that starts following
// (again) counts its staleness from then.
func (l *Log) setFollowing(d int) {
	l.mu.Lock()
	if l.following == 0 {
		l.seen = time.Now()
	}
	l.following += d
	l.mu.Unlock()
}

// sawHead records a successful head read and the lag it showed.
func (l *Log) sawHead(lag time.Duration) {
	l.mu.Lock()
	l.seen, l.lagAtSeen = time.Now(), lag
	l.mu.Unlock()
	metrics.ChangelogLag.Set(lag.Seconds())
}

// plan lists the records after pos to apply, and whether that is a
// snapshot load: a replica with no position, or whose next record is gone.
func (l *Log) plan(ctx context.Context, pos uint64) ([]entry, bool, error) {
	rows, err := l.pool.Query(ctx, `SELECT seq, connector, base FROM changelog WHERE seq > $1 ORDER BY seq`, int64(pos))
	if err != nil {
		return nil, false, fmt.Errorf("changelog: list records: %w", err)
	}
	all, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (entry, error) {
		var e entry
		var seq int64
		err := row.Scan(&seq, &e.conn, &e.base)
		e.seq = uint64(seq)
		return e, err
	})
	if err != nil {
		return nil, false, fmt.Errorf("changelog: list records: %w", err)
	}
	if len(all) == 0 {
		return nil, false, nil
	}
	lastBase := map[string]uint64{}
	for _, e := range all {
		if e.base {
			lastBase[e.conn] = e.seq
		}
	}
	todo := all[:0]
	for _, e := range all {
		if e.seq >= lastBase[e.conn] {
			todo = append(todo, e)
		}
	}
	return todo, pos == 0 || all[0].seq != pos+1, nil
}

// apply reads one record and applies it. A delta for a connector this
// cache has no state of (the leader published deltas before any Base of
// it) cannot apply: it is skipped with a warning (an empty record takes
// its seq), and the connector's next Base brings its state.
func (l *Log) apply(ctx context.Context, store *cache.Store, e entry) error {
	r, err := l.read(ctx, e.seq)
	if err != nil {
		return err
	}
	err = store.ApplyRecord(ctx, r, e.seq)
	if errors.Is(err, cache.ErrNoGeneration) {
		l.log.Warn("change-log delta for a connector without state skipped; waiting for its next whole state",
			"connector", e.conn, "seq", e.seq)
		err = store.ApplyRecord(ctx, &cache.Record{Connector: e.conn, Time: r.Time}, e.seq)
	}
	if err != nil {
		return err
	}
	kind := "delta"
	if e.base {
		kind = "base"
	}
	metrics.ChangelogApplied.WithLabelValues(kind).Inc()
	return nil
}

// Follow keeps store up to date with the log until ctx ends: it catches
// up whenever a publish is notified (LISTEN on a connection of its own,
// reopened when lost) and at every poll interval in any case. While
// PostgreSQL is unreachable it retries with a growing delay; the cache
// goes on serving what it has. It returns ctx's error.
func (l *Log) Follow(ctx context.Context, store *cache.Store) error {
	l.setFollowing(1)
	defer l.setFollowing(-1)
	wake := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.listen(ctx, wake)
	}()
	defer func() { <-done }()
	retry := backoff{min: 100 * time.Millisecond, max: max(l.opt.PollInterval, 5*time.Second)}
	for {
		wait := l.opt.PollInterval
		if err := l.CatchUp(ctx, store); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			metrics.ChangelogErrors.Inc()
			wait = retry.next()
			l.log.Warn("change log: catching up failed, retrying", "err", err, "retry_in", wait)
		} else {
			retry.reset()
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// listen signals wake on every notification of the log's channel, and
// after every (re)connection, which may have missed some.
func (l *Log) listen(ctx context.Context, wake chan<- struct{}) {
	signal := func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	retry := backoff{min: 100 * time.Millisecond, max: max(l.opt.PollInterval, 5*time.Second)}
	for ctx.Err() == nil {
		err := l.listenOnce(ctx, func() { retry.reset(); signal() })
		if ctx.Err() != nil {
			return
		}
		wait := retry.next()
		l.log.Debug("change log: LISTEN connection lost", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

// listenOnce opens a connection, listens, and calls notified after LISTEN
// and on every notification until the connection fails.
func (l *Log) listenOnce(ctx context.Context, notified func()) error {
	conn, err := pgx.ConnectConfig(ctx, l.pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{l.channel}.Sanitize()); err != nil {
		return err
	}
	for {
		notified()
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
	}
}

// backoff is a doubling delay between min and max.
type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) next() time.Duration {
	b.cur = min(max(2*b.cur, b.min), b.max)
	return b.cur
}

func (b *backoff) reset() { b.cur = 0 }
