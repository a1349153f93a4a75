package cache

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/dgraph-io/badger/v4"

	"github.com/dirgate/dirgate/dn"
	"github.com/dirgate/dirgate/filter"
)

// View is a read-only, consistent snapshot of the cache. It is valid only
// inside the function passed to Store.View.
type View struct {
	txn   *badger.Txn
	ctx   context.Context
	gens  map[string]uint64
	conns []string // sorted: Badger iterates keys in order
	keep  func(name string) bool
	store *Store
	all   bool // hidden duplicates are returned too (IncludeHidden)
}

// Project makes the entries the view returns from now on carry only the
// attributes keep accepts (nil: all of them), so a reader that needs a few
// attributes does not decode the rest. Such entries cannot be written back.
// The name keep receives points into the database's memory: keep must not
// retain it.
func (v *View) Project(keep func(name string) bool) { v.keep = keep }

// Connectors returns the connectors that have a served generation.
func (v *View) Connectors() []string { return v.conns }

// Generation returns the generation of conn the view serves, 0 when there
// is none. A full sync writes a new one; a delta changes it in place.
func (v *View) Generation(conn string) uint64 { return v.gens[conn] }

// Get returns the entry with the given stable ID.
func (v *View) Get(conn, id string) (*Entry, error) {
	gen, ok := v.gens[conn]
	if !ok {
		return nil, ErrNotFound
	}
	item, err := v.txn.Get(dataKey(conn, gen, tEntry, id))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	var e *Entry
	err = item.Value(func(val []byte) error {
		var derr error
		e, derr = decodeEntryKeep(conn, id, val, v.keep)
		return derr
	})
	return e, err
}

// ByDNKey returns the entry whose normalised DN (dn.Key) is key, unless
// it is a hidden duplicate (onprem.go).
func (v *View) ByDNKey(key string) (*Entry, error) {
	for _, c := range v.conns {
		item, err := v.txn.Get(dataKey(c, v.gens[c], tDN, key))
		if errors.Is(err, badger.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		id, err := item.ValueCopy(nil)
		if err != nil {
			return nil, err
		}
		e, err := v.Get(c, string(id))
		if err != nil {
			return nil, err
		}
		hide, err := v.hidden(e)
		switch {
		case err != nil:
			return nil, err
		case hide:
			continue // another connector may hold the DN too
		}
		return e, nil
	}
	return nil, ErrNotFound
}

// ByDN returns the entry named by the DN string s, in any spelling.
func (v *View) ByDN(s string) (*Entry, error) {
	k, err := dn.Key(s)
	if err != nil {
		return nil, err
	}
	return v.ByDNKey(k)
}

// ByAddress returns every entry (across connectors) holding the email
// address addr, compared case-insensitively. More than one result means the
// address is ambiguous. Like every lookup but Get, it leaves out hidden
// duplicates (onprem.go).
func (v *View) ByAddress(addr string) ([]*Entry, error) {
	return v.byIndex(tAddr, NormalizeAddress(addr))
}

// IndexedAttrs are the attributes with an equality index (lower-cased
// names). Lookups by other attributes scan.
var IndexedAttrs = map[string]bool{
	"mail": true, "uid": true, "cn": true, "proxyaddresses": true, "userprincipalname": true,
	"samaccountname": true, "entryuuid": true, "employeenumber": true,
}

// IndexKey is the key under which the attribute index stores a value: the
// filter package's equality key, so an index lookup finds exactly the
// entries an equality filter matches. ok is false for a value that can
// never match (invalid in the attribute's syntax); it is not indexed.
func IndexKey(attr, value string) (string, bool) {
	return filter.EqualityKey(nil, attr, value)
}

// ByAttrKey returns the entries whose indexed attribute attr holds a value
// with the given IndexKey. attr must be in IndexedAttrs.
func (v *View) ByAttrKey(attr, key string) ([]*Entry, error) {
	attr = strings.ToLower(attr)
	if !IndexedAttrs[attr] {
		return nil, fmt.Errorf("cache: attribute %q is not indexed", attr)
	}
	return v.byIndex(tAttr, attr, key)
}

// ByAttr returns the entries whose indexed attribute attr has a value equal
// to value under the attribute's equality rule.
func (v *View) ByAttr(attr, value string) ([]*Entry, error) {
	key, ok := IndexKey(attr, value)
	if !ok {
		return nil, nil
	}
	return v.ByAttrKey(attr, key)
}

func (v *View) byIndex(t byte, parts ...string) ([]*Entry, error) {
	var out []*Entry
	for _, c := range v.conns {
		x, err := v.store.indexFor(v.ctx, c, v.gens[c])
		if err != nil {
			return nil, err
		}
		found, err := v.hotCandidates(x, c, t, parts)
		if err != nil {
			return nil, err
		}
		out = append(out, found...)
	}
	return v.served(out)
}

// hotCandidates reads the entries the in-memory index proposes for the
// key and keeps those that hold it in this view's snapshot (see hotIndex).
func (v *View) hotCandidates(x *hotIndex, conn string, t byte, parts []string) ([]*Entry, error) {
	ids := x.lookup(v.store.indexHash(t, parts...))
	if len(ids) == 0 {
		return nil, nil
	}
	if keep := v.keep; keep != nil && t == tAttr {
		// The check needs the indexed attribute even if the reader does not.
		v.keep = func(name string) bool { return keep(name) || strings.EqualFold(name, parts[0]) }
		defer func() { v.keep = keep }()
	}
	var out []*Entry
	for _, id := range ids {
		e, err := v.Get(conn, id)
		if errors.Is(err, ErrNotFound) {
			continue // added by a delta this view does not see
		}
		if err != nil {
			return nil, err
		}
		if holds(e, t, parts) {
			out = append(out, e)
		}
	}
	return out, nil
}

// scanIDs returns the suffixes of all keys starting with prefix.
func (v *View) scanIDs(prefix []byte) ([]string, error) {
	it := v.txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	var ids []string
	for it.Rewind(); it.Valid(); it.Next() {
		ids = append(ids, string(it.Item().Key()[len(prefix):]))
	}
	return ids, v.ctx.Err()
}

// Exists reports whether key names an entry or an ancestor of one (a
// container the sync did not copy, like ou=people).
func (v *View) Exists(key string) (bool, error) {
	for _, c := range v.conns {
		exact := dataKey(c, v.gens[c], tDN, key)
		if _, err := v.txn.Get(exact); err == nil {
			return true, nil
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return false, err
		}
		prefix := exact
		if key != "" {
			prefix = append(exact, dn.Sep...)
		}
		it := v.txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		it.Rewind()
		found := it.Valid()
		it.Close()
		if found {
			return true, nil
		}
	}
	return false, v.ctx.Err()
}

// Scan calls fn for every entry in the subtree rooted at baseKey (all
// entries when baseKey is ""), connector by connector, in DN-key order.
// fn returns false to stop.
func (v *View) Scan(baseKey string, fn func(e *Entry) (bool, error)) error {
	for _, c := range v.conns {
		gen := v.gens[c]
		var more bool
		var err error
		if baseKey == "" {
			more, err = v.scanAll(c, gen, fn)
		} else {
			more, err = v.scanSubtree(c, gen, baseKey, fn)
		}
		if err != nil || !more {
			return err
		}
	}
	return nil
}

func (v *View) scanAll(conn string, gen uint64, fn func(e *Entry) (bool, error)) (bool, error) {
	prefix := dataKey(conn, gen, tEntry)
	it := v.txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 64})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		if err := v.ctx.Err(); err != nil {
			return false, err
		}
		item := it.Item()
		id := string(item.Key()[len(prefix):])
		var e *Entry
		err := item.Value(func(val []byte) error {
			var derr error
			e, derr = decodeEntryKeep(conn, id, val, v.keep)
			return derr
		})
		if err != nil {
			return false, err
		}
		hide, err := v.hidden(e)
		if err != nil {
			return false, err
		}
		if hide {
			continue
		}
		if more, err := fn(e); err != nil || !more {
			return false, err
		}
	}
	return true, nil
}

func (v *View) scanSubtree(conn string, gen uint64, baseKey string, fn func(e *Entry) (bool, error)) (bool, error) {
	visit := func(idb []byte) (bool, error) {
		e, err := v.Get(conn, string(idb))
		if errors.Is(err, ErrNotFound) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		hide, err := v.hidden(e)
		if err != nil || hide {
			return err == nil, err // a hidden entry is skipped
		}
		return fn(e)
	}
	exact := dataKey(conn, gen, tDN, baseKey)
	if item, err := v.txn.Get(exact); err == nil {
		id, err := item.ValueCopy(nil)
		if err != nil {
			return false, err
		}
		if more, err := visit(id); err != nil || !more {
			return false, err
		}
	} else if !errors.Is(err, badger.ErrKeyNotFound) {
		return false, err
	}
	prefix := append(exact, dn.Sep...)
	it := v.txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 64})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		if err := v.ctx.Err(); err != nil {
			return false, err
		}
		id, err := it.Item().ValueCopy(nil)
		if err != nil {
			return false, err
		}
		if more, err := visit(id); err != nil || !more {
			return false, err
		}
	}
	return true, nil
}

// Hashes returns the content hash of every served entry of conn by ID; the
// sync engine diffs an upstream listing against it.
func (v *View) Hashes(conn string) (map[string]uint64, error) {
	out := map[string]uint64{}
	gen, ok := v.gens[conn]
	if !ok {
		return out, nil
	}
	prefix := dataKey(conn, gen, tEntry)
	it := v.txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 256})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		err := item.Value(func(val []byte) error {
			h, err := storedHash(val)
			out[string(item.Key()[len(prefix):])] = h
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return out, v.ctx.Err()
}

// Counts returns how many users and groups conn serves.
func (v *View) Counts(conn string) (users, groups int, err error) {
	gen, ok := v.gens[conn]
	if !ok {
		return 0, 0, nil
	}
	prefix := dataKey(conn, gen, tEntry)
	it := v.txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 256})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		err := it.Item().Value(func(val []byte) error {
			if len(val) < 10 {
				return errCorrupt
			}
			switch Kind(val[9]) {
			case KindUser:
				users++
			case KindGroup:
				groups++
			}
			return nil
		})
		if err != nil {
			return 0, 0, err
		}
	}
	return users, groups, v.ctx.Err()
}

// NormalizeAddress folds an email address for index lookups: trimmed and
// lower-cased (directories compare addresses case-insensitively in practice).
func NormalizeAddress(a string) string {
	return strings.ToLower(strings.TrimSpace(a))
}
