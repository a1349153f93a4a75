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

	"github.com/dirgate/dirgate/authn"
	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/demodir"
	"github.com/dirgate/dirgate/proxy"
	dirsync "github.com/dirgate/dirgate/sync"
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
	var tlsCfg *tls.Config
	if cfg.LDAP.TLS != nil {
		cert, err := tls.LoadX509KeyPair(cfg.LDAP.TLS.CertFile, cfg.LDAP.TLS.KeyFile)
		if err != nil {
			return fmt.Errorf("ldap.tls: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	// Everything that can fail on configuration is checked before anything
	// listens: a config error never leaves a half-configured server.
	store, err := openCache(cfg, log, true)
	if err != nil {
		return err
	}
	defer store.Close()
	first, err := authn.New(cfg, store, log)
	if err != nil {
		return err
	}
	auth := &liveAuth{}
	auth.p.Store(first)
	first.Activate()
	defer func() { _ = auth.p.Load().Close() }()
	srv, err := proxy.New(cfg, store, auth, tlsCfg, log)
	if err != nil {
		return err
	}
	provider, err := newProvider(cfg, store, auth, log)
	if err != nil {
		return err
	}
	var web *http.Server
	if provider != nil {
		mux := http.NewServeMux()
		mux.Handle("/", provider)
		for path, h := range extra {
			mux.Handle(path, h)
		}
		if web, err = httpServer(mux, cfg.OIDC.TLS); err != nil {
			return err
		}
	}
	eng := dirsync.New(store, log)
	sched, err := dirsync.NewScheduler(cfg, eng, store, func(c *config.Connector) (dirsync.Source, error) { return sources.New(c, log) }, log)
	if err != nil {
		return err
	}
	var live atomic.Pointer[config.Config]
	live.Store(cfg)
	var adminSrv *http.Server
	if cfg.Admin != nil {
		if adminSrv, err = newAdmin(cfg, &adminBackend{sched: sched, store: store, cfg: live.Load}, log); err != nil {
			return err
		}
	}
	lns, err := listen(cfg)
	if err != nil {
		return err
	}
	errc := make(chan error, len(lns))
	for _, l := range lns {
		if l.admin {
			log.Info("admin listening", "addr", l.ln.Addr().String())
			go func() { errc <- serveOn(adminSrv, l.ln) }()
			continue
		}
		if l.web {
			log.Info("oidc listening", "addr", l.ln.Addr().String(), "issuer", cfg.OIDC.Issuer)
			go func() { errc <- serveOn(web, l.ln) }()
			go provider.Run(ctx)
			continue
		}
		log.Info("ldap listening", "addr", l.ln.Addr().String(), "ldaps", l.ldaps)
		go func() { errc <- srv.Serve(l.ln, l.ldaps) }()
	}
	if ready != nil {
		ready()
	}

	schedCtx, stopSched := context.WithCancel(ctx)
	schedDone := make(chan struct{})
	go func() { sched.Run(schedCtx); close(schedDone) }()

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
loop:
	for {
		select {
		case <-ctx.Done():
			log.Info("shutting down")
			break loop
		case err = <-errc:
			log.Error("listener stopped", "err", err)
			break loop
		case <-hup:
			if next := reload(cfg.Path, store, auth, srv, sched, log); next != nil {
				live.Store(next)
			}
		}
	}
	// A run in progress is never left half-applied: the scheduler's runs
	// end with their context, and an interrupted run aborts its generation
	// (the served state stays the previous one).
	stopSched()
	<-schedDone
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if serr := srv.Shutdown(sctx); serr != nil {
		log.Warn("shutdown", "err", serr)
	}
	for _, h := range []*http.Server{web, adminSrv} {
		if h != nil {
			if serr := h.Shutdown(sctx); serr != nil {
				log.Warn("http shutdown", "err", serr)
			}
		}
	}
	return err
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
func reload(path string, store *cache.Store, auth *liveAuth, srv *proxy.Server, sched *dirsync.Scheduler, log *slog.Logger) *config.Config {
	if path == "" {
		log.Warn("SIGHUP: no configuration file to reload (demo mode)")
		return nil
	}
	cfg, err := config.Load(path)
	if err != nil {
		log.Error("SIGHUP: configuration not reloaded", "err", err)
		return nil
	}
	next, err := authn.New(cfg, store, log)
	if err != nil {
		log.Error("SIGHUP: configuration not reloaded", "err", err)
		return nil
	}
	if err := sched.Reload(cfg); err != nil {
		_ = next.Close()
		log.Error("SIGHUP: configuration not reloaded", "err", err)
		return nil
	}
	if err := srv.Reload(cfg); err != nil {
		log.Error("SIGHUP: LDAP settings not reloaded", "err", err)
	}
	old := auth.p.Swap(next)
	_ = old.Close()
	next.Activate()
	log.Info("configuration reloaded", "path", path)
	return cfg
}
