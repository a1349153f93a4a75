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
	conns, err := store.Connectors()
	if err != nil {
		return err
	}
	for _, c := range conns {
		var baseSize, deltas, deltaSize int64
		var hasBase bool
		err := l.pool.QueryRow(ctx, `WITH b AS (SELECT max(seq) AS seq FROM changelog WHERE connector = $1 AND base)
			SELECT b.seq IS NOT NULL,
				coalesce((SELECT size FROM changelog WHERE seq = b.seq), 0),
				(SELECT count(*) FROM changelog WHERE connector = $1 AND NOT base AND seq > coalesce(b.seq, 0)),
				(SELECT coalesce(sum(size), 0) FROM changelog WHERE connector = $1 AND NOT base AND seq > coalesce(b.seq, 0))
			FROM b`, c).Scan(&hasBase, &baseSize, &deltas, &deltaSize)
		if err != nil {
			return fmt.Errorf("changelog: compaction of %s: %w", c, err)
		}
		if hasBase && deltas <= int64(l.opt.CompactDeltas) && (deltas == 0 || deltaSize <= baseSize) {
			continue
		}
		l.log.Info("change log: publishing the whole state of a connector", "connector", c, "has_base", hasBase, "deltas", deltas)
		if err := store.PublishSnapshot(ctx, c); err != nil {
			return err
		}
	}
	return l.prune(ctx, time.Now().Add(-l.opt.PruneGrace))
}

// prune deletes the records older than their connector's latest Base when
// that Base is older than before (the parts follow by cascade).
func (l *Log) prune(ctx context.Context, before time.Time) error {
	tag, err := l.pool.Exec(ctx, `DELETE FROM changelog c USING
		(SELECT connector, max(seq) AS seq FROM changelog WHERE base AND at < $1 GROUP BY connector) b
		WHERE c.connector = b.connector AND c.seq < b.seq`, before)
	if err != nil {
		return fmt.Errorf("changelog: prune: %w", err)
	}
	if n := tag.RowsAffected(); n > 0 {
		l.log.Info("change log: pruned superseded records", "records", n)
	}
	return nil
}
