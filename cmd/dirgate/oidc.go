package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/dirgate/dirgate/authn"
	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/oidc"
	"github.com/dirgate/dirgate/passwd"
	"github.com/dirgate/dirgate/proxy"
	"github.com/dirgate/dirgate/state"
)

// newProvider builds the OIDC provider from configuration; nil when the
// configuration has no oidc section.
func newProvider(cfg *config.Config, store *cache.Store, states state.Stores, auth proxy.Authenticator, log *slog.Logger) (*oidc.Provider, error) {
	o := cfg.OIDC
	if o == nil {
		return nil, nil
	}
	secrets := passwd.NewCache()
	pc := oidc.Config{
		Issuer: o.Issuer, KeyRotation: o.KeyRotation.Std(), IDTokenTTL: o.IDTokenTTL.Std(), AccessTokenTTL: o.AccessTokenTTL.Std(),
		RefreshTokenTTL: o.RefreshTokenTTL.Std(), CodeTTL: o.CodeTTL.Std(),
	}
	for _, c := range o.Clients {
		pc.Clients = append(pc.Clients, oidc.Client{
			ID: c.ID, Name: c.Name, Public: c.Public, RedirectURIs: c.RedirectURIs, PostLogoutRedirectURIs: c.PostLogoutRedirectURIs,
			IDTokenSignedResponseAlg: c.IDTokenSignedResponseAlg,
			// Token requests of a busy client would each pay argon2.
			VerifySecret: func(s string) bool { return secrets.Check(c.ID, s, c.VerifySecret) },
		})
	}
	signIn := func(ctx context.Context, login, password, remote string) (*cache.Entry, error) {
		id, err := auth.Login(ctx, authn.Attempt{Login: login, Password: password, Remote: remote, Protocol: "oidc"})
		if err != nil {
			return nil, err
		}
		return id.Entry, nil
	}
	ups, err := upstreams(cfg)
	if err != nil {
		return nil, fmt.Errorf("oidc: %w", err)
	}
	pc.Upstreams = ups
	p, err := oidc.New(pc, store, states, signIn, log)
	if err != nil {
		return nil, fmt.Errorf("oidc: %w", err)
	}
	return p, nil
}

// httpServer serves h on ln (TLS when files are given) until ctx ends.
func httpServer(h http.Handler, files *config.TLSFiles) (*http.Server, error) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	if files != nil {
		cert, err := tls.LoadX509KeyPair(files.CertFile, files.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("oidc.tls: %w", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	return srv, nil
}

func serveOn(srv *http.Server, ln net.Listener) error {
	var err error
	if srv.TLSConfig != nil {
		err = srv.ServeTLS(ln, "", "")
	} else {
		err = srv.Serve(ln)
	}
	if err == http.ErrServerClosed {
		return nil
	}
	return err
}
