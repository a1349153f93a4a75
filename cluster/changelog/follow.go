package changelog

import (
	"context"
	"errors"
	"fmt"
	"net"
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
// were pruned, loads the snapshot. A cache whose position belongs to
// another history (it names another log, it is beyond the head, or the
// log's record at its position is another one: the database was replaced
// or restored from a backup) loads the snapshot too, from position 0,
// rather than skip the log's records as applied (see cache.Store.ResetLog).
// A new leader calls it before it syncs.
func (l *Log) CatchUp(ctx context.Context, store *cache.Store) error {
	err := l.catchUp(ctx, store)
	if err != nil {
		l.behind()
	}
	return err
}

func (l *Log) catchUp(ctx context.Context, store *cache.Store) error {
	asOf := time.Now()
	h, err := l.head(ctx)
	if err != nil {
		return err
	}
	metrics.ChangelogHead.Set(float64(h.seq))
	pos, err := l.claim(ctx, store, h)
	if err != nil {
		return err
	}
	if h.seq > pos {
		todo, snapshot, err := l.plan(ctx, pos)
		if err != nil {
			return err
		}
		if snapshot {
			metrics.ChangelogSnapshots.Inc()
			l.log.Info("loading the change log's snapshot", "position", pos, "head", h.seq)
		}
		for _, e := range todo {
			if err := l.apply(ctx, store, e, h.log); err != nil {
				return err
			}
		}
		if pos, _, err = store.Position(); err != nil {
			return err
		}
	}
	metrics.ChangelogPosition.Set(float64(pos))
	waiting, err := store.Waiting()
	if err != nil {
		return err
	}
	if len(waiting) > 0 {
		l.log.Debug("change log: connectors wait for their whole state", "connectors", waiting)
	}
	l.checked(pos >= h.seq && len(waiting) == 0, asOf)
	return nil
}

// claim makes store's position one in the log whose head is h and returns
// it: a cache that follows another log, or whose position is not in this
// log's history, starts again from 0.
func (l *Log) claim(ctx context.Context, store *cache.Store, h head) (uint64, error) {
	id, pos, posAt, err := store.LogPosition()
	if err != nil {
		return 0, err
	}
	reason := ""
	switch {
	case id != "" && id != h.log:
		reason = "the cache follows another change log (the cluster's database was replaced)"
	case pos > h.seq:
		reason = "the cache is beyond the change log's head (the database was restored from a backup)"
	case pos > 0:
		at, found, err := l.recordTime(ctx, pos, h)
		if err != nil {
			return 0, err
		}
		if found && !at.Equal(posAt.Truncate(time.Microsecond)) {
			reason = "the change log's record at the cache's position is another one (the database was restored from a backup)"
		}
	}
	if reason == "" {
		if id == "" {
			err = store.ResetLog(h.log, false)
		}
		return pos, err
	}
	l.log.Warn("change log: "+reason+"; reloading the directory from the log's snapshot",
		"cache_log", id, "position", pos, "log", h.log, "head", h.seq)
	if err := store.ResetLog(h.log, true); err != nil {
		return 0, err
	}
	return 0, nil
}

// recordTime returns the commit time of record seq, as PostgreSQL stores
// it (microseconds); found is false once the record was pruned.
func (l *Log) recordTime(ctx context.Context, seq uint64, h head) (at time.Time, found bool, err error) {
	if seq == h.seq {
		return h.at, true, nil
	}
	ctx, cancel := l.bound(ctx)
	defer cancel()
	err = l.pool.QueryRow(ctx, `SELECT at FROM changelog WHERE seq = $1`, int64(seq)).Scan(&at)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("changelog: read record %d: %w", seq, err)
	}
	return at, true, nil
}

// setFollowing counts Follow calls.
func (l *Log) setFollowing(d int) {
	l.mu.Lock()
	// A leader's cache is the log's source: at the head until the moment
	// it starts following again (a lost lease), however long ago it last
	// published. Without this, its lag would jump to the time since its
	// last publish, and an ex-leader losing the database would turn
	// unready at once instead of after max_lag.
	if l.following == 0 && d > 0 && l.atHead {
		now := time.Now()
		l.lastAtHead, l.lastCheck = now, now
	}
	l.following += d
	l.mu.Unlock()
}

// plan lists the records after pos to apply, and whether that is a
// snapshot load: a replica with no position, or whose next record is gone.
func (l *Log) plan(ctx context.Context, pos uint64) ([]entry, bool, error) {
	ctx, cancel := l.bound(ctx)
	defer cancel()
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

// apply reads one record of the log identified by log and applies it.
func (l *Log) apply(ctx context.Context, store *cache.Store, e entry, log string) error {
	err := l.readRecord(ctx, e.seq, func(r *cache.Record) error {
		r.Log = log
		return store.ApplyRecord(ctx, r, e.seq)
	})
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
	cfg := l.pool.Config().ConnConfig.Copy()
	// The connection idles in WaitForNotification, where no timeout
	// applies: keepalives find a database that vanished without a reset.
	cfg.DialFunc = listenDialer.DialContext
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = l.opt.Timeout
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	lctx, cancel := l.bound(ctx)
	_, err = conn.Exec(lctx, "LISTEN "+pgx.Identifier{l.channel}.Sanitize())
	cancel()
	if err != nil {
		return err
	}
	for {
		notified()
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
	}
}

// listenDialer opens the LISTEN connection with keepalives that give up on
// an unanswering peer within about half a minute.
var listenDialer = &net.Dialer{
	Timeout:         30 * time.Second,
	KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 15 * time.Second, Interval: 5 * time.Second, Count: 3},
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
