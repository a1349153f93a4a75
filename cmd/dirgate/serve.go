package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/dirgate/dirgate/agent/hub"
	"github.com/dirgate/dirgate/authn"
	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/demodir"
	"github.com/dirgate/dirgate/oidc"
	"github.com/dirgate/dirgate/proxy"
	"github.com/dirgate/dirgate/state"
	dirsync "github.com/dirgate/dirgate/sync"
	"github.com/dirgate/dirgate/sync/agentsource"
	"github.com/dirgate/dirgate/sync/sources"
)

func serveCmd() *cobra.Command {
	var demo bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve LDAP from the cache (syncing connectors whose cache is empty first)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			var cfg *config.Config
			var extra map[string]http.Handler
			var ready func()
			if demo {
				dir, err := demodir.Start("127.0.0.1:0")
				if err != nil {
					return err
				}
				defer dir.Stop()
				rp := demodir.NewRP(demoIssuer())
				if cfg, err = demoConfig(dir, rp); err != nil {
					return err
				}
				extra = map[string]http.Handler{"/demo/": rp}
				ready = func() { printDemoBanner(stderr) }
			} else {
				var err error
				if cfg, err = loadConfig(cmd); err != nil {
					return err
				}
			}
			return serve(ctx, cfg, newLogger(stderr, cfg.Log), extra, ready)
		},
	}
	cmd.Flags().BoolVar(&demo, "demo", false, "serve the bundled demo directory (no configuration needed)")
	return cmd
}

// serveGCPercent is the server's GOGC unless the environment sets one.
const serveGCPercent = 75

// serve runs the LDAP and OIDC front-ends; extra handlers (the demo
// application) are mounted on the OIDC listener. ready, when not nil, is
// called once every listener is open.
func serve(ctx context.Context, cfg *config.Config, log *slog.Logger, extra map[string]http.Handler, ready func()) error {
	proxy.Version = version
	if os.Getenv("GOGC") == "" {
		// Most of a server's heap is long-lived (Badger's memtable and block
		// cache, the in-memory index); letting the heap double over it
		// before each collection would nearly double the resident size.
		debug.SetGCPercent(serveGCPercent)
	}
	s, err := build(ctx, cfg, log, extra)
	if err != nil {
		return err
	}
	defer s.close()
	if err := s.start(ctx, ready); err != nil {
		return err
	}
	err = s.wait(ctx)
	s.stop()
	return err
}

// server is a built server: its parts are made by build, run by start and
// wait, stopped by stop and released by close.
type server struct {
	cfg      *config.Config
	log      *slog.Logger
	store    *cache.Store
	states   state.Stores
	auth     *liveAuth
	ldap     *proxy.Server
	provider oidcServer   // nil without an oidc section
	web      *http.Server // the OIDC listener's, nil without one
	admin    *http.Server // nil without an admin section
	sched    *dirsync.Scheduler
	replica  *replica                      // nil without a cluster section
	agents   *agentHub                     // nil without an agent section
	live     atomic.Pointer[config.Config] // the configuration in force

	// Set by start.
	errc      chan error // a listener that stopped
	stopSched context.CancelFunc
	schedDone chan struct{}
}

// build makes every part of the server from cfg. Everything that can fail
// on configuration is checked here, before anything listens: a config
// error never leaves a half-configured server. On error, what was opened
// is closed again.
func build(ctx context.Context, cfg *config.Config, log *slog.Logger, extra map[string]http.Handler) (_ *server, err error) {
	s := &server{cfg: cfg, log: log}
	s.live.Store(cfg)
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	var tlsCfg *tls.Config
	if cfg.LDAP.TLS != nil {
		cert, err := tls.LoadX509KeyPair(cfg.LDAP.TLS.CertFile, cfg.LDAP.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("ldap.tls: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	store, err := openCache(cfg, log, true)
	if err != nil {
		return nil, err
	}
	s.store = store
	if cfg.Cluster == nil {
		s.states = openStates(store)
	} else {
		if s.replica, err = openReplica(ctx, cfg, log); err != nil {
			return nil, err
		}
		if s.states, err = s.replica.states(log); err != nil {
			return nil, err
		}
	}
	if s.agents, err = s.openAgents(cfg, log); err != nil {
		return nil, err
	}
	if s.replica != nil && s.agents != nil {
		s.replica.agentIDs = s.agents.connectedIDs
	}
	first, err := authn.New(cfg, store, s.states, log, s.authOptions()...)
	if err != nil {
		return nil, err
	}
	auth := &liveAuth{}
	auth.p.Store(first)
	first.Activate()
	s.auth = auth
	if s.ldap, err = proxy.New(cfg, store, auth, tlsCfg, log); err != nil {
		return nil, err
	}
	if s.provider, err = s.openProvider(cfg, log); err != nil {
		return nil, err
	}
	if s.provider != nil {
		mux := http.NewServeMux()
		mux.Handle("/", s.provider)
		for path, h := range extra {
			mux.Handle(path, h)
		}
		if s.web, err = httpServer(mux, cfg.OIDC.TLS); err != nil {
			return nil, err
		}
	}
	eng := dirsync.New(store, s.states, log)
	if s.sched, err = dirsync.NewScheduler(cfg, eng, store, func(c *config.Connector) (dirsync.Source, error) { return sources.NewWithHub(c, s.hub(), log) }, log); err != nil {
		return nil, err
	}
	if s.replica != nil {
		if err := s.replica.prepare(eng, s.sched, store); err != nil {
			return nil, err
		}
	}
	if cfg.Admin != nil {
		b := &adminBackend{sched: s.sched, store: store, history: s.states.Sync, cfg: s.live.Load, agents: s.agents}
		if s.replica != nil {
			b.cluster = s.replica.view()
			if fb, ok := s.states.Throttle.(*state.Fallback); ok {
				b.cluster.throttle = fb.Shared
			}
		}
		if s.admin, err = newAdmin(cfg, b, log); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// openProvider makes the OIDC provider (nil without an oidc section). A
// replica whose database cannot be reached gets a lateProvider, which
// fails sign-ins closed until the provider can read its signing keys.
func (s *server) openProvider(cfg *config.Config, log *slog.Logger) (oidcServer, error) {
	build := func() (*oidc.Provider, error) { return newProvider(cfg, s.store, s.states, s.auth, log) }
	p, err := build()
	switch {
	case err != nil && s.replica != nil && unreachable(err):
		log.Warn("oidc: the database is unreachable: sign-ins fail (503) until the signing keys can be read", "err", err)
		return &lateProvider{build: build, log: log}, nil
	case err != nil:
		return nil, err
	case p == nil:
		return nil, nil // not a nil *oidc.Provider in the interface
	}
	return p, nil
}

// openAgents opens the agent listener (nil without an agent section): its
// agents are kept in the cache alone, or in a cluster in PostgreSQL, where
// every replica sees them, and Welcome lists the live replicas' agent URLs
// from the registry, so that each agent connects to every replica and the
// sync leader, whichever it is, has the agents of every connector.
func (s *server) openAgents(cfg *config.Config, log *slog.Logger) (*agentHub, error) {
	if s.replica == nil {
		return openAgentHub(cfg, s.store, "", nil, log)
	}
	return openAgentHub(cfg, s.replica.agents, cfg.Cluster.ReplicaName, s.replica.peers, log)
}

// hub is the agent hub, nil without one.
func (s *server) hub() *hub.Hub {
	if s.agents == nil {
		return nil
	}
	return s.agents.hub
}

// authOptions send the checks of via: agent connectors to the hub.
func (s *server) authOptions() []authn.Option {
	if s.agents == nil {
		return nil
	}
	return []authn.Option{authn.WithAgents(agentsource.Checker{Hub: s.agents.hub})}
}

// openStates opens the state stores of a single process: the ones kept in
// the cache database (a replica's are in PostgreSQL, see replica.states).
// Each call gives in-memory tables of its own (codes, throttle counters).
func openStates(store *cache.Store) state.Stores { return store.States() }

// start opens the listeners and serves on them, calls ready (when not nil)
// and starts the scheduler, or in a cluster the replica's part, which runs
// the scheduler while it leads.
func (s *server) start(ctx context.Context, ready func()) error {
	lns, err := listen(s.cfg)
	if err != nil {
		return err
	}
	s.errc = make(chan error, len(lns)+1)
	if s.agents != nil {
		if err := s.agents.start(ctx, s.errc, s.log); err != nil {
			for _, l := range lns {
				l.ln.Close()
			}
			return err
		}
	}
	for _, l := range lns {
		if l.admin {
			s.log.Info("admin listening", "addr", l.ln.Addr().String())
			go func() { s.errc <- serveOn(s.admin, l.ln) }()
			continue
		}
		if l.web {
			s.log.Info("oidc listening", "addr", l.ln.Addr().String(), "issuer", s.cfg.OIDC.Issuer)
			go func() { s.errc <- serveOn(s.web, l.ln) }()
			go s.provider.Run(ctx)
			continue
		}
		s.log.Info("ldap listening", "addr", l.ln.Addr().String(), "ldaps", l.ldaps)
		go func() { s.errc <- s.ldap.Serve(l.ln, l.ldaps) }()
	}
	if ready != nil {
		ready()
	}
	var schedCtx context.Context
	schedCtx, s.stopSched = context.WithCancel(ctx)
	s.schedDone = make(chan struct{})
	run := s.sched.Run
	if s.replica != nil {
		run = s.replica.run
	}
	go func() {
		defer close(s.schedDone)
		if sw, ok := s.states.Throttle.(state.ThrottleSweeper); ok {
			swept := make(chan struct{})
			go func() {
				defer close(swept)
				sweepThrottle(schedCtx, sw, func() time.Duration { return s.live.Load().Auth.Throttle.Window.Std() }, s.log)
			}()
			defer func() { <-swept }()
		}
		run(schedCtx)
	}()
	return nil
}

// wait serves until ctx ends or a listener stops, reloading the
// configuration on SIGHUP. It returns the error of a listener that
// stopped.
func (s *server) wait(ctx context.Context) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			s.log.Info("shutting down")
			return nil
		case err := <-s.errc:
			s.log.Error("listener stopped", "err", err)
			return err
		case <-hup:
			if next := s.reload(); next != nil {
				s.live.Store(next)
			}
		}
	}
}

// stop shuts down in order what start started: the scheduler (in a
// cluster: the lease, released, and the change-log follower) first, then
// the listeners.
func (s *server) stop() {
	// A run in progress is never left half-applied: the scheduler's runs
	// end with their context, and an interrupted run aborts its generation
	// (the served state stays the previous one).
	s.stopSched()
	<-s.schedDone
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if s.agents != nil {
		if serr := s.agents.shutdown(sctx); serr != nil {
			s.log.Warn("agent listener shutdown", "err", serr)
		}
	}
	if serr := s.ldap.Shutdown(sctx); serr != nil {
		s.log.Warn("shutdown", "err", serr)
	}
	for _, h := range []*http.Server{s.web, s.admin} {
		if h != nil {
			if serr := h.Shutdown(sctx); serr != nil {
				s.log.Warn("http shutdown", "err", serr)
			}
		}
	}
}

// close releases what build opened: the authenticator's upstream
// connections, the cache, then the cluster's database connections.
func (s *server) close() {
	if s.auth != nil {
		_ = s.auth.p.Load().Close()
	}
	if s.store != nil {
		_ = s.store.Close()
	}
	if s.replica != nil {
		s.replica.close()
	}
}

type boundListener struct {
	ln    net.Listener
	ldaps bool
	web   bool
	admin bool
}

func listen(cfg *config.Config) ([]boundListener, error) {
	var out []boundListener
	closeAll := func() {
		for _, l := range out {
			l.ln.Close()
		}
	}
	oidcAddr, adminAddr := "", ""
	if cfg.OIDC != nil {
		oidcAddr = cfg.OIDC.Listen
	}
	if cfg.Admin != nil {
		adminAddr = cfg.Admin.Listen
	}
	for _, spec := range []struct {
		addr              string
		ldaps, web, admin bool
	}{{cfg.LDAP.Listen, false, false, false}, {cfg.LDAP.LDAPSListen, true, false, false}, {oidcAddr, false, true, false}, {adminAddr, false, false, true}} {
		if spec.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", spec.addr)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("listen on %s: %w", spec.addr, err)
		}
		out = append(out, boundListener{ln, spec.ldaps, spec.web, spec.admin})
	}
	return out, nil
}

// liveAuth lets a configuration reload swap the authenticator under the
// LDAP front-end and the OIDC provider.
type liveAuth struct {
	p atomic.Pointer[authn.Authenticator]
}

func (a *liveAuth) Login(ctx context.Context, at authn.Attempt) (*authn.Identity, error) {
	return a.p.Load().Login(ctx, at)
}

// reload re-reads the configuration file on SIGHUP. An invalid file
// changes nothing. Connectors, schedules, safety rules, service accounts,
// LDAP limits and authentication settings apply at once; listener
// addresses, certificates and the OIDC clients need a restart.
func (s *server) reload() *config.Config {
	path, log := s.cfg.Path, s.log
	if path == "" {
		log.Warn("SIGHUP: no configuration file to reload (demo mode)")
		return nil
	}
	cfg, err := config.Load(path)
	if err != nil {
		log.Error("SIGHUP: configuration not reloaded", "err", err)
		return nil
	}
	// The new authenticator keeps the process's stores: a reload must not
	// lift the lockouts an attacker has earned, and a shared store would
	// keep them anyway.
	next, err := authn.New(cfg, s.store, s.states, log, s.authOptions()...)
	if err != nil {
		log.Error("SIGHUP: configuration not reloaded", "err", err)
		return nil
	}
	if err := s.sched.Reload(cfg); err != nil {
		_ = next.Close()
		log.Error("SIGHUP: configuration not reloaded", "err", err)
		return nil
	}
	if err := s.ldap.Reload(cfg); err != nil {
		log.Error("SIGHUP: LDAP settings not reloaded", "err", err)
	}
	old := s.auth.p.Swap(next)
	_ = old.Close()
	next.Activate()
	s.store.SetOnPremPairs(cfg.OnPremPairs())
	log.Info("configuration reloaded", "path", path)
	return cfg
}
