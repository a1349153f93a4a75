package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/dirgate/dirgate/agent/wire"
	"github.com/dirgate/dirgate/authn"
	dirsync "github.com/dirgate/dirgate/sync"
)

// serve executes request id and answers it: a check's or a test's result
// on the connection, a sync read's entries and result on its own reply
// stream (and on the connection only when that stream could not carry
// it). Nothing logged here may include the request itself: a check
// carries a password.
func (c *conn) serve(ctx context.Context, id uint64, req *wire.Request) {
	start := time.Now()
	log := c.log.With(slog.Uint64("request", id), slog.String("kind", req.Kind))
	var res *wire.Result
	switch {
	case req.Connector != c.a.cfg.Connector.Name:
		res = &wire.Result{Error: wire.ToWire(fmt.Errorf("this agent serves connector %q, not %q", c.a.cfg.Connector.Name, req.Connector))}
	case req.Kind == wire.KindCheck:
		res = c.check(ctx, req.Check, log)
	case req.Kind == wire.KindTest:
		res = &wire.Result{Report: c.a.exec.test(ctx)}
	default:
		err := c.reply(ctx, id, req)
		if err == nil {
			log.Info("sync read sent", slog.Duration("took", time.Since(start)))
			return
		}
		log.Warn("sync read failed", slog.Any("err", err))
		res = &wire.Result{Error: wire.ToWire(err)}
	}
	if err := c.w.Write(&wire.Message{Type: wire.TypeResult, ID: id, Result: res}); err != nil {
		log.Warn("sending a result", slog.Any("err", err))
	}
}

// check runs a password check. The log line names the account and the
// outcome, never the password.
func (c *conn) check(ctx context.Context, cr *wire.CheckRequest, log *slog.Logger) *wire.Result {
	dn, err := cr.CheckDN()
	switch {
	case err != nil:
		return &wire.Result{Error: wire.ToWire(err)}
	case dn == "":
		return &wire.Result{Error: wire.ToWire(errors.New("the check names no account DN"))}
	}
	host, err := c.a.exec.check(ctx, dn, cr.Password)
	log.Debug("password check", slog.String("dn", dn), slog.String("host", host), slog.String("reason", authn.ReasonOf(err).String()))
	return &wire.Result{Host: host, Error: wire.ToWire(err)}
}

// reply runs a sync read and streams it on /reply/{id}: batches of
// entries or changes as the directory returns them, then the result. An
// error means the stream failed; a failed read is a result on the stream.
func (c *conn) reply(ctx context.Context, id uint64, req *wire.Request) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var known dirsync.Known
	if req.HasKnown {
		var err error
		if known, err = c.known(ctx, id); err != nil {
			return fmt.Errorf("fetching the cached IDs: %w", err)
		}
	}
	pr, pw := io.Pipe()
	hreq, err := http.NewRequestWithContext(c.ctx, http.MethodPost, c.url+"/agent/v1/reply/"+strconv.FormatUint(id, 10), pr)
	if err != nil {
		return err
	}
	type answer struct {
		resp *http.Response
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		resp, err := c.a.current().http.Do(hreq)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = httpError(resp)
			resp.Body.Close()
		}
		if err != nil {
			// Stop reading the directory: nothing can reach the hub.
			cancel(err)
			pr.CloseWithError(err)
		}
		answered <- answer{resp, err}
	}()

	bw := wire.NewBatchWriter(wire.NewWriter(pw), id)
	var res *wire.Result
	switch req.Kind {
	case wire.KindFull:
		bw.SkipKnown(known)
		l, err := c.a.exec.full(ctx, bw.Entry)
		res = &wire.Result{Host: l.Host, Listing: &l, Error: wire.ToWire(err)}
	case wire.KindChanges:
		cs, err := c.a.exec.changes(ctx, req.Cursor, known, bw.Change)
		res = &wire.Result{Host: cs.Host, Changes: &cs, Error: wire.ToWire(err)}
	}
	werr := bw.Finish(res)
	pw.CloseWithError(werr)
	a := <-answered
	if a.err != nil {
		return a.err
	}
	// The body is read to its end so the stream closes cleanly.
	_, _ = io.Copy(io.Discard, io.LimitReader(a.resp.Body, 1<<16))
	a.resp.Body.Close()
	if werr != nil {
		return fmt.Errorf("streaming the reply: %w", werr)
	}
	return nil
}

// known fetches the cached IDs and hashes of request id's read: an
// incremental read derives deletions from them, a full one sends only the
// ID and hash of an entry the hub holds unchanged.
func (c *conn) known(ctx context.Context, id uint64) (dirsync.Known, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url+"/agent/v1/known/"+strconv.FormatUint(id, 10), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.a.current().http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, httpError(resp)
	}
	return wire.ReadKnown(wire.NewReader(resp.Body), id)
}
