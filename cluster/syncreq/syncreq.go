// Package syncreq carries "Synchronize now" from any replica to the leader
// through a PostgreSQL queue: only the leader syncs, but an admin may ask
// any replica. The asking replica inserts a request (and notifies the
// leader), the leader claims it under its lease epoch, runs it, and stores
// the Result and error, which the asker returns as if it had run the sync
// itself. A request claimed by a leader that dies before storing its answer
// is claimed again by the next leader; the dead leader's answer, should it
// come back, is refused by the fence.
package syncreq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dirgate/dirgate/cluster/lease"
	dirsync "github.com/dirgate/dirgate/sync"
)

// Notification channels: a new request, and an answered one.
const (
	channelNew  = "dirgate_sync_request"
	channelDone = "dirgate_sync_request_done"
)

// Config tunes a Queue.
type Config struct {
	// Requester names this replica in the requests it makes.
	Requester string
	// Poll is how often the leader looks for requests it was not notified
	// of, and how often a waiting requester checks for its answer between
	// notifications. Default 2s.
	Poll time.Duration
	// Keep is how long answered requests stay in the table (a requester
	// that went away never deletes its answer). Default 1h.
	Keep time.Duration
	// Logger receives claim and answer failures. Default slog.Default().
	Logger *slog.Logger
}

// Queue is the sync_request table of one database.
type Queue struct {
	pool *pgxpool.Pool
	cfg  Config
	log  *slog.Logger
}

// New returns the queue on pool; the table must exist (Migrate or
// cluster/schema).
func New(pool *pgxpool.Pool, cfg Config) *Queue {
	if cfg.Poll <= 0 {
		cfg.Poll = 2 * time.Second
	}
	if cfg.Keep <= 0 {
		cfg.Keep = time.Hour
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Queue{pool: pool, cfg: cfg, log: log}
}

// RunFunc runs one sync on the leader.
type RunFunc func(ctx context.Context, connector string, o dirsync.Options) (*dirsync.Result, error)

// Do asks the leader to sync connector with o (o.Progress is not carried)
// and waits for its answer: the leader's Result and error, with the
// error's type and sentinels kept. When ctx ends before a leader claimed
// the request, the request is withdrawn; a claimed one runs to its end.
func (q *Queue) Do(ctx context.Context, connector string, o dirsync.Options) (*dirsync.Result, error) {
	opts, err := encodeOptions(o)
	if err != nil {
		return nil, fmt.Errorf("syncreq: encode options: %w", err)
	}
	var id int64
	err = pgx.BeginFunc(ctx, q.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO sync_request (connector, options, requester) VALUES ($1, $2, $3) RETURNING id`,
			connector, opts, q.cfg.Requester).Scan(&id); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, channelNew, strconv.FormatInt(id, 10))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sync %s: ask the leader: %w", connector, err)
	}
	l := &listener{pool: q.pool, channel: channelDone, log: q.log}
	defer l.close()
	for {
		res, errb, done, err := q.answer(ctx, id)
		switch {
		case err != nil && ctx.Err() == nil:
			// The database may be back before the caller gives up.
			q.log.Warn("syncreq: read the leader's answer", "request", id, "err", err)
		case done:
			return res, decodeError(errb)
		}
		if !l.wait(ctx, q.cfg.Poll) {
			q.withdraw(id)
			return nil, fmt.Errorf("sync %s: waiting for the leader: %w", connector, ctx.Err())
		}
	}
}

// answer reads request id; done once the leader answered, and then the row
// is deleted.
func (q *Queue) answer(ctx context.Context, id int64) (res *dirsync.Result, errb []byte, done bool, err error) {
	var resb []byte
	err = q.pool.QueryRow(ctx, `SELECT done IS NOT NULL, result, error FROM sync_request WHERE id = $1`, id).Scan(&done, &resb, &errb)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, false, fmt.Errorf("request %d is gone", id)
	}
	if err != nil || !done {
		return nil, nil, false, err
	}
	if resb != nil {
		res = new(dirsync.Result)
		if err := json.Unmarshal(resb, res); err != nil {
			return nil, nil, false, fmt.Errorf("decode the leader's result: %w", err)
		}
	}
	if _, err := q.pool.Exec(ctx, `DELETE FROM sync_request WHERE id = $1`, id); err != nil {
		q.log.Warn("syncreq: delete an answered request (it expires later)", "request", id, "err", err)
	}
	return res, errb, true, nil
}

// withdraw deletes request id unless a leader claimed it already.
func (q *Queue) withdraw(id int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := q.pool.Exec(ctx, `DELETE FROM sync_request WHERE id = $1 AND epoch IS NULL`, id); err != nil {
		q.log.Warn("syncreq: withdraw a request", "request", id, "err", err)
	}
}

// claimSQL claims the oldest request that is unanswered and unclaimed, or
// claimed by an earlier term: epochs only grow, so that term's leader is
// gone (or fenced, and its answer will be refused).
const claimSQL = `UPDATE sync_request SET epoch = $1, holder = $2, claimed = clock_timestamp()
WHERE id = (SELECT id FROM sync_request WHERE done IS NULL AND (epoch IS NULL OR epoch < $1)
	ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING id, connector, options`

// Serve claims and runs requests as leader term f until ctx (the term's
// context) ends, then waits for the runs it started. Runs get ctx: a run
// cut short by the end of the term stores no answer, and the next leader
// runs the request again.
func (q *Queue) Serve(ctx context.Context, f lease.Fence, run RunFunc) {
	var wg sync.WaitGroup
	defer wg.Wait()
	l := &listener{pool: q.pool, channel: channelNew, log: q.log}
	defer l.close()
	lastPrune := time.Time{}
	for {
		for {
			id, conn, o, ok := q.claim(ctx, f)
			if !ok {
				break
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := run(ctx, conn, o)
				if ctx.Err() != nil {
					q.log.Info("syncreq: term ended during the run; the next leader runs the request again", "request", id, "connector", conn)
					return
				}
				q.store(ctx, f, id, res, err)
			}()
		}
		if time.Since(lastPrune) > q.cfg.Keep/4 {
			q.prune(ctx)
			lastPrune = time.Now()
		}
		if !l.wait(ctx, q.cfg.Poll) {
			return
		}
	}
}

// claim takes one request for term f; ok is false when there is none or
// the claim failed.
func (q *Queue) claim(ctx context.Context, f lease.Fence) (id int64, conn string, o dirsync.Options, ok bool) {
	var opts []byte
	err := f.Do(ctx, q.pool, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, claimSQL, f.Epoch, f.Holder).Scan(&id, &conn, &opts)
	})
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return 0, "", o, false
	case err != nil:
		if ctx.Err() == nil {
			q.log.Warn("syncreq: claim a request", "err", err)
		}
		return 0, "", o, false
	}
	if o, err = decodeOptions(opts); err != nil {
		// Answer it, or it would be claimed again forever.
		q.store(ctx, f, id, nil, err)
		return q.claim(ctx, f)
	}
	return id, conn, o, true
}

// store writes the answer of request id, if term f still leads, and
// notifies the waiting requesters.
func (q *Queue) store(ctx context.Context, f lease.Fence, id int64, res *dirsync.Result, runErr error) {
	var resb []byte
	var err error
	if res != nil {
		if resb, err = json.Marshal(res); err != nil {
			runErr = errors.Join(runErr, fmt.Errorf("syncreq: encode result: %w", err))
			resb = nil
		}
	}
	errb, err := encodeError(runErr)
	if err != nil {
		q.log.Error("syncreq: encode error", "request", id, "err", err)
		return
	}
	err = f.Do(ctx, q.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE sync_request SET done = clock_timestamp(), result = $3, error = $4 WHERE id = $1 AND epoch = $2`,
			id, f.Epoch, resb, errb)
		if err != nil || tag.RowsAffected() == 0 {
			return err // gone: withdrawn or pruned
		}
		_, err = tx.Exec(ctx, `SELECT pg_notify($1, $2)`, channelDone, strconv.FormatInt(id, 10))
		return err
	})
	if err != nil {
		q.log.Warn("syncreq: store an answer", "request", id, "err", err)
	}
}

// prune deletes answers nobody collected and requests nobody claimed for
// long (their requester gave up long ago).
func (q *Queue) prune(ctx context.Context) {
	ms := q.cfg.Keep.Milliseconds()
	if _, err := q.pool.Exec(ctx, `DELETE FROM sync_request WHERE (done IS NOT NULL AND done < clock_timestamp() - $1 * interval '1 millisecond')
		OR created < clock_timestamp() - $2 * interval '1 millisecond'`, ms, 24*ms); err != nil && ctx.Err() == nil {
		q.log.Warn("syncreq: prune old requests", "err", err)
	}
}
