// Package client is the sync agent (`dirgate agent`): it runs next to an
// LDAP directory the hub cannot reach, dials out to every hub replica over
// mutual TLS (HTTP/2, through HTTPS_PROXY when set), and executes the
// directory reads, password checks and Test Connection runs the hub asks
// for, with the same code as a direct connector. It never listens.
package client

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dirgate/dirgate/agent/wire"
	"github.com/dirgate/dirgate/config"
	dirsync "github.com/dirgate/dirgate/sync"
)

// Reconnection backoff: doubled from minBackoff after every failed attempt
// up to maxBackoff, each wait drawn at random from its upper half so that
// agents cut off together do not come back together.
const (
	minBackoff = time.Second
	maxBackoff = time.Minute
	// defaultHeartbeat applies when the hub's Welcome names none.
	defaultHeartbeat = 15 * time.Second
	// missedBeats is how many heartbeat intervals pass without a frame
	// from the hub before its connection is given up as dead.
	missedBeats = 3
	// A replica is given up (its session loop ends) only when the last
	// forgetLists peer lists the hub sent did not name it and it has not
	// been reachable for forgetAfter: a replica missing from one list
	// (a registry not beaten yet, a replica that missed a beat) or an
	// empty list must not lose it its agents for good.
	forgetLists = 3
	forgetAfter = 5 * time.Minute
	// stableAfter is how long a welcomed connection must last for the
	// backoff to start again from minBackoff.
	stableAfter = 10 * time.Second
)

// Options configure an Agent.
type Options struct {
	Config   *config.AgentFile
	Identity *Identity
	Version  string
	Log      *slog.Logger
}

// Agent keeps a connection to every hub replica and serves the requests
// that arrive on them.
type Agent struct {
	cfg     *config.AgentFile
	id      *Identity
	version string
	log     *slog.Logger
	exec    *executor
	// ident is the certificate new connections present and the client
	// that makes them; roots, the hub's CA alone.
	ident atomic.Pointer[identityState]
	roots *x509.CertPool
	hub   string // the configured hub URL, dialed for as long as Run runs

	mu       sync.Mutex
	sessions map[string]bool  // hub URLs with a running session loop
	conns    map[*conn]bool   // connections the hub welcomed, not yet ended
	peers    map[string]*peer // the replicas the hub named, merged over its lists
	wg       sync.WaitGroup
	// forgetAfter is forgetAfter, shorter in tests.
	forgetAfter time.Duration
}

// peer is a replica the hub named in a Welcome or a ping.
type peer struct {
	missed int // the hub's non-empty lists since that did not name it
}

// New prepares an agent; it does not connect.
func New(o Options) (*Agent, error) {
	hub := o.Config.Hub
	if hub == "" {
		hub = o.Identity.Hub
	}
	if hub == "" {
		return nil, errors.New("agent.yaml has no hub:; set it to the hub's agent URL, https://host:port")
	}
	if o.Identity.Connector != o.Config.Connector.Name {
		return nil, fmt.Errorf("this agent was enrolled for connector %q but agent.yaml serves %q; enroll again with a token for %q",
			o.Identity.Connector, o.Config.Connector.Name, o.Config.Connector.Name)
	}
	x, err := newExecutor(&o.Config.Connector, o.Config.PoolSize, o.Log)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(o.Identity.CA)
	a := &Agent{cfg: o.Config, id: o.Identity, version: o.Version, log: o.Log, exec: x, roots: roots,
		hub: strings.TrimSuffix(hub, "/"), sessions: map[string]bool{}, conns: map[*conn]bool{}, peers: map[string]*peer{},
		forgetAfter: forgetAfter}
	a.ident.Store(newIdentityState(&o.Identity.Cert, roots))
	return a, nil
}

// Run connects and serves until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	defer a.exec.close()
	defer func() { a.current().http.CloseIdleConnections() }()
	a.wg.Go(func() { a.watchCert(ctx) })
	a.startSession(ctx, a.hub)
	<-ctx.Done()
	a.wg.Wait()
	return nil
}

// startSession starts the connection loop of url unless one runs.
func (a *Agent) startSession(ctx context.Context, url string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.sessions[url] || ctx.Err() != nil {
		return
	}
	a.sessions[url] = true
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.session(ctx, url)
	}()
}

// session keeps one connection to url, reconnecting with backoff. The
// loop of a peer (a replica the hub named) ends when the hub has stopped
// naming it and it has been unreachable for a while (forgetLists,
// forgetAfter).
func (a *Agent) session(ctx context.Context, url string) {
	log := a.log.With(slog.String("hub", url))
	backoff := minBackoff
	lastUp := time.Now()
	for {
		welcomed, err := a.connect(ctx, url, log)
		if ctx.Err() != nil {
			return
		}
		if !welcomed.IsZero() {
			lastUp = time.Now()
			if lastUp.Sub(welcomed) >= stableAfter {
				backoff = minBackoff
			} else {
				log.Warn("the hub ended this connection within seconds of welcoming it; if another agent runs with a copy "+
					"of this agent's state directory, the hub keeps only one of them connected: give each agent its own enrollment",
					slog.Any("err", err))
			}
		}
		if url != a.hub && a.forget(url, lastUp) {
			log.Info("hub replica is no longer a peer; not reconnecting", slog.Any("err", err))
			return
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		log.Warn("hub connection lost; reconnecting", slog.Any("err", err), slog.Duration("in", wait))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		backoff = min(2*backoff, maxBackoff)
		if url == a.hub {
			a.awaitBootstrap(ctx)
		}
	}
}

// awaitBootstrap holds back a reconnection to the configured URL while it
// only leads to replicas connected under their own URLs (a load balancer
// in front of them): a second connection to one replica would make the
// hub cut the first. It returns once no connection is live, so that the
// configured URL finds the replicas again.
func (a *Agent) awaitBootstrap(ctx context.Context) {
	for {
		a.mu.Lock()
		wait := len(a.peers) > 0 && a.peers[a.hub] == nil && len(a.conns) > 0
		a.mu.Unlock()
		if !wait {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(minBackoff):
		}
	}
}

// forget reports whether the session of peer url, last up at lastUp,
// ends: the hub's recent lists left it out and it has been down long
// enough. It is then forgotten, until a list names it again.
func (a *Agent) forget(url string, lastUp time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if p := a.peers[url]; p != nil && (p.missed < forgetLists || time.Since(lastUp) < a.forgetAfter) {
		return false
	}
	delete(a.sessions, url)
	delete(a.peers, url)
	return true
}

// conn is one live connection to a hub replica.
type conn struct {
	a *Agent
	// run is the agent's context, which the sessions of the peers the
	// hub names on this connection live in.
	run context.Context
	// ctx ends with the connection; the reply streams of its requests
	// live as long, so that a canceled read still ends with its result.
	ctx  context.Context
	cut  context.CancelCauseFunc // ends ctx
	url  string
	w    *wire.Writer
	log  *slog.Logger
	last chan struct{} // a frame arrived (for the watchdog)
	// ident is what the connection was made with: a renewal leaves it
	// with the replaced certificate until it is made again.
	ident *identityState

	mu       sync.Mutex
	inflight map[uint64]context.CancelFunc
}

// connect holds one connection until it fails or ctx ends; welcomed is
// when the hub answered the hello (zero: it did not).
func (a *Agent) connect(run context.Context, url string, log *slog.Logger) (welcomed time.Time, err error) {
	ctx, cancel := context.WithCancelCause(run)
	defer cancel(nil)
	pr, pw := io.Pipe()
	defer pw.Close()
	// The transport reads the request body while it waits for nothing
	// else: only closing the pipe ends that read when ctx does.
	stop := context.AfterFunc(ctx, func() { pw.CloseWithError(context.Cause(ctx)) })
	defer stop()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/agent/v1/connect", pr)
	if err != nil {
		return time.Time{}, err
	}
	ident := a.current()
	c := &conn{a: a, run: run, ctx: ctx, cut: cancel, url: url, w: wire.NewWriter(pw), log: log, last: make(chan struct{}, 1),
		ident: ident, inflight: map[uint64]context.CancelFunc{}}
	host, _ := os.Hostname()
	// The hello is written while the request starts: the pipe blocks until
	// the transport reads it.
	go func() {
		err := c.w.Write(&wire.Message{Type: wire.TypeHello, Hello: &wire.Hello{AgentID: a.id.AgentID, Name: a.cfg.Name,
			Version: a.version, Connector: a.cfg.Connector.Name, Hostname: host, Scope: dirsync.ScopeOf(&a.cfg.Connector)}})
		if err != nil {
			cancel(err)
		}
	}()
	resp, err := ident.http.Do(req)
	if err != nil {
		return time.Time{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return time.Time{}, httpError(resp)
	}
	r := wire.NewReader(resp.Body)
	m, err := r.Read()
	if err != nil {
		return time.Time{}, fmt.Errorf("reading the welcome: %w", err)
	}
	if m.Type != wire.TypeWelcome {
		return time.Time{}, fmt.Errorf("the hub sent %s before its welcome", m.Type)
	}
	welcomed = time.Now()
	a.addLive(c, true)
	defer a.addLive(c, false)
	log = log.With(slog.String("replica", m.Welcome.Replica))
	c.log = log
	log.Info("connected to hub", slog.String("connector", a.cfg.Connector.Name))
	// The peers' sessions outlive this connection.
	a.learnPeers(run, m.Welcome.Peers)
	beat := m.Welcome.Heartbeat
	if beat <= 0 {
		beat = defaultHeartbeat
	}
	go c.heartbeat(ctx, cancel, beat)
	defer c.cancelAll()
	for {
		m, err := r.Read()
		if err != nil {
			if cause := context.Cause(ctx); cause != nil {
				err = cause
			}
			return welcomed, err
		}
		select {
		case c.last <- struct{}{}:
		default:
		}
		c.dispatch(ctx, m)
	}
}

func httpError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return httpErrorOf(resp.StatusCode, body)
}

// httpErrorOf is the error of an answer with status and body that is not
// the one asked for.
func httpErrorOf(status int, body []byte) error {
	_, msg := errorBody(body)
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("the hub refused this agent (HTTP %d: %s): it may have been revoked; enroll it again", status, msg)
	}
	return fmt.Errorf("the hub answered HTTP %d: %s", status, msg)
}

// addLive counts connection c as live, or with live false as ended.
func (a *Agent) addLive(c *conn, live bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if live {
		a.conns[c] = true
	} else {
		delete(a.conns, c)
	}
}

// learnPeers merges a list of replicas the hub sent (in a Welcome or a
// ping) into those known, and starts a connection to each it names. An
// empty list tells nothing (a replica that has not read its registry
// yet); a replica left out of a list is counted, not dropped (see
// forget).
func (a *Agent) learnPeers(ctx context.Context, peers []string) {
	if len(peers) == 0 {
		return
	}
	named := map[string]bool{}
	for _, p := range peers {
		named[strings.TrimSuffix(p, "/")] = true
	}
	a.mu.Lock()
	for url, p := range a.peers {
		if !named[url] {
			p.missed++
		}
	}
	for url := range named {
		a.peers[url] = &peer{}
	}
	a.mu.Unlock()
	for url := range named {
		a.startSession(ctx, url)
	}
}

// heartbeat pings the hub every beat, and cuts the connection when no
// frame arrived for missedBeats beats.
func (c *conn) heartbeat(ctx context.Context, cancel context.CancelCauseFunc, beat time.Duration) {
	t := time.NewTicker(beat)
	defer t.Stop()
	silent := 0
	for seq := uint64(1); ; seq++ {
		select {
		case <-ctx.Done():
			return
		case <-c.last:
			silent = 0
		case <-t.C:
			if silent++; silent >= missedBeats {
				cancel(fmt.Errorf("no frame from the hub for %v", time.Duration(missedBeats)*beat))
				return
			}
			if err := c.w.Write(&wire.Message{Type: wire.TypePing, ID: seq, Sent: time.Now()}); err != nil {
				cancel(err)
				return
			}
		}
	}
}

func (c *conn) dispatch(ctx context.Context, m *wire.Message) {
	switch m.Type {
	case wire.TypePing:
		if err := c.w.Write(&wire.Message{Type: wire.TypePong, ID: m.ID, Sent: m.Sent}); err != nil {
			c.log.Warn("answering a ping", slog.Any("err", err))
		}
		c.a.learnPeers(c.run, m.Peers)
	case wire.TypePong:
		c.log.Debug("heartbeat", slog.Duration("rtt", time.Since(m.Sent)))
	case wire.TypeCancel:
		c.mu.Lock()
		if cancel, ok := c.inflight[m.ID]; ok {
			cancel()
		}
		c.mu.Unlock()
	case wire.TypeRequest:
		var rctx context.Context
		var cancel context.CancelFunc
		switch req := m.Request; {
		case req.Timeout > 0: // the hub's clock may not be ours
			rctx, cancel = context.WithTimeout(ctx, req.Timeout)
		case !req.Deadline.IsZero(): // a hub of an earlier release
			rctx, cancel = context.WithDeadline(ctx, req.Deadline)
		default:
			rctx, cancel = context.WithCancel(ctx)
		}
		c.mu.Lock()
		c.inflight[m.ID] = cancel
		c.mu.Unlock()
		go func() {
			defer func() {
				c.mu.Lock()
				delete(c.inflight, m.ID)
				c.mu.Unlock()
				cancel()
			}()
			c.serve(rctx, m.ID, m.Request)
		}()
	default:
		c.log.Warn("ignoring an unexpected frame from the hub", slog.String("type", m.Type))
	}
}

// cancelAll abandons the requests of a connection that ended: their
// results could not reach the hub any more.
func (c *conn) cancelAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cancel := range c.inflight {
		cancel()
	}
}
