package ldapsource

import (
	"context"
	"fmt"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/dn"
	dirsync "github.com/dirgate/dirgate/sync"
)

// Renaming or moving a container (an OU, or any entry with entries
// beneath it) changes the DNs of everything beneath it, but neither AD nor
// OpenLDAP marks those entries changed: their uSNChanged or entryCSN stays,
// so DirSync, uSNChanged polling and syncrepl report the container alone,
// or nothing when their filter leaves containers out. An incremental run
// therefore looks for the containers changed since its cursor and re-reads
// the users and groups beneath each by stable ID. The dialects differ only
// in how they find those containers.

// idRef names one object by its stable ID: the ID as cached, and the filter
// assertion that finds it.
type idRef struct{ id, assertion string }

// ref reads e's stable ID into an idRef; ok is false when e has none.
func (s *Source) ref(e *ldap.Entry) (r idRef, ok bool) {
	attr := s.dialect.Mapping.StableID
	var value string
	if s.dialect.id != nil {
		// A binary ID (AD's objectGUID): every byte escaped.
		r.id = s.dialect.id(e)
		value = guidFilterValue(e.GetRawAttributeValue(attr))
	} else {
		v := e.GetEqualFoldAttributeValue(attr)
		r.id = strings.ToLower(v)
		value = ldap.EscapeFilter(v)
	}
	r.assertion = "(" + attr + "=" + value + ")"
	return r, r.id != ""
}

// changedSet collects the objects an incremental run re-reads, once each,
// in the order first seen.
type changedSet struct {
	seen  map[string]bool
	order []idRef
}

// add records e's stable ID (nothing when e has none).
func (c *changedSet) add(s *Source, e *ldap.Entry) {
	r, ok := s.ref(e)
	if !ok || c.seen[r.id] {
		return
	}
	if c.seen == nil {
		c.seen = map[string]bool{}
	}
	c.seen[r.id] = true
	c.order = append(c.order, r)
}

// containerQuery says how a dialect finds the containers renamed or moved
// since its cursor: a search under the naming context, the attributes it
// needs, and moved, which tells a rename or move from another change of a
// container the search found (nil: every one found may have moved).
type containerQuery struct {
	filter string
	attrs  []string
	moved  func(*ldap.Entry) bool
}

// movedContainerEntries adds to changed the users and groups beneath every
// container of the naming context nc that q finds.
//
// The containers are searched from nc, not the root DN: a container moved
// out of the connector's scope takes its entries out too, and the re-read
// by ID, within the root DN, turns those into deletions, as it does for an
// entry moved out alone. Re-reading the entries beneath is precise and
// costs what the rename moved; falling back to a full run would cost the
// whole directory on every container rename anywhere in it.
func (s *Source) movedContainerEntries(ctx context.Context, conn *ldap.Conn, nc string, q containerQuery, cs *dirsync.ChangeSet, changed *changedSet) error {
	var moved []string
	err := s.paged(ctx, conn, nc, q.filter, q.attrs, func(e *ldap.Entry) error {
		cs.Read++
		if q.moved == nil || q.moved(e) {
			moved = append(moved, e.DN)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("connector %s: read renamed containers: %w", s.conn.Name, err)
	}
	for _, base := range moved {
		err := s.paged(ctx, conn, base, s.query(), []string{s.dialect.Mapping.StableID}, func(e *ldap.Entry) error {
			cs.Read++
			changed.add(s, e)
			return nil
		})
		if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) { // renamed again, or deleted, since
			return fmt.Errorf("connector %s: read the entries of renamed container %q: %w", s.conn.Name, base, err)
		}
	}
	return nil
}

// reread reads each object of refs whole, within the root DN, and passes
// it to emit: an object no longer there, or no longer in scope, is a
// deletion when cached.
func (s *Source) reread(ctx context.Context, conn *ldap.Conn, refs []idRef, known dirsync.Known, cs *dirsync.ChangeSet, emit func(dirsync.Change) error) error {
	for _, r := range refs {
		if err := ctx.Err(); err != nil {
			return err
		}
		req := ldap.NewSearchRequest(s.conn.RootDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
			"(&"+s.query()+r.assertion+")", s.attributes(), nil)
		res, err := conn.Search(req)
		if err != nil {
			return fmt.Errorf("connector %s: re-read changed object: %w", s.conn.Name, err)
		}
		cs.Read += len(res.Entries)
		if len(res.Entries) == 0 {
			if known.Has(r.id) {
				if err := emit(dirsync.Change{DeleteID: r.id}); err != nil {
					return err
				}
			}
			continue
		}
		le := res.Entries[0]
		for _, m := range s.dialect.Mapping.Members {
			if err := s.completeRanges(ctx, conn, le, m); err != nil {
				return err
			}
		}
		e, err := s.convert(le)
		if err != nil {
			return err
		}
		switch {
		case e != nil:
			err = emit(dirsync.Change{Upsert: e})
		case known.Has(r.id):
			err = emit(dirsync.Change{DeleteID: r.id})
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// namingContextOf returns the longest of the server's naming contexts that
// holds root, or root when none does (a server that does not list them).
func namingContextOf(root string, contexts []string) string {
	rk, err := dn.Key(root)
	if err != nil {
		return root
	}
	best, bestDepth := root, -1
	for _, nc := range contexts {
		k, err := dn.Key(nc)
		if err != nil || !dn.Under(rk, k) {
			continue
		}
		if d := dn.Depth(k); d > bestDepth {
			best, bestDepth = nc, d
		}
	}
	return best
}
