package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/dirgate/dirgate/admin"
	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/metrics"
	"github.com/dirgate/dirgate/state"
	dirsync "github.com/dirgate/dirgate/sync"
	"github.com/dirgate/dirgate/testconn"
)

// adminBackend adapts the running server's parts to the admin package.
type adminBackend struct {
	sched   *dirsync.Scheduler
	store   *cache.Store
	history state.Sync // run history
	cfg     func() *config.Config
}

func (b *adminBackend) Status(ctx context.Context) ([]dirsync.ConnectorStatus, error) {
	return b.sched.Status(ctx)
}

func (b *adminBackend) SyncNow(ctx context.Context, name string, o dirsync.Options) (*dirsync.Result, error) {
	return b.sched.SyncNow(ctx, name, o)
}

func (b *adminBackend) Blocked(name string) (*dirsync.Result, bool) { return b.sched.Blocked(name) }

func (b *adminBackend) TestConnection(ctx context.Context, name string) (*testconn.Report, error) {
	c, ok := b.cfg().Connector(name)
	if !ok {
		return nil, fmt.Errorf("%w: %q", dirsync.ErrUnknownConnector, name)
	}
	return testconn.Run(ctx, c), nil
}

func (b *adminBackend) Runs(ctx context.Context, name string, limit int) ([]state.Run, error) {
	return b.history.Runs(ctx, name, limit)
}

func (b *adminBackend) Store() *cache.Store { return b.store }

// newAdmin builds the admin listener's server: API, console, /metrics,
// /healthz and /readyz.
func newAdmin(cfg *config.Config, b *adminBackend, log *slog.Logger) (*http.Server, error) {
	h := admin.New(b, admin.Options{Token: cfg.Admin.Token.Reveal(), MaxCacheAge: cfg.Admin.MaxCacheAge.Std(), Logger: log,
		Version: version, Metrics: metrics.Handler(), EntraApps: entraApps(cfg), PublicURL: cfg.Admin.PublicURL})
	srv, err := httpServer(h, cfg.Admin.TLS)
	if err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	// "Synchronize now" and CLI syncs run inside the request: a write
	// timeout would cut off a long full sync's answer.
	srv.WriteTimeout = 0
	return srv, nil
}
