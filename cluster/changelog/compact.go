package changelog

import (
	"context"
	"fmt"
	"time"

	"github.com/dirgate/dirgate/cache"
)

// Compact is the leader's upkeep of the log, to run now and then with the
// leader's publisher set on store. It first applies any record the cache
// lacks (one whose publish committed but whose local commit failed or
// whose acknowledgement was lost, after which every publish is refused
// with ErrBehind). Each served connector without a Base in the log (its
// state predates the log), or with more than CompactDeltas delta records
// after its last Base or deltas larger than that Base, gets a new Base of
// its served state; then the records older than their connector's latest
// Base are deleted once PruneGrace has passed since that Base, leaving
// followers that were reading them time to finish.
func (l *Log) Compact(ctx context.Context, store *cache.Store) error {
	if err := l.CatchUp(ctx, store); err != nil {
		return err
	}
	err := l.publishBases(ctx, store, func(b baseStats) bool {
		return !b.hasBase || b.deltas > int64(l.opt.CompactDeltas) || (b.deltas > 0 && b.deltaSize > b.baseSize)
	})
	if err != nil {
		return err
	}
	return l.prune(ctx, time.Now().Add(-l.opt.PruneGrace))
}

// EnsureBases publishes a Base record of every connector store serves that
// has none in the log, so that a replica can load it: the state of a cache
// that predates the log (a single instance turned leader), or that
// followed another history, is otherwise only in deltas no replica can
// apply. A new leader calls it once its CatchUp succeeded, with its
// publisher set on store, before it syncs.
func (l *Log) EnsureBases(ctx context.Context, store *cache.Store) error {
	return l.publishBases(ctx, store, func(b baseStats) bool { return !b.hasBase })
}

// baseStats is a connector's records since its latest Base.
type baseStats struct {
	hasBase           bool
	baseSize          int64
	deltas, deltaSize int64
}

// publishBases publishes a Base of each served connector whose records
// need says need one.
func (l *Log) publishBases(ctx context.Context, store *cache.Store, need func(baseStats) bool) error {
	conns, err := store.Connectors()
	if err != nil {
		return err
	}
	for _, c := range conns {
		b, err := l.baseStats(ctx, c)
		if err != nil {
			return err
		}
		if !need(b) {
			continue
		}
		l.log.Info("change log: publishing the whole state of a connector", "connector", c, "has_base", b.hasBase, "deltas", b.deltas)
		if err := store.PublishSnapshot(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

func (l *Log) baseStats(ctx context.Context, conn string) (baseStats, error) {
	ctx, cancel := l.bound(ctx)
	defer cancel()
	var b baseStats
	err := l.pool.QueryRow(ctx, `WITH b AS (SELECT max(seq) AS seq FROM changelog WHERE connector = $1 AND base)
		SELECT b.seq IS NOT NULL,
			coalesce((SELECT size FROM changelog WHERE seq = b.seq), 0),
			(SELECT count(*) FROM changelog WHERE connector = $1 AND NOT base AND seq > coalesce(b.seq, 0)),
			(SELECT coalesce(sum(size), 0) FROM changelog WHERE connector = $1 AND NOT base AND seq > coalesce(b.seq, 0))
		FROM b`, conn).Scan(&b.hasBase, &b.baseSize, &b.deltas, &b.deltaSize)
	if err != nil {
		return b, fmt.Errorf("changelog: records of %s: %w", conn, err)
	}
	return b, nil
}

// prune deletes the records older than their connector's latest Base when
// that Base is older than before (the parts follow by cascade), and the
// parts staged by publishes that never ended.
func (l *Log) prune(ctx context.Context, before time.Time) error {
	ctx, cancel := l.bound(ctx)
	defer cancel()
	tag, err := l.pool.Exec(ctx, `DELETE FROM changelog c USING
		(SELECT connector, max(seq) AS seq FROM changelog WHERE base AND at < $1 GROUP BY connector) b
		WHERE c.connector = b.connector AND c.seq < b.seq`, before)
	if err != nil {
		return fmt.Errorf("changelog: prune: %w", err)
	}
	if n := tag.RowsAffected(); n > 0 {
		l.log.Info("change log: pruned superseded records", "records", n)
	}
	// Parts a publisher staged and never moved (it died, or its cleanup
	// failed); a publish in progress stages a part well within the hour.
	if _, err := l.pool.Exec(ctx, `DELETE FROM changelog_stage WHERE at < now() - interval '1 hour'`); err != nil {
		return fmt.Errorf("changelog: prune staged parts: %w", err)
	}
	return nil
}
