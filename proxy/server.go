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
	"github.com/dirgate/dirgate/hashcache"
	"github.com/dirgate/dirgate/metrics"
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
	verify *hashcache.Cache

	mu        sync.Mutex
	listeners []*listener
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
		verify: hashcache.New(),
	}
	if err := s.Reload(cfg); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload applies a new configuration's service accounts, naming contexts
// and limits to new requests, without touching open connections.
// Listener addresses and certificates need a restart.
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
	s.set.Store(n)
	return nil
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

// slogWriter passes gldap's log lines (hclog) to dirgate's log.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.log.Error("ldap server", "detail", strings.TrimSpace(string(p)))
	return len(p), nil
}

// Serve answers LDAP on ln until Shutdown; ldaps wraps ln in TLS.
func (s *Server) Serve(ln net.Listener, ldaps bool) error {
	l := &listener{s: s, ldaps: ldaps}
	opts := []gldap.Option{
		// gldap logs at Error only what needs a look (a handler panic, a
		// failing accept); the rest of its chatter stays off.
		gldap.WithLogger(hclog.New(&hclog.LoggerOptions{Name: "gldap", Level: hclog.Error, Output: slogWriter{s.log}})),
		gldap.WithIdleTimeout(s.settings().cfg.IdleTimeout.Std()),
		// Handlers answer from the cache or one upstream bind; running them
		// on the reading goroutine saves a thread wake-up per request.
		gldap.WithSerialRequests(),
		gldap.WithWriteTimeout(30 * time.Second),
		gldap.WithMaxConnections(s.settings().cfg.MaxConnections),
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
	for _, err := range []error{
		mux.Bind(l.bind),
		mux.Search(l.search),
		mux.ExtendedOperation(l.startTLS, gldap.ExtendedOperationStartTLS),
		mux.ExtendedOperation(l.whoAmI, gldap.ExtendedOperationWhoAmI),
		mux.Unbind(func(*gldap.ResponseWriter, *gldap.Request) {}),
		mux.Compare(l.compare),
		mux.DefaultRoute(l.unsupported),
	} {
		if err != nil {
			return nil, err
		}
	}
	return mux, nil
}

// count records an answered operation in the metrics.
func count(op string, code int) {
	name, ok := gldap.ResultCodeMap[uint16(code)]
	if !ok {
		name = fmt.Sprintf("code_%d", code)
	}
	metrics.LDAPOps.WithLabelValues(op, name).Inc()
}

// write sends a response, logging a failure: the client has gone, nothing
// else is to be done.
func (l *listener) write(w *gldap.ResponseWriter, r gldap.Response) {
	if err := w.Write(r); err != nil {
		l.s.log.Debug("ldap write failed", "err", err)
	}
}

func (l *listener) unsupported(w *gldap.ResponseWriter, r *gldap.Request) {
	resp := r.NewResponse(gldap.WithResponseCode(gldap.ResultUnwillingToPerform),
		gldap.WithDiagnosticMessage("dirgate serves a read-only copy of the directory; this operation is not supported"))
	l.write(w, resp)
}

func (l *listener) startTLS(w *gldap.ResponseWriter, r *gldap.Request) {
	resp := r.NewExtendedResponse()
	resp.SetResponseName(gldap.ExtendedOperationStartTLS)
	if l.s.tls == nil || !l.s.settings().cfg.StartTLS || l.ldaps || r.IsTLS() {
		resp.SetResultCode(gldap.ResultUnavailable)
		resp.SetDiagnosticMessage("StartTLS is not available on this listener")
		l.write(w, resp)
		return
	}
	resp.SetResultCode(gldap.ResultSuccess)
	l.write(w, resp)
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
	l.write(w, resp)
}

func remote(r *gldap.Request) string {
	if a := r.RemoteAddr(); a != nil {
		return a.String()
	}
	return ""
}
