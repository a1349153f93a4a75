package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"sort"
	"strings"
	"sync"
	"time"

	dirsync "github.com/dirgate/dirgate/sync"
)

// server is the admin handler.
type server struct {
	b        Backend
	o        Options
	log      *slog.Logger
	now      func() time.Time
	token    [32]byte // SHA-256 of Options.Token, compared in constant time
	hasToken bool
	sessions *sessions
	consents consentStates
	limiter  *failLimiter
	mux      *http.ServeMux
	// syncCtx detaches runs started from a request from that request: a
	// browser that gives up waiting must not cancel a half-read sync.
	syncCtx func(r *http.Request) context.Context
}

func newServer(b Backend, o Options) *server {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxCacheAge <= 0 {
		o.MaxCacheAge = DefaultMaxCacheAge
	}
	if o.MaxLag <= 0 {
		o.MaxLag = DefaultMaxLag
	}
	s := &server{
		b:        b,
		o:        o,
		log:      o.Logger,
		now:      time.Now,
		token:    sha256.Sum256([]byte(o.Token)),
		hasToken: o.Token != "",
		limiter:  newFailLimiter(),
		consents: newConsentStates(),
		syncCtx:  func(r *http.Request) context.Context { return context.WithoutCancel(r.Context()) },
	}
	s.sessions = newSessions(func() time.Time { return s.now() })
	s.routes()
	return s
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	s.mux.ServeHTTP(w, r)
}

func (s *server) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte("ok\n"))
	})
	m.HandleFunc("GET /readyz", s.readyz)
	m.Handle("/metrics", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.o.Metrics == nil {
			http.NotFound(w, r)
			return
		}
		s.o.Metrics.ServeHTTP(w, r)
	}))

	api := http.NewServeMux()
	routes := []struct {
		method, path string
		h            http.HandlerFunc
	}{
		{"GET", "/api/v1/connectors", s.apiConnectors},
		{"GET", "/api/v1/connectors/{name}", s.apiConnector},
		{"POST", "/api/v1/connectors/{name}/sync", s.apiSync},
		{"POST", "/api/v1/connectors/{name}/test", s.apiTest},
		{"GET", "/api/v1/connectors/{name}/runs", s.apiRuns},
		{"GET", "/api/v1/connectors/{name}/blocked", s.apiBlocked},
		{"POST", "/api/v1/connectors/{name}/blocked/apply", s.apiApply},
		{"GET", "/api/v1/lookup", s.apiLookup},
		{"GET", "/api/v1/entries", s.apiEntries},
		{"GET", "/api/v1/cluster", s.apiCluster},
		{"GET", "/api/v1/agents", s.requireAgents(s.apiAgents)},
		{"POST", "/api/v1/agents/tokens", s.requireAgents(s.apiCreateToken)},
		{"POST", "/api/v1/agents/{id}/revoke", s.requireAgents(s.apiRevoke)},
	}
	for _, rt := range routes {
		api.HandleFunc(rt.method+" "+rt.path, rt.h)
		// The same path with any other method: a JSON 405.
		allow := rt.method
		if allow == "GET" {
			allow = "GET, HEAD"
		}
		api.HandleFunc(rt.path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, r.Method+" is not allowed here; use "+allow)
		})
	}
	api.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such API endpoint: "+r.Method+" "+r.URL.Path)
	})
	m.Handle("/api/", s.requireToken(api))
	// Profiles show what a slow server is busy with, without a restart;
	// they expose internals, so they take the admin token like the API.
	prof := http.NewServeMux()
	prof.HandleFunc("/debug/pprof/", pprof.Index)
	prof.HandleFunc("/debug/pprof/profile", pprof.Profile)
	prof.HandleFunc("/debug/pprof/trace", pprof.Trace)
	m.Handle("/debug/pprof/", s.requireToken(prof))

	s.consoleRoutes(m)
	s.mux = m
}

// checkToken compares a presented token with the configured one in
// constant time (both are hashed first, so the length does not leak).
func (s *server) checkToken(presented string) bool {
	if !s.hasToken || presented == "" {
		return false
	}
	h := sha256.Sum256([]byte(presented))
	return subtle.ConstantTimeCompare(h[:], s.token[:]) == 1
}

// requireToken admits requests carrying "Authorization: Bearer <token>".
func (s *server) requireToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		client := clientKey(r)
		if wait := s.limiter.blocked(client); wait > 0 {
			w.Header().Set("Retry-After", fmt.Sprint(int(wait.Seconds())+1))
			writeError(w, http.StatusTooManyRequests, "too many failed authentication attempts; try again later")
			return
		}
		auth := r.Header.Get("Authorization")
		scheme, tok, _ := strings.Cut(auth, " ")
		if !strings.EqualFold(scheme, "Bearer") || !s.checkToken(strings.TrimSpace(tok)) {
			errCode := ""
			if auth != "" {
				errCode = `, error="invalid_token"`
				s.limiter.fail(client)
				s.log.Warn("admin API: bad token", "remote", r.RemoteAddr, "path", r.URL.Path)
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="dirgate admin"`+errCode)
			writeError(w, http.StatusUnauthorized, "this endpoint needs the admin token: Authorization: Bearer <token>")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// AgentReadiness is implemented by a Backend whose connectors may be read
// through sync agents: AgentReady is false, with the reason, when the
// connector has had no agent for too long (agent.max_disconnected).
type AgentReadiness interface {
	AgentReady(connector string, now time.Time) (bool, string)
}

// ProbeStatus is implemented by a Backend whose Status reads state shared
// with other replicas (cluster mode), which a database outage makes slow or
// unreadable. /readyz judges the connectors by ProbeStatus instead: from
// this replica's own state, so that an outage of the shared store does not
// take every replica that still serves LDAP out of its load balancer.
type ProbeStatus interface {
	ProbeStatus(ctx context.Context) ([]dirsync.ConnectorStatus, error)
}

// readiness is the /readyz verdict for one connector.
type readiness struct {
	Connector   string     `json:"connector"`
	Ready       bool       `json:"ready"`
	Reason      string     `json:"reason,omitempty"`
	State       string     `json:"state"`
	LastSuccess *time.Time `json:"last_success,omitempty"`
}

// ready decides whether every connector has a fresh enough cache: it has
// synced successfully at least once, within MaxCacheAge.
func (s *server) ready(ctx context.Context) (bool, []readiness, error) {
	status := s.b.Status
	if p, ok := s.b.(ProbeStatus); ok {
		status = p.ProbeStatus
	}
	sts, err := status(ctx)
	if err != nil {
		return false, nil, err
	}
	now := s.now()
	all := true
	out := make([]readiness, 0, len(sts))
	for _, st := range sts {
		r := readiness{Connector: st.Name, State: st.State, Ready: true}
		switch {
		case st.LastSuccess.IsZero():
			r.Ready = false
			r.Reason = "has never synced successfully"
			if st.LastRun != nil && st.LastRun.Error != "" {
				r.Reason += "; last run failed: " + st.LastRun.Error
			} else if st.LastRun != nil && st.LastRun.Blocked != "" {
				r.Reason += "; last run was blocked: " + st.LastRun.Blocked
			} else if st.Running {
				r.Reason += " (first sync running)"
			}
		default:
			t := st.LastSuccess
			r.LastSuccess = &t
			if age := now.Sub(st.LastSuccess); age > s.o.MaxCacheAge {
				r.Ready = false
				r.Reason = fmt.Sprintf("last successful sync %s ago (%s), older than max_cache_age %s",
					roundAge(age), st.LastSuccess.UTC().Format(time.RFC3339), s.o.MaxCacheAge)
				if st.LastRun != nil && st.LastRun.Error != "" {
					r.Reason += "; last run failed: " + st.LastRun.Error
				}
			}
		}
		if ar, ok := s.b.(AgentReadiness); ok && r.Ready {
			if r.Ready, r.Reason = ar.AgentReady(st.Name, now); !r.Ready {
				r.Reason = "needs a sync agent: " + r.Reason
			}
		}
		all = all && r.Ready
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Connector < out[j].Connector })
	return all, out, nil
}

// readyz answers 200 when every connector's cache is fresh enough and, in
// cluster mode, this replica's change-log lag is within MaxLag.
func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	body := map[string]any{"status": "not ready"}
	cl := s.clusterReady()
	if cl != nil {
		body["cluster"] = cl
	}
	ok, conns, err := s.ready(r.Context())
	if err != nil {
		// The probe is open to anyone: the error may name the database,
		// its host and user. Details go to the log.
		s.log.Error("/readyz: the connectors' status could not be read", "err", err)
		body["error"] = "the connectors' status could not be read; see the server log"
		writeJSON(w, http.StatusServiceUnavailable, body)
		return
	}
	if ok && (cl == nil || cl.Ready) {
		body["status"], body["connectors"] = "ready", conns
		writeJSON(w, http.StatusOK, body)
		return
	}
	notReady := make([]readiness, 0, len(conns))
	for _, c := range conns {
		if !c.Ready {
			notReady = append(notReady, c)
		}
	}
	body["not_ready"] = notReady
	writeJSON(w, http.StatusServiceUnavailable, body)
}

// roundAge shortens a duration for messages: 26h3m, 4m12s, 850ms.
func roundAge(d time.Duration) time.Duration {
	switch {
	case d >= time.Hour:
		return d.Round(time.Minute)
	case d >= time.Second:
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// findConnector returns the status of connector name.
func (s *server) findConnector(ctx context.Context, name string) (*dirsync.ConnectorStatus, error) {
	sts, err := s.b.Status(ctx)
	if err != nil {
		return nil, err
	}
	for i := range sts {
		if sts[i].Name == name {
			return &sts[i], nil
		}
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownConnector, name)
}

// clientKey is the address failed sign-ins are counted against.
func clientKey(r *http.Request) string {
	host := r.RemoteAddr
	if i := strings.LastIndexByte(host, ':'); i > 0 && !strings.HasSuffix(host, "]") {
		host = host[:i]
	}
	return strings.Trim(host, "[]")
}

// failLimiter refuses a client after too many failed token attempts, so the
// admin token cannot be guessed at line speed.
type failLimiter struct {
	mu      sync.Mutex
	entries map[string]*failCount
	now     func() time.Time
}

type failCount struct {
	n     int
	first time.Time
}

const (
	maxTokenFailures = 10
	failWindow       = 15 * time.Minute
)

func newFailLimiter() *failLimiter {
	return &failLimiter{entries: map[string]*failCount{}, now: time.Now}
}

func (l *failLimiter) blocked(client string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.entries[client]
	if f == nil {
		return 0
	}
	left := failWindow - l.now().Sub(f.first)
	if left <= 0 {
		delete(l.entries, client)
		return 0
	}
	if f.n >= maxTokenFailures {
		return left
	}
	return 0
}

func (l *failLimiter) fail(client string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(l.entries) > 10000 {
		for k, f := range l.entries {
			if now.Sub(f.first) > failWindow {
				delete(l.entries, k)
			}
		}
	}
	f := l.entries[client]
	if f == nil || now.Sub(f.first) > failWindow {
		f = &failCount{first: now}
		l.entries[client] = f
	}
	f.n++
}

// statusOf maps a backend error to an HTTP status.
func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrUnknownConnector):
		return http.StatusNotFound
	case errors.Is(err, errNoStore):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
