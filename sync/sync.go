// Package dirsync copies upstream directories into the cache. A run reads
// the upstream, diffs what it read against the served state into a plan
// (adds, updates, deletes), checks the plan against the connector's safety
// rules, and only then applies it atomically: a full run as a new cache
// generation, unless it changed few entries (then, like an incremental run,
// as a delta onto the served one), an incremental run as one transaction
// (or, when its changes are too many for one, as a new generation the cache
// derives from the served one: the upstream is not read again).
//
// The directory is named sync, as the design lays out; the package is named
// dirsync so that importers, which all use the standard library's sync too,
// need no alias.
package dirsync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/cluster/changelog"
	"github.com/dirgate/dirgate/cluster/lease"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/metrics"
	"github.com/dirgate/dirgate/state"
)

// Modes of a run.
const (
	ModeAuto        = ""
	ModeFull        = "full"
	ModeIncremental = "incremental"
)

// Options control one run.
type Options struct {
	DryRun  bool
	Trigger string // cli, schedule, api, console, startup
	// Mode forces a full or an incremental run; the default picks
	// incremental when the source, the cursor and the state allow it.
	Mode string
	// Force applies a plan that the safety rules blocked: the admin's
	// explicit "apply anyway" for this one run.
	Force bool
	// Approved, with Force, lists the stable IDs whose deletion the admin
	// reviewed (a blocked run's plan). A forced run that would delete
	// anything else is blocked again: the upstream changed since the
	// review. Nil approves whatever the run finds (CLI --force).
	Approved []string
	// Progress, when set, is called every few thousand entries read.
	Progress func(read int)
}

// PlanItem is one line of a plan.
type PlanItem struct {
	ID   string
	DN   string
	Kind cache.Kind
}

// Plan is what a run would change.
type Plan struct {
	Adds, Updates, Deletes []PlanItem
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

// ErrRunning means a run of the same connector is already in progress.
var ErrRunning = errors.New("a sync of this connector is already running")

// Engine runs syncs into one cache.
type Engine struct {
	store   *cache.Store
	state   state.Sync // per-connector engine state and run history
	log     *slog.Logger
	now     func() time.Time
	running sync.Map // connector name -> struct{}: one run per connector
	// recordStarts records each run in the history when it starts, not
	// only when it ends (see RecordStarts).
	recordStarts bool
}

// RecordStarts makes the engine record each run in the history as it
// starts (a record without an end) and always again when it ends. In
// cluster mode the history is shared: a run whose leader died is found by
// its missing end, marked aborted and redone by the next leader (see
// Scheduler).
func (e *Engine) RecordStarts() { e.recordStarts = true }

// New returns an engine writing to store. Of states it keeps the sync
// state: each connector's engine state and its run history. The
// incremental cursor is not there: it is the position of store, committed
// with the entries it produced (see Engine.incremental).
func New(store *cache.Store, states state.Stores, log *slog.Logger) *Engine {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Engine{store: store, state: states.Sync, log: log, now: time.Now}
}

// progressEvery is how often Options.Progress is called, in entries.
const progressEvery = 5000

// ScopeOf fingerprints the connector settings that change which entries
// are synced and how they are converted. A sync agent sends the
// fingerprint of its own connector settings (see ScopedSource).
func ScopeOf(c *config.Connector) string {
	b, _ := json.Marshal([]any{c.Type, c.RootDN, c.UserFilter, c.GroupFilter, c.EmailDomains,
		c.AcknowledgeDisabledAccounts, c.MailAttribute, c.AliasAttributes, c.Attributes, c.Domino})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// runScope is the scope a run compares with the last full run's: the
// connector's, and with a ScopedSource the source's own as well (empty
// from a source that does not know it, such as an agent of an earlier
// release).
func runScope(c *config.Connector, src Source) (string, error) {
	scope := ScopeOf(c)
	ss, ok := src.(ScopedSource)
	if !ok {
		return scope, nil
	}
	remote, err := ss.Scope()
	if err != nil || remote == "" {
		return scope, err
	}
	sum := sha256.Sum256([]byte(scope + "/" + remote))
	return hex.EncodeToString(sum[:8]), nil
}

// notUpstreams tells whether err refused a run's commit for a reason of
// the cluster's, not of the upstream: this replica no longer leads
// (lease.ErrFenced), or its cache lacks records of the change log
// (changelog.ErrBehind; it catches up). Such a run is not the connector's
// failure: it must not pause the next run's deletions.
func notUpstreams(err error) bool {
	return errors.Is(err, lease.ErrFenced) || errors.Is(err, changelog.ErrBehind)
}

// Run syncs connector c from src.
func (e *Engine) Run(ctx context.Context, c *config.Connector, src Source, o Options) (*Result, error) {
	if _, busy := e.running.LoadOrStore(c.Name, struct{}{}); busy {
		return nil, fmt.Errorf("sync %s: %w", c.Name, ErrRunning)
	}
	defer e.running.Delete(c.Name)
	res := &Result{Run: cache.Run{Connector: c.Name, Start: e.now().UTC(), Trigger: o.Trigger, DryRun: o.DryRun}}
	st, err := e.state.EngineState(ctx, c.Name)
	if err != nil {
		return res, fmt.Errorf("sync %s: read state: %w", c.Name, err)
	}
	if e.recordStarts {
		if err := e.state.RecordRun(ctx, &res.Run); err != nil {
			return res, fmt.Errorf("sync %s: record the run's start: %w", c.Name, err)
		}
	}
	scope, err := runScope(c, src)
	if err != nil {
		err = fmt.Errorf("sync %s: the source's scope: %w", c.Name, err)
		res.Mode = o.Mode
		res.End = e.now().UTC()
		res.Duration = res.End.Sub(res.Start)
		res.Error = err.Error()
		e.finish(context.WithoutCancel(ctx), c, o, st, res, scope, false, err)
		return res, err
	}
	inc, canInc := src.(IncrementalSource)
	mode := o.Mode
	if mode == ModeAuto {
		mode = ModeFull
		if canInc && !st.NeedFull && st.Scope == scope && e.now().Sub(st.LastFull) < c.FullSyncInterval.Std() {
			mode = ModeIncremental
		}
	}
	if mode == ModeIncremental && !canInc {
		return res, fmt.Errorf("sync %s: the %s source cannot sync incrementally", c.Name, c.Type)
	}
	var committed bool
	if mode == ModeIncremental {
		res.Mode = ModeIncremental
		committed, err = e.incremental(ctx, c, inc, o, res)
		if fallback := errors.Is(err, ErrCursorInvalid) || errors.Is(err, cache.ErrNoGeneration) || errors.Is(err, errNoCursor); fallback && o.Mode == ModeAuto {
			e.log.Info("incremental sync not possible, running a full sync", "connector", c.Name, "reason", err)
			*res = Result{Run: cache.Run{Connector: c.Name, Start: res.Start, Trigger: o.Trigger, DryRun: o.DryRun}}
			mode = ModeFull
		}
	}
	if mode == ModeFull {
		res.Mode = ModeFull
		committed, err = e.full(ctx, c, src, o, st, res)
	}
	res.End = e.now().UTC()
	res.Duration = res.End.Sub(res.Start)
	var blocked *BlockedError
	switch {
	case errors.As(err, &blocked):
		res.Blocked = blocked.Reason
	case err != nil:
		res.Error = err.Error()
	}
	// The run's records are written even when ctx was cancelled (the run
	// was stopped), under the fence ctx may carry (lease.WithFence).
	e.finish(context.WithoutCancel(ctx), c, o, st, res, scope, committed, err)
	return res, err
}

// finish logs the run, records it unless the commit already did, and
// updates the connector state. A run that committed was recorded in the
// cache transaction that committed it, with its cursor; one that committed
// nothing goes to the sync state store, and so does every run whose start
// was recorded there (RecordStarts), replacing that record. A fenced run
// writes nothing: the replica no longer leads, and its successor already
// recorded the run's start as aborted and owns the connector's state.
// scope is the run's (runScope), which a successful full run records.
func (e *Engine) finish(ctx context.Context, c *config.Connector, o Options, st state.Engine, res *Result, scope string, committed bool, err error) {
	log := e.log.With("connector", c.Name, "trigger", o.Trigger, "mode", res.Mode, "dry_run", o.DryRun, "read", res.Read,
		"added", res.Added, "updated", res.Updated, "deleted", res.Deleted, "unchanged", res.Unchanged,
		"duration", res.Duration.Round(time.Millisecond).String(), "host", res.Host)
	if err != nil {
		log.Error("sync failed", "err", err)
	} else {
		log.Info("sync finished")
	}
	e.observe(c.Name, res, err)
	if errors.Is(err, lease.ErrFenced) {
		return
	}
	if !committed || e.recordStarts {
		if rerr := e.state.RecordRun(ctx, &res.Run); rerr != nil {
			e.log.Error("could not record sync run", "connector", c.Name, "err", rerr)
		}
	}
	if o.DryRun {
		return
	}
	var blocked *BlockedError
	switch {
	case errors.As(err, &blocked):
	case errors.Is(err, context.Canceled), notUpstreams(err):
	case err != nil:
		st.NeedFull, st.LastError = true, err.Error()
	default:
		st.LastError = ""
		if res.Mode == ModeFull {
			st.LastFull = res.Start
			st.NeedFull = res.DeletesPaused > 0
			st.Scope = scope
		}
	}
	if serr := e.state.SaveEngineState(ctx, c.Name, st); serr != nil {
		e.log.Error("could not save sync state", "connector", c.Name, "err", serr)
	}
}

func (e *Engine) full(ctx context.Context, c *config.Connector, src Source, o Options, st state.Engine, res *Result) (bool, error) {
	var old map[string]uint64
	if err := e.store.View(ctx, func(v *cache.View) error {
		var err error
		old, err = v.Hashes(c.Name)
		return err
	}); err != nil {
		return false, fmt.Errorf("sync %s: read cached state: %w", c.Name, err)
	}

	w := &fullWriter{store: e.store, conn: c.Name, limit: deltaLimit(len(old)), off: o.DryRun, cached: old}
	defer w.abort()
	read := src.Full
	if ks, ok := src.(KnownFullSource); ok {
		read = func(ctx context.Context, emit func(*cache.Entry) error) (Listing, error) {
			return ks.FullKnown(ctx, old, emit)
		}
	}
	if ps, ok := src.(PriorSource); ok {
		prior, err := e.store.Cursor(c.Name)
		if err != nil {
			return false, fmt.Errorf("sync %s: %w", c.Name, err)
		}
		read = func(ctx context.Context, emit func(*cache.Entry) error) (Listing, error) {
			return ps.FullAfter(WithCached(ctx, storeCached{e.store, c.Name}), prior, emit)
		}
	}
	seen := make(map[string]bool, len(old))
	listing, err := read(ctx, func(en *cache.Entry) error {
		if seen[en.ID] {
			return fmt.Errorf("upstream returned ID %s twice (%q)", en.ID, en.DN)
		}
		seen[en.ID] = true
		res.Read++
		if o.Progress != nil && res.Read%progressEvery == 0 {
			o.Progress(res.Read)
		}
		if en.IsUnchanged() {
			if h, ok := old[en.ID]; !ok || h != en.Hash() {
				return fmt.Errorf("the source passed %s as unchanged, but the cache holds %s", en.ID, describeHash(h, ok))
			}
			res.Unchanged++
			return w.put(ctx, en, true)
		}
		en.Connector = c.Name
		en.Normalize()
		h, existed := old[en.ID]
		same := false
		switch {
		case !existed:
			res.Plan.Adds = append(res.Plan.Adds, PlanItem{en.ID, en.DN, en.Kind})
		case h != en.Hash():
			res.Plan.Updates = append(res.Plan.Updates, PlanItem{en.ID, en.DN, en.Kind})
		default:
			res.Unchanged++
			same = true
		}
		return w.put(ctx, en, same)
	})
	res.Host = listing.Host
	if err != nil {
		return false, fmt.Errorf("sync %s: %w", c.Name, err)
	}
	for id := range old {
		if !seen[id] {
			res.Plan.Deletes = append(res.Plan.Deletes, PlanItem{ID: id})
		}
	}
	if err := e.describe(ctx, c.Name, res.Plan.Deletes); err != nil {
		return false, err
	}
	res.Added, res.Updated, res.Deleted = len(res.Plan.Adds), len(res.Plan.Updates), len(res.Plan.Deletes)

	if reason := checkSafety(c.Safety, len(old), res.Read, res.Deleted); reason != "" && !o.Force {
		return false, &BlockedError{Connector: c.Name, Reason: reason}
	}
	if reason := unapproved(o, res.Plan.Deletes); reason != "" {
		return false, &BlockedError{Connector: c.Name, Reason: reason}
	}
	if st.LastError != "" && res.Deleted > 0 && !o.Force {
		// The connector was in error: an upstream that just recovered may
		// still be answering partially. Keep the entries one more run.
		res.DeletesPaused, res.Deleted = res.Deleted, 0
	}
	if o.DryRun {
		return false, nil
	}
	if w.gen == nil && len(old) > 0 {
		// Changes applied in place leave the served generation's index keys
		// growing beside its records; once they outnumber the entries, the
		// run writes a new generation, changed or not.
		drift, err := e.store.IndexDrift(ctx, c.Name, len(old))
		if err != nil {
			return false, fmt.Errorf("sync %s: %w", c.Name, err)
		}
		if drift {
			e.log.Info("full run writes a new cache generation: the index has grown beside it", "connector", c.Name)
			if err := w.spill(ctx); err != nil {
				return false, err
			}
		}
	}
	res.End = e.now().UTC()
	res.Duration = res.End.Sub(res.Start)
	if w.gen == nil && res.Added+res.Updated+res.Deleted == 0 && res.DeletesPaused == 0 {
		// Nothing changed: keep the served generation, store the cursor.
		return true, e.store.SaveCursor(ctx, c.Name, listing.Cursor, &res.Run)
	}
	if w.gen == nil {
		if err := e.applyFullDelta(ctx, c.Name, w, res, listing.Cursor); err != nil {
			return false, err
		}
		return true, nil
	}
	if err := w.finish(ctx); err != nil {
		return false, err
	}
	if res.DeletesPaused > 0 {
		// Entries whose deletion is paused are carried into the new generation.
		if err := w.copyServed(ctx, planIDs(res.Plan.Deletes)); err != nil {
			return false, err
		}
	}
	if err := w.gen.Commit(ctx, listing.Cursor, &res.Run); err != nil {
		return false, fmt.Errorf("sync %s: %w", c.Name, err)
	}
	return true, nil
}

// describeHash names the cached version of an entry in an error.
func describeHash(h uint64, cached bool) string {
	if !cached {
		return "no such entry"
	}
	return fmt.Sprintf("another version (hash %016x)", h)
}

// applyFullDelta applies a full run whose changed entries w kept as a
// delta onto the served generation, with the cursor and the run record in
// the same commit. Entries whose deletion is paused stay where they are.
func (e *Engine) applyFullDelta(ctx context.Context, conn string, w *fullWriter, res *Result, cursor []byte) error {
	d := &cache.Delta{Upserts: w.changed, Unchanged: res.Unchanged}
	if res.DeletesPaused == 0 {
		d.Deletes = planIDs(res.Plan.Deletes)
	}
	if _, err := e.store.ApplyDelta(ctx, conn, d, cursor, &res.Run, false); err != nil {
		return fmt.Errorf("sync %s: %w", conn, err)
	}
	return nil
}

var errNoCursor = errors.New("no stored cursor")

func (e *Engine) incremental(ctx context.Context, c *config.Connector, src IncrementalSource, o Options, res *Result) (bool, error) {
	// The cursor is read from the cache, not from state.Sync: the cache
	// commits it in the transaction that applies the changes it led to, so
	// it is this cache's position in the source. A cluster replica's own
	// cache needs exactly that, whatever store the shared state lives in.
	cursor, err := e.store.Cursor(c.Name)
	if err != nil {
		return false, fmt.Errorf("sync %s: %w", c.Name, err)
	}
	if cursor == nil {
		return false, errNoCursor
	}
	var known map[string]uint64
	if err := e.store.View(ctx, func(v *cache.View) error {
		var err error
		known, err = v.Hashes(c.Name)
		return err
	}); err != nil {
		return false, fmt.Errorf("sync %s: read cached state: %w", c.Name, err)
	}
	d := &cache.Delta{}
	deleted := map[string]bool{}
	cs, err := src.Changes(WithCached(ctx, storeCached{e.store, c.Name}), cursor, Known(known), func(ch Change) error {
		switch {
		case ch.Upsert != nil:
			ch.Upsert.Connector = c.Name
			ch.Upsert.Normalize()
			h, ok := known[ch.Upsert.ID]
			switch {
			case !ok:
				res.Plan.Adds = append(res.Plan.Adds, PlanItem{ch.Upsert.ID, ch.Upsert.DN, ch.Upsert.Kind})
			case h != ch.Upsert.Hash():
				res.Plan.Updates = append(res.Plan.Updates, PlanItem{ch.Upsert.ID, ch.Upsert.DN, ch.Upsert.Kind})
			}
			d.Upserts = append(d.Upserts, ch.Upsert)
		case ch.DeleteID != "":
			if _, ok := known[ch.DeleteID]; ok && !deleted[ch.DeleteID] {
				deleted[ch.DeleteID] = true
				d.Deletes = append(d.Deletes, ch.DeleteID)
				res.Plan.Deletes = append(res.Plan.Deletes, PlanItem{ID: ch.DeleteID})
			}
		}
		return nil
	})
	res.Host, res.Read, res.Method = cs.Host, cs.Read, cs.Method
	if err != nil {
		return false, fmt.Errorf("sync %s: %w", c.Name, err)
	}
	if err := e.followMemberRefs(ctx, c, d, res); err != nil {
		return false, err
	}
	if err := e.describe(ctx, c.Name, res.Plan.Deletes); err != nil {
		return false, err
	}
	reason := checkSafety(c.Safety, len(known), -1, len(d.Deletes))
	if reason == "" || o.Force {
		reason = unapproved(o, res.Plan.Deletes)
	}
	if reason != "" {
		res.Added, res.Updated, res.Deleted = len(res.Plan.Adds), len(res.Plan.Updates), len(res.Plan.Deletes)
		return false, &BlockedError{Connector: c.Name, Reason: reason}
	}
	res.End = e.now().UTC()
	res.Duration = res.End.Sub(res.Start)
	counts, err := e.store.ApplyDelta(ctx, c.Name, d, cs.Cursor, &res.Run, o.DryRun)
	res.Added, res.Updated, res.Deleted, res.Unchanged = counts.Added, counts.Updated, counts.Deleted, counts.Unchanged
	if err != nil {
		return false, fmt.Errorf("sync %s: %w", c.Name, err)
	}
	return !o.DryRun, nil
}

// unapproved explains why a forced run with a reviewed plan must stop: it
// would delete entries the admin did not review.
func unapproved(o Options, deletes []PlanItem) string {
	if !o.Force || o.Approved == nil {
		return ""
	}
	ok := make(map[string]bool, len(o.Approved))
	for _, id := range o.Approved {
		ok[id] = true
	}
	n := 0
	for _, d := range deletes {
		if !ok[d.ID] {
			n++
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("the upstream changed since the plan was reviewed: %d deletions are not in the reviewed plan; review the new plan", n)
}

// describe fills in the DN and kind of entries about to be deleted, for the
// plan shown to the admin.
func (e *Engine) describe(ctx context.Context, conn string, dels []PlanItem) error {
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

// checkSafety returns why a plan must not be applied, or "". read is -1 for
// incremental runs, where an empty read is normal.
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

// observe records a finished run in the metrics.
func (e *Engine) observe(conn string, res *Result, err error) {
	var blocked *BlockedError
	result := "ok"
	switch {
	case errors.As(err, &blocked):
		result = "blocked"
	case err != nil:
		result = "error"
	case res.DryRun:
		result = "dry_run"
	}
	metrics.SyncRuns.WithLabelValues(conn, res.Mode, result).Inc()
	metrics.SyncDuration.WithLabelValues(conn, res.Mode).Observe(res.Duration.Seconds())
	if result != "ok" {
		return
	}
	metrics.SyncChanges.WithLabelValues(conn, "added").Add(float64(res.Added))
	metrics.SyncChanges.WithLabelValues(conn, "updated").Add(float64(res.Updated))
	metrics.SyncChanges.WithLabelValues(conn, "deleted").Add(float64(res.Deleted))
	metrics.LastSuccess.WithLabelValues(conn).Set(float64(res.End.Unix()))
	_ = e.store.View(context.Background(), func(v *cache.View) error {
		users, groups, err := v.Counts(conn)
		if err == nil {
			metrics.Entries.WithLabelValues(conn, "user").Set(float64(users))
			metrics.Entries.WithLabelValues(conn, "group").Set(float64(groups))
		}
		return err
	})
}
