// Package proxy is dirgate's LDAP front-end: simple binds (service accounts
// checked locally, users passed through to their upstream), searches
// answered from the cache with full RFC 4515 filter evaluation, the paged
// results control, the root DSE, StartTLS and WhoAmI. It never writes the
// cache.
package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jimlambrt/gldap"

	"github.com/dirgate/dirgate/authn"
	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/dn"
	"github.com/dirgate/dirgate/metrics"
	"github.com/dirgate/dirgate/passwd"
)

// Server serves LDAP from the cache on one or two listeners (plain with
// optional StartTLS, and LDAPS).
type Server struct {
	store  *cache.Store
	auth   Authenticator
	log    *slog.Logger
	tls    *tls.Config
	set    atomic.Pointer[settings] // swapped by Reload
	pages  *pager
	verify *passwd.Cache

	mu        sync.Mutex
	listeners []*listener
	// refusals and protocolErrors are what clients can cause in bulk.
	refusals, protocolErrors summaryLog
}

// Authenticator checks directory users' passwords (authn.Authenticator).
type Authenticator interface {
	Login(ctx context.Context, at authn.Attempt) (*authn.Identity, error)
}

// settings are the parts of the configuration a reload may change.
type settings struct {
	cfg      config.LDAPListener
	accounts map[string]config.ServiceAccount // by DN key
	roots    []string                         // naming contexts, as configured
	rootKeys map[string]bool                  // their dn.Key forms
}

// New builds a server from configuration. tlsCfg may be nil when no
// certificate is configured.
func New(cfg *config.Config, store *cache.Store, auth Authenticator, tlsCfg *tls.Config, log *slog.Logger) (*Server, error) {
	s := &Server{
		store:  store,
		auth:   auth,
		log:    log,
		tls:    tlsCfg,
		pages:  newPager(10*time.Minute, 64),
		verify: passwd.NewCache(),
	}
	if err := s.Reload(cfg); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload applies a new configuration's service accounts, naming contexts
// and limits to new requests, and its connection limits to the running
// listeners: new timeouts apply to an open connection from its next wait
// for a request, lowered caps close no open connection. Listener addresses
// and certificates need a restart, which is logged when they changed.
func (s *Server) Reload(cfg *config.Config) error {
	n := &settings{cfg: cfg.LDAP, accounts: map[string]config.ServiceAccount{}, rootKeys: map[string]bool{}}
	for _, a := range cfg.ServiceAccounts {
		k, err := dn.Key(a.DN)
		if err != nil {
			return fmt.Errorf("service account %q: %w", a.DN, err)
		}
		n.accounts[k] = a
	}
	for _, c := range cfg.Connectors {
		if c.RootDN != "" {
			n.roots = append(n.roots, c.RootDN)
			if k, err := dn.Key(c.RootDN); err == nil {
				n.rootKeys[k] = true
			}
		}
	}
	if old := s.set.Swap(n); old != nil && needsRestart(old.cfg, n.cfg) {
		s.log.Warn("ldap: listen addresses or TLS files changed; restart dirgate to apply them")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.listeners {
		l.srv.SetLimits(limits(cfg.LDAP))
	}
	return nil
}

// needsRestart reports whether the listener settings only a restart applies
// changed.
func needsRestart(old, cur config.LDAPListener) bool {
	return old.Listen != cur.Listen || old.LDAPSListen != cur.LDAPSListen || !reflect.DeepEqual(old.TLS, cur.TLS)
}

// limits are the gldap connection limits of the configuration.
func limits(c config.LDAPListener) gldap.Limits {
	return gldap.Limits{
		IdleTimeout:              c.IdleTimeout.Std(),
		FirstRequestTimeout:      c.FirstRequestTimeout.Std(),
		MessageTimeout:           c.ReadTimeout.Std(),
		MaxConnections:           c.MaxConnections,
		MaxConnectionsPerAddress: c.MaxConnectionsPerAddress,
	}
}

func (s *Server) settings() *settings { return s.set.Load() }

// listener is one gldap server and its per-connection sessions. Sessions
// live per listener because gldap numbers connections per server.
type listener struct {
	s        *Server
	srv      *gldap.Server
	ldaps    bool
	sessions sync.Map // connection ID -> *session
}

// session is what a connection is bound as.
type session struct {
	mu    sync.Mutex
	kind  bindKind
	dn    string
	login string
}

type bindKind int

const (
	bindAnonymous bindKind = iota
	bindService
	bindUser
)

func (l *listener) session(id int) *session {
	v, _ := l.sessions.LoadOrStore(id, &session{})
	return v.(*session)
}

// hclogLevels are the level tags hclog starts its lines with.
var hclogLevels = []struct {
	prefix string
	level  slog.Level
}{{"[INFO]", slog.LevelInfo}, {"[WARN]", slog.LevelWarn}, {"[DEBUG]", slog.LevelDebug}, {"[TRACE]", slog.LevelDebug}}

// slogWriter passes gldap's log lines (hclog, without timestamps) to
// dirgate's log at the level hclog wrote them with.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	level := slog.LevelError
	for _, l := range hclogLevels {
		if rest, ok := strings.CutPrefix(line, l.prefix); ok {
			level, line = l.level, strings.TrimSpace(rest)
			break
		}
	}
	w.log.Log(context.Background(), level, "ldap server", "detail", line)
	return len(p), nil
}

// summaryEvery spaces the log lines about events clients can cause in bulk
// (refused connections, protocol errors): a flood of them must not flood
// the log as well. The metrics count each.
const summaryEvery = time.Minute

// summaryLog counts events by kind, for a log line at most once per
// summaryEvery.
type summaryLog struct {
	mu     sync.Mutex
	last   time.Time
	counts map[string]int
}

// add counts an event of kind. When no line was logged in the last
// summaryEvery, it returns the counts by kind since the last line, this
// event's included, for the caller to log.
func (l *summaryLog) add(kind string) (counts map[string]int, log bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.counts == nil {
		l.counts = map[string]int{}
	}
	l.counts[kind]++
	now := time.Now()
	if now.Sub(l.last) < summaryEvery {
		return nil, false
	}
	counts = l.counts
	l.last, l.counts = now, nil
	return counts, true
}

// refused counts a connection gldap refused for a cap, and logs it unless
// a line was logged less than summaryEvery ago.
func (s *Server) refused(remote net.Addr, reason gldap.RefuseReason) {
	metrics.LDAPConnectionsRefused.WithLabelValues(string(reason)).Inc()
	counts, ok := s.refusals.add(string(reason))
	if !ok {
		return
	}
	cfg := s.settings().cfg
	s.log.Warn("ldap connections refused: a connection cap is reached",
		"max_connections", counts[string(gldap.RefusedMaxConnections)], "per_address", counts[string(gldap.RefusedPerAddress)],
		"last_remote", remote.String(), "limit", cfg.MaxConnections, "limit_per_address", cfg.MaxConnectionsPerAddress,
		"since", summaryEvery.String())
}

// protocolError counts a connection gldap closed because its client sent
// something that is not LDAP, and logs it unless a line was logged less
// than summaryEvery ago. Info: an operator may need to see why a client is
// disconnected, but a client sending junk in a loop must not be able to
// fill the log.
func (s *Server) protocolError(remote net.Addr, err error) {
	const kind = "protocol_error"
	metrics.LDAPProtocolErrors.Inc()
	counts, ok := s.protocolErrors.add(kind)
	if !ok {
		return
	}
	s.log.Info("ldap connections closed for protocol errors (not valid LDAP)",
		"count", counts[kind], "last_remote", remote.String(), "last_error", err.Error(), "since", summaryEvery.String())
}

// Serve answers LDAP on ln until Shutdown; ldaps wraps ln in TLS.
func (s *Server) Serve(ln net.Listener, ldaps bool) error {
	l := &listener{s: s, ldaps: ldaps}
	opts := []gldap.Option{
		// gldap logs at Info what an operator may need (listening; the
		// protocol errors that close a connection come to protocolError)
		// and at Error what needs a look (a handler panic, a failing
		// accept); its debug chatter stays off.
		gldap.WithLogger(hclog.New(&hclog.LoggerOptions{Name: "gldap", Level: hclog.Info, DisableTime: true, Output: slogWriter{s.log}})),
		gldap.WithLimits(limits(s.settings().cfg)),
		gldap.WithOnRefuse(s.refused),
		gldap.WithOnProtocolError(s.protocolError),
		// Handlers answer from the cache or one upstream bind; running them
		// on the reading goroutine saves a thread wake-up per request.
		gldap.WithSerialRequests(),
		gldap.WithWriteTimeout(30 * time.Second),
		// Requests are small; an 8 MiB cap stops a hostile length header
		// from making the server allocate before reading the body.
		gldap.WithMaxPacketSize(8 << 20),
		gldap.WithOnClose(func(id int) {
			l.sessions.Delete(id)
			s.pages.dropConn(l, id)
		}),
	}
	if ldaps {
		if s.tls == nil {
			return errors.New("ldap: LDAPS listener without a TLS certificate")
		}
		ln = tls.NewListener(ln, s.tls)
	}
	srv, err := gldap.NewServer(opts...)
	if err != nil {
		return fmt.Errorf("ldap: %w", err)
	}
	mux, err := l.routes()
	if err != nil {
		return fmt.Errorf("ldap: routes: %w", err)
	}
	if err := srv.Router(mux); err != nil {
		return fmt.Errorf("ldap: %w", err)
	}
	l.srv = srv
	s.mu.Lock()
	s.listeners = append(s.listeners, l)
	// A Reload between NewServer and here did not see this listener.
	srv.SetLimits(limits(s.settings().cfg))
	s.mu.Unlock()
	return srv.Serve(ln)
}

// Shutdown stops every listener; in-flight requests get a bounded time to
// finish.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	ls := s.listeners
	s.mu.Unlock()
	var errs []error
	for _, l := range ls {
		done := make(chan error, 1)
		go func() { done <- l.srv.Stop() }()
		select {
		case err := <-done:
			errs = append(errs, err)
		case <-ctx.Done():
			errs = append(errs, ctx.Err())
		}
	}
	return errors.Join(errs...)
}

func (l *listener) routes() (*gldap.Mux, error) {
	mux, err := gldap.NewMux()
	if err != nil {
		return nil, err
	}
	// Every route but unbind (which has no response) goes through
	// critical; search is the one operation with a control of its own.
	for _, err := range []error{
		mux.Bind(l.critical(l.bind)),
		mux.Search(l.critical(l.search, gldap.ControlTypePaging)),
		mux.ExtendedOperation(l.critical(l.startTLS), gldap.ExtendedOperationStartTLS),
		mux.ExtendedOperation(l.critical(l.whoAmI), gldap.ExtendedOperationWhoAmI),
		mux.Unbind(func(*gldap.ResponseWriter, *gldap.Request) {}),
		mux.Compare(l.critical(l.compare)),
		mux.DefaultRoute(l.critical(l.unsupported)),
	} {
		if err != nil {
			return nil, err
		}
	}
	return mux, nil
}

// critical refuses a request that carries a critical control other than
// the implemented ones, with unavailableCriticalExtension and without
// running h (RFC 4511 4.1.11). Controls not marked critical are ignored,
// as the RFC allows. A refused bind still drops the connection's previous
// authentication, as any failed bind does (4.2.1), and as slapd does.
//
// Every answered request passes here, so this is also where an anonymous
// session is established when allow_anonymous makes it legitimate: from
// then on the connection idles under idle_timeout instead of
// first_request_timeout. Without allow_anonymous only a successful bind
// establishes a connection (bind.go), so a client that sends an anonymous
// bind or reads the root DSE and then waits is closed after
// first_request_timeout of silence.
func (l *listener) critical(h gldap.HandlerFunc, implemented ...string) gldap.HandlerFunc {
	return func(w *gldap.ResponseWriter, r *gldap.Request) {
		if l.s.settings().cfg.AllowAnonymous {
			defer r.MarkEstablished()
		}
		for _, oid := range r.CriticalControls() {
			if slices.Contains(implemented, oid) {
				continue
			}
			if r.Operation() == "bind" {
				l.session(r.ConnectionID()).set(bindAnonymous, "", "")
			}
			l.answer(w, opLabel(r), r.NewResponse(gldap.WithResponseCode(gldap.ResultUnavailableCriticalExtension),
				gldap.WithDiagnosticMessage("critical control "+oid+" is not supported")))
			return
		}
		h(w, r)
	}
}

// opLabel is the metric label of a request's operation.
func opLabel(r *gldap.Request) string {
	switch op := r.Operation(); op {
	case "extendedOperation":
		return "extended"
	case "modifyDN":
		return "modify_dn"
	default:
		return op
	}
}

// resultLabels are the result codes' metric labels: gldap's names in
// snake_case, as every other dirgate metric label is written.
var resultLabels = func() map[int]string {
	m := make(map[int]string, len(gldap.ResultCodeMap))
	for code, name := range gldap.ResultCodeMap {
		m[int(code)] = strings.ReplaceAll(strings.ToLower(strings.TrimSpace(name)), " ", "_")
	}
	return m
}()

// result is a final response: the one that ends a request, with its result
// code.
type result interface {
	gldap.Response
	ResultCode() int
}

// answer writes the final response of an operation, counted in the metrics
// under the label op and its result code. It is counted before it is
// written, so that a client that has the answer sees it counted.
func (l *listener) answer(w *gldap.ResponseWriter, op string, resp result) {
	code := resp.ResultCode()
	name, ok := resultLabels[code]
	if !ok {
		name = fmt.Sprintf("code_%d", code)
	}
	metrics.LDAPOps.WithLabelValues(op, name).Inc()
	l.write(w, resp)
}

// write sends a response uncounted (search entries, and the answers that
// are not operations' results: see answer), logging a failure: the client
// has gone, nothing else is to be done.
func (l *listener) write(w *gldap.ResponseWriter, r gldap.Response) {
	if err := w.Write(r); err != nil {
		l.s.log.Debug("ldap write failed", "err", err)
	}
}

// unsupported answers what dirgate does not serve: write operations (it
// serves a read-only copy) and extended operations it does not know, which
// RFC 4511 4.12 answers with protocolError, naming the OID as slapd does.
func (l *listener) unsupported(w *gldap.ResponseWriter, r *gldap.Request) {
	code, msg := gldap.ResultUnwillingToPerform, "dirgate serves a read-only copy of the directory; this operation is not supported"
	if name := r.ExtendedName(); name != "" {
		code, msg = gldap.ResultProtocolError, "unsupported extended operation "+string(name)
	}
	l.answer(w, opLabel(r), r.NewResponse(gldap.WithResponseCode(code), gldap.WithDiagnosticMessage(msg)))
}

// startTLS upgrades the connection. A listener that does not offer
// StartTLS answers protocolError (RFC 4511 4.14.1: not supported by design
// or configuration); a connection already under TLS answers operationsError
// (RFC 4513 3.1.1), as slapd does.
func (l *listener) startTLS(w *gldap.ResponseWriter, r *gldap.Request) {
	resp := r.NewExtendedResponse()
	resp.SetResponseName(gldap.ExtendedOperationStartTLS)
	code := gldap.ResultSuccess
	switch {
	case r.IsTLS():
		code = gldap.ResultOperationsError
		resp.SetDiagnosticMessage("TLS already started")
	case l.s.tls == nil || !l.s.settings().cfg.StartTLS:
		code = gldap.ResultProtocolError
		resp.SetDiagnosticMessage("StartTLS is not offered on this listener")
	}
	resp.SetResultCode(code)
	l.answer(w, opLabel(r), resp)
	if code != gldap.ResultSuccess {
		return
	}
	if err := r.StartTLS(l.s.tls); err != nil {
		l.s.log.Info("StartTLS handshake failed", "remote", remote(r), "err", err)
	}
}

func (l *listener) whoAmI(w *gldap.ResponseWriter, r *gldap.Request) {
	sess := l.session(r.ConnectionID())
	sess.mu.Lock()
	authz := ""
	if sess.kind != bindAnonymous {
		authz = "dn:" + sess.dn
	}
	sess.mu.Unlock()
	resp := r.NewExtendedResponse(gldap.WithResponseCode(gldap.ResultSuccess))
	resp.SetResponseValue(authz)
	l.answer(w, opLabel(r), resp)
}

func remote(r *gldap.Request) string {
	if a := r.RemoteAddr(); a != nil {
		return a.String()
	}
	return ""
}
