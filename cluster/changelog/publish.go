package changelog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/cluster/lease"
)

// publishLock is the transaction-scoped advisory lock under which a seq is
// given out and its record written, so records commit in seq order
// ("dirgate" in ASCII, then 2).
const publishLock int64 = 0x6469726761746502

// ErrBehind means a cache published while lacking records of the log (a
// leader that did not catch up, or whose local commit failed after its
// publish): CatchUp, or Follow, applies them, and its commits then publish
// again.
var ErrBehind = errors.New("changelog: the cache lacks records of the log")

// Fencer runs a write fenced by a term of the lease (see lease.Fence.Do).
// *lease.Lease is one: a write it finds fenced makes its Run end the term
// at once, rather than at the next renewal.
type Fencer interface {
	Do(ctx context.Context, f lease.Fence, fn func(pgx.Tx) error) error
}

// poolFencer checks fences on the log's own pool.
type poolFencer struct{ db lease.DB }

func (p poolFencer) Do(ctx context.Context, f lease.Fence, fn func(pgx.Tx) error) error {
	return f.Do(ctx, p.db, fn)
}

// Publisher returns the publisher for the cache of the leader that holds
// f: every publish checks the fence first, so an ex-leader's cache commit
// fails with lease.ErrFenced and changes nothing.
func (l *Log) Publisher(f lease.Fence) cache.Publisher {
	return l.FencedPublisher(poolFencer{l.pool}, f)
}

// FencedPublisher is Publisher with the fence checked through fr: pass the
// lease (on the log's database) so that a fenced publish ends its term.
func (l *Log) FencedPublisher(fr Fencer, f lease.Fence) cache.Publisher {
	return &publisher{l: l, fr: fr, f: f}
}

type publisher struct {
	l  *Log
	fr Fencer
	f  lease.Fence
}

// Publish writes r in one transaction with the cursor and run it carries
// (into pgstate's sync_cursor and sync_run, the shared sync state) and
// notifies the followers. It fails with ErrBehind when r does not follow
// the head directly or was made against another log, and sets r.Log to
// the log's identity when it succeeds.
//
// The record is compressed as it is encoded (a Base's entries streamed
// from the cache): the parts it fills are staged one at a time before the
// transaction, which moves them and adds the last. Each staging call is
// bounded by Timeout, the transaction by Timeout and a share of it for
// every staged part it moves.
func (p *publisher) Publish(ctx context.Context, r *cache.Record) (uint64, error) {
	st := p.l.newStage(ctx)
	defer st.discard()
	if err := st.write(r); err != nil {
		return 0, fmt.Errorf("changelog: publish %s: %w", r.Connector, err)
	}
	ctx, cancel := context.WithTimeout(ctx, p.l.opt.Timeout+time.Duration(st.staged)*p.l.opt.Timeout/8)
	defer cancel()
	var seq int64
	var id string
	err := p.fr.Do(ctx, p.f, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, publishLock); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `UPDATE changelog_head SET seq = seq + 1, at = $1 WHERE id = 1 RETURNING seq, log_id`, r.Time).Scan(&seq, &id); err != nil {
			return err
		}
		if r.Log != "" && r.Log != id {
			return fmt.Errorf("%w: it follows the change log %s, this is %s", ErrBehind, r.Log, id)
		}
		if uint64(seq) != r.After+1 {
			return fmt.Errorf("%w: it is at %d, the log at %d", ErrBehind, r.After, seq-1)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO changelog (seq, connector, base, epoch, at, parts, size) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			seq, r.Connector, r.Base, p.f.Epoch, r.Time, st.staged+1, st.size); err != nil {
			return err
		}
		if err := st.move(ctx, tx, seq); err != nil {
			return err
		}
		if err := writeSyncState(ctx, tx, r); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, p.l.channel, strconv.FormatInt(seq, 10))
		return err
	})
	if err != nil {
		if errors.Is(err, ErrBehind) {
			p.l.behind()
		}
		return 0, fmt.Errorf("changelog: publish %s: %w", r.Connector, err)
	}
	st.moved = true
	r.Log = id
	p.l.checked(true, time.Now())
	return uint64(seq), nil
}

// writeSyncState stores the record's cursor and run in pgstate's tables,
// where the shared sync state lives, when they exist.
func writeSyncState(ctx context.Context, tx pgx.Tx, r *cache.Record) error {
	if r.Cursor == nil && r.Run == nil {
		return nil
	}
	ok, err := hasSyncTables(ctx, tx)
	if err != nil || !ok {
		return err
	}
	if r.Cursor != nil {
		if _, err := tx.Exec(ctx, `INSERT INTO sync_cursor (connector, cursor) VALUES ($1, $2)
			ON CONFLICT (connector) DO UPDATE SET cursor = EXCLUDED.cursor`, r.Connector, r.Cursor); err != nil {
			return err
		}
	}
	if r.Run != nil {
		run, err := json.Marshal(r.Run)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO sync_run (connector, start, run) VALUES ($1, $2, $3)
			ON CONFLICT (connector, start) DO UPDATE SET run = EXCLUDED.run`, r.Run.Connector, r.Run.Start, run); err != nil {
			return err
		}
	}
	return nil
}

// errGone means a record listed a moment ago was pruned since; the
// follower plans again.
var errGone = errors.New("changelog: record pruned while being read")
