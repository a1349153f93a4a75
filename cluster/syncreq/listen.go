package syncreq

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// listener waits for notifications on one channel over a connection taken
// out of the pool (a LISTENing connection must not serve other queries),
// reconnecting after errors. Notifications only shorten waits: callers
// check the table after every wait, so a lost one costs at most a poll.
type listener struct {
	pool    *pgxpool.Pool
	channel string
	log     *slog.Logger
	conn    *pgx.Conn
}

// wait returns after a notification, after d, or when ctx ends; false
// only in the last case.
func (l *listener) wait(ctx context.Context, d time.Duration) bool {
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if l.conn == nil {
		if err := l.connect(wctx); err != nil {
			if ctx.Err() == nil {
				l.log.Debug("syncreq: listen", "channel", l.channel, "err", err)
			}
			<-wctx.Done()
			return ctx.Err() == nil
		}
	}
	_, err := l.conn.WaitForNotification(wctx)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		l.log.Debug("syncreq: wait for a notification", "channel", l.channel, "err", err)
		l.close()
		<-wctx.Done()
	} else if err != nil && l.conn.IsClosed() {
		// A wait cut short by its context closes the connection.
		l.close()
	}
	return ctx.Err() == nil
}

func (l *listener) connect(ctx context.Context) error {
	c, err := l.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	conn := c.Hijack()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{l.channel}.Sanitize()); err != nil {
		_ = conn.Close(context.Background())
		return err
	}
	l.conn = conn
	return nil
}

// close releases the connection.
func (l *listener) close() {
	if l.conn != nil {
		_ = l.conn.Close(context.Background())
		l.conn = nil
	}
}
