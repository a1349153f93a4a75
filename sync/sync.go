// Package dirsync copies upstream directories into the cache. A run reads
// the whole upstream listing, diffs it against the served state into a plan
// (adds, updates, deletes), checks the plan against the connector's safety
// rules, and only then commits it as one new cache generation.
//
// The directory is named sync, as the design lays out; the package is named
// dirsync so that importers, which all use the standard library's sync too,
// need no alias.
package dirsync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
)

// Source is an upstream directory that can list its users and groups.
type Source interface {
	// Full passes every in-scope object to emit and returns the host it
	// read from. It must fail rather than return a partial listing.
	Full(ctx context.Context, emit func(*cache.Entry) error) (host string, err error)
}

// Options control one run.
type Options struct {
	DryRun  bool
	Trigger string // cli, schedule, api, console
	// Force applies a plan that the safety rules blocked: the admin's
	// explicit "apply anyway" for this one run.
	Force bool
	// Progress, when set, is called every few thousand entries read.
	Progress func(read int)
}

// Change is one line of a plan.
type Change struct {
	ID   string
	DN   string
	Kind cache.Kind
}

// Plan is what a run would change.
type Plan struct {
	Adds, Updates, Deletes []Change
}

// Result is the outcome of a run.
type Result struct {
	cache.Run
	Plan Plan
}

// BlockedError means the safety rules stopped a run; nothing was changed.
type BlockedError struct {
	Connector string
	Reason    string
}

func (e *BlockedError) Error() string {
	return fmt.Sprintf("sync %s blocked by safety rules: %s (nothing was changed; review the plan with --dry-run, then rerun with --force to apply it)", e.Connector, e.Reason)
}

// Engine runs syncs into one cache.
type Engine struct {
	store   *cache.Store
	log     *slog.Logger
	running sync.Map // connector name -> struct{}: one run per connector
}

// ErrRunning means a run of the same connector is already in progress.
var ErrRunning = errors.New("a sync of this connector is already running")

// New returns an engine writing to store.
func New(store *cache.Store, log *slog.Logger) *Engine {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Engine{store: store, log: log}
}

// progressEvery is how often Options.Progress is called, in entries.
const progressEvery = 5000

// Run performs a full sync of connector c from src.
func (e *Engine) Run(ctx context.Context, c *config.Connector, src Source, o Options) (*Result, error) {
	if _, busy := e.running.LoadOrStore(c.Name, struct{}{}); busy {
		return nil, fmt.Errorf("sync %s: %w", c.Name, ErrRunning)
	}
	defer e.running.Delete(c.Name)
	res := &Result{Run: cache.Run{Connector: c.Name, Start: time.Now().UTC(), Trigger: o.Trigger, Mode: "full", DryRun: o.DryRun}}
	err := e.run(ctx, c, src, o, res)
	res.End = time.Now().UTC()
	res.Duration = res.End.Sub(res.Start)
	var blocked *BlockedError
	switch {
	case errors.As(err, &blocked):
		res.Blocked = blocked.Reason
	case err != nil:
		res.Error = err.Error()
	}
	log := e.log.With("connector", c.Name, "trigger", o.Trigger, "dry_run", o.DryRun, "read", res.Read,
		"added", res.Added, "updated", res.Updated, "deleted", res.Deleted, "unchanged", res.Unchanged,
		"duration", res.Duration.Round(time.Millisecond).String(), "host", res.Host)
	if err != nil {
		log.Error("sync failed", "err", err)
	} else {
		log.Info("sync finished")
	}
	if !res.committed() {
		if rerr := e.store.RecordRun(&res.Run); rerr != nil {
			e.log.Error("could not record sync run", "connector", c.Name, "err", rerr)
		}
	}
	return res, err
}

// committed reports whether the run's record went into the generation
// commit (so it must not be recorded twice).
func (r *Result) committed() bool {
	return r.Error == "" && r.Blocked == "" && !r.DryRun && r.changed()
}

func (r *Result) changed() bool { return r.Added+r.Updated+r.Deleted > 0 }

func (e *Engine) run(ctx context.Context, c *config.Connector, src Source, o Options, res *Result) error {
	var old map[string]uint64
	if err := e.store.View(ctx, func(v *cache.View) error {
		var err error
		old, err = v.Hashes(c.Name)
		return err
	}); err != nil {
		return fmt.Errorf("sync %s: read cached state: %w", c.Name, err)
	}

	var gen *cache.Generation
	if !o.DryRun {
		var err error
		if gen, err = e.store.NewGeneration(c.Name); err != nil {
			return fmt.Errorf("sync %s: %w", c.Name, err)
		}
		// Abort is a no-op once committed.
		defer gen.Abort()
	}
	seen := make(map[string]bool, len(old))
	host, err := src.Full(ctx, func(en *cache.Entry) error {
		if seen[en.ID] {
			return fmt.Errorf("upstream returned ID %s twice (%q)", en.ID, en.DN)
		}
		seen[en.ID] = true
		res.Read++
		if o.Progress != nil && res.Read%progressEvery == 0 {
			o.Progress(res.Read)
		}
		en.Connector = c.Name
		en.Normalize()
		h, existed := old[en.ID]
		switch {
		case !existed:
			res.Plan.Adds = append(res.Plan.Adds, Change{en.ID, en.DN, en.Kind})
		case h != en.Hash():
			res.Plan.Updates = append(res.Plan.Updates, Change{en.ID, en.DN, en.Kind})
		default:
			res.Unchanged++
		}
		if gen != nil {
			return gen.Put(en)
		}
		return nil
	})
	res.Host = host
	if err != nil {
		return fmt.Errorf("sync %s: %w", c.Name, err)
	}
	for id := range old {
		if !seen[id] {
			res.Plan.Deletes = append(res.Plan.Deletes, Change{ID: id})
		}
	}
	if err := e.describeDeletes(ctx, c.Name, res.Plan.Deletes); err != nil {
		return err
	}
	res.Added, res.Updated, res.Deleted = len(res.Plan.Adds), len(res.Plan.Updates), len(res.Plan.Deletes)

	if reason := checkSafety(c.Safety, len(old), res.Read, res.Deleted); reason != "" && !o.Force {
		return &BlockedError{Connector: c.Name, Reason: reason}
	}
	if o.DryRun || !res.changed() {
		return nil
	}
	res.End = time.Now().UTC()
	res.Duration = res.End.Sub(res.Start)
	if err := gen.Commit(ctx, nil, &res.Run); err != nil {
		return fmt.Errorf("sync %s: %w", c.Name, err)
	}
	return nil
}

// describeDeletes fills in the DN and kind of entries about to be deleted,
// for the plan shown to the admin.
func (e *Engine) describeDeletes(ctx context.Context, conn string, dels []Change) error {
	if len(dels) == 0 {
		return nil
	}
	err := e.store.View(ctx, func(v *cache.View) error {
		for i := range dels {
			en, err := v.Get(conn, dels[i].ID)
			if err != nil {
				return err
			}
			dels[i].DN, dels[i].Kind = en.DN, en.Kind
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sync %s: describe deletions: %w", conn, err)
	}
	sort.Slice(dels, func(i, j int) bool { return dels[i].DN < dels[j].DN })
	return nil
}

// checkSafety returns why a plan must not be applied, or "".
func checkSafety(s config.Safety, cached, read, deletes int) string {
	switch {
	case cached > 0 && read == 0:
		return fmt.Sprintf("the upstream returned no entries while the cache holds %d; refusing to empty the cache", cached)
	case deletes > 0 && deletes >= s.MaxDeletes:
		return fmt.Sprintf("%d deletions meet or exceed max_deletes %d", deletes, s.MaxDeletes)
	case cached > 0 && float64(deletes)*100/float64(cached) > s.MaxDeletePercent:
		return fmt.Sprintf("%d deletions are %.1f%% of %d cached entries, above max_delete_percent %g",
			deletes, float64(deletes)*100/float64(cached), cached, s.MaxDeletePercent)
	}
	return ""
}
