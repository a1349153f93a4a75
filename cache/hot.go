package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/dgraph-io/badger/v4"
)

// hotIndex holds one generation's address and attribute index in memory as
// hashes: the hash of an index key (type, attribute, value) to the IDs of
// the entries holding it. A lookup costs one map probe, and every lookup
// by address or indexed attribute goes through it: the database holds the
// index only as records to load it from (indexrecords.go).
//
// It only proposes candidates. byIndex reads each candidate in the view's
// snapshot and keeps it only if the entry there holds the key, so a
// candidate that is stale or a hash collision is dropped, never returned.
// That is what lets the index only grow during a generation's life: an
// incremental delta adds its keys before it commits (a view that does not
// see the delta then finds an ID it cannot read, and drops it), and the
// keys an entry loses stay until a new generation builds a new index.
// Since the stored keys only grow too, an index loaded from any snapshot
// holds every key of every state of the generation a view can see.
type hotIndex struct {
	ready atomic.Bool   // filled; lookups wait for it
	done  chan struct{} // closed once filled or failed
	// err is why it could not be filled, and retryAt when a lookup may
	// load it again; both set before done closes.
	err     error
	retryAt time.Time

	mu   sync.RWMutex
	ids  []string
	ord  map[string]uint32
	one  map[uint64]uint32   // hash -> first holder
	more map[uint64][]uint32 // hash -> further holders, rare
}

func newHotIndex(size int) *hotIndex {
	return &hotIndex{ord: make(map[string]uint32, size), one: make(map[uint64]uint32, size*5), done: make(chan struct{})}
}

// filled marks the index built (err nil) or failed.
func (x *hotIndex) filled(err error) {
	x.err = err
	if err == nil {
		x.ready.Store(true)
	}
	close(x.done)
}

// indexRetry is how long lookups fail with a failed load's error before
// one loads the index again: a database that cannot be read is not read
// again by every lookup.
const indexRetry = 30 * time.Second

// retryDue reports whether x failed long enough ago to be loaded again.
func (x *hotIndex) retryDue(now time.Time) bool {
	select {
	case <-x.done:
		return x.err != nil && now.After(x.retryAt)
	default:
		return false
	}
}

// addKeys records that entry id holds keys, hashed by s.
func (x *hotIndex) addKeys(s *Store, id string, keys []indexEntry) {
	x.mu.Lock()
	defer x.mu.Unlock()
	o := x.ordOf(id)
	for _, k := range keys {
		x.addOrd(s.keyHash(k.t, k.attr, k.val), o)
	}
}

// add records that entry id holds the key with hash h.
func (x *hotIndex) add(h uint64, id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.addOrd(h, x.ordOf(id))
}

// ordOf returns the number of entry id, giving it one if it has none (mu
// held).
func (x *hotIndex) ordOf(id string) uint32 {
	o, ok := x.ord[id]
	if !ok {
		o = uint32(len(x.ids))
		x.ids = append(x.ids, id)
		x.ord[id] = o
	}
	return o
}

// addOrd records that entry number o holds the key with hash h (mu held).
func (x *hotIndex) addOrd(h uint64, o uint32) {
	first, ok := x.one[h]
	switch {
	case !ok:
		x.one[h] = o
	case first == o || slices.Contains(x.more[h], o):
	default:
		if x.more == nil {
			x.more = map[uint64][]uint32{}
		}
		x.more[h] = append(x.more[h], o)
	}
}

// lookup returns the candidate IDs for the key with hash h, sorted as a
// Badger scan of the key would return them.
func (x *hotIndex) lookup(h uint64) []string {
	x.mu.RLock()
	first, ok := x.one[h]
	if !ok {
		x.mu.RUnlock()
		return nil
	}
	out := []string{x.ids[first]}
	for _, o := range x.more[h] {
		out = append(out, x.ids[o])
	}
	x.mu.RUnlock()
	if len(out) > 1 {
		slices.Sort(out)
	}
	return out
}

// hotKey names one connector's generation.
type hotKey struct {
	conn string
	gen  uint64
}

// hotIndexes is the set of built indexes; it is replaced, never changed.
type hotIndexes map[hotKey]*hotIndex

// indexHash hashes an index key as dataKey lays it out after the
// generation prefix: the type byte, then the parts joined by NUL. Its
// parts are an address, an attribute and a value, or (fillHot) both
// already joined.
func (s *Store) indexHash(t byte, parts ...string) uint64 {
	if len(parts) == 2 {
		return s.keyHash(t, parts[0], parts[1])
	}
	return s.keyHash(t, "", parts[0])
}

// keyHash is indexHash of the index key (t, attr, val) as eachIndexKey
// passes it: attr is "" for an address.
func (s *Store) keyHash(t byte, attr, val string) uint64 {
	var h maphash.Hash
	h.SetSeed(s.hotSeed)
	h.WriteByte(t)
	if attr != "" {
		h.WriteString(attr)
		h.WriteByte(0)
	}
	h.WriteString(val)
	return h.Sum64()
}

func (s *Store) hotFor(conn string, gen uint64) *hotIndex {
	if m := s.hot.Load(); m != nil {
		return (*m)[hotKey{conn, gen}]
	}
	return nil
}

// setHot installs (x non-nil) or removes the index of a generation.
func (s *Store) setHot(conn string, gen uint64, x *hotIndex) {
	s.hotMu.Lock()
	defer s.hotMu.Unlock()
	s.setHotLocked(conn, gen, x)
}

func (s *Store) setHotLocked(conn string, gen uint64, x *hotIndex) {
	next := hotIndexes{}
	if m := s.hot.Load(); m != nil {
		for k, v := range *m {
			next[k] = v
		}
	}
	if x == nil {
		delete(next, hotKey{conn, gen})
	} else {
		next[hotKey{conn, gen}] = x
	}
	s.hot.Store(&next)
}

// buildHot starts building the index of every served generation from the
// database, in the background.
func (s *Store) buildHot() {
	sv := s.served.Load()
	for _, conn := range sv.conns {
		s.startIndex(conn, sv.gens[conn], nil)
	}
}

// indexFor returns the index of conn's generation gen, waiting for it to
// be built, and starting that if nobody has.
func (s *Store) indexFor(ctx context.Context, conn string, gen uint64) (*hotIndex, error) {
	x := s.hotFor(conn, gen)
	if x == nil || x.retryDue(time.Now()) {
		x = s.startIndex(conn, gen, x)
	}
	if x.ready.Load() {
		return x, nil
	}
	select {
	case <-x.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if x.err != nil {
		return nil, x.err
	}
	return x, nil
}

// startIndex registers an index for conn's generation gen, unless one
// other than failed is registered already, and fills it from the database
// in the background. It returns the registered index.
func (s *Store) startIndex(conn string, gen uint64, failed *hotIndex) *hotIndex {
	s.hotMu.Lock()
	if m := s.hot.Load(); m != nil {
		if x := (*m)[hotKey{conn, gen}]; x != nil && x != failed {
			s.hotMu.Unlock()
			return x
		}
	}
	if s.closing {
		s.hotMu.Unlock()
		x := &hotIndex{done: make(chan struct{})}
		x.filled(badger.ErrDBClosed)
		return x
	}
	x := newHotIndex(1024)
	s.setHotLocked(conn, gen, x)
	s.hotBuilds.Add(1)
	s.hotMu.Unlock()
	go func() {
		defer s.hotBuilds.Done()
		start := time.Now()
		err := s.fillHot(conn, gen, x)
		if err != nil {
			// The database could not be read. Lookups fail with the error
			// until a lookup after indexRetry loads it again.
			s.log.Error("in-memory index not loaded; lookups by address and attribute fail", "connector", conn, "err", err, "retry_in", indexRetry.String())
			x.retryAt = time.Now().Add(indexRetry)
			x.filled(fmt.Errorf("cache: index of %s: %w", conn, err))
			return
		}
		x.filled(nil)
		x.mu.RLock()
		keys, entries := len(x.one), len(x.ids)
		x.mu.RUnlock()
		s.log.Info("in-memory index ready", "connector", conn, "keys", keys, "entries", entries,
			"duration", time.Since(start).Round(time.Millisecond).String())
	}()
	return x
}

// fillHot fills x, already registered, from the index records and the
// single index keys of conn's generation gen. Damaged records are rebuilt
// from the entries: what a lookup verifies against.
func (s *Store) fillHot(conn string, gen uint64, x *hotIndex) error {
	// A delta read-holds indexMu from reading the registered index to
	// committing, so it either committed before this snapshot (its keys
	// are in it) or adds its keys to x.
	s.indexMu.Lock()
	txn := s.db.NewTransaction(false)
	s.indexMu.Unlock()
	defer txn.Discard()
	err := s.loadRecords(txn, conn, gen, x)
	if errors.Is(err, errIndexRecord) {
		// An entry changed by a delta since may have lost a key that a
		// view older than this snapshot still sees on it; such a view can
		// miss it. Every later view finds what it holds.
		s.log.Error("index records damaged; rebuilding the in-memory index from the entries", "connector", conn, "err", err)
		err = s.indexEntries(txn, conn, gen, x)
	}
	if err != nil {
		return err
	}
	for _, t := range []byte{tAddr, tAttr} {
		prefix := dataKey(conn, gen, t)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()[len(prefix):]
			i := bytes.LastIndexByte(k, 0)
			if i < 0 {
				continue
			}
			// k[:i] is the key's parts joined by NUL, as indexHash
			// joins them.
			x.add(s.indexHash(t, unsafeString(k[:i])), string(k[i+1:]))
		}
		it.Close()
	}
	return nil
}

// loadRecords adds the index records of conn's generation gen to x. It
// goes past a damaged chunk, whose records it leaves out, and then returns
// errIndexRecord.
func (s *Store) loadRecords(txn *badger.Txn, conn string, gen uint64, x *hotIndex) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: dataKey(conn, gen, tIndex), PrefetchValues: true, PrefetchSize: 4})
	defer it.Close()
	damaged := 0
	for it.Rewind(); it.Valid(); it.Next() {
		err := it.Item().Value(func(v []byte) error {
			records, err := openChunk(v)
			if err == nil {
				// Keys added before a record that does not parse are
				// harmless: lookups verify what the index proposes.
				err = eachIndexRecord(records, func(id string, keys []indexEntry) { x.addKeys(s, id, keys) })
			}
			if errors.Is(err, errIndexRecord) {
				damaged++
				return nil
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	if damaged > 0 {
		return fmt.Errorf("%w: %d chunk(s)", errIndexRecord, damaged)
	}
	return nil
}

// indexEntries adds the index keys of every entry of conn's generation gen
// to x.
func (s *Store) indexEntries(txn *badger.Txn, conn string, gen uint64, x *hotIndex) error {
	prefix := dataKey(conn, gen, tEntry)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 64})
	defer it.Close()
	var keys []indexEntry
	undecodable := 0
	for it.Rewind(); it.Valid(); it.Next() {
		id := string(it.Item().Key()[len(prefix):])
		err := it.Item().Value(func(v []byte) error {
			e, err := decodeEntry(conn, id, v)
			if err != nil {
				// No lookup can return it either: Get fails on it.
				undecodable++
				return nil
			}
			keys = keys[:0]
			e.eachIndexKey(func(t byte, attr, val string) { keys = append(keys, indexEntry{t, attr, val}) })
			x.addKeys(s, id, keys)
			return nil
		})
		if err != nil {
			return err
		}
	}
	if undecodable > 0 {
		s.log.Error("entries that cannot be decoded left out of the in-memory index", "connector", conn, "entries", undecodable)
	}
	return nil
}

// eachIndexKey calls fn with every address and attribute index key of e:
// the type byte, the attribute ("" for an address) and the value, which
// dataKey joins by NUL after the type (the entry ID follows them). The
// generation writer, the delta writer and the in-memory index all take
// their keys from here, so they cannot disagree; holds is its check.
func (e *Entry) eachIndexKey(fn func(t byte, attr, val string)) {
	for _, a := range e.Addresses {
		fn(tAddr, "", NormalizeAddress(a))
	}
	for _, a := range e.Attrs {
		name, ok := indexedName(a.Name)
		if !ok {
			continue
		}
		for _, val := range a.Values {
			if key, ok := IndexKey(name, val); ok {
				fn(tAttr, name, key)
			}
		}
	}
}

// indexedNames maps each name in IndexedAttrs to itself, so that
// indexedName returns it without allocating.
var indexedNames = sync.OnceValue(func() map[string]string {
	m := make(map[string]string, len(IndexedAttrs))
	for name := range IndexedAttrs {
		m[name] = name
	}
	return m
})

// indexedName returns attribute name lower-cased if it is in IndexedAttrs.
// Names come in the case the source uses (userPrincipalName), so lowering
// them with strings.ToLower cost an allocation each.
func indexedName(name string) (string, bool) {
	var buf [32]byte // longer than any indexed name
	if len(name) <= len(buf) && isASCII(name) {
		for i := 0; i < len(name); i++ {
			c := name[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			buf[i] = c
		}
		lower, ok := indexedNames()[string(buf[:len(name)])]
		return lower, ok
	}
	lower := strings.ToLower(name)
	return lower, IndexedAttrs[lower]
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// indexKeyParts returns the parts dataKey joins for an index key as
// eachIndexKey passes it, followed by the entry ID.
func indexKeyParts(attr, val, id string) []string {
	if attr == "" {
		return []string{val, id}
	}
	return []string{attr, val, id}
}

// holds reports whether e (as read in a view) holds the index key
// (t, parts): the check that turns hot index candidates into results.
func holds(e *Entry, t byte, parts []string) bool {
	switch t {
	case tAddr:
		for _, a := range e.Addresses {
			if NormalizeAddress(a) == parts[0] {
				return true
			}
		}
	case tAttr:
		for _, a := range e.Attrs {
			if !strings.EqualFold(a.Name, parts[0]) {
				continue
			}
			for _, v := range a.Values {
				if k, ok := IndexKey(parts[0], v); ok && k == parts[1] {
					return true
				}
			}
		}
	}
	return false
}
