package sourcetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/dn"
	dirsync "github.com/dirgate/dirgate/sync"
)

// object is what the suite expects the cache to hold for one upstream entry.
type object struct {
	dn      string
	group   bool
	mail    string   // users
	members []string // groups: member DNs
	id      string   // learned from the first sync that sees it
}

// fixture is one subtest's upstream scope, cache and engine, and the model
// of what the cache must hold.
type fixture struct {
	t      *testing.T
	caps   Capabilities
	scope  Scope
	conn   *config.Connector
	dir    string
	store  *cache.Store
	engine *dirsync.Engine
	objs   map[string]*object // by DN key
	n      int
}

// permissive are safety limits that block nothing but an empty upstream.
var permissive = config.Safety{MaxDeletes: 1 << 30, MaxDeletePercent: 100}

func newFixture(t *testing.T, h Harness) *fixture {
	t.Helper()
	scope := h.Scope(t)
	c := *scope.Connector(t)
	c.Name = "contract"
	c.FullSyncInterval = config.Duration(time.Hour)
	c.Safety = permissive
	f := &fixture{t: t, caps: h.Capabilities(), scope: scope, conn: &c, dir: t.TempDir(), objs: map[string]*object{}}
	f.open()
	t.Cleanup(func() {
		if f.store != nil {
			f.store.Close()
		}
	})
	return f
}

// open opens the cache and starts an engine on it, as a process starting.
func (f *fixture) open() {
	f.t.Helper()
	s, err := cache.Open(f.dir, cache.Options{})
	if err != nil {
		f.t.Fatalf("open the cache: %v", err)
	}
	f.store, f.engine = s, dirsync.New(s, s.States(), nil)
}

// restart closes the cache and opens it again, as a new process would.
func (f *fixture) restart() {
	f.t.Helper()
	if err := f.store.Close(); err != nil {
		f.t.Fatalf("close the cache: %v", err)
	}
	f.store = nil
	f.open()
}

func key(t *testing.T, s string) string {
	t.Helper()
	k, err := dn.Key(s)
	if err != nil {
		t.Fatalf("DN %q: %v", s, err)
	}
	return k
}

func (f *fixture) mail() string {
	f.n++
	return fmt.Sprintf("user%d@contract.test", f.n)
}

func (f *fixture) addUser(name string) string { return f.addUserIn(f.scope, name) }

func (f *fixture) addUserIn(s Scope, name string) string {
	f.t.Helper()
	o := &object{mail: f.mail()}
	o.dn = s.AddUser(f.t, name, o.mail)
	f.objs[key(f.t, o.dn)] = o
	return o.dn
}

func (f *fixture) addGroup(name string, members ...string) string {
	return f.addGroupIn(f.scope, name, members...)
}

func (f *fixture) addGroupIn(s Scope, name string, members ...string) string {
	f.t.Helper()
	o := &object{group: true, members: members}
	o.dn = s.AddGroup(f.t, name, members...)
	f.objs[key(f.t, o.dn)] = o
	return o.dn
}

func (f *fixture) obj(s string) *object {
	f.t.Helper()
	o, ok := f.objs[key(f.t, s)]
	if !ok {
		f.t.Fatalf("the test knows no entry %q", s)
	}
	return o
}

func (f *fixture) setMail(s string) {
	f.t.Helper()
	o := f.obj(s)
	o.mail = f.mail()
	f.scope.SetMail(f.t, s, o.mail)
}

func (f *fixture) rename(s, name string) string {
	f.t.Helper()
	o := f.obj(s)
	delete(f.objs, key(f.t, s))
	o.dn = f.scope.Rename(f.t, s, name)
	f.objs[key(f.t, o.dn)] = o
	f.follow(s, o.dn)
	return o.dn
}

// renameContainer renames the container c (Containers) and moves the
// entries in it along in the model.
func (f *fixture) renameContainer(c, name string) string {
	f.t.Helper()
	nc := f.scope.(Containers).RenameContainer(f.t, c, name)
	for k, o := range f.objs {
		rel, ok := strings.CutSuffix(o.dn, ","+c)
		if !ok {
			continue
		}
		old := o.dn
		delete(f.objs, k)
		o.dn = rel + "," + nc
		f.objs[key(f.t, o.dn)] = o
		f.follow(old, o.dn)
	}
	return nc
}

func (f *fixture) remove(dns ...string) {
	f.t.Helper()
	for _, s := range dns {
		f.obj(s)
		f.scope.Delete(f.t, s)
		delete(f.objs, key(f.t, s))
		f.follow(s, "")
	}
}

// follow models what an upstream with member integrity does to the member
// values naming old once the entry is renamed to nd, or deleted ("").
// Without integrity the values stay as they were.
func (f *fixture) follow(old, nd string) {
	if !f.caps.MemberIntegrity {
		return
	}
	k := key(f.t, old)
	for _, o := range f.objs {
		var members []string // new: the test's own slices stay as they were
		for _, m := range o.members {
			switch {
			case key(f.t, m) != k:
				members = append(members, m)
			case nd != "":
				members = append(members, nd)
			}
		}
		o.members = members
	}
}

// snapshot copies the model, to check later that a run changed nothing.
func (f *fixture) snapshot() map[string]*object {
	out := make(map[string]*object, len(f.objs))
	for k, o := range f.objs {
		c := *o
		c.members = slices.Clone(o.members)
		out[k] = &c
	}
	return out
}

// run syncs with src (a fresh source when nil).
func (f *fixture) run(o dirsync.Options, src dirsync.Source) (*dirsync.Result, error) {
	f.t.Helper()
	if src == nil {
		src = f.scope.Source(f.t, f.conn)
	}
	o.Trigger = "test"
	return f.engine.Run(context.Background(), f.conn, src, o)
}

// sync runs the engine and fails unless the run succeeds in wantMode.
func (f *fixture) sync(step string, o dirsync.Options, wantMode string) *dirsync.Result {
	f.t.Helper()
	res, err := f.run(o, nil)
	if err != nil {
		f.t.Fatalf("%s: sync: %v", step, err)
	}
	if res.Mode != wantMode {
		f.t.Fatalf("%s: the run was %s, want %s", step, res.Mode, wantMode)
	}
	return res
}

// unchanged runs a sync that must find nothing to change.
func (f *fixture) unchanged(step string, o dirsync.Options, wantMode string) {
	f.t.Helper()
	res := f.sync(step, o, wantMode)
	if n := res.Added + res.Updated + res.Deleted; n != 0 {
		f.t.Errorf("%s: %d added, %d updated, %d deleted; want no change (plan %+v)", step, res.Added, res.Updated, res.Deleted, res.Plan)
	}
	f.check(step, f.objs)
}

// blocked runs a sync that the safety rules must stop.
func (f *fixture) blocked(step string, o dirsync.Options, wantMode string) {
	f.t.Helper()
	res, err := f.run(o, nil)
	var b *dirsync.BlockedError
	if !errors.As(err, &b) {
		f.t.Fatalf("%s: got %v, want a run blocked by the safety rules", step, err)
	}
	if res.Mode != wantMode {
		f.t.Fatalf("%s: the blocked run was %s, want %s", step, res.Mode, wantMode)
	}
}

// crash runs a sync whose process dies once the source has emitted at
// entries or changes (0: once the read is over), before the engine
// commits; then the cache is reopened as after a restart.
func (f *fixture) crash(step string, at int) {
	f.t.Helper()
	type died struct{}
	func() {
		defer func() {
			if r := recover(); r != (died{}) {
				f.t.Fatalf("%s: the run did not reach the crash point (recovered %v)", step, r)
			}
		}()
		res, err := f.run(dirsync.Options{}, interrupt(f.scope.Source(f.t, f.conn), at, func() { panic(died{}) }))
		f.t.Fatalf("%s: the run ended (%+v, %v) before the crash point", step, res, err)
	}()
	f.restart()
}

// check compares what the cache holds for the connector with want.
func (f *fixture) check(step string, want map[string]*object) {
	f.t.Helper()
	err := f.store.View(context.Background(), func(v *cache.View) error {
		hashes, err := v.Hashes(f.conn.Name)
		if err != nil {
			return err
		}
		found := map[string]*cache.Entry{}
		for id := range hashes {
			e, err := v.Get(f.conn.Name, id)
			if err != nil {
				return err
			}
			k, err := dn.Key(e.DN)
			if err != nil {
				f.t.Errorf("%s: cached DN %q does not parse: %v", step, e.DN, err)
				continue
			}
			if _, ok := want[k]; !ok {
				f.t.Errorf("%s: the cache holds %q (ID %s), which the upstream does not", step, e.DN, id)
				continue
			}
			found[k] = e
		}
		for k, o := range want {
			e, ok := found[k]
			if !ok {
				f.t.Errorf("%s: %q is missing from the cache", step, o.dn)
				continue
			}
			f.checkEntry(step, v, o, e)
		}
		for k, o := range want {
			e, ok := found[k]
			if ok && o.group {
				f.checkMembers(step, v, o, e, want)
			}
			if ok && f.caps.MemberOf {
				f.checkMemberOf(step, o, e, want)
			}
		}
		return nil
	})
	if err != nil {
		f.t.Fatalf("%s: read the cache: %v", step, err)
	}
}

func (f *fixture) checkEntry(step string, v *cache.View, o *object, e *cache.Entry) {
	f.t.Helper()
	switch {
	case e.ID == "":
		f.t.Errorf("%s: %q has no stable ID", step, o.dn)
	case o.id == "":
		o.id = e.ID
	case o.id != e.ID:
		f.t.Errorf("%s: %q has ID %s, was %s: stable IDs must not change", step, o.dn, e.ID, o.id)
	}
	if want := map[bool]cache.Kind{false: cache.KindUser, true: cache.KindGroup}[o.group]; e.Kind != want {
		f.t.Errorf("%s: %q is cached as a %v, want a %v", step, o.dn, e.Kind, want)
	}
	if !o.group && !slices.Contains(e.Addresses, strings.ToLower(o.mail)) {
		f.t.Errorf("%s: %q has addresses %v, want %s among them", step, o.dn, e.Addresses, o.mail)
	}
	// The DN as the test spelled it finds the entry too.
	if got, err := v.ByDN(o.dn); err != nil || got.ID != e.ID {
		f.t.Errorf("%s: looking up %q by DN: %v, %v", step, o.dn, got, err)
	}
}

// checkMembers compares the IDs a group's member values resolve to with
// the IDs of the members the test gave it.
func (f *fixture) checkMembers(step string, v *cache.View, o *object, e *cache.Entry, want map[string]*object) {
	f.t.Helper()
	got, err := v.MemberIDs(e)
	if err != nil {
		f.t.Errorf("%s: members of %q: %v", step, o.dn, err)
		return
	}
	var ids []string
	for _, m := range o.members {
		if mo, ok := want[key(f.t, m)]; ok && mo.id != "" {
			ids = append(ids, mo.id)
		}
	}
	slices.Sort(ids)
	if !slices.Equal(got, ids) {
		f.t.Errorf("%s: the members of %q resolve to %v, want %v (member values %q)", step, o.dn, got, ids, e.Members)
	}
}

// checkMemberOf compares the stored back-links (memberOf) of an entry with
// the DNs of the groups that list it.
func (f *fixture) checkMemberOf(step string, o *object, e *cache.Entry, want map[string]*object) {
	f.t.Helper()
	var got, groups []string
	for _, v := range e.Values("memberOf") {
		got = append(got, key(f.t, v))
	}
	k := key(f.t, o.dn)
	for gk, g := range want {
		if slices.ContainsFunc(g.members, func(m string) bool { return key(f.t, m) == k }) {
			groups = append(groups, gk)
		}
	}
	slices.Sort(got)
	slices.Sort(groups)
	if !slices.Equal(got, groups) {
		f.t.Errorf("%s: %q has memberOf %q, want the DNs of the groups that list it (keys %q)", step, o.dn, e.Values("memberOf"), groups)
	}
}

// interrupt wraps src so that hook runs once at entries or changes have
// been emitted (0: after a successful read), keeping src's incremental
// ability.
func interrupt(src dirsync.Source, at int, hook func()) dirsync.Source {
	h := &hooked{Source: src, at: at, hook: hook}
	if _, ok := src.(dirsync.IncrementalSource); ok {
		return hookedIncremental{h}
	}
	return h
}

type hooked struct {
	dirsync.Source
	at   int
	n    int
	hook func()
}

// emitted counts one emitted item and runs the hook when it is due.
func (h *hooked) emitted() {
	if h.n++; h.n == h.at {
		h.hook()
	}
}

// done runs the hook after a successful read, when it is due then.
func (h *hooked) done(err error) {
	if err == nil && h.at == 0 {
		h.hook()
	}
}

func (h *hooked) Full(ctx context.Context, emit func(*cache.Entry) error) (dirsync.Listing, error) {
	return h.FullKnown(ctx, nil, emit)
}

// FullKnown passes known on when the wrapped source takes it
// (dirsync.KnownFullSource), so that a hooked run reads as an unwrapped
// one does, stand-ins of unchanged entries included.
func (h *hooked) FullKnown(ctx context.Context, known dirsync.Known, emit func(*cache.Entry) error) (dirsync.Listing, error) {
	counted := func(e *cache.Entry) error {
		if err := emit(e); err != nil {
			return err
		}
		h.emitted()
		return nil
	}
	var l dirsync.Listing
	var err error
	if ks, ok := h.Source.(dirsync.KnownFullSource); ok {
		l, err = ks.FullKnown(ctx, known, counted)
	} else {
		l, err = h.Source.Full(ctx, counted)
	}
	h.done(err)
	return l, err
}

// Scope passes the wrapped source's scope on (dirsync.ScopedSource), so a
// hooked run records the scope an unwrapped one would; without it, the run
// after a hooked one would see the scope change and go full.
func (h *hooked) Scope() (string, error) {
	if s, ok := h.Source.(dirsync.ScopedSource); ok {
		return s.Scope()
	}
	return "", nil
}

type hookedIncremental struct{ *hooked }

func (h hookedIncremental) Changes(ctx context.Context, cur []byte, known dirsync.Known, emit func(dirsync.Change) error) (dirsync.ChangeSet, error) {
	cs, err := h.Source.(dirsync.IncrementalSource).Changes(ctx, cur, known, func(c dirsync.Change) error {
		if err := emit(c); err != nil {
			return err
		}
		h.emitted()
		return nil
	})
	h.done(err)
	return cs, err
}
