// Package memsource is an upstream directory held in memory: a real
// dirsync.Source, full and incremental, for unit tests and as the smallest
// example of a source. The directory assigns each entry an immutable ID,
// refuses two entries with one DN, and keeps a change log that cursors
// point into, as an LDAP server's change sequence (syncrepl CSNs, AD USNs)
// does.
package memsource

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/dn"
	dirsync "github.com/dirgate/dirgate/sync"
)

// ErrExists means an entry with the same DN is already in the directory.
var ErrExists = errors.New("an entry with this DN exists")

// ErrNotFound means no entry has the given ID.
var ErrNotFound = errors.New("no such entry")

// Dir is the directory. It is safe for concurrent use.
type Dir struct {
	mu      sync.Mutex
	epoch   string // names this change log; cursors of another one are invalid
	seq     uint64 // sequence number of the last change
	floor   uint64 // changes up to floor were dropped from the log
	entries map[string]*cache.Entry
	changed map[string]uint64 // ID -> seq of its last change, deletions included
	// memberAttrs, when set, makes member references follow renames and
	// deletions (WithMemberIntegrity).
	memberAttrs []string
	// memberOf, when set, is the back-link attribute the directory keeps
	// on members (WithMemberOf).
	memberOf string
}

// Option configures a Dir.
type Option func(*Dir)

// WithMemberIntegrity makes the directory keep member references intact,
// as Active Directory does: renaming an entry renames it in every group's
// Members and in the group attributes named attrs, deleting it removes it
// there. Also as Active Directory does, the groups' rewrite is not a change
// of the groups: it is not in the change log, so an incremental reader
// learns only of the renamed or deleted entry.
func WithMemberIntegrity(attrs ...string) Option {
	return func(d *Dir) { d.memberAttrs = append([]string{}, attrs...) }
}

// WithMemberOf makes the directory list in attribute attr of each entry
// the groups it is a direct member of, as Active Directory's memberOf: a
// group's DN is appended when the entry joins it, renamed in place when the
// group is renamed, and dropped when the entry leaves it or the group goes.
// As there, keeping the back-links is no change of the members: it is not
// in the change log.
func WithMemberOf(attr string) Option {
	return func(d *Dir) { d.memberOf = attr }
}

// New returns an empty directory.
func New(opts ...Option) *Dir {
	d := &Dir{epoch: randomID(), entries: map[string]*cache.Entry{}, changed: map[string]uint64{}}
	for _, o := range opts {
		o(d)
	}
	return d
}

// follow rewrites, in a directory with member integrity, the member values
// naming the DN old: to nd, or away when nd is "". It records no change.
func (d *Dir) follow(old, nd string) {
	if d.memberAttrs == nil {
		return
	}
	ok, err := dn.Key(old)
	if err != nil {
		return
	}
	rewrite := func(vals []string) []string {
		out := vals[:0:0]
		for _, v := range vals {
			switch k, _ := dn.Key(v); {
			case k != ok:
				out = append(out, v)
			case nd != "":
				out = append(out, nd)
			}
		}
		return out
	}
	for _, e := range d.entries {
		if e.Kind != cache.KindGroup {
			continue
		}
		e.Members = rewrite(e.Members)
		for i, a := range e.Attrs {
			if slices.ContainsFunc(d.memberAttrs, func(n string) bool { return strings.EqualFold(n, a.Name) }) {
				e.Attrs[i].Values = rewrite(a.Values)
			}
		}
	}
}

// link keeps the back-links (WithMemberOf) of the members of a group that
// changed from old to cur (nil: absent, or not a group). It records no
// change.
func (d *Dir) link(old, cur *cache.Entry) {
	if d.memberOf == "" {
		return
	}
	members := func(g *cache.Entry) map[string]bool {
		set := map[string]bool{}
		if g != nil && g.Kind == cache.KindGroup {
			for _, m := range g.Members {
				k, _ := dn.Key(m)
				set[k] = true
			}
		}
		return set
	}
	was, is := members(old), members(cur)
	for _, e := range d.entries {
		k, _ := dn.Key(e.DN)
		if !was[k] && !is[k] {
			continue
		}
		var vals []string
		i := slices.IndexFunc(e.Attrs, func(a cache.Attr) bool { return strings.EqualFold(a.Name, d.memberOf) })
		if i >= 0 {
			vals = e.Attrs[i].Values
		}
		if old != nil {
			// The old DN goes; the new one takes its place when still a
			// member (a member that moved with the group is found by its
			// new DN, so is[k] alone decides).
			j := slices.IndexFunc(vals, func(v string) bool { return dn.Equal(v, old.DN) })
			switch {
			case j < 0:
			case is[k]:
				vals = slices.Replace(slices.Clone(vals), j, j+1, cur.DN)
			default:
				vals = slices.Delete(slices.Clone(vals), j, j+1)
			}
		}
		if is[k] && !slices.ContainsFunc(vals, func(v string) bool { return dn.Equal(v, cur.DN) }) {
			vals = append(slices.Clone(vals), cur.DN)
		}
		switch {
		case i < 0 && len(vals) > 0:
			e.Attrs = append(e.Attrs, cache.Attr{Name: d.memberOf, Values: vals})
		case i >= 0 && len(vals) == 0:
			e.Attrs = slices.Delete(e.Attrs, i, i+1)
		case i >= 0:
			e.Attrs[i].Values = vals
		}
	}
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// clone copies e deeply enough that neither side sees the other's edits.
func clone(e *cache.Entry) *cache.Entry {
	c := &cache.Entry{ID: e.ID, DN: e.DN, Kind: e.Kind, Disabled: e.Disabled,
		Addresses: slices.Clone(e.Addresses), Members: slices.Clone(e.Members)}
	for _, a := range e.Attrs {
		c.Attrs = append(c.Attrs, cache.Attr{Name: a.Name, Values: slices.Clone(a.Values)})
	}
	return c
}

// checkDN fails when the DN of e does not parse or another entry than id
// holds it.
func (d *Dir) checkDN(e *cache.Entry, id string) error {
	k, err := dn.Key(e.DN)
	if err != nil {
		return fmt.Errorf("memsource: DN %q: %w", e.DN, err)
	}
	for oid, o := range d.entries {
		if ok, _ := dn.Key(o.DN); oid != id && ok == k {
			return fmt.Errorf("memsource: %q: %w", e.DN, ErrExists)
		}
	}
	return nil
}

func (d *Dir) touch(id string) {
	d.seq++
	d.changed[id] = d.seq
}

// Add stores a copy of e under a new ID, which it returns; e.ID is ignored,
// as a server ignores a client's entryUUID.
func (d *Dir) Add(e *cache.Entry) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.checkDN(e, ""); err != nil {
		return "", err
	}
	c := clone(e)
	c.ID = randomID()
	d.entries[c.ID] = c
	d.touch(c.ID)
	d.link(nil, c)
	return c.ID, nil
}

// Modify changes the entry id with fn; a changed DN is a rename. The ID
// stays whatever fn does to it.
func (d *Dir) Modify(id string, fn func(e *cache.Entry)) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	old, ok := d.entries[id]
	if !ok {
		return fmt.Errorf("memsource: %s: %w", id, ErrNotFound)
	}
	c := clone(old)
	fn(c)
	c.ID = id
	if err := d.checkDN(c, id); err != nil {
		return err
	}
	d.entries[id] = c
	d.touch(id)
	if old.DN != c.DN {
		d.follow(old.DN, c.DN)
	}
	d.link(old, c)
	return nil
}

// RenameSubtree moves every entry at or beneath the DN base to newBase, as
// renaming a container (an OU) does: each keeps its ID and the part of its
// DN below base, and is a change of its own in the change log, as a source
// must report it; member references and back-links follow as for a rename.
func (d *Dir) RenameSubtree(base, newBase string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	bk, err := dn.Key(base)
	if err != nil {
		return fmt.Errorf("memsource: DN %q: %w", base, err)
	}
	depth := dn.Depth(bk)
	renamed := map[string]*cache.Entry{} // ID -> the entry as it was
	for id, e := range d.entries {
		p, err := dn.Parse(e.DN)
		if err != nil || !dn.Under(dn.KeyOf(p), bk) {
			continue
		}
		c := clone(e)
		rdns := make([]string, 0, len(p.RDNs)-depth+1)
		for _, r := range p.RDNs[:len(p.RDNs)-depth] {
			rdns = append(rdns, r.String())
		}
		c.DN = strings.Join(append(rdns, newBase), ",")
		renamed[id] = e
		d.entries[id] = c
	}
	for id := range renamed {
		if err := d.checkDN(d.entries[id], id); err != nil {
			for id, old := range renamed {
				d.entries[id] = old // all or nothing
			}
			return err
		}
	}
	for id := range renamed {
		d.touch(id)
	}
	// Every member value follows first, then the back-links: a group's
	// link must see its moved members at their new DNs, whatever order the
	// map yields them in.
	for id, old := range renamed {
		d.follow(old.DN, d.entries[id].DN)
	}
	for id, old := range renamed {
		d.link(old, d.entries[id])
	}
	return nil
}

// Delete removes the entry id.
func (d *Dir) Delete(id string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.entries[id]
	if !ok {
		return fmt.Errorf("memsource: %s: %w", id, ErrNotFound)
	}
	delete(d.entries, id)
	d.touch(id)
	d.follow(e.DN, "")
	d.link(e, nil)
	return nil
}

// Get returns a copy of the entry id.
func (d *Dir) Get(id string) (*cache.Entry, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.entries[id]
	if !ok {
		return nil, false
	}
	return clone(e), true
}

// Compact forgets the change log, as a server trims its session log or
// tombstones: cursors taken before now become invalid.
func (d *Dir) Compact() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.floor = d.seq
	for id := range d.changed {
		if _, ok := d.entries[id]; !ok {
			delete(d.changed, id)
		}
	}
}

// Source returns a source reading d; host is reported as the upstream.
func (d *Dir) Source(host string) *Source { return &Source{dir: d, host: host} }

// Source reads a Dir.
type Source struct {
	dir  *Dir
	host string
}

var _ dirsync.IncrementalSource = (*Source)(nil)

// cursor is the position in a Dir's change log.
type cursor struct {
	Epoch string `json:"epoch"`
	Seq   uint64 `json:"seq"`
}

// Full emits every entry, in ID order, from a snapshot taken under the lock:
// emit runs unlocked, so a caller that stops halfway (or panics) leaves the
// directory usable.
func (s *Source) Full(ctx context.Context, emit func(*cache.Entry) error) (dirsync.Listing, error) {
	d := s.dir
	d.mu.Lock()
	snap := make([]*cache.Entry, 0, len(d.entries))
	for _, e := range d.entries {
		snap = append(snap, clone(e))
	}
	cur := cursor{Epoch: d.epoch, Seq: d.seq}
	d.mu.Unlock()
	slices.SortFunc(snap, func(a, b *cache.Entry) int { return cmp.Compare(a.ID, b.ID) })
	listing := dirsync.Listing{Host: s.host}
	for _, e := range snap {
		if err := ctx.Err(); err != nil {
			return listing, err
		}
		if err := emit(e); err != nil {
			return listing, err
		}
	}
	var err error
	listing.Cursor, err = json.Marshal(cur)
	return listing, err
}

// Changes emits, in the order they last changed, the entries changed since
// cur: the entry as it is now, or its deletion.
func (s *Source) Changes(ctx context.Context, cur []byte, _ dirsync.Known, emit func(dirsync.Change) error) (dirsync.ChangeSet, error) {
	cs := dirsync.ChangeSet{Host: s.host, Method: "memory"}
	var c cursor
	if err := json.Unmarshal(cur, &c); err != nil {
		return cs, fmt.Errorf("%w: %v", dirsync.ErrCursorInvalid, err)
	}
	d := s.dir
	d.mu.Lock()
	switch {
	case c.Epoch != d.epoch:
		d.mu.Unlock()
		return cs, fmt.Errorf("%w: cursor of another directory", dirsync.ErrCursorInvalid)
	case c.Seq < d.floor || c.Seq > d.seq:
		d.mu.Unlock()
		return cs, fmt.Errorf("%w: change %d is not in the log (%d to %d)", dirsync.ErrCursorInvalid, c.Seq, d.floor, d.seq)
	}
	type change struct {
		seq uint64
		dirsync.Change
	}
	var out []change
	for id, seq := range d.changed {
		if seq <= c.Seq {
			continue
		}
		ch := change{seq: seq, Change: dirsync.Change{DeleteID: id}}
		if e, ok := d.entries[id]; ok {
			ch.Change = dirsync.Change{Upsert: clone(e)}
		}
		out = append(out, ch)
	}
	next := cursor{Epoch: d.epoch, Seq: d.seq}
	d.mu.Unlock()
	slices.SortFunc(out, func(a, b change) int { return cmp.Compare(a.seq, b.seq) })
	for _, ch := range out {
		if err := ctx.Err(); err != nil {
			return cs, err
		}
		cs.Read++
		if err := emit(ch.Change); err != nil {
			return cs, err
		}
	}
	var err error
	cs.Cursor, err = json.Marshal(next)
	return cs, err
}
