package admin

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/dirgate/dirgate/cluster/registry"
)

// Cluster is what the admin server shows of cluster mode: the Cluster
// page, GET /api/v1/cluster, the replica's role in every page and the lag
// rule of /readyz.
type Cluster interface {
	// Replica is this replica's name (cluster.replica_name).
	Replica() string
	// Leader tells whether this replica leads the syncs now.
	Leader() bool
	// Lag is how far this replica's cache is behind the change log,
	// measured against the last head it saw: while PostgreSQL is
	// unreachable it grows with the time since it last saw the head.
	Lag() time.Duration
	// Status reads the cluster's replicas, lease and head from PostgreSQL.
	Status(ctx context.Context) (*registry.Status, error)
}

// DefaultMaxLag is the lag /readyz accepts when Options.MaxLag is zero.
const DefaultMaxLag = 30 * time.Second

// role names this replica's part: "leader", "standby", or "" without
// cluster mode.
func (s *server) role() string {
	switch {
	case s.o.Cluster == nil:
		return ""
	case s.o.Cluster.Leader():
		return "leader"
	}
	return "standby"
}

// clusterReadiness is this replica's verdict in /readyz and the API.
type clusterReadiness struct {
	Replica       string  `json:"replica"`
	Role          string  `json:"role"`
	Ready         bool    `json:"ready"`
	Reason        string  `json:"reason,omitempty"`
	LagSeconds    float64 `json:"lag_seconds"`
	MaxLagSeconds float64 `json:"max_lag_seconds"`
}

// clusterReady judges this replica's change-log lag; nil without cluster
// mode.
func (s *server) clusterReady() *clusterReadiness {
	c := s.o.Cluster
	if c == nil {
		return nil
	}
	lag := c.Lag()
	r := &clusterReadiness{Replica: c.Replica(), Role: s.role(), Ready: lag <= s.o.MaxLag,
		LagSeconds: lag.Seconds(), MaxLagSeconds: s.o.MaxLag.Seconds()}
	if !r.Ready {
		r.Reason = fmt.Sprintf("the cache is %s behind the cluster's change log, more than cluster.max_lag %s", roundAge(lag), s.o.MaxLag)
	}
	return r
}

// ClusterThrottle is implemented by a Cluster whose sign-in throttle falls
// back to this replica's own counts while the database fails
// (state.Fallback): the API and the Cluster page show it.
type ClusterThrottle interface {
	// ThrottleShared tells whether failed sign-ins are counted in the
	// shared store, and since when they are not.
	ThrottleShared() (shared bool, since time.Time)
}

// throttleStatus is where this replica counts failed sign-ins.
type throttleStatus struct {
	Shared     bool      `json:"shared"`
	LocalSince time.Time `json:"local_since,omitzero"` // counted on this replica only since
}

// throttle is this replica's throttle status; nil when the Cluster does
// not tell.
func (s *server) throttle() *throttleStatus {
	ct, ok := s.o.Cluster.(ClusterThrottle)
	if !ok {
		return nil
	}
	shared, since := ct.ThrottleShared()
	if shared {
		since = time.Time{}
	}
	return &throttleStatus{Shared: shared, LocalSince: since}
}

// clusterAnswer is the body of GET /api/v1/cluster.
type clusterAnswer struct {
	clusterReadiness
	Throttle *throttleStatus  `json:"throttle,omitempty"`
	Cluster  *registry.Status `json:"cluster"`
	// Error says why Cluster could not be read (the answer is then a
	// 503); what this replica knows of itself is still given.
	Error string `json:"error,omitempty"`
}

func (s *server) apiCluster(w http.ResponseWriter, r *http.Request) {
	if s.o.Cluster == nil {
		writeError(w, http.StatusNotFound, "cluster mode is off: the configuration has no cluster section")
		return
	}
	a := clusterAnswer{clusterReadiness: *s.clusterReady(), Throttle: s.throttle()}
	st, err := s.o.Cluster.Status(r.Context())
	if err != nil {
		a.Error = "cluster status unavailable: " + err.Error()
		writeJSON(w, http.StatusServiceUnavailable, a)
		return
	}
	a.Cluster = st
	writeJSON(w, http.StatusOK, a)
}

// clusterData is what the Cluster page shows.
type clusterData struct {
	Self     clusterReadiness
	Throttle *throttleStatus
	Status   *registry.Status
	Error    string // PostgreSQL could not be read
	MaxLag   time.Duration
}

func (s *server) clusterPage(w http.ResponseWriter, r *http.Request, sess *session) {
	if s.o.Cluster == nil {
		s.errorPage(w, r, sess, http.StatusNotFound, "Cluster mode is off",
			"This dirgate runs as a single instance: its configuration has no cluster section.")
		return
	}
	d := clusterData{Self: *s.clusterReady(), Throttle: s.throttle(), MaxLag: s.o.MaxLag}
	st, err := s.o.Cluster.Status(r.Context())
	if err != nil {
		d.Error = err.Error()
	}
	d.Status = st
	s.render(w, http.StatusOK, "cluster", page{Title: "Cluster", Nav: "cluster", CSRF: sess.csrf, Data: d})
}
