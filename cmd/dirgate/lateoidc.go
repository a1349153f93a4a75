package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/dirgate/dirgate/oidc"
)

// oidcServer is the OIDC listener's provider: an *oidc.Provider, or a
// lateProvider standing in for one.
type oidcServer interface {
	http.Handler
	Run(ctx context.Context)
}

// lateProvider is the OIDC provider of a replica that started while its
// database was unreachable: a provider needs the signing keys kept there.
// Until they can be read every OIDC request fails closed, 503 with the
// OAuth error temporarily_unavailable; Run builds the provider as soon as
// the database answers and serves it from then on.
type lateProvider struct {
	build func() (*oidc.Provider, error)
	log   *slog.Logger
	p     atomic.Pointer[oidc.Provider]
}

func (l *lateProvider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p := l.p.Load(); p != nil {
		p.ServeHTTP(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Retry-After", "10")
	w.WriteHeader(http.StatusServiceUnavailable)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": "temporarily_unavailable",
		"error_description": "sign-in is not available right now; try again later"})
}

// Run builds the provider, retrying until it succeeds or ctx ends, then
// runs it.
func (l *lateProvider) Run(ctx context.Context) {
	var p *oidc.Provider
	ok := retryBackoff(ctx, func() (err error) {
		p, err = l.build()
		return err
	}, func(err error, next time.Duration) {
		l.log.Warn("oidc: the provider cannot start yet; sign-ins fail until it does", "err", err, "retry_in", next)
	})
	if !ok {
		return
	}
	l.log.Info("oidc: the signing keys are readable: serving sign-ins")
	l.p.Store(p)
	p.Run(ctx)
}
