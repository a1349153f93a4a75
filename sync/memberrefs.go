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
// references intact (dirtype.Type.MemberIntegrity), the cached groups that
// list the DN of an entry d deletes or renames, with the member values the
// directory now holds: the deleted DN gone, the renamed one replaced by the
// new DN. Such a directory rewrites the groups without reporting them as
// changed (Active Directory leaves their uSNChanged), so an incremental run
// would otherwise keep the old values until the next full run; and as
// membership resolves by DN, a renamed member would lose its groups, and
// an entry created at a deleted member's DN would gain them. A group d
// carries (fresh from the upstream) or deletes is left alone.
func (e *Engine) followMemberRefs(ctx context.Context, c *config.Connector, d *cache.Delta, res *Result) error {
	typ, ok := dirtype.Lookup(c.Type)
	if !ok || !typ.MemberIntegrity || (len(d.Deletes) == 0 && len(d.Upserts) == 0) {
		return nil
	}
	upserted := make(map[string]*cache.Entry, len(d.Upserts))
	for _, u := range d.Upserts {
		upserted[u.ID] = u // the last state counts, as in the delta
	}
	deleted := make(map[string]bool, len(d.Deletes))
	for _, id := range d.Deletes {
		deleted[id] = upserted[id] == nil // deleted and upserted ends upserted
	}
	var rewritten []*cache.Entry
	err := e.store.View(ctx, func(v *cache.View) error {
		moved := map[string]string{} // old DN key -> new DN, "" when deleted
		var left []*cache.Entry      // the cached states of those entries
		leave := func(id, nd string) error {
			old, err := v.Get(c.Name, id)
			switch {
			case errors.Is(err, cache.ErrNotFound):
				return nil // new to the cache: it left no DN
			case err != nil:
				return err
			case nd != "" && cache.DNKey(old.DN) == cache.DNKey(nd):
				return nil // not renamed
			}
			moved[cache.DNKey(old.DN)] = nd
			left = append(left, old)
			return nil
		}
		for _, id := range d.Deletes {
			if deleted[id] {
				if err := leave(id, ""); err != nil {
					return err
				}
			}
		}
		for _, u := range d.Upserts {
			if upserted[u.ID] == u {
				if err := leave(u.ID, u.DN); err != nil {
					return err
				}
			}
		}
		seen := map[string]bool{}
		for _, old := range left {
			groups, err := v.Groups(old)
			if err != nil {
				return err
			}
			for _, g := range groups {
				if seen[g.ID] || upserted[g.ID] != nil || deleted[g.ID] {
					continue
				}
				seen[g.ID] = true
				rewritten = append(rewritten, withMembersMoved(g, typ.Mapping.Members, moved))
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sync %s: rewrite the groups of renamed and deleted members: %w", c.Name, err)
	}
	for _, g := range rewritten {
		d.Upserts = append(d.Upserts, g)
		res.Plan.Updates = append(res.Plan.Updates, PlanItem{g.ID, g.DN, g.Kind})
	}
	return nil
}

// withMembersMoved returns a copy of group g whose member values, in
// Members and in the attributes named attrs, are moved as moved says.
// The copy is a new entry, so its content hash is computed afresh.
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
