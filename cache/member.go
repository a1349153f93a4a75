package cache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/dgraph-io/badger/v4"
)

// Group membership is stored by DN, not by the IDs the members had when the
// group was synced. A member value names whatever entry holds that DN now,
// as the upstream itself answers (a directory without referential integrity
// keeps a renamed member's old DN in its groups, and an entry created later
// at that DN is the member). Linking IDs at sync time went stale as soon as
// a member was renamed or a new entry took a DN, while the group, unchanged
// upstream, was never synced again; resolving through the DN index on every
// read keeps membership a function of the entries alone, so a delta and a
// full generation built from the same entries answer alike, and a full sync
// that finds every entry unchanged has nothing else to fix.
//
// The two keys of one membership, a group ID and a member DN key:
//
//	tMember:   group id NUL member DN key -> ""
//	tMemberOf: uvarint(len(member DN key)) member DN key, group id -> ""
//
// The reverse key is length-prefixed because a DN key contains NUL (dn.Sep):
// with a separator, the prefix of one DN would also select the keys of the
// DNs beneath it.

// layoutVersion is the layout of a generation's data, stored under
// tLayout. Layout 1 (no tLayout key) linked member IDs under tMemberV1 and
// tMemberOfV1; Open rewrites such a generation (see migrateMembership).
// Layout 2 stored a key per indexed value; layout 3 stores a generation's
// index as records (indexrecords.go). Loading the index reads both, so a
// layout 2 generation is read as it is, and IndexDrift has the next full
// run rewrite it. Releases before layout 3 do not read the records. A
// change to what is indexed or how its keys are made (eachIndexKey,
// IndexKey, NormalizeAddress) must bump it: stored keys are never
// recomputed, and IndexDrift then has the next full run write new ones.
const layoutVersion = 3

// memberOfPrefix is the prefix of the reverse keys of member DN key mk.
func memberOfPrefix(conn string, gen uint64, mk string) []byte {
	kb := keyBuf{prefix: genPrefix(conn, gen)}
	return kb.memberOf(mk, "")
}

// memberKeys returns the forward and reverse key recording that group gid
// lists the DN whose key is mk.
func memberKeys(conn string, gen uint64, gid, mk string) (fwd, rev []byte) {
	kb := keyBuf{prefix: genPrefix(conn, gen)}
	return kb.memberKeys(gid, mk)
}

// memberKeys is memberKeys cut from k.
func (k *keyBuf) memberKeys(gid, mk string) (fwd, rev []byte) {
	return k.key(tMember, gid, mk), k.memberOf(mk, gid)
}

// memberOf returns the reverse key of member DN key mk and group gid, or
// with gid "" the prefix of mk's reverse keys.
func (k *keyBuf) memberOf(mk, gid string) []byte {
	start := len(k.buf)
	k.buf = append(append(k.buf, k.prefix...), tMemberOf)
	k.buf = binary.AppendUvarint(k.buf, uint64(len(mk)))
	k.buf = append(append(k.buf, mk...), gid...)
	return k.buf[start:len(k.buf):len(k.buf)]
}

// memberKeysSize is the length of both keys memberKeys returns for a
// generation prefix of prefixLen bytes.
func memberKeysSize(prefixLen int, gid, mk string) int {
	return 2*(prefixLen+1+len(gid)+len(mk)) + 1 + uvarintSize(len(mk))
}

// putMembers writes with set (a write batch's or a transaction's) the
// membership keys of group e; it writes nothing for a user. Values that
// name one DN in two spellings write the same keys.
func putMembers(conn string, gen uint64, e *Entry, set func(key, val []byte) error) error {
	if e.Kind != KindGroup {
		return nil
	}
	for _, m := range e.Members {
		fwd, rev := memberKeys(conn, gen, e.ID, dnKeyOf(m))
		if err := set(fwd, nil); err != nil {
			return err
		}
		if err := set(rev, nil); err != nil {
			return err
		}
	}
	return nil
}

// dnKey returns the entry's normalised DN; entries stored before the key
// was kept with them compute it.
func (e *Entry) dnKey() string {
	if e.DNKey != "" || e.DN == "" {
		return e.DNKey
	}
	return dnKeyOf(e.DN)
}

// MemberOf returns the DNs of the groups e is a direct member of, sorted.
func (v *View) MemberOf(e *Entry) ([]string, error) {
	gs, err := v.Groups(e)
	if err != nil {
		return nil, err
	}
	dns := make([]string, len(gs))
	for i, g := range gs {
		dns[i] = g.DN
	}
	sort.Strings(dns)
	return dns, nil
}

// Groups returns the groups that list e's DN as a member.
func (v *View) Groups(e *Entry) ([]*Entry, error) {
	gen, ok := v.gens[e.Connector]
	if !ok {
		return nil, nil
	}
	ids, err := v.scanIDs(memberOfPrefix(e.Connector, gen, e.dnKey()))
	if err != nil {
		return nil, err
	}
	return v.entries(e.Connector, ids)
}

// Members returns the entries that hold the DNs group g lists as members.
func (v *View) Members(g *Entry) ([]*Entry, error) {
	ids, err := v.MemberIDs(g)
	if err != nil {
		return nil, err
	}
	return v.entries(g.Connector, ids)
}

// MemberIDs returns, sorted, the stable IDs of the entries that hold the
// DNs group g lists as members; DNs no cached entry holds are skipped.
func (v *View) MemberIDs(g *Entry) ([]string, error) {
	gen, ok := v.gens[g.Connector]
	if !ok {
		return nil, nil
	}
	keys, err := v.scanIDs(dataKey(g.Connector, gen, tMember, g.ID, ""))
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(keys))
	for _, mk := range keys {
		item, err := v.txn.Get(dataKey(g.Connector, gen, tDN, mk))
		if errors.Is(err, badger.ErrKeyNotFound) {
			continue // outside the synced scope, or no entry has the DN
		}
		if err != nil {
			return nil, err
		}
		id, err := item.ValueCopy(nil)
		if err != nil {
			return nil, err
		}
		ids = append(ids, string(id))
	}
	slices.Sort(ids)
	return ids, nil
}

// entries reads the entries of conn with the given IDs, skipping those the
// view does not hold or does not serve (hidden duplicates).
func (v *View) entries(conn string, ids []string) ([]*Entry, error) {
	out := make([]*Entry, 0, len(ids))
	for _, id := range ids {
		e, err := v.Get(conn, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return v.served(out)
}

// migrateMembership rewrites the membership keys of every served
// generation still in layout 1, whose ID links may be stale (see above),
// from the member DNs the groups carry. It runs in Open, before any reader
// or writer; a crash midway leaves the generation without its layout key,
// so the next Open redoes it (every write is idempotent).
func (s *Store) migrateMembership() error {
	sv := s.served.Load()
	for _, conn := range sv.conns {
		gen := sv.gens[conn]
		current, err := s.hasLayout(conn, gen)
		if err != nil {
			return err
		}
		if current {
			continue
		}
		s.log.Info("rebuilding the group membership index of a cache written by an older version", "connector", conn)
		if err := s.rewriteMembership(conn, gen); err != nil {
			return fmt.Errorf("cache: rebuild membership of %s: %w", conn, err)
		}
	}
	return nil
}

func (s *Store) hasLayout(conn string, gen uint64) (bool, error) {
	err := s.db.View(func(txn *badger.Txn) error {
		_, err := txn.Get(dataKey(conn, gen, tLayout))
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

func (s *Store) rewriteMembership(conn string, gen uint64) error {
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	err := s.db.View(func(txn *badger.Txn) error {
		for _, t := range []byte{tMemberV1, tMemberOfV1} {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: dataKey(conn, gen, t)})
			for it.Rewind(); it.Valid(); it.Next() {
				if err := wb.Delete(it.Item().KeyCopy(nil)); err != nil {
					it.Close()
					return err
				}
			}
			it.Close()
		}
		prefix := dataKey(conn, gen, tEntry)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			id := string(item.Key()[len(prefix):])
			err := item.Value(func(val []byte) error {
				if len(val) < 10 || Kind(val[9]) != KindGroup {
					return nil
				}
				e, err := decodeEntry(conn, id, val)
				if err != nil {
					return err
				}
				return putMembers(conn, gen, e, wb.Set)
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Last, after the rewritten keys: its presence marks the work done.
	if err := wb.Flush(); err != nil {
		return err
	}
	return s.db.Update(func(txn *badger.Txn) error {
		return txn.Set(dataKey(conn, gen, tLayout), []byte{layoutVersion})
	})
}
