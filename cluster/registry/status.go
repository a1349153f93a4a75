package registry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Replica is one row of the registry as the status shows it.
type Replica struct {
	Name     string    `json:"name"`
	Holder   string    `json:"holder"`
	AdminURL string    `json:"admin_url,omitempty"`
	Version  string    `json:"version"`
	Started  time.Time `json:"started"`
	Seen     time.Time `json:"seen"`
	// Position is the last change-log record in the replica's cache,
	// PositionAt that record's time (zero before the first).
	Position   uint64    `json:"position"`
	PositionAt time.Time `json:"position_at,omitzero"`
	// Leader: the replica holds the sync lease now (by the lease row, not
	// by its own last report, which a dead leader cannot correct).
	Leader bool `json:"leader"`
	// Gone: no heartbeat within the status's GoneAfter.
	Gone bool `json:"gone"`
	// Behind is how many records the replica lacks. Lag is how stale its
	// cache may be, as it reported at its last heartbeat (the change
	// log's Lag: zero while it is known to be at the head, otherwise the
	// time since it last was). For a replica that does not report it (an
	// older release), Lag is how much older its last record is than the
	// head's (0 at the head), or the time since it started when it has
	// applied nothing yet.
	Behind uint64        `json:"behind"`
	Lag    time.Duration `json:"lag_ns"`
}

// Lease is the sync lease row.
type Lease struct {
	Holder  string    `json:"holder"`
	Epoch   int64     `json:"epoch"`
	Expires time.Time `json:"expires"`
	// Valid: unexpired by the database clock, so Holder leads.
	Valid bool `json:"valid"`
}

// Status is the cluster as PostgreSQL records it.
type Status struct {
	// Now is the database clock when the status was read.
	Now time.Time `json:"now"`
	// Lease is the sync lease; nil before any replica took it.
	Lease *Lease `json:"lease"`
	// Head is the newest change-log record and HeadAt its time (0 and zero
	// while the log is empty).
	Head      uint64        `json:"head"`
	HeadAt    time.Time     `json:"head_at,omitzero"`
	GoneAfter time.Duration `json:"gone_after_ns"`
	Replicas  []Replica     `json:"replicas"`
}

// LeaderName returns the name of the replica that leads, "" when none.
func (s *Status) LeaderName() string {
	for _, r := range s.Replicas {
		if r.Leader {
			return r.Name
		}
	}
	return ""
}

// HeadFunc reads the change log's head: the newest sequence number and its
// time (changelog's Head).
type HeadFunc func(ctx context.Context) (seq uint64, at time.Time, err error)

// ReadOptions tune Read.
type ReadOptions struct {
	// LeaseName is the lease that names the leader. Default "sync".
	LeaseName string
	// GoneAfter marks a replica gone when its last heartbeat is older.
	// Default DefaultGoneAfter.
	GoneAfter time.Duration
	// Head reads the change log's head; nil reports an empty log.
	Head HeadFunc
}

// Read assembles the cluster's status, replicas sorted by name.
func Read(ctx context.Context, db DB, o ReadOptions) (*Status, error) {
	if o.LeaseName == "" {
		o.LeaseName = "sync"
	}
	if o.GoneAfter <= 0 {
		o.GoneAfter = DefaultGoneAfter
	}
	st := &Status{GoneAfter: o.GoneAfter}
	l := new(Lease)
	err := db.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&st.Now)
	if err == nil {
		err = db.QueryRow(ctx, `SELECT holder, epoch, expires_at, expires_at > clock_timestamp() FROM leader_lease WHERE name = $1`,
			o.LeaseName).Scan(&l.Holder, &l.Epoch, &l.Expires, &l.Valid)
	}
	switch {
	case err == nil:
		st.Lease = l
	case !errors.Is(err, pgx.ErrNoRows):
		return nil, fmt.Errorf("registry: read the lease: %w", err)
	}
	if o.Head != nil {
		if st.Head, st.HeadAt, err = o.Head(ctx); err != nil {
			return nil, fmt.Errorf("registry: read the change log's head: %w", err)
		}
	}
	rows, err := db.Query(ctx, `SELECT name, holder, admin_url, version, started, seen, position, position_at, lag_ms
		FROM cluster_replica ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("registry: read replicas: %w", err)
	}
	st.Replicas, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Replica, error) {
		var r Replica
		var pos int64
		var at *time.Time
		var lag *int64
		err := row.Scan(&r.Name, &r.Holder, &r.AdminURL, &r.Version, &r.Started, &r.Seen, &pos, &at, &lag)
		r.Position = uint64(pos)
		if at != nil {
			r.PositionAt = *at
		}
		st.judge(&r)
		if lag != nil {
			r.Lag = time.Duration(*lag) * time.Millisecond
		}
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("registry: read replicas: %w", err)
	}
	return st, nil
}

// judge fills r's verdicts: leader, gone, and lag behind the head by the
// positions.
func (s *Status) judge(r *Replica) {
	r.Leader = s.Lease != nil && s.Lease.Valid && s.Lease.Holder == r.Holder
	r.Gone = s.Now.Sub(r.Seen) > s.GoneAfter
	if r.Position >= s.Head {
		return
	}
	r.Behind = s.Head - r.Position
	from := r.PositionAt
	if from.IsZero() {
		from = r.Started
		r.Lag = max(s.Now.Sub(from), 0)
		return
	}
	r.Lag = max(s.HeadAt.Sub(from), 0)
}
