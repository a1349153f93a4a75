package dirsync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/schedule"
)

// SourceFactory builds the upstream reader of a connector. It is passed in
// so this package does not depend on the LDAP implementation.
type SourceFactory func(c *config.Connector) (Source, error)

// Triggers of runs started by the scheduler.
const (
	TriggerSchedule = "schedule"
	TriggerInterval = "interval"
	TriggerMissed   = "missed"
	// TriggerRedo reruns a scheduled run that never ended: its replica
	// died during it (cluster mode, see Engine.RecordStarts).
	TriggerRedo = "redo"
)

// Forward runs a sync elsewhere (cluster mode: on the leader) and returns
// its outcome as Scheduler.SyncNow would.
type Forward func(ctx context.Context, name string, o Options) (*Result, error)

// Scheduler runs each connector's syncs at its scheduled times (and, when
// configured, incremental syncs in between), runs once at start when a
// scheduled run was missed while dirgate was down, and serves on-demand
// runs. The engine guarantees at most one run per connector at a time.
type Scheduler struct {
	eng     *Engine
	store   *cache.Store
	sources SourceFactory
	log     *slog.Logger
	now     func() time.Time

	mu      sync.Mutex
	cfg     *config.Config
	scheds  map[string]*schedule.Schedule
	nextInc map[string]time.Time
	running map[string]bool
	counts  map[string][2]int // users, groups; refreshed after runs
	// countsAt is the cache's change-log position the counts are of: a
	// replica's cache also changes by the records it applies.
	countsAt uint64
	runsDone map[string]int // finished runs per connector, to drop stale counts
	wake     chan struct{}
	wg       sync.WaitGroup
	forward  Forward // nil: on-demand runs run here
}

// SetForward sends every on-demand run (SyncNow) to f instead of running
// it here; nil runs them here again. Scheduled runs are unaffected: they
// run here while Run or Lead runs. Where a run runs, its blocked plan is
// held (state.Sync), for every replica to show.
func (s *Scheduler) SetForward(f Forward) {
	s.mu.Lock()
	s.forward = f
	s.mu.Unlock()
}

// NewScheduler prepares the schedules of cfg's connectors.
func NewScheduler(cfg *config.Config, eng *Engine, store *cache.Store, sources SourceFactory, log *slog.Logger) (*Scheduler, error) {
	s := &Scheduler{eng: eng, store: store, sources: sources, log: log, now: time.Now,
		running: map[string]bool{}, counts: map[string][2]int{},
		runsDone: map[string]int{}, wake: make(chan struct{}, 1)}
	if err := s.Reload(cfg); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload switches to a new configuration (SIGHUP). Runs in progress finish
// with the settings they started with.
func (s *Scheduler) Reload(cfg *config.Config) error {
	scheds := map[string]*schedule.Schedule{}
	for i := range cfg.Connectors {
		c := &cfg.Connectors[i]
		sc, err := schedule.New(cfg.Schedule.TimeZone, c.Schedule)
		if err != nil {
			return fmt.Errorf("connector %s: %w", c.Name, err)
		}
		scheds[c.Name] = sc
	}
	s.mu.Lock()
	s.cfg, s.scheds = cfg, scheds
	s.nextInc = map[string]time.Time{}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

func (s *Scheduler) connector(name string) (*config.Connector, *schedule.Schedule, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.cfg.Connector(name)
	return c, s.scheds[name], ok
}

// ErrUnknownConnector means no connector has that name.
var ErrUnknownConnector = errors.New("no such connector")

// SyncNow runs a sync of name now, here or where SetForward sends it, and
// waits for it.
func (s *Scheduler) SyncNow(ctx context.Context, name string, o Options) (*Result, error) {
	s.mu.Lock()
	fwd := s.forward
	s.mu.Unlock()
	if fwd == nil {
		return s.RunHere(ctx, name, o)
	}
	if _, _, ok := s.connector(name); !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownConnector, name)
	}
	res, err := fwd(ctx, name, o)
	s.ended(name)
	return res, err
}

// RunHere runs a sync of name in this process and waits for it.
func (s *Scheduler) RunHere(ctx context.Context, name string, o Options) (*Result, error) {
	c, _, ok := s.connector(name)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownConnector, name)
	}
	src, err := s.sources(c)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.running[name] = true
	s.mu.Unlock()
	res, err := s.eng.Run(ctx, c, src, o)
	s.mu.Lock()
	delete(s.running, name)
	s.mu.Unlock()
	s.ended(name)
	s.hold(context.WithoutCancel(ctx), name, o, res, err)
	return res, err
}

// ended drops the counts a run that ended may have changed.
func (s *Scheduler) ended(name string) {
	s.mu.Lock()
	s.runsDone[name]++
	delete(s.counts, name)
	s.mu.Unlock()
}

// hold keeps the plan of a run that ran here for review when the safety
// rules blocked it, and drops the held plan when a later run succeeded.
// The plan is kept in the shared sync state, under the fence ctx may
// carry: any replica shows it, and approving it works after a failover.
func (s *Scheduler) hold(ctx context.Context, name string, o Options, res *Result, err error) {
	var blocked *BlockedError
	var plan []byte
	switch {
	case errors.As(err, &blocked) && res != nil:
		var merr error
		if plan, merr = json.Marshal(res); merr != nil {
			s.log.Error("encode a blocked plan", "connector", name, "err", merr)
			return
		}
	case err == nil && !o.DryRun && res != nil:
	default:
		return
	}
	if err := s.eng.state.HoldPlan(ctx, name, plan); err != nil {
		s.log.Error("store the plan held for review", "connector", name, "err", err)
	}
}

// heldPlan reads the plan held for review of connector name.
func (s *Scheduler) heldPlan(ctx context.Context, name string) (*Result, bool, error) {
	b, err := s.eng.state.HeldPlan(ctx, name)
	if err != nil || b == nil {
		return nil, false, err
	}
	res := new(Result)
	if err := json.Unmarshal(b, res); err != nil {
		return nil, false, fmt.Errorf("held plan of %s: %w", name, err)
	}
	return res, true, nil
}

// heldPlanTimeout bounds Blocked's read of the shared state.
const heldPlanTimeout = 10 * time.Second

// Blocked returns the plan of the connector's last blocked run, until a
// later run succeeds, wherever it ran; false also when it cannot be read
// (logged).
func (s *Scheduler) Blocked(name string) (*Result, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), heldPlanTimeout)
	defer cancel()
	res, ok, err := s.heldPlan(ctx, name)
	if err != nil {
		s.log.Error("read the plan held for review", "connector", name, "err", err)
	}
	return res, ok
}

// Run schedules until ctx ends, then waits for runs in progress.
func (s *Scheduler) Run(ctx context.Context) { s.Lead(ctx, s.now()) }

// Lead is Run for a leader's term that began at since (by the database's
// clock): of the runs that never ended, those that started before since
// are aborted (their replica is gone), later ones are this term's own.
func (s *Scheduler) Lead(ctx context.Context, since time.Time) {
	defer s.wg.Wait()
	s.catchUp(ctx, since)
	for {
		next, fire := s.plan()
		wait := time.Duration(1<<63 - 1)
		if !next.IsZero() {
			wait = max(next.Sub(s.now()), 0)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.wake:
			t.Stop()
		case <-t.C:
			for _, f := range fire {
				s.start(ctx, f.name, f.trigger)
			}
		}
	}
}

type firing struct{ name, trigger string }

// plan returns the next instant something is due and what.
func (s *Scheduler) plan() (time.Time, []firing) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var next time.Time
	var fire []firing
	consider := func(at time.Time, f firing) {
		switch {
		case next.IsZero() || at.Before(next):
			next, fire = at, []firing{f}
		case at.Equal(next):
			fire = append(fire, f)
		}
	}
	for _, c := range s.cfg.Connectors {
		consider(s.scheds[c.Name].Next(now), firing{c.Name, TriggerSchedule})
		if iv := c.IncrementalInterval.Std(); iv > 0 {
			at, ok := s.nextInc[c.Name]
			if !ok {
				at = now.Add(iv)
				s.nextInc[c.Name] = at
			}
			consider(at, firing{c.Name, TriggerInterval})
		}
	}
	for _, f := range fire {
		if f.trigger == TriggerInterval {
			c, _ := s.cfg.Connector(f.name)
			s.nextInc[f.name] = next.Add(c.IncrementalInterval.Std())
		}
	}
	return next, fire
}

// abortedScan is how many recent runs of a connector catchUp checks for
// runs that never ended.
const abortedScan = 10

// catchUp runs, once, every connector whose scheduled run passed while
// dirgate was not running (or that never synced), and every connector whose
// scheduled run never ended: its replica died during it. Such runs are
// recorded as aborted first. On-demand runs are not redone here: in
// cluster mode their request is claimed again (cluster/syncreq).
func (s *Scheduler) catchUp(ctx context.Context, since time.Time) {
	s.mu.Lock()
	cfg := s.cfg
	s.mu.Unlock()
	for _, c := range cfg.Connectors {
		runs, err := s.eng.state.Runs(ctx, c.Name, abortedScan)
		if err != nil {
			s.log.Error("read sync history", "connector", c.Name, "err", err)
			continue
		}
		var last time.Time
		if len(runs) > 0 {
			last = runs[0].Start
		}
		// since is the database's clock, a run's start its replica's: a
		// run of this replica's that began after since may still look
		// older. While the connector runs here its newest run is spared.
		_, busy := s.eng.running.Load(c.Name)
		redo := false
		for i := range runs {
			r := &runs[i]
			if r.End.IsZero() && r.Start.Before(since) && !(busy && i == 0) && s.abort(ctx, r) {
				redo = redo || (!r.DryRun && scheduled(r.Trigger))
			}
		}
		_, sc, _ := s.connector(c.Name)
		switch {
		case redo:
			s.start(ctx, c.Name, TriggerRedo)
		case sc.Missed(last, s.now()):
			s.start(ctx, c.Name, TriggerMissed)
		}
	}
}

// abort records r, a run that never ended, as aborted.
func (s *Scheduler) abort(ctx context.Context, r *cache.Run) bool {
	r.End = s.now().UTC()
	r.Error = "aborted: the replica running it stopped before the run ended"
	if err := s.eng.state.RecordRun(ctx, r); err != nil {
		s.log.Error("record an aborted run", "connector", r.Connector, "start", r.Start, "err", err)
		return false
	}
	s.log.Warn("sync run never ended: recorded as aborted", "connector", r.Connector, "start", r.Start, "trigger", r.Trigger)
	return true
}

// scheduled tells whether trigger is one of the scheduler's own.
func scheduled(trigger string) bool {
	switch trigger {
	case TriggerSchedule, TriggerInterval, TriggerMissed, TriggerRedo:
		return true
	}
	return false
}

func (s *Scheduler) start(ctx context.Context, name, trigger string) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		// Here, never forwarded: the scheduler runs on the leader alone,
		// and a queued request would be claimed again by the next leader,
		// which also redoes the scheduled run itself (catchUp).
		_, err := s.RunHere(ctx, name, Options{Trigger: trigger})
		if errors.Is(err, ErrRunning) {
			s.log.Info("scheduled sync skipped: a run is in progress", "connector", name, "trigger", trigger)
		}
	}()
}

// Status describes every configured connector.
func (s *Scheduler) Status(ctx context.Context) ([]ConnectorStatus, error) {
	pos, _, err := s.store.Position()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	cfg := s.cfg
	if pos != s.countsAt {
		s.counts, s.countsAt = map[string][2]int{}, pos
	}
	s.mu.Unlock()
	var out []ConnectorStatus
	for _, c := range cfg.Connectors {
		_, sc, _ := s.connector(c.Name)
		st := ConnectorStatus{Name: c.Name, Type: c.Type, Description: c.Description, Host: c.Host, AlternateHost: c.AlternateHost,
			Schedule: sc.String(), NextRun: sc.Next(s.now())}
		runs, err := s.eng.state.Runs(ctx, c.Name, 50)
		if err != nil {
			return nil, err
		}
		if len(runs) > 0 {
			r := runs[0]
			st.LastRun = &r
		}
		// A run without an end is in progress, possibly on another
		// replica (Engine.RecordStarts).
		inProgress := st.LastRun != nil && st.LastRun.End.IsZero()
		for _, r := range runs {
			if r.Error == "" && r.Blocked == "" && !r.DryRun {
				st.LastSuccess = r.End
				st.CacheAge = s.now().Sub(r.End)
				break
			}
		}
		// Counting scans the connector's entries: done once per change,
		// not on every status request (the console and /readyz poll).
		s.mu.Lock()
		n, ok := s.counts[c.Name]
		done := s.runsDone[c.Name]
		s.mu.Unlock()
		if !ok {
			if err := s.store.View(ctx, func(v *cache.View) error {
				var err error
				n[0], n[1], err = v.Counts(c.Name)
				return err
			}); err != nil {
				return nil, err
			}
			// A run that finished while counting may have changed them:
			// keep the figures only if none did.
			s.mu.Lock()
			if s.runsDone[c.Name] == done {
				s.counts[c.Name] = n
			}
			s.mu.Unlock()
		}
		st.Users, st.Groups = n[0], n[1]
		s.mu.Lock()
		st.Running = s.running[c.Name] || inProgress
		s.mu.Unlock()
		pending, blocked, err := s.heldPlan(ctx, c.Name)
		if err != nil {
			return nil, err
		}
		if blocked && pending != nil {
			st.Blocked = pending.Blocked
			if st.Blocked == "" {
				st.Blocked = "blocked by the safety rules"
			}
		}
		switch {
		case st.Running:
			st.State = "running"
		case st.LastRun == nil:
			st.State = "never synced"
		case blocked || st.LastRun.Blocked != "":
			st.State = "blocked"
		case st.LastRun.Error != "":
			st.State = "error"
		default:
			st.State = "ok"
		}
		out = append(out, st)
	}
	return out, nil
}
