// Package cache is dirgate's local copy of the upstream directories: entries
// in Badger on disk, keyed by connector and stable ID, with indexes by DN,
// email address, uid and group membership both ways, plus per-connector sync
// cursors and sync history.
//
// Each connector's data lives in a generation. A full sync writes a new
// generation beside the served one and then flips the connector's pointer in
// one small transaction; readers resolve the pointer inside the same Badger
// transaction as their data, so they see the old state or the new, never a
// mix. A crash before the flip leaves an unreferenced generation that Open
// drops. (A Badger transaction is capped at a fraction of the memtable, so a
// whole sync cannot be one transaction.)
package cache

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

	"github.com/dirgate/dirgate/dn"
)

// ErrNotFound is returned when no entry matches a lookup.
var ErrNotFound = errors.New("cache: not found")

// Store is the Badger-backed cache. It is safe for concurrent use; only the
// sync engine writes to it.
type Store struct {
	db  *badger.DB
	log *slog.Logger
	// writeMu serialises generation commits and deltas per store: two runs
	// for one connector must not interleave their flips.
	writeMu sync.Mutex

	// Readers are counted per epoch so a superseded generation is dropped
	// only after every view that might still read it has finished: Badger's
	// DropPrefix does not respect open snapshots.
	readMu  sync.Mutex
	readers *sync.Cond
	epoch   uint64
	active  map[uint64]int
	drops   sync.WaitGroup
	// shared is the read transaction views currently share; renewing is
	// set while a view opens its successor (readMu).
	shared   *sharedTxn
	renewing bool

	// visMu is write-held by a commit that changes what views see, from
	// its transaction's commit until views see it (served, version), and
	// read-held by LogPosition, so a position is never read ahead of the
	// state it names.
	visMu sync.RWMutex

	// served caches the current generation of each connector so a View
	// does not read the pointers from the database; it is replaced after
	// every flip (see View for why that is consistent).
	served atomic.Pointer[servedGens]

	// version counts the commits that changed what readers see; see
	// Version.
	version atomic.Uint64

	// The in-memory candidate indexes (hot.go): built at Open and by
	// every full sync when Options.HotIndex, else at a generation's first
	// lookup.
	hotEnabled bool
	hotSeed    maphash.Seed
	hotMu      sync.Mutex // serialises setHot
	// closing is set (hotMu) once Close waits for the index builds: no
	// new one may start.
	closing bool
	// indexMu orders a delta against the snapshot of an index load: a
	// delta read-holds it from reading the registered index to committing
	// (fillHot).
	indexMu   sync.RWMutex
	hot       atomic.Pointer[hotIndexes]
	hotBuilds sync.WaitGroup

	// onPremPairs joins Entra connectors to AD connectors (onprem.go).
	onPremPairs atomic.Pointer[map[string][]string]

	// publisher, when set, publishes every commit (changelog.go).
	publisher atomic.Pointer[publisherBox]
}

// Version changes after every commit that changes what a View sees (a
// generation flip, an applied delta). A value derived from a View opened
// after reading Version may be reused while Version still returns the same
// number: it then reflects that state or a newer committed one.
func (s *Store) Version() uint64 { return s.version.Load() }

type servedGens struct {
	gens  map[string]uint64
	conns []string
}

// Options tunes the store. Zero values pick defaults sized for a few hundred
// thousand entries in a small memory budget.
type Options struct {
	Logger   *slog.Logger
	InMemory bool // tests only: nothing touches the disk
	// HotIndex builds each served generation's address and attribute
	// index in memory (hashes, about 25 MiB per 100,000 users) at Open,
	// in the background, and as a full sync writes, for a server
	// answering lookups. Without it a generation's index is built at its
	// first lookup, which waits for it.
	HotIndex bool
}

// Open opens (creating if needed) the cache in dir and drops any generation a
// crash left half-built.
func Open(dir string, o Options) (*Store, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if !o.InMemory {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("cache: create %s: %w", dir, err)
		}
	}
	bo := badger.DefaultOptions(dir).
		WithInMemory(o.InMemory).
		WithLogger(badgerLogger{log}).
		WithMetricsEnabled(false).
		WithMemTableSize(16 << 20).
		WithNumMemtables(3).
		WithBlockCacheSize(16 << 20).
		WithIndexCacheSize(0).
		WithNumCompactors(2).
		WithValueLogFileSize(64 << 20).
		WithCompression(options.Snappy).
		// Writes are serialised by writeMu and meta keys are set blindly, so
		// Badger's conflict detection only cost a map insert per key written.
		WithDetectConflicts(false)
	if o.InMemory {
		bo = bo.WithDir("").WithValueDir("")
	}
	db, err := badger.Open(bo)
	if err != nil {
		return nil, fmt.Errorf("cache: open %s: %w", dir, err)
	}
	s := &Store{db: db, log: log, active: map[uint64]int{}}
	s.readers = sync.NewCond(&s.readMu)
	if err := s.dropOrphans(); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.loadServed(); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.migrateMembership(); err != nil {
		db.Close()
		return nil, err
	}
	s.hotSeed = maphash.MakeSeed()
	if o.HotIndex {
		s.hotEnabled = true
		s.buildHot()
	}
	return s, nil
}

// Close waits for pending generation drops, then flushes and closes the
// store.
func (s *Store) Close() error {
	s.drops.Wait()
	s.hotMu.Lock()
	s.closing = true
	s.hotMu.Unlock()
	s.hotBuilds.Wait()
	s.readMu.Lock()
	s.retireShared()
	s.readMu.Unlock()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("cache: close: %w", err)
	}
	return nil
}

// Size returns the on-disk size of the LSM tree and value log in bytes.
func (s *Store) Size() (lsm, vlog int64) { return s.db.Size() }

// Key layout. Meta keys start with 'm', generation data with 'g'. Connector
// names are restricted by config to [a-z0-9_-], so NUL separators are safe.
const (
	tEntry    = 'e' // id -> entry
	tDN       = 'd' // dn key -> id
	tAddr     = 'a' // address NUL id -> "" (keys a delta added; indexrecords.go)
	tAttr     = 'x' // attr NUL folded value NUL id -> "" (likewise)
	tIndex    = 'i' // chunk number -> index records (indexrecords.go)
	tMember   = 'M' // group id NUL member DN key -> "" (member.go)
	tMemberOf = 'O' // length-prefixed member DN key, group id -> "" (member.go)
	tLayout   = 'L' // -> layoutVersion, once the generation is complete

	// Layout 1 membership links by ID, only read to be replaced.
	tMemberV1   = 'm' // group id NUL member id -> ""
	tMemberOfV1 = 'o' // member id NUL group id -> ""
)

func metaKey(parts ...string) []byte {
	return []byte("m\x00" + strings.Join(parts, "\x00"))
}

func curKey(conn string) []byte { return metaKey("cur", conn) }

func genMarkKey(conn string, gen uint64) []byte {
	return binary.BigEndian.AppendUint64(metaKey("gen", conn, ""), gen)
}

func genPrefix(conn string, gen uint64) []byte {
	b := make([]byte, 0, len(conn)+10)
	b = append(b, 'g')
	b = append(b, conn...)
	b = append(b, 0)
	return binary.BigEndian.AppendUint64(b, gen)
}

func dataKey(conn string, gen uint64, t byte, parts ...string) []byte {
	b := append(genPrefix(conn, gen), t)
	for i, p := range parts {
		if i > 0 {
			b = append(b, 0)
		}
		b = append(b, p...)
	}
	return b
}

// dropOrphans removes generations that were registered but never became
// current: the remains of a sync that crashed or was aborted.
func (s *Store) dropOrphans() error {
	type orphan struct {
		conn string
		gen  uint64
	}
	var orphans []orphan
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: metaKey("gen")})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			rest := k[len(metaKey("gen"))+1:]
			i := bytes.IndexByte(rest, 0)
			if i < 0 || len(rest) != i+9 {
				continue
			}
			conn := string(rest[:i])
			gen := binary.BigEndian.Uint64(rest[i+1:])
			cur, err := currentGen(txn, conn)
			if err != nil {
				return err
			}
			if gen != cur {
				orphans = append(orphans, orphan{conn, gen})
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cache: scan generations: %w", err)
	}
	for _, o := range orphans {
		s.log.Warn("dropping unfinished cache generation", "connector", o.conn, "generation", o.gen)
		if err := s.dropGeneration(o.conn, o.gen); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) dropGeneration(conn string, gen uint64) error {
	// Deleted key by key rather than with DropPrefix: DropPrefix blocks every
	// writer (returning ErrBlockedWrites to them), which would fail a sync of
	// another connector running at the same time.
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	prefix := genPrefix(conn, gen)
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if err := wb.Delete(it.Item().KeyCopy(nil)); err != nil {
				return err
			}
		}
		return wb.Delete(genMarkKey(conn, gen))
	})
	if err == nil {
		err = wb.Flush()
	}
	if err != nil {
		return fmt.Errorf("cache: drop generation %s/%d: %w", conn, gen, err)
	}
	return nil
}

// dropWhenUnread drops a superseded generation in the background once no
// view opened before the flip is still running.
func (s *Store) dropWhenUnread(conn string, gen uint64) {
	s.readMu.Lock()
	s.epoch++
	flip := s.epoch
	s.readMu.Unlock()
	s.drops.Add(1)
	go func() {
		defer s.drops.Done()
		s.readMu.Lock()
		for s.oldestReader() < flip {
			s.readers.Wait()
		}
		s.readMu.Unlock()
		s.setHot(conn, gen, nil)
		if err := s.dropGeneration(conn, gen); err != nil {
			// Only garbage remains; the next Open collects it.
			s.log.Warn("could not drop previous generation", "connector", conn, "err", err)
		}
	}()
}

// oldestReader returns the lowest epoch with an open view (readMu held).
func (s *Store) oldestReader() uint64 {
	oldest := ^uint64(0)
	for e := range s.active {
		oldest = min(oldest, e)
	}
	return oldest
}

// currentGen returns the served generation of conn, 0 when it has none.
func currentGen(txn *badger.Txn, conn string) (uint64, error) {
	item, err := txn.Get(curKey(conn))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var gen uint64
	err = item.Value(func(v []byte) error {
		if len(v) != 8 {
			return errCorrupt
		}
		gen = binary.BigEndian.Uint64(v)
		return nil
	})
	return gen, err
}

// View runs fn against a consistent snapshot of every connector's served
// generation.
//
// The reader registers its epoch before it reads the served generations
// and opens its transaction. A commit flips the pointer, then replaces the
// cached generations, then starts the drop of the old generation, which
// waits for every reader registered before it: so a reader that still sees
// the old generation keeps it until it is done.
//
// Views share one read-only Badger transaction while the version and the
// served generations they were opened under are unchanged (sharedTxn).
func (s *Store) View(ctx context.Context, fn func(v *View) error) error {
	if s.db.IsClosed() {
		return badger.ErrDBClosed
	}
	s.readMu.Lock()
	epoch := s.epoch
	s.active[epoch]++
	// The version is read before the served generations, as Commit changes
	// them in the other order, and both before the transaction opens.
	version, served := s.version.Load(), s.served.Load()
	st, renew := s.shared, false
	switch {
	case st == nil || st.version != version || st.served != served:
		st = nil
	case time.Since(st.opened) > sharedTxnMaxAge && !s.renewing:
		st, renew = nil, true
		s.renewing = true
	}
	if st != nil {
		st.refs++
	}
	s.readMu.Unlock()
	if st == nil {
		// Opened outside readMu: opening waits for commits in flight.
		st = &sharedTxn{version: version, served: served, opened: time.Now(), txn: s.db.NewTransaction(false), refs: 1}
		s.readMu.Lock()
		if renew {
			s.renewing = false
		}
		s.retireShared()
		s.shared = st
		s.readMu.Unlock()
	}
	defer func() {
		s.readMu.Lock()
		if st.refs--; st.refs == 0 {
			if s.shared != st {
				st.txn.Discard()
			} else if time.Since(st.opened) > sharedTxnMaxAge {
				s.retireShared()
			}
		}
		if s.active[epoch]--; s.active[epoch] == 0 {
			delete(s.active, epoch)
		}
		s.readers.Broadcast()
		s.readMu.Unlock()
	}()
	return fn(&View{txn: st.txn, ctx: ctx, gens: served.gens, conns: served.conns, store: s})
}

// sharedTxn is a read-only transaction that concurrent and successive
// views share. Opening a Badger transaction, and discarding it, each hand
// a mark to Badger's watermark goroutine: two wake-ups of another thread
// for every lookup, which cost a small search a tenth of its CPU. A view
// reads only generation data, which changes only in the commits that bump
// Store.version or replace the served generations, so a transaction opened
// after reading both still shows what a new one would while both are the
// same. An open transaction holds back Badger's clean-up of overwritten
// and deleted keys, so it is renewed after sharedTxnMaxAge, discarded by
// the last view of one that old, and retired by every commit.
type sharedTxn struct {
	txn     *badger.Txn
	version uint64
	served  *servedGens
	opened  time.Time
	refs    int // open views (readMu)
}

// sharedTxnMaxAge bounds how long one transaction is shared (a variable
// so tests can shorten it).
var sharedTxnMaxAge = time.Second

// committed is called after every commit that changes what views see: it
// bumps the version and retires the shared transaction, which no later view
// would use and which would hold back the clean-up of what the commit
// replaced.
func (s *Store) committed() {
	s.version.Add(1)
	s.readMu.Lock()
	s.retireShared()
	s.readMu.Unlock()
}

// retireShared stops sharing the current transaction, discarding it now
// if no view has it open (readMu held); otherwise its last view does.
func (s *Store) retireShared() {
	if st := s.shared; st != nil && st.refs == 0 {
		st.txn.Discard()
	}
	s.shared = nil
}

// loadServed reads every connector's current generation into memory.
func (s *Store) loadServed() error {
	sv := &servedGens{gens: map[string]uint64{}}
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: metaKey("cur", "")})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			conn := string(item.Key()[len(metaKey("cur", "")):])
			err := item.Value(func(val []byte) error {
				if len(val) != 8 {
					return errCorrupt
				}
				sv.gens[conn] = binary.BigEndian.Uint64(val)
				sv.conns = append(sv.conns, conn)
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cache: read served generations: %w", err)
	}
	s.served.Store(sv)
	return nil
}

type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any) {
	b.l.Error("badger", "detail", strings.TrimSpace(fmt.Sprintf(f, a...)))
}

func (b badgerLogger) Warningf(f string, a ...any) {
	msg := strings.TrimSpace(fmt.Sprintf(f, a...))
	// Badger reports its block cache hit ratio at close; the cache is
	// small on purpose (memory budget), so that is no warning.
	if strings.HasPrefix(msg, "Block cache might be too small") || strings.HasPrefix(msg, "Cache life expectancy") {
		b.l.Debug("badger", "detail", msg)
		return
	}
	b.l.Warn("badger", "detail", msg)
}

func (b badgerLogger) Infof(string, ...any)  {}
func (b badgerLogger) Debugf(string, ...any) {}

// dnKeyOf normalises an entry DN for the index; DNs that do not parse (a
// broken upstream) fall back to their lower-cased text so the entry is still
// reachable by a subtree scan from the root.
func dnKeyOf(s string) string {
	k, err := dn.Key(s)
	if err != nil {
		return strings.ToLower(s)
	}
	return k
}
