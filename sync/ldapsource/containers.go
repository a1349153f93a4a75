package ldapsource

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/cache"
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
	r.id = s.stableID(e)
	var value string
	if s.dialect.id != nil {
		// A binary ID (AD's objectGUID): every byte escaped.
		value = guidFilterValue(e.GetRawAttributeValue(attr))
	} else {
		value = ldap.EscapeFilter(e.GetEqualFoldAttributeValue(attr))
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

// rereadBatch is how many objects one re-read search asks for by ID. One
// search per object would cost a round trip for every entry beneath a
// renamed container; a bounded OR keeps each answer well under the
// servers' size limits (AD's MaxPageSize 1,000, slapd's default 500).
const rereadBatch = 100

// reread reads each object of refs whole, within the root DN, and passes
// it to emit, in the order of refs: an object no longer there, or no
// longer in scope, is a deletion when cached.
func (s *Source) reread(ctx context.Context, conn *ldap.Conn, refs []idRef, known dirsync.Known, cs *dirsync.ChangeSet, emit func(dirsync.Change) error) error {
	for batch := range slices.Chunk(refs, rereadBatch) {
		if err := ctx.Err(); err != nil {
			return err
		}
		found, err := s.readByID(conn, batch)
		if err != nil {
			return err
		}
		cs.Read += len(found)
		for _, r := range batch {
			if err := s.emitReread(ctx, conn, r, found[r.id], known, emit); err != nil {
				return err
			}
		}
	}
	return nil
}

// readByID returns the in-scope objects of refs under the root DN, by
// stable ID, with one search.
func (s *Source) readByID(conn *ldap.Conn, refs []idRef) (map[string]*ldap.Entry, error) {
	var f strings.Builder
	f.WriteString("(&" + s.query() + "(|")
	for _, r := range refs {
		f.WriteString(r.assertion)
	}
	f.WriteString("))")
	req := ldap.NewSearchRequest(s.conn.RootDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		f.String(), s.attributes(), nil)
	res, err := conn.Search(req)
	if err != nil {
		return nil, fmt.Errorf("connector %s: re-read changed objects: %w", s.conn.Name, err)
	}
	found := make(map[string]*ldap.Entry, len(res.Entries))
	for _, le := range res.Entries {
		if r, ok := s.ref(le); ok {
			found[r.id] = le
		}
	}
	return found, nil
}

// emitReread passes the re-read object of r, le (nil: not found), to emit
// as an upsert, or as a deletion when it is gone or out of scope and
// cached.
func (s *Source) emitReread(ctx context.Context, conn *ldap.Conn, r idRef, le *ldap.Entry, known dirsync.Known, emit func(dirsync.Change) error) error {
	var e *cache.Entry
	if le != nil {
		for _, m := range s.dialect.Mapping.Members {
			if err := s.completeRanges(ctx, conn, le, m); err != nil {
				return err
			}
		}
		var err error
		if e, err = s.convert(le); err != nil {
			return err
		}
	}
	switch {
	case e != nil:
		return emit(dirsync.Change{Upsert: e})
	case known.Has(r.id):
		return emit(dirsync.Change{DeleteID: r.id})
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
