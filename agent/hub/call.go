package hub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dirgate/dirgate/agent/wire"
	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/metrics"
	dirsync "github.com/dirgate/dirgate/sync"
)

// Call is a request sent to one agent. Exactly one of Wait (checks, tests)
// and Stream (sync reads) must be called on it.
type Call struct {
	ID        uint64
	Connector string
	Agent     string

	h     *Hub
	c     *conn
	kind  string
	sent  time.Time
	known dirsync.Known

	result   chan *wire.Result // a result frame on the connection
	replies  chan *replyStream // the agent's reply stream
	lost     chan struct{}     // the connection ended
	fin      chan struct{}     // Wait or Stream returned
	streamed atomic.Bool       // a reply stream was accepted
	once     sync.Once         // closes lost
	finOnce  sync.Once         // closes fin
	cause    error             // why the connection ended, once lost is closed
}

type replyStream struct {
	rd   *wire.Reader
	body *watchedBody
	done chan error // ReadReply's error, once it returned
}

// watchedBody is a reply stream's body that tells how long a read of it
// has been waiting for bytes.
type watchedBody struct {
	io.ReadCloser
	waiting atomic.Int64 // when the pending Read started (UnixNano), 0 when none is
}

func (b *watchedBody) Read(p []byte) (int, error) {
	b.waiting.Store(time.Now().UnixNano())
	defer b.waiting.Store(0)
	return b.ReadCloser.Read(p)
}

// idle returns a channel closed once a Read has waited longer than d
// (time the consumer spends elsewhere does not count), or never if stop
// is closed first.
func (b *watchedBody) idle(d time.Duration, stop <-chan struct{}) <-chan struct{} {
	out := make(chan struct{})
	go func() {
		t := time.NewTicker(max(d/8, 5*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if w := b.waiting.Load(); w != 0 && time.Since(time.Unix(0, w)) > d {
					close(out)
					return
				}
			}
		}
	}()
	return out
}

// Do sends req to one connected agent of connector: the one with the
// fewest requests in flight. The request is never sent to a second agent:
// if that one is lost, the call fails with ErrAgentLost and the caller
// decides. The context's deadline travels with the request; when it
// passes, Wait and Stream tell the agent to cancel and fail with
// ErrDeadline. With no agent connected it fails with ErrNoAgent.
func (h *Hub) Do(ctx context.Context, connector string, req *wire.Request) (*Call, error) {
	return h.DoWithKnown(ctx, connector, req, nil)
}

// DoWithKnown is Do for a sync read that takes the cached IDs and hashes
// (an incremental read derives deletions from them, a full one skips the
// unchanged entries): the agent fetches known from the known stream before
// it reads the directory.
func (h *Hub) DoWithKnown(ctx context.Context, connector string, req *wire.Request, known dirsync.Known) (*Call, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r := *req
	r.Connector = connector
	r.HasKnown = known != nil
	if dl, ok := ctx.Deadline(); ok {
		r.Deadline = dl
		r.Timeout = max(time.Until(dl), time.Millisecond)
	}
	c := h.pick(connector, r.Kind)
	if c == nil {
		return nil, &UnreachableError{Connector: connector, Err: ErrNoAgent}
	}
	call := &Call{ID: h.nextID.Add(1), Connector: connector, Agent: c.agent.ID, h: h, c: c, kind: r.Kind, sent: time.Now(),
		known: known, result: make(chan *wire.Result, 1), replies: make(chan *replyStream), lost: make(chan struct{}), fin: make(chan struct{})}
	h.mu.Lock()
	h.calls[call.ID] = call
	h.mu.Unlock()
	c.mu.Lock()
	c.inflight[call.ID] = call
	n := len(c.inflight)
	c.mu.Unlock()
	metrics.AgentInFlight.WithLabelValues(connector, c.agent.ID).Set(float64(n))
	select {
	case <-c.done: // cut after pick: failCalls may have run before the call was added
		call.lose(c.cause)
	default:
	}
	if err := c.send(&wire.Message{Type: wire.TypeRequest, ID: call.ID, Request: &r}); err != nil {
		call.finish()
		return nil, call.unreachable(fmt.Errorf("%w: %v", ErrAgentLost, err))
	}
	return call, nil
}

// pick returns the connected agent of connector for a request of kind,
// nil when none. Sync reads go to the connector's reader (see reader);
// other requests to the agent with the fewest requests in flight, taking
// turns among equally loaded ones.
func (h *Hub) pick(connector, kind string) *conn {
	h.mu.Lock()
	cs := append([]*conn(nil), h.conns[connector]...)
	if kind == wire.KindFull || kind == wire.KindChanges {
		defer h.mu.Unlock()
		return h.reader(connector, cs)
	}
	h.mu.Unlock()
	var best []*conn
	low := -1
	for _, c := range cs {
		switch n := c.load(); {
		case low < 0 || n < low:
			best, low = []*conn{c}, n
		case n == low:
			best = append(best, c)
		}
	}
	if len(best) == 0 {
		return nil
	}
	return best[h.rr.Add(1)%uint64(len(best))]
}

// reader returns the agent of cs that serves connector's sync reads: the
// one that served the last while it stays connected, else the longest
// connected. An incremental cursor is tied to the directory host that gave
// it, and agents of one connector may prefer different hosts: reads that
// alternated between agents fell back to full reads every time. h.mu must
// be held.
func (h *Hub) reader(connector string, cs []*conn) *conn {
	var oldest *conn
	for _, c := range cs {
		if c.agent.ID == h.readers[connector] {
			return c
		}
		if oldest == nil || c.since.Before(oldest.since) {
			oldest = c
		}
	}
	if oldest != nil {
		h.readers[connector] = oldest.agent.ID
	}
	return oldest
}

func (call *Call) resolve(res *wire.Result) {
	select {
	case call.result <- res:
	default: // a second result for one request: the first counts
	}
}

func (call *Call) lose(cause error) {
	call.once.Do(func() {
		call.cause = cause
		close(call.lost)
	})
}

// finish forgets the call.
func (call *Call) finish() {
	call.finOnce.Do(func() {
		close(call.fin)
		call.h.mu.Lock()
		delete(call.h.calls, call.ID)
		call.h.mu.Unlock()
		c := call.c
		c.mu.Lock()
		delete(c.inflight, call.ID)
		n := len(c.inflight)
		c.mu.Unlock()
		metrics.AgentInFlight.WithLabelValues(call.Connector, call.Agent).Set(float64(n))
	})
}

func (call *Call) unreachable(err error) *UnreachableError {
	return &UnreachableError{Connector: call.Connector, Agent: call.Agent, Err: err}
}

// failed is the error of a call that got no answer: its connection was
// lost, or ctx ended (then the agent is told to cancel).
func (call *Call) failed(ctx context.Context) error {
	select {
	case <-call.lost:
		return call.unreachable(fmt.Errorf("%w: %v", ErrAgentLost, call.cause))
	default:
	}
	if err := call.c.send(&wire.Message{Type: wire.TypeCancel, ID: call.ID}); err != nil {
		call.h.log.Debug("agent hub: sending a cancel", slog.Uint64("request", call.ID), slog.Any("err", err))
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return call.unreachable(ErrDeadline)
	}
	return ctx.Err()
}

// stalled tells the agent to cancel a sync read whose reply stream did
// not start or stalled, and returns the read's error.
func (call *Call) stalled(why string) error {
	if err := call.c.send(&wire.Message{Type: wire.TypeCancel, ID: call.ID}); err != nil {
		call.h.log.Debug("agent hub: sending a cancel", slog.Uint64("request", call.ID), slog.Any("err", err))
	}
	call.h.log.Warn("agent hub: a sync read stalled; cancelled", slog.String("connector", call.Connector),
		slog.String("agent", call.Agent), slog.Uint64("request", call.ID), slog.String("why", why))
	return call.unreachable(fmt.Errorf("%w: %s", ErrStalled, why))
}

// answer returns a result and the typed error it carries.
func (call *Call) answer(res *wire.Result) (*wire.Result, error) {
	if res.Error != nil {
		return res, res.Error.Err(call.Connector)
	}
	return res, nil
}

// Wait returns the result of a check or a test. A failure the agent
// reports is typed (an *authn.Error for a refused check; see
// wire.WireError.Err); no answer is an *UnreachableError.
func (call *Call) Wait(ctx context.Context) (*wire.Result, error) {
	defer call.finish()
	select {
	case res := <-call.result:
		call.countCheck(true)
		return call.answer(res)
	case <-call.lost:
	case <-ctx.Done():
	}
	call.countCheck(false)
	return nil, call.failed(ctx)
}

func (call *Call) countCheck(answered bool) {
	if call.kind != wire.KindCheck {
		return
	}
	result := "unreachable"
	if answered {
		result = "answered"
		took := time.Since(call.sent)
		metrics.AgentCheckSeconds.WithLabelValues(call.Connector, call.Agent).Observe(took.Seconds())
		call.c.mu.Lock()
		call.c.checks++
		call.c.latency.add(took)
		call.c.mu.Unlock()
	}
	metrics.AgentChecks.WithLabelValues(call.Connector, call.Agent, result).Inc()
}

// Stream reads the reply of a sync read: entries of a full read go to
// entry, changes of an incremental one to change, as they arrive; then it
// returns the final result. An error of entry or change is returned as is
// and stops the stream; a stream cut short is ErrAgentLost, and nothing
// read from it may be used.
//
// The stream must start within ReplyStart and its bytes must not stop for
// ReplyIdle while the hub waits for them, else the agent is told to cancel
// and the read fails with ErrStalled.
func (call *Call) Stream(ctx context.Context, entry func(*cache.Entry) error, change func(dirsync.Change) error) (*wire.Result, error) {
	defer call.finish()
	start := time.NewTimer(call.h.cfg.ReplyStart)
	defer start.Stop()
	select {
	case res := <-call.result: // failed before it could stream
		return call.answer(res)
	case <-call.lost:
		return nil, call.failed(ctx)
	case <-ctx.Done():
		return nil, call.failed(ctx)
	case <-start.C:
		return nil, call.stalled(fmt.Sprintf("no reply stream within %s", call.h.cfg.ReplyStart))
	case rs := <-call.replies:
		stop := make(chan struct{})
		var idle atomic.Bool
		go func() {
			select {
			case <-ctx.Done():
			case <-call.lost:
			case <-rs.body.idle(call.h.cfg.ReplyIdle, stop):
				idle.Store(true)
			case <-stop:
				return
			}
			rs.body.Close() // unblocks the read
		}()
		var emitErr error
		wrap := func(f func() error) error {
			if err := f(); err != nil {
				emitErr = err
			}
			return emitErr
		}
		var onEntry func(*cache.Entry) error
		if entry != nil {
			onEntry = func(e *cache.Entry) error { return wrap(func() error { return entry(e) }) }
		}
		var onChange func(dirsync.Change) error
		if change != nil {
			onChange = func(c dirsync.Change) error { return wrap(func() error { return change(c) }) }
		}
		res, err := wire.ReadReply(rs.rd, call.ID, call.Connector, onEntry, onChange)
		close(stop)
		rs.done <- err
		switch {
		case emitErr != nil:
			return nil, emitErr
		case err == nil:
			return call.answer(res)
		case ctx.Err() != nil:
			return nil, call.failed(ctx)
		case idle.Load():
			return nil, call.stalled(fmt.Sprintf("no data for %s", call.h.cfg.ReplyIdle))
		case errors.Is(err, wire.ErrMalformed):
			return nil, fmt.Errorf("agent %s: reply %d: %w", call.Agent, call.ID, err)
		}
		return nil, call.unreachable(fmt.Errorf("%w: reply stream: %v", ErrAgentLost, err))
	}
}

// callFor returns the call a reply or known request names, if it was sent
// to agent, or answers the request with an error and returns nil.
func (h *Hub) callFor(w http.ResponseWriter, r *http.Request, agent string) *Call {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "bad request id")
		return nil
	}
	h.mu.Lock()
	call := h.calls[id]
	h.mu.Unlock()
	if call == nil || call.Agent != agent {
		// The same answer for both: an agent learns nothing of the
		// requests sent to others.
		h.log.Warn("agent hub: a stream for a request not sent to this agent", slog.String("agent", agent), slog.Uint64("request", id))
		writeError(w, http.StatusForbidden, CodeForbidden, fmt.Sprintf("request %d is not in flight on this agent", id))
		return nil
	}
	return call
}

// reply receives the stream of a sync read and hands it to the Stream
// waiting for it; it answers when the stream was read.
func (h *Hub) reply(w http.ResponseWriter, r *http.Request) {
	a, ok := h.authenticate(w, r)
	if !ok {
		return
	}
	call := h.callFor(w, r, a.ID)
	if call == nil {
		return
	}
	if call.kind != wire.KindFull && call.kind != wire.KindChanges || !call.streamed.CompareAndSwap(false, true) {
		writeError(w, http.StatusConflict, CodeBadRequest, "this request takes no reply stream, or has one")
		return
	}
	body := &watchedBody{ReadCloser: r.Body}
	rs := &replyStream{rd: wire.NewReader(body), body: body, done: make(chan error, 1)}
	// A stream the agent cut at once (its request context is done) is
	// still handed over: reading it fails the read as the agent lost,
	// where dropping it would leave the read waiting for a stream that
	// does not come.
	select {
	case call.replies <- rs:
	case <-call.fin:
		writeError(w, http.StatusGone, CodeBadRequest, "the request ended")
		return
	}
	if err := <-rs.done; err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	w.WriteHeader(http.StatusOK)
}

// known streams the cached IDs and hashes of a sync read to the agent it
// was sent to.
func (h *Hub) known(w http.ResponseWriter, r *http.Request) {
	a, ok := h.authenticate(w, r)
	if !ok {
		return
	}
	call := h.callFor(w, r, a.ID)
	if call == nil {
		return
	}
	if call.known == nil {
		writeError(w, http.StatusNotFound, CodeBadRequest, "this request has no known set")
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	bw := wire.NewBatchWriter(wire.NewWriter(w), call.ID)
	for id, hash := range call.known {
		if err := bw.Known(id, hash); err != nil {
			h.log.Warn("agent hub: streaming the known set", slog.String("agent", a.ID), slog.Any("err", err))
			return
		}
	}
	if err := bw.Finish(&wire.Result{}); err != nil {
		h.log.Warn("agent hub: streaming the known set", slog.String("agent", a.ID), slog.Any("err", err))
	}
}
