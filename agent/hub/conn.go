package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/dirgate/dirgate/agent/pki"
	"github.com/dirgate/dirgate/agent/wire"
	"github.com/dirgate/dirgate/metrics"
	"github.com/dirgate/dirgate/state"
)

// conn is one agent's connection to this replica.
type conn struct {
	h     *Hub
	agent state.Agent
	// presented is the fingerprint of the certificate the connection was
	// made with: the agent's current one, or the one its last renewal
	// replaced.
	presented string
	// certExpires is that certificate's expiry: the connection ends then.
	certExpires time.Time
	hello       wire.Hello
	address     string
	since       time.Time
	log         *slog.Logger

	// wmu guards closed: no write after the handler returns. Senders
	// share it (w gathers their frames into common writes); the welcome
	// and the close take it alone.
	wmu    sync.RWMutex
	w      *wire.Writer
	closed bool

	done    chan struct{} // closed by cut
	cutOnce sync.Once
	cause   error

	mu       sync.Mutex
	inflight map[uint64]*Call
	lastBeat time.Time
	rtt      time.Duration
	checks   int     // answered checks, for the rate
	latency  ewma    // of answered checks
	rate     float64 // checks per second over the last heartbeat interval
	rateMark struct {
		at     time.Time
		checks int
	}
}

// deadlineWriter bounds each write to the agent, so that an agent that
// stops reading cannot hold a writer (and the connection's teardown)
// forever.
type deadlineWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
	d  time.Duration
}

func (d deadlineWriter) Write(p []byte) (int, error) {
	_ = d.rc.SetWriteDeadline(time.Now().Add(d.d))
	return d.w.Write(p)
}

func (d deadlineWriter) Flush() error { return d.rc.Flush() }

// send writes m to the agent, unless the connection is closed.
func (c *conn) send(m *wire.Message) error {
	c.wmu.RLock()
	defer c.wmu.RUnlock()
	if c.closed {
		return ErrAgentLost
	}
	return c.w.Write(m)
}

// cut ends the connection: the handler returns, which ends the stream,
// and the calls waiting on it fail.
func (c *conn) cut(cause error) {
	c.cutOnce.Do(func() {
		c.cause = cause
		close(c.done)
	})
}

// connect serves an agent's connection: the agent's hello first (its ID
// and connector must be those it enrolled with), then the welcome, then
// frames both ways until either side ends it or it is cut.
func (h *Hub) connect(w http.ResponseWriter, r *http.Request) {
	a, ok := h.authenticate(w, r)
	if !ok {
		return
	}
	release, ok := h.hellos.admit(a.ID, r.RemoteAddr)
	if !ok {
		h.log.Warn("agent refused: too many connections waiting for their hello", slog.String("agent", a.ID),
			slog.String("address", r.RemoteAddr))
		writeError(w, http.StatusTooManyRequests, CodeBusy, "too many connections of this agent or address are waiting for their hello")
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.EnableFullDuplex() // HTTP/1.1 needs it; HTTP/2 is full duplex already
	rd := wire.NewReader(r.Body)
	_ = rc.SetReadDeadline(time.Now().Add(h.cfg.HelloTimeout))
	m, err := rd.ReadLimit(maxHello)
	release()
	switch {
	case err != nil:
		writeError(w, http.StatusBadRequest, CodeBadRequest, "the first frame must be hello: "+err.Error())
		return
	case m.Type != wire.TypeHello:
		writeError(w, http.StatusBadRequest, CodeBadRequest, "the first frame must be hello, not "+m.Type)
		return
	case m.Hello.AgentID != a.ID || m.Hello.Connector != a.Connector:
		h.log.Warn("agent refused", slog.String("agent", a.ID), slog.String("address", r.RemoteAddr),
			slog.String("said_agent", m.Hello.AgentID), slog.String("said_connector", m.Hello.Connector))
		writeError(w, http.StatusForbidden, CodeForbidden, fmt.Sprintf("this certificate is agent %s of connector %s", a.ID, a.Connector))
		return
	}
	_ = rc.SetReadDeadline(time.Time{})
	now := h.cfg.Now()
	peer := r.TLS.PeerCertificates[0]
	c := &conn{h: h, agent: a, presented: pki.Fingerprint(peer), certExpires: peer.NotAfter, hello: *m.Hello, address: r.RemoteAddr, since: now, lastBeat: now,
		w:    wire.NewWriter(deadlineWriter{w: w, rc: rc, d: 3 * h.cfg.Heartbeat}),
		done: make(chan struct{}), inflight: map[uint64]*Call{},
		log: h.log.With(slog.String("agent", a.ID), slog.String("connector", a.Connector))}
	c.rateMark.at = now
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	// Registered before the welcome is written, under the write lock: once
	// the agent knows it is connected, the hub can send it work, and a
	// request picked meanwhile waits for the lock and follows the welcome.
	c.wmu.Lock()
	h.register(c)
	err = c.w.Write(&wire.Message{Type: wire.TypeWelcome, Welcome: &wire.Welcome{Replica: h.cfg.Replica,
		Heartbeat: h.cfg.Heartbeat, Peers: h.cfg.Peers()}})
	if err != nil {
		c.closed = true
	}
	c.wmu.Unlock()
	if err != nil {
		c.log.Warn("agent connection: welcome", slog.Any("err", err))
		h.unregister(c)
		c.cut(err)
		c.failCalls()
		return
	}
	_, _ = h.Scope(a.Connector) // an agent whose scope differs from its peers' is logged at once
	c.log.Info("agent connected", slog.String("address", c.address), slog.String("version", c.hello.Version),
		slog.String("hostname", c.hello.Hostname))

	readErr := make(chan error, 1)
	go func() { readErr <- c.readLoop(rd) }()
	err = c.beat(r.Context(), readErr)

	c.wmu.Lock()
	c.closed = true
	c.wmu.Unlock()
	h.unregister(c)
	c.cut(err)
	c.failCalls()
	_ = r.Body.Close() // ends the read loop
	c.log.Info("agent disconnected", slog.Any("why", err))
}

// beat pings the agent every heartbeat until the connection ends, and
// returns why it ended.
func (c *conn) beat(ctx context.Context, readErr <-chan error) error {
	hb := c.h.cfg.Heartbeat
	t := time.NewTicker(hb)
	defer t.Stop()
	var seq uint64
	for {
		select {
		case err := <-readErr:
			return fmt.Errorf("reading from the agent: %w", err)
		case <-c.done:
			return c.cause
		case <-ctx.Done():
			return errors.New("the agent closed the connection")
		case <-t.C:
			now := c.h.cfg.Now()
			c.mu.Lock()
			silent := now.Sub(c.lastBeat)
			c.rate = float64(c.checks-c.rateMark.checks) / max(now.Sub(c.rateMark.at).Seconds(), 1e-3)
			c.rateMark.at, c.rateMark.checks = now, c.checks
			c.mu.Unlock()
			if silent > 3*hb {
				return fmt.Errorf("no heartbeat for %s", silent.Round(time.Second))
			}
			seq++
			if err := c.send(&wire.Message{Type: wire.TypePing, ID: seq, Sent: now, Peers: c.h.cfg.Peers()}); err != nil {
				return fmt.Errorf("ping: %w", err)
			}
		}
	}
}

// readLoop handles the agent's frames until the stream ends.
func (c *conn) readLoop(rd *wire.Reader) error {
	for {
		m, err := rd.Read()
		if err != nil {
			return err
		}
		now := c.h.cfg.Now()
		c.mu.Lock()
		c.lastBeat = now // any frame shows the agent alive
		if m.Type == wire.TypePong && !m.Sent.IsZero() {
			c.rtt = now.Sub(m.Sent)
			metrics.AgentRTT.WithLabelValues(c.agent.Connector, c.agent.ID).Set(c.rtt.Seconds())
		}
		c.mu.Unlock()
		switch m.Type {
		case wire.TypePing:
			if err := c.send(&wire.Message{Type: wire.TypePong, ID: m.ID, Sent: m.Sent}); err != nil {
				return err
			}
		case wire.TypeResult:
			c.mu.Lock()
			call := c.inflight[m.ID]
			c.mu.Unlock()
			if call == nil {
				c.log.Debug("a result for no request in flight", slog.Uint64("request", m.ID))
				continue
			}
			call.resolve(m.Result)
		case wire.TypePong:
		default:
			c.log.Debug("unexpected frame from the agent", slog.String("type", m.Type))
		}
	}
}

func (h *Hub) register(c *conn) {
	h.mu.Lock()
	var old []*conn
	cs := h.conns[c.agent.Connector]
	kept := cs[:0]
	for _, o := range cs {
		if o.agent.ID == c.agent.ID {
			old = append(old, o) // the agent reconnected: its last connection is dead
		} else {
			kept = append(kept, o)
		}
	}
	h.conns[c.agent.Connector] = append(kept, c)
	delete(h.left, c.agent.ID)
	h.mu.Unlock()
	for _, o := range old {
		o.cut(errors.New("the agent opened a new connection"))
	}
	metrics.AgentConnected.WithLabelValues(c.agent.Connector, c.agent.ID).Set(1)
	metrics.AgentConnects.WithLabelValues(c.agent.Connector, c.agent.ID).Inc()
}

func (h *Hub) unregister(c *conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	cs := h.conns[c.agent.Connector]
	for i, o := range cs {
		if o == c {
			cs = append(cs[:i:i], cs[i+1:]...)
			break
		}
	}
	if len(cs) == 0 {
		delete(h.conns, c.agent.Connector)
		h.noneSince[c.agent.Connector] = h.cfg.Now()
	} else {
		h.conns[c.agent.Connector] = cs
	}
	still := false
	for _, o := range cs {
		still = still || o.agent.ID == c.agent.ID
	}
	if !still {
		h.left[c.agent.ID] = h.cfg.Now()
		metrics.AgentConnected.WithLabelValues(c.agent.Connector, c.agent.ID).Set(0)
	}
}

// failCalls fails the calls still waiting on the connection.
func (c *conn) failCalls() {
	c.mu.Lock()
	calls := make([]*Call, 0, len(c.inflight))
	for _, call := range c.inflight {
		calls = append(calls, call)
	}
	c.mu.Unlock()
	for _, call := range calls {
		call.lose(c.cause)
	}
}

func (c *conn) load() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.inflight)
}

func (c *conn) status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Status{Connector: c.agent.Connector, ID: c.agent.ID, Name: c.agent.Name, Version: c.hello.Version,
		Hostname: c.hello.Hostname, Address: c.address, ConnectedSince: c.since, LastHeartbeat: c.lastBeat,
		RTT: c.rtt, InFlight: len(c.inflight), ChecksPerSec: c.rate, CheckLatency: c.latency.value(),
		CertExpires: CertExpiry(c.agent)}
}

// latencyWeight is the weight of a new check in an agent's latency: about
// the last ten checks count.
const latencyWeight = 0.2

// ewma is an exponentially weighted moving average of durations.
type ewma struct {
	avg float64 // seconds
	n   int
}

func (e *ewma) add(d time.Duration) {
	if e.n == 0 {
		e.avg = d.Seconds()
	} else {
		e.avg += latencyWeight * (d.Seconds() - e.avg)
	}
	e.n++
}

// value is the average, zero before the first sample.
func (e *ewma) value() time.Duration { return time.Duration(e.avg * float64(time.Second)) }
