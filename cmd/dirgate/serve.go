package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/dirgate/dirgate/authn"
	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/demodir"
	"github.com/dirgate/dirgate/proxy"
	dirsync "github.com/dirgate/dirgate/sync"
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
			if demo {
				dir, err := demodir.Start("127.0.0.1:0")
				if err != nil {
					return err
				}
				defer dir.Stop()
				rp := demodir.NewRP(demoIssuer)
				if cfg, err = demoConfig(dir, rp); err != nil {
					return err
				}
				extra = map[string]http.Handler{"/demo/": rp}
			} else {
				var err error
				if cfg, err = loadConfig(cmd); err != nil {
					return err
				}
			}
			return serve(ctx, cfg, newLogger(stderr, cfg.Log), extra)
		},
	}
	cmd.Flags().BoolVar(&demo, "demo", false, "serve the bundled demo directory (no configuration needed)")
	return cmd
}

// serve runs the LDAP and OIDC front-ends; extra handlers (the demo
// application) are mounted on the OIDC listener.
func serve(ctx context.Context, cfg *config.Config, log *slog.Logger, extra map[string]http.Handler) error {
	proxy.Version = version
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
	store, err := openCache(cfg, log)
	if err != nil {
		return err
	}
	defer store.Close()
	auth, err := authn.New(cfg, store, log)
	if err != nil {
		return err
	}
	defer auth.Close()
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
	lns, err := listen(cfg)
	if err != nil {
		return err
	}
	errc := make(chan error, len(lns))
	for _, l := range lns {
		if l.web {
			log.Info("oidc listening", "addr", l.ln.Addr().String(), "issuer", cfg.OIDC.Issuer)
			go func() { errc <- serveOn(web, l.ln) }()
			go provider.Run(ctx)
			continue
		}
		log.Info("ldap listening", "addr", l.ln.Addr().String(), "ldaps", l.ldaps)
		go func() { errc <- srv.Serve(l.ln, l.ldaps) }()
	}

	eng := dirsync.New(store, log)
	go initialSync(ctx, cfg, store, eng, log)

	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err = <-errc:
		log.Error("ldap listener stopped", "err", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if serr := srv.Shutdown(sctx); serr != nil {
		log.Warn("shutdown", "err", serr)
	}
	if web != nil {
		if serr := web.Shutdown(sctx); serr != nil {
			log.Warn("oidc shutdown", "err", serr)
		}
	}
	return err
}

type boundListener struct {
	ln    net.Listener
	ldaps bool
	web   bool
}

func listen(cfg *config.Config) ([]boundListener, error) {
	var out []boundListener
	closeAll := func() {
		for _, l := range out {
			l.ln.Close()
		}
	}
	oidcAddr := ""
	if cfg.OIDC != nil {
		oidcAddr = cfg.OIDC.Listen
	}
	for _, spec := range []struct {
		addr       string
		ldaps, web bool
	}{{cfg.LDAP.Listen, false, false}, {cfg.LDAP.LDAPSListen, true, false}, {oidcAddr, false, true}} {
		if spec.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", spec.addr)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("listen on %s: %w", spec.addr, err)
		}
		out = append(out, boundListener{ln, spec.ldaps, spec.web})
	}
	return out, nil
}

// initialSync fills the cache of connectors that have never synced, so a
// fresh install serves data without waiting for the first scheduled run.
func initialSync(ctx context.Context, cfg *config.Config, store *cache.Store, eng *dirsync.Engine, log *slog.Logger) {
	var have map[string]bool
	err := store.View(ctx, func(v *cache.View) error {
		have = map[string]bool{}
		for _, c := range v.Connectors() {
			have[c] = true
		}
		return nil
	})
	if err != nil {
		log.Error("read cache state", "err", err)
		return
	}
	for i := range cfg.Connectors {
		c := &cfg.Connectors[i]
		if have[c.Name] {
			continue
		}
		src, err := newSource(c, log)
		if err != nil {
			log.Error("initial sync", "connector", c.Name, "err", err)
			continue
		}
		if _, err := eng.Run(ctx, c, src, dirsync.Options{Trigger: "startup"}); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("initial sync", "connector", c.Name, "err", err)
		}
	}
}

const demoConfigTemplate = `# generated by dirgate serve --demo
cache:
  dir: ./data/demo
ldap:
  listen: 127.0.0.1:3890
service_accounts:
  - dn: cn=app,ou=services,dc=demo,dc=dirgate
    # argon2id of "app-pw"
    password_hash: "%s"
connectors:
  - name: demo
    description: the bundled demo directory
    type: openldap
    host: 127.0.0.1
    port: %d
    encryption: none
    bind_dn: %s
    bind_password_env: DIRGATE_DEMO_SYNC_PASSWORD
    root_dn: %s
oidc:
  issuer: %s
  listen: 127.0.0.1:8080
  clients:
    - id: %s
      name: dirgate demo app
      secret_hash: "%s"
      redirect_uris: [%s]
log:
  format: text
`

// demoIssuer is where `dirgate serve --demo` serves OIDC (and the demo
// application under /demo/).
const demoIssuer = "http://127.0.0.1:8080"

// demoAppHash is the argon2id hash of the demo service account's password
// "app-pw" (see README); computed once with dirgate hash-password.
const demoAppHash = "$argon2id$v=19$m=19456,t=2,p=1$9QRXvhc+9IOOUmXUZZ4zpQ$jgulfSQsfDKToTE/DnNlJQk4hKjjgkfx/usd8ymDEQE"

func demoConfig(dir *demodir.Server, rp *demodir.RP) (*config.Config, error) {
	if err := os.Setenv("DIRGATE_DEMO_SYNC_PASSWORD", demodir.SyncPassword); err != nil {
		return nil, err
	}
	rpHash, err := config.HashPassword(demodir.RPSecret)
	if err != nil {
		return nil, err
	}
	yml := fmt.Sprintf(demoConfigTemplate, demoAppHash, dir.Port(), demodir.SyncDN, demodir.Base,
		demoIssuer, demodir.RPClientID, rpHash, rp.RedirectURI())
	return config.Parse("dirgate-demo.yaml", []byte(yml))
}
