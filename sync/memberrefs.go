package dirsync

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/dirtype"
)

// followMemberRefs adds to d, for a directory type that keeps member
// references intact (dirtype.Type.MemberIntegrity), the cached entries
// whose reference values the directory changed without reporting them:
//
//   - the groups that list the DN of an entry d deletes or renames, with
//     the member values the directory now holds: the deleted DN gone, the
//     renamed one replaced by the new DN;
//   - for a type with back-links (dirtype.Mapping.MemberOf), the members
//     of the groups d adds, changes, renames or deletes (or that the first
//     step rewrites), with the group's DN added to, dropped from or renamed
//     in their back-link values.
//
// Such a directory rewrites those entries without raising their change
// stamps (Active Directory leaves their uSNChanged), so an incremental run
// would otherwise keep the old values until the next full run; and as
// membership resolves by DN, a renamed member would lose its groups, and
// an entry created at a deleted member's DN would gain them. An entry d
// carries (fresh from the upstream) or deletes is left alone.
func (e *Engine) followMemberRefs(ctx context.Context, c *config.Connector, d *cache.Delta, res *Result) error {
	typ, ok := dirtype.Lookup(c.Type)
	if !ok || !typ.MemberIntegrity || (len(d.Deletes) == 0 && len(d.Upserts) == 0) {
		return nil
	}
	r := refs{conn: c.Name, upserted: make(map[string]*cache.Entry, len(d.Upserts)), deleted: make(map[string]bool, len(d.Deletes))}
	for _, u := range d.Upserts {
		r.upserted[u.ID] = u // the last state counts, as in the delta
	}
	for _, id := range d.Deletes {
		r.deleted[id] = r.upserted[id] == nil // deleted and upserted ends upserted
	}
	var rewritten []*cache.Entry
	err := e.store.View(ctx, func(v *cache.View) error {
		changes, err := r.changes(v, d)
		if err != nil {
			return err
		}
		groups, err := r.groupsOfMoved(v, changes, typ.Mapping.Members)
		if err != nil {
			return err
		}
		for _, g := range groups {
			rewritten = append(rewritten, g.cur)
		}
		if len(typ.Mapping.MemberOf) == 0 {
			return nil
		}
		members, err := r.backLinks(v, changes, groups, typ.Mapping.MemberOf)
		rewritten = append(rewritten, members...)
		return err
	})
	if err != nil {
		return fmt.Errorf("sync %s: rewrite the member references the upstream changed unreported: %w", c.Name, err)
	}
	for _, g := range rewritten {
		d.Upserts = append(d.Upserts, g)
		res.Plan.Updates = append(res.Plan.Updates, PlanItem{g.ID, g.DN, g.Kind})
	}
	return nil
}

// change is one entry before and after a delta: its cached state and the
// state the delta leaves, each nil when absent.
type change struct{ old, cur *cache.Entry }

// refs is what one delta does, for followMemberRefs.
type refs struct {
	conn     string
	upserted map[string]*cache.Entry // ID -> the last state d carries
	deleted  map[string]bool         // IDs d ends with deleted
}

// cached returns the cached state of the entry id, nil when there is none.
func (r *refs) cached(v *cache.View, id string) (*cache.Entry, error) {
	old, err := v.Get(r.conn, id)
	if errors.Is(err, cache.ErrNotFound) {
		return nil, nil
	}
	return old, err
}

// changes returns what d does to each entry it deletes or upserts, in d's
// order, deletions first, reading each cached state once for
// groupsOfMoved and backLinks alike.
func (r *refs) changes(v *cache.View, d *cache.Delta) ([]change, error) {
	var out []change
	add := func(id string, cur *cache.Entry) error {
		old, err := r.cached(v, id)
		if err != nil {
			return err
		}
		out = append(out, change{old, cur})
		return nil
	}
	for _, id := range d.Deletes {
		if r.deleted[id] {
			if err := add(id, nil); err != nil {
				return nil, err
			}
		}
	}
	for _, u := range d.Upserts {
		if r.upserted[u.ID] == u {
			if err := add(u.ID, u); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// stale reports whether the cached entry e is one d leaves as cached:
// neither sent fresh nor deleted.
func (r *refs) stale(e *cache.Entry) bool {
	return e.Connector == r.conn && r.upserted[e.ID] == nil && !r.deleted[e.ID]
}

// groupsOfMoved returns the cached groups that list an entry changes
// deletes or renames, each with a copy whose member values (Members and
// the attributes attrs) are moved as the directory moved them.
func (r *refs) groupsOfMoved(v *cache.View, changes []change, attrs []string) ([]change, error) {
	moved := map[string]string{} // old DN key -> new DN, "" when deleted
	var left []*cache.Entry      // the cached states of those entries
	for _, ch := range changes {
		if ch.old == nil {
			continue // new to the cache: it left no DN
		}
		var nd string
		if ch.cur != nil {
			nd = ch.cur.DN
		}
		oldKey := cache.DNKey(ch.old.DN)
		if nd != "" && oldKey == cache.DNKey(nd) {
			continue // not renamed
		}
		moved[oldKey] = nd
		left = append(left, ch.old)
	}
	var out []change
	seen := map[string]bool{}
	for _, old := range left {
		groups, err := v.Groups(old)
		if err != nil {
			return nil, err
		}
		for _, g := range groups {
			if seen[g.ID] || !r.stale(g) {
				continue
			}
			seen[g.ID] = true
			out = append(out, change{g, withMembersMoved(g, attrs, moved)})
		}
	}
	return out, nil
}

// backLinks returns copies of the cached entries whose back-link values
// (the attributes attrs) name a group whose membership or DN the delta
// changes: the delta's changes, and the groups groupsOfMoved rewrote
// (rewritten), whose copies are edited in place when they need it too.
// The directory appends a new back-link (Active Directory does), renames
// one in place and drops one that went: the copies do alike, so that the
// next full run finds them unchanged.
func (r *refs) backLinks(v *cache.View, changes, rewritten []change, attrs []string) ([]*cache.Entry, error) {
	var groups []change // the changes as groups: a member of no group is nil
	for _, ch := range slices.Concat(changes, rewritten) {
		if ch.old != nil && ch.old.Kind != cache.KindGroup {
			ch.old = nil // a user now a group: it was nobody's member by group
		}
		if ch.cur != nil && ch.cur.Kind != cache.KindGroup {
			ch.cur = nil
		}
		if ch.old != nil || ch.cur != nil {
			groups = append(groups, ch)
		}
	}

	editing := make(map[string]*cache.Entry, len(rewritten)) // ID -> the copy being edited
	for _, g := range rewritten {
		editing[g.cur.ID] = g.cur
	}
	var out []*cache.Entry
	for _, ch := range groups {
		var oldKey, newKey, newDN string
		was, is := map[string]bool{}, map[string]bool{}
		var keys []string // member DN keys, old and new, each once
		if ch.old != nil {
			oldKey = cache.DNKey(ch.old.DN)
			for _, m := range ch.old.Members {
				k := cache.DNKey(m)
				if !was[k] {
					was[k] = true
					keys = append(keys, k)
				}
			}
		}
		if ch.cur != nil {
			newKey, newDN = cache.DNKey(ch.cur.DN), ch.cur.DN
			for _, m := range ch.cur.Members {
				if k := cache.DNKey(m); !is[k] {
					is[k] = true
					if !was[k] {
						keys = append(keys, k)
					}
				}
			}
		}
		for _, k := range keys {
			if was[k] && is[k] && oldKey == newKey {
				continue // still a member of the group, under the same DN
			}
			m, err := v.ByDNKey(k)
			if errors.Is(err, cache.ErrNotFound) {
				continue // no cached entry holds the DN
			}
			if err != nil {
				return nil, err
			}
			if !r.stale(m) {
				continue // fresh from the upstream, or gone
			}
			links := func(vals []string) []string { return moveLink(vals, oldKey, newKey, newDN, was[k], is[k]) }
			if e, ok := editing[m.ID]; ok {
				editValues(e, attrs, links)
				continue
			}
			e := withMembersMoved(m, nil, nil)
			if editValues(e, attrs, links) {
				editing[m.ID] = e
				out = append(out, e)
			}
		}
	}
	return out, nil
}

// moveLink returns the back-link values vals of an entry that was (was) and
// is (is) a member of a group whose DN key was oldKey and whose DN is newDN,
// of key newKey.
func moveLink(vals []string, oldKey, newKey, newDN string, was, is bool) []string {
	out := make([]string, 0, len(vals)+1)
	found := false
	for _, v := range vals {
		switch k := cache.DNKey(v); {
		case was && k == oldKey:
			if is && !found {
				out = append(out, newDN) // renamed in place
				found = true
			}
		case is && k == newKey:
			if !found {
				out = append(out, v)
				found = true
			}
		default:
			out = append(out, v)
		}
	}
	if is && !found {
		out = append(out, newDN)
	}
	return out
}

// editValues replaces the values of e's attributes named attrs by what fn
// makes of them, on e, a copy the caller owns: an attribute left without
// values goes, as the directory returns none; when e has none of them and
// fn gives values, they are added under attrs[0]. It reports whether
// anything changed.
func editValues(e *cache.Entry, attrs []string, fn func([]string) []string) bool {
	changed, found := false, false
	kept := e.Attrs[:0]
	for _, a := range e.Attrs {
		if slices.ContainsFunc(attrs, func(n string) bool { return strings.EqualFold(n, a.Name) }) {
			found = true
			vals := fn(a.Values)
			changed = changed || !slices.Equal(vals, a.Values)
			if len(vals) == 0 {
				continue
			}
			a.Values = vals
		}
		kept = append(kept, a)
	}
	e.Attrs = kept
	if !found {
		if vals := fn(nil); len(vals) > 0 {
			e.Attrs = append(e.Attrs, cache.Attr{Name: attrs[0], Values: vals})
			changed = true
		}
	}
	e.Normalize()
	return changed
}

// withMembersMoved returns a copy of group g whose member values, in
// Members and in the attributes named attrs, are moved as moved says (a
// plain copy with neither). The copy is a new entry, so its content hash
// is computed afresh.
func withMembersMoved(g *cache.Entry, attrs []string, moved map[string]string) *cache.Entry {
	move := func(vals []string) []string {
		out := make([]string, 0, len(vals))
		for _, v := range vals {
			nd, ok := moved[cache.DNKey(v)]
			switch {
			case !ok:
				out = append(out, v)
			case nd != "":
				out = append(out, nd)
			}
		}
		return out
	}
	n := &cache.Entry{Connector: g.Connector, ID: g.ID, DN: g.DN, Kind: g.Kind, Disabled: g.Disabled,
		Addresses: g.Addresses, Members: move(g.Members), Attrs: make([]cache.Attr, 0, len(g.Attrs))}
	for _, a := range g.Attrs {
		if slices.ContainsFunc(attrs, func(m string) bool { return strings.EqualFold(m, a.Name) }) {
			a.Values = move(a.Values)
		}
		n.Attrs = append(n.Attrs, a) // a copy: g, which readers may share, is not changed
	}
	return n
}
