// Package admin serves dirgate's admin HTTP listener: the open probes
// (/healthz, /readyz, /metrics), a token-protected JSON API under /api/v1/,
// and a server-rendered web console (sign in with the admin token) to watch
// connectors, synchronize them, test their connections, review and apply
// plans the safety rules blocked, browse the cache and look accounts up by
// email address.
//
// The package does not know how syncs are scheduled or run: it talks to the
// running dirgate through Backend, which the server's scheduler implements.
package admin

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/state"
	dirsync "github.com/dirgate/dirgate/sync"
	"github.com/dirgate/dirgate/testconn"
)

// Backend is what the admin server needs from the running dirgate. The
// API serves the statuses and reports it returns as they are: those types
// carry their own wire form, and the API's Client decodes the same types.
// Status fills every field, Blocked and CacheAge included, as
// dirsync.Scheduler.Status does.
type Backend interface {
	Status(ctx context.Context) ([]dirsync.ConnectorStatus, error)
	SyncNow(ctx context.Context, name string, o dirsync.Options) (*dirsync.Result, error) // dirsync.ErrRunning when busy; *dirsync.BlockedError when safety blocks
	Blocked(name string) (*dirsync.Result, bool)                                          // the plan of the connector's last blocked run, if still pending
	TestConnection(ctx context.Context, name string) (*testconn.Report, error)
	Runs(ctx context.Context, name string, limit int) ([]state.Run, error)
	Store() *cache.Store
}

// Options configure the admin server.
type Options struct {
	// Token is the admin bearer token (config admin.token_env/token_file).
	// An empty token locks the API and the console: nothing is accepted.
	Token string
	// MaxCacheAge makes /readyz fail for a connector whose last successful
	// sync is older; zero means the configuration's default, 26h.
	MaxCacheAge time.Duration
	Logger      *slog.Logger
	// Version is shown in the console's footer.
	Version string
	// Metrics serves /metrics; nil answers 404.
	Metrics http.Handler
	// EntraApps are the app registrations of the entra connectors, by
	// connector name: their pages offer "Connect Entra ID".
	EntraApps map[string]EntraApp
	// Cluster shows cluster mode (the Cluster page, GET /api/v1/cluster,
	// the lag rule of /readyz, the role in every page); nil without it.
	Cluster Cluster
	// MaxLag makes /readyz fail when Cluster's lag is larger
	// (cluster.max_lag); zero means DefaultMaxLag.
	MaxLag time.Duration
	// Agents shows the sync agents (the Agents page, /api/v1/agents and
	// its token and revoke endpoints); nil when the hub has no agent
	// listener.
	Agents Agents
	// PublicURL is the console's address as administrators' browsers
	// reach it (e.g. https://dirgate.example.com:8081), for the admin
	// consent redirect URI; empty takes it from each request.
	PublicURL string
}

// ErrUnknownConnector may be returned (wrapped) by a Backend for a name
// that is not configured; the API answers 404. The server also checks names
// against Status before calling the backend.
var ErrUnknownConnector = errors.New("no such connector")

// DefaultMaxCacheAge is the cache age /readyz accepts when
// Options.MaxCacheAge is zero.
const DefaultMaxCacheAge = 26 * time.Hour

// New returns the admin listener's handler.
func New(b Backend, o Options) http.Handler {
	return newServer(b, o)
}
