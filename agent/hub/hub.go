// Package hub is the hub's side of the sync agents: the agent listener's
// HTTP/2 handler over mutual TLS (enrollment, the full-duplex connection
// of each agent, the reply and known streams of sync reads), the registry
// of connected agents per connector, and Do, which sends a request to one
// of a connector's agents. Agents are pinned by the fingerprint of the
// certificate they enrolled with and checked against the store on every
// connection, and again periodically, so that a revocation made on any
// replica cuts them off.
package hub

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dirgate/dirgate/agent/pki"
	"github.com/dirgate/dirgate/metrics"
	"github.com/dirgate/dirgate/state"
	"github.com/dirgate/dirgate/upstream"
)

// Config sets up a Hub.
type Config struct {
	// CA is the agent CA (pki.LoadOrCreate of agent.ca_dir).
	CA *pki.CA
	// Replica names this replica in Welcome.
	Replica string
	// Peers returns the agent URLs of every live replica (nil: none known
	// but this one's, which the agent has).
	Peers func() []string
	// Heartbeat is the ping interval (default 10s); a connection silent
	// for three intervals is dropped.
	Heartbeat time.Duration
	// Recheck is how often the connected agents are checked against the
	// store (default 5s): a revocation made on another replica cuts them
	// within that time.
	Recheck time.Duration
	// TokenTTL is an enrollment token's lifetime (default 1h).
	TokenTTL time.Duration
	// HelloTimeout bounds the wait for a new connection's hello (default
	// 10s); IdleTimeout closes a listener connection with no stream open
	// (default 30s): an agent's connection stream keeps its own open.
	HelloTimeout time.Duration
	IdleTimeout  time.Duration
	// ReplyStart bounds the wait for a sync read's reply stream to start
	// (default 1m), and ReplyIdle each wait for its next bytes (default
	// 5m): an agent that answers heartbeats but stalls a read would
	// otherwise hold the connector's runs. Either ends the read as
	// unreachable (ErrStalled) and tells the agent to cancel it.
	ReplyStart time.Duration
	ReplyIdle  time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Defaults of Config.
const (
	DefaultHeartbeat  = 10 * time.Second
	DefaultRecheck    = 5 * time.Second
	DefaultTokenTTL   = time.Hour
	DefaultHello      = 10 * time.Second
	DefaultIdle       = 30 * time.Second
	DefaultReplyStart = time.Minute
	DefaultReplyIdle  = 5 * time.Minute
)

// Errors of Do and of a Call. Each is wrapped in an *UnreachableError,
// which matches upstream.ErrUnreachable, so that a password check with no
// agent fails as a directory that cannot be reached does (the offline
// verifier applies).
var (
	ErrNoAgent   = errors.New("no agent of the connector is connected")
	ErrAgentLost = errors.New("the agent's connection was lost before it answered")
	ErrDeadline  = errors.New("the agent did not answer in time")
	ErrStalled   = errors.New("the agent's reply stream did not start or stalled")
)

// UnreachableError is the failure to get an answer from an agent.
type UnreachableError struct {
	Connector string
	Agent     string // "" with ErrNoAgent
	Err       error  // ErrNoAgent, ErrAgentLost, ErrDeadline or ErrStalled, perhaps with a cause
}

func (e *UnreachableError) Error() string {
	s := "connector " + e.Connector
	if e.Agent != "" {
		s += ", agent " + e.Agent
	}
	return s + ": " + e.Err.Error()
}

// Unwrap makes the error match its cause and upstream.ErrUnreachable.
func (e *UnreachableError) Unwrap() []error { return []error{e.Err, upstream.ErrUnreachable} }

// Hub serves the agents and sends them requests.
type Hub struct {
	cfg   Config
	store state.Agents
	log   *slog.Logger

	mu     sync.Mutex
	conns  map[string][]*conn // by connector
	calls  map[uint64]*Call
	nextID atomic.Uint64
	rr     atomic.Uint64 // round-robin among equally loaded agents
	// readers: the agent that serves each connector's sync reads (see
	// reader).
	readers map[string]string
	// noneSince: when the last agent of a connector left; started: when
	// the hub was made, for connectors no agent has connected for yet.
	noneSince map[string]time.Time
	started   time.Time
	hellos    helloGate
	// left: when each agent's last connection to this replica ended (its
	// series are deleted once it stays away for forgetAfter), guarded by
	// mu; certWarned: when each agent's expiring certificate was last
	// warned of, and watched when the store was last read for it, both
	// Run's alone.
	left       map[string]time.Time
	certWarned map[string]time.Time
	watched    time.Time
}

// Certificate expiry: agents whose certificate expires within
// CertWarnBefore are warned of daily, and the listener's certificate is
// re-issued that long before it expires.
const (
	CertWarnBefore = 30 * 24 * time.Hour
	certWarnEvery  = 24 * time.Hour
	// watchEvery is how often the store is read for the agents'
	// certificates and the metric series of revoked or long gone agents.
	watchEvery = time.Minute
	// forgetAfter: the series of an agent disconnected from this replica
	// for that long are deleted (its certificate's expiry stays).
	forgetAfter = 24 * time.Hour
)

// New returns a hub; Run must run for its heartbeats' checks and the
// periodic revocation check.
func New(cfg Config, store state.Agents, log *slog.Logger) (*Hub, error) {
	if cfg.CA == nil {
		return nil, errors.New("agent hub: no CA")
	}
	for _, d := range []struct {
		set *time.Duration
		def time.Duration
	}{
		{&cfg.Heartbeat, DefaultHeartbeat}, {&cfg.Recheck, DefaultRecheck}, {&cfg.TokenTTL, DefaultTokenTTL},
		{&cfg.HelloTimeout, DefaultHello}, {&cfg.IdleTimeout, DefaultIdle},
		{&cfg.ReplyStart, DefaultReplyStart}, {&cfg.ReplyIdle, DefaultReplyIdle},
	} {
		if *d.set <= 0 {
			*d.set = d.def
		}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Peers == nil {
		cfg.Peers = func() []string { return nil }
	}
	return &Hub{cfg: cfg, store: store, log: log, conns: map[string][]*conn{}, calls: map[uint64]*Call{},
		readers: map[string]string{}, noneSince: map[string]time.Time{}, started: cfg.Now(),
		left: map[string]time.Time{}, certWarned: map[string]time.Time{}}, nil
}

// TLSConfig is the agent listener's TLS configuration: a server
// certificate from the agent CA for hosts (its chain carries the CA, which
// enrolling agents check against the fingerprint they were given), and
// client certificates of the agent CA, asked for but not required, since
// enrollment comes without one (the other endpoints require it).
//
// The server certificate is valid for a year; it is re-issued when a
// handshake finds it within CertWarnBefore of its expiry, so that a hub
// running for a year keeps serving.
func (h *Hub) TLSConfig(hosts []string) (*tls.Config, error) {
	sc := &serverCert{ca: h.cfg.CA, hosts: hosts, now: h.cfg.Now, log: h.log}
	first, err := sc.get()
	if err != nil {
		return nil, err
	}
	base := &tls.Config{
		Certificates: []tls.Certificate{*first},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    h.cfg.CA.Pool(),
		NextProtos:   []string{"h2", "http/1.1"},
		MinVersion:   tls.VersionTLS13,
	}
	// Each handshake gets the current certificate. GetConfigForClient
	// rather than GetCertificate: the latter is skipped for a client
	// without SNI (an agent dialing an IP address) while Certificates is
	// set, and callers such as httptest fill it in.
	tc := base.Clone()
	tc.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		cert, err := sc.get()
		if err != nil {
			return nil, err
		}
		c := base.Clone()
		c.Certificates = []tls.Certificate{*cert}
		return c, nil
	}
	return tc, nil
}

// Server returns the agent listener's server; run it with
// ServeTLS(ln, "", ""). Its handlers of connections last as long as the
// agents stay: cancel Run's context before Shutdown.
func (h *Hub) Server(hosts []string) (*http.Server, error) {
	tc, err := h.TLSConfig(hosts)
	if err != nil {
		return nil, err
	}
	return &http.Server{Handler: h.Handler(), TLSConfig: tc, ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout: h.cfg.IdleTimeout, HTTP2: serverHTTP2(),
		ErrorLog: slog.NewLogLogger(h.log.Handler(), slog.LevelDebug)}, nil
}

// serverCert is the agent listener's certificate, re-issued before it
// expires.
type serverCert struct {
	ca    *pki.CA
	hosts []string
	now   func() time.Time
	log   *slog.Logger

	mu   sync.Mutex
	cert *tls.Certificate
}

// get returns the certificate, first issuing a new one when there is none
// or it expires within CertWarnBefore. A failed renewal keeps the old one.
func (s *serverCert) get() (*tls.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.cert != nil && now.Before(s.cert.Leaf.NotAfter.Add(-CertWarnBefore)) {
		return s.cert, nil
	}
	c, err := s.ca.ServerCertificate(s.hosts, now)
	switch {
	case err == nil:
		if s.cert != nil {
			s.log.Info("agent listener: certificate re-issued", slog.Time("old_expiry", s.cert.Leaf.NotAfter),
				slog.Time("expiry", c.Leaf.NotAfter))
		}
		s.cert = &c
	case s.cert == nil:
		return nil, err
	default:
		s.log.Error("agent listener: re-issuing the certificate", slog.Any("err", err))
	}
	return s.cert, nil
}

// serverHTTP2 sizes the agent listener's HTTP/2 flow control. An agent's
// connection stream (check answers, heartbeats) shares one HTTP/2
// connection with the reply stream of a sync read: with the default 1 MiB
// connection window, a reply the engine reads slowly filled it and the
// check answers waited behind it. A stream gets at most 1 MiB and the
// connection 8 MiB, so a few reply streams cannot starve the connection
// stream. An agent needs a few streams (its connection, a reply, a known
// stream), hence the low stream limit.
func serverHTTP2() *http.HTTP2Config {
	return &http.HTTP2Config{MaxConcurrentStreams: 16,
		MaxReceiveBufferPerConnection: 8 << 20, MaxReceiveBufferPerStream: 1 << 20}
}

// Run checks the connected agents against the store every Recheck until
// ctx ends, then drops every connection.
func (h *Hub) Run(ctx context.Context) error {
	t := time.NewTicker(h.cfg.Recheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			for _, c := range h.connected() {
				c.cut(errors.New("the hub is stopping"))
			}
			return nil
		case <-t.C:
			h.recheck(ctx)
			if now := h.cfg.Now(); now.Sub(h.watched) >= watchEvery {
				h.watched = now
				h.watchAgents(ctx, now)
			}
		}
	}
}

// watchAgents reads the enrolled agents: it sets their certificates'
// expiry metric, warns daily of a certificate that expires within
// CertWarnBefore, and deletes the metric series of agents revoked or
// disconnected from this replica for forgetAfter.
func (h *Hub) watchAgents(ctx context.Context, now time.Time) {
	agents, err := h.store.Agents(ctx)
	if err != nil {
		h.log.Warn("agent hub: reading the enrolled agents", slog.Any("err", err))
		return
	}
	for _, a := range agents {
		if !a.Revoked.IsZero() {
			metrics.ForgetAgent(a.ID)
			delete(h.certWarned, a.ID)
			continue
		}
		h.forgetGone(a.ID, now)
		exp := CertExpiry(a)
		metrics.AgentCertExpiry.WithLabelValues(a.Connector, a.ID).Set(float64(exp.Unix()))
		if exp.Sub(now) >= CertWarnBefore || now.Sub(h.certWarned[a.ID]) < certWarnEvery {
			continue
		}
		h.certWarned[a.ID] = now
		when := "expires in " + exp.Sub(now).Round(time.Hour).String()
		if !now.Before(exp) {
			when = "has expired: the agent can no longer connect"
		}
		h.log.Warn("agent certificate "+when+"; the agent renews it well before then, so it is not running or cannot "+
			"reach the hub: see its log, or enroll it again with a new token (dirgate agent token create)",
			slog.String("agent", a.ID), slog.String("connector", a.Connector), slog.String("name", a.Name),
			slog.Time("expiry", exp))
	}
}

// forgetGone deletes the metric series of agent id once it has been
// disconnected from this replica for forgetAfter. Under mu, so that an
// agent reconnecting meanwhile keeps its new series.
func (h *Hub) forgetGone(id string, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if left, ok := h.left[id]; ok && now.Sub(left) >= forgetAfter {
		delete(h.left, id)
		metrics.ForgetAgent(id)
	}
}

// recheck cuts the connections of agents that are revoked or gone from
// the store, and those made with a certificate no longer pinned or past
// its expiry. A store that cannot be read keeps the connections: they were
// checked when they were made.
func (h *Hub) recheck(ctx context.Context) {
	conns := h.connected()
	if len(conns) == 0 {
		return
	}
	agents, err := h.store.Agents(ctx)
	if err != nil {
		h.log.Warn("agent hub: re-checking the connected agents", slog.Any("err", err))
		return
	}
	valid := map[string]state.Agent{}
	for _, a := range agents {
		if a.Revoked.IsZero() {
			valid[a.ID] = a
		}
	}
	now := h.cfg.Now()
	for _, c := range conns {
		a, ok := valid[c.agent.ID]
		switch {
		case !ok:
			c.cut(errors.New("the agent was revoked"))
		case !a.Pins(c.presented):
			c.cut(errors.New("the agent's certificate was renewed twice since this connection was made"))
		case !now.Before(c.certExpires):
			c.cut(errors.New("the certificate this connection was made with has expired"))
		}
	}
}

func (h *Hub) connected() []*conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*conn
	for _, cs := range h.conns {
		out = append(out, cs...)
	}
	return out
}

// Revoke revokes agent id in the store and cuts its connection to this
// replica at once; other replicas cut theirs at their next recheck.
func (h *Hub) Revoke(ctx context.Context, id string) error {
	if err := h.store.RevokeAgent(ctx, id, h.cfg.Now()); err != nil {
		return fmt.Errorf("revoke agent %s: %w", id, err)
	}
	for _, c := range h.connected() {
		if c.agent.ID == id {
			c.cut(errors.New("the agent was revoked"))
		}
	}
	h.log.Info("agent revoked", slog.String("agent", id))
	return nil
}

// Token is a new enrollment token, shown once.
type Token struct {
	Token     string
	Connector string
	Expires   time.Time
	// CASHA256 is the agent CA's fingerprint, which `dirgate agent enroll`
	// checks the hub's chain against before sending the token.
	CASHA256 string
}

// CreateToken creates a one-time enrollment token for connector, valid
// for TokenTTL (ttl, when positive, instead). Only its hash is stored.
func (h *Hub) CreateToken(ctx context.Context, connector string, ttl time.Duration) (Token, error) {
	if ttl <= 0 {
		ttl = h.cfg.TokenTTL
	}
	now := h.cfg.Now()
	t := Token{Token: rand.Text(), Connector: connector, Expires: now.Add(ttl), CASHA256: h.cfg.CA.Fingerprint()}
	if err := h.store.PutEnrollToken(ctx, HashToken(t.Token), state.EnrollToken{Connector: connector, Created: now, Expires: t.Expires}); err != nil {
		return Token{}, fmt.Errorf("create enrollment token: %w", err)
	}
	return t, nil
}

// HashToken is the key an enrollment token is stored under.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Status is one connected agent as this replica sees it.
type Status struct {
	Connector      string
	ID             string
	Name           string
	Version        string
	Hostname       string
	Address        string // the agent's address as this replica sees it (perhaps its proxy's)
	ConnectedSince time.Time
	LastHeartbeat  time.Time
	RTT            time.Duration
	InFlight       int
	ChecksPerSec   float64
	// CheckLatency is the moving average of its answered checks' latency
	// (about the last ten; zero before the first).
	CheckLatency time.Duration
	// CertExpires is when its certificate expires.
	CertExpires time.Time
}

// CertExpiry is when agent a's certificate expires: as stored at its
// enrollment, or for agents enrolled before that was kept, as issued then.
func CertExpiry(a state.Agent) time.Time {
	if !a.CertExpires.IsZero() {
		return a.CertExpires
	}
	return a.Enrolled.Add(pki.AgentValidity)
}

// Agents returns the agents connected to this replica, by connector and ID.
func (h *Hub) Agents() []Status {
	var out []Status
	for _, c := range h.connected() {
		out = append(out, c.status())
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Connector != out[j].Connector {
			return out[i].Connector < out[j].Connector
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Connected returns how many agents of connector are connected to this
// replica and, when none is, since when (the last one left, or the hub
// started): what /readyz compares with agent.max_disconnected.
func (h *Hub) Connected(connector string) (int, time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := len(h.conns[connector])
	if n > 0 {
		return n, time.Time{}
	}
	if t, ok := h.noneSince[connector]; ok {
		return 0, t
	}
	return 0, h.started
}
