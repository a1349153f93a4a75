package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/dirgate/dirgate/internal/testlog"
)

type indexRecord struct {
	id   string
	keys []indexEntry
}

func encodeRecords(recs []indexRecord) []byte {
	var b []byte
	for _, r := range recs {
		b = appendIndexRecord(b, r.id, r.keys)
	}
	return b
}

func decodeRecords(chunk []byte) ([]indexRecord, error) {
	var out []indexRecord
	err := eachIndexRecord(chunk, func(id string, keys []indexEntry) {
		r := indexRecord{id: id}
		for _, k := range keys {
			// The strings point into the chunk: copied, as a keeper must.
			r.keys = append(r.keys, indexEntry{k.t, strings.Clone(k.attr), strings.Clone(k.val)})
		}
		out = append(out, r)
	})
	return out, err
}

func TestIndexRecordsRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		recs []indexRecord
	}{
		{"none", nil},
		{"entry without keys", []indexRecord{{id: "a"}}},
		{"address and attributes", []indexRecord{
			{"a", []indexEntry{{tAddr, "", "a@x.test"}, {tAttr, "mail", "a@x.test"}, {tAttr, "cn", "ann\x00b"}}},
			{"b", []indexEntry{{tAttr, "uid", strings.Repeat("é", 300)}}},
		}},
		{"empty values", []indexRecord{{"", []indexEntry{{tAttr, "", ""}}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeRecords(encodeRecords(tc.recs))
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.recs) {
				t.Fatalf("decoded %v, want %v", got, tc.recs)
			}
		})
	}
}

// Damaged records are an error, never a panic or a partial index.
func TestIndexRecordsDamaged(t *testing.T) {
	whole := encodeRecords([]indexRecord{{"a", []indexEntry{{tAddr, "", "a@x.test"}, {tAttr, "uid", "a"}}}})
	for n := 1; n < len(whole); n++ {
		if _, err := decodeRecords(whole[:n]); err != errIndexRecord {
			t.Errorf("cut to %d of %d bytes: %v, want errIndexRecord", n, len(whole), err)
		}
	}
	for _, bad := range [][]byte{
		{0x80},                        // unfinished length
		{0x05, 'a'},                   // ID longer than the chunk
		{0x01, 'a', 0xff, 0xff, 0x7f}, // more keys than bytes
	} {
		if _, err := decodeRecords(bad); err != errIndexRecord {
			t.Errorf("%x: %v, want errIndexRecord", bad, err)
		}
	}
}

func FuzzIndexRecords(f *testing.F) {
	f.Add(encodeRecords([]indexRecord{{"a", []indexEntry{{tAddr, "", "a@x.test"}, {tAttr, "mail", "a@x.test"}}}}))
	f.Add([]byte{0x01, 'a', 0x01, tAttr, 0x00, 0x00})
	f.Fuzz(func(t *testing.T, chunk []byte) {
		recs, err := decodeRecords(chunk)
		if err != nil {
			return
		}
		// What parses encodes to records that parse the same (lengths
		// may have been written longer than needed).
		again, err := decodeRecords(encodeRecords(recs))
		if err != nil || fmt.Sprint(again) != fmt.Sprint(recs) {
			t.Fatalf("%x parsed as %v, which encodes to %v, %v", chunk, recs, again, err)
		}
	})
}

// A generation larger than a chunk stores its index in several, and a
// reopened store finds entries from each.
func TestIndexInChunks(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 6000
	var es []*Entry
	for i := range n {
		es = append(es, user(fmt.Sprintf("u%05d", i), fmt.Sprintf("uid=u%05d,dc=x", i),
			fmt.Sprintf("u%05d@x.test", i), fmt.Sprintf("%s%05d@x.test", strings.Repeat("long.alias.", 4), i)))
	}
	commitAll(t, s, "c", es...)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, hot := range []bool{false, true} {
		s, err := Open(dir, Options{HotIndex: hot})
		if err != nil {
			t.Fatal(err)
		}
		gen := s.served.Load().gens["c"]
		chunks := countKeys(t, s, dataKey("c", gen, tIndex))
		if chunks < 2 {
			t.Fatalf("%d chunk(s) of index records, want several", chunks)
		}
		if single := countKeys(t, s, dataKey("c", gen, tAddr)) + countKeys(t, s, dataKey("c", gen, tAttr)); single != 0 {
			t.Fatalf("a full sync wrote %d single index keys", single)
		}
		err = s.View(context.Background(), func(v *View) error {
			for i := 0; i < n; i += 97 {
				for _, addr := range []string{fmt.Sprintf("U%05d@x.test", i), fmt.Sprintf("%s%05d@x.test", strings.Repeat("long.alias.", 4), i)} {
					got, err := v.ByAddress(addr)
					if err != nil {
						return err
					}
					if want := fmt.Sprintf("u%05d", i); ids(got) != want {
						return fmt.Errorf("%s -> %q, want %q", addr, ids(got), want)
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("hot index %v: %v", hot, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func countKeys(t *testing.T, s *Store, prefix []byte) int {
	t.Helper()
	n := 0
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// toLayout2 rewrites conn's served generation as releases before layout 3
// stored it: a key per indexed value, no records.
func toLayout2(t *testing.T, s *Store, conn string) {
	t.Helper()
	gen := s.served.Load().gens[conn]
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: dataKey(conn, gen, tIndex)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if err := wb.Delete(it.Item().KeyCopy(nil)); err != nil {
				return err
			}
			if err := it.Item().Value(func(v []byte) error {
				records, err := openChunk(v)
				if err != nil {
					return err
				}
				return eachIndexRecord(records, func(id string, keys []indexEntry) {
					for _, k := range keys {
						if err := wb.Set(dataKey(conn, gen, k.t, indexKeyParts(k.attr, k.val, id)...), nil); err != nil {
							t.Error(err)
						}
					}
				})
			}); err != nil {
				return err
			}
		}
		return wb.Set(dataKey(conn, gen, tLayout), []byte{2})
	})
	if err == nil {
		err = wb.Flush()
	}
	if err != nil {
		t.Fatal(err)
	}
}

// A cache written by a release before layout 3 answers lookups from its
// single keys, through deltas, until a full sync writes records.
func TestIndexOfLayout2Generation(t *testing.T) {
	probes := []string{"a@x.test", "b@x.test", "bee@x.test", "new@x.test", "a", "b"}
	for _, hot := range []bool{false, true} {
		t.Run(fmt.Sprintf("hot index %v", hot), func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			commitAll(t, s, "c", user("a", "uid=a,dc=x", "a@x.test"), user("b", "uid=b,dc=x", "b@x.test", "bee@x.test"))
			toLayout2(t, s, "c")
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s, err = Open(dir, Options{HotIndex: hot})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			gen := s.served.Load().gens["c"]
			if countKeys(t, s, dataKey("c", gen, tIndex)) != 0 || countKeys(t, s, dataKey("c", gen, tAddr)) != 3 {
				t.Fatal("the fixture is not in layout 2")
			}
			check := func(step string) {
				t.Helper()
				if got, want := lookups(t, s, probes); got != want {
					t.Fatalf("%s: found:\n%s\nheld:\n%s", step, got, want)
				}
			}
			check("opened")
			d := &Delta{Upserts: []*Entry{user("a", "uid=a,dc=x", "new@x.test")}, Deletes: []string{"b"}}
			if _, err := s.ApplyDelta(context.Background(), "c", d, nil, nil, false); err != nil {
				t.Fatal(err)
			}
			check("after a delta")
			commitAll(t, s, "c", user("a", "uid=a,dc=x", "a@x.test"), user("b", "uid=b,dc=x", "bee@x.test"))
			check("after a full sync")
		})
	}
}

// A delta committing while a store builds its index at the first lookup
// is in the index: the build's snapshot has it, or the delta adds it.
func TestIndexBuildRacesDelta(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var es []*Entry
	for i := range 2000 {
		es = append(es, user(fmt.Sprintf("u%04d", i), fmt.Sprintf("uid=u%04d,dc=x", i), fmt.Sprintf("u%04d@x.test", i)))
	}
	commitAll(t, s, "c", es...)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for round := range 20 {
		s, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		addr := fmt.Sprintf("round%d@x.test", round)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			d := &Delta{Upserts: []*Entry{user("u0001", "uid=u0001,dc=x", addr)}}
			if _, err := s.ApplyDelta(ctx, "c", d, nil, nil, false); err != nil {
				t.Error(err)
			}
		}()
		go func() {
			defer wg.Done()
			if err := s.View(ctx, func(v *View) error { _, err := v.ByAddress("u0002@x.test"); return err }); err != nil {
				t.Error(err)
			}
		}()
		wg.Wait()
		err = s.View(ctx, func(v *View) error { return expectAddresses(v, "after the delta", map[string]string{addr: "u0001"}) })
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// Damaged records (a wrong checksum, records that do not parse under a
// right one) are rebuilt from the entries: every lookup still answers, on
// the damaged connector and the others, and the log says so once.
func TestIndexRecordsDamagedInStore(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(chunk []byte) []byte
	}{
		{"garbage", func([]byte) []byte { return []byte{0x05, 'a'} }},
		{"one byte flipped", func(chunk []byte) []byte {
			c := bytes.Clone(chunk)
			c[len(c)/2] ^= 0x20
			return c
		}},
		{"records that do not parse, checksum right", func([]byte) []byte { return sealChunk([]byte{0x05, 'a'}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log testlog.Buffer
			dir := t.TempDir()
			s, err := Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			commitAll(t, s, "c", user("a", "uid=a,dc=x", "a@x.test", "alias@x.test"), user("b", "uid=b,dc=x", "b@x.test"))
			commitAll(t, s, "d", user("z", "uid=z,dc=y", "z@x.test"))
			key := indexChunkKey(genPrefix("c", s.served.Load().gens["c"]), 0)
			err = s.db.Update(func(txn *badger.Txn) error {
				item, err := txn.Get(key)
				if err != nil {
					return err
				}
				chunk, err := item.ValueCopy(nil)
				if err != nil {
					return err
				}
				return txn.Set(key, tc.damage(chunk))
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			for _, hot := range []bool{false, true} {
				s, err := Open(dir, Options{HotIndex: hot, Logger: slog.New(slog.NewJSONHandler(&log, nil))})
				if err != nil {
					t.Fatal(err)
				}
				err = s.View(context.Background(), func(v *View) error {
					return expectAddresses(v, "damaged records", map[string]string{"a@x.test": "a", "alias@x.test": "a", "b@x.test": "b", "z@x.test": "z"})
				})
				if err != nil {
					t.Errorf("hot index %v: %v", hot, err)
				}
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			}
			if n := log.Count("index records damaged"); n != 2 {
				t.Errorf("the damage was logged %d times in two opens:\n%s", n, log.String())
			}
		})
	}
}

// An entry that cannot be decoded, behind damaged records, is left out of
// the rebuilt index: lookups of other entries and connectors answer, and
// the store loads the index once.
func TestIndexRebuildSkipsUndecodableEntries(t *testing.T) {
	var log testlog.Buffer
	s, err := Open(t.TempDir(), Options{Logger: slog.New(slog.NewJSONHandler(&log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	commitAll(t, s, "c", user("a", "uid=a,dc=x", "a@x.test"), user("b", "uid=b,dc=x", "b@x.test"))
	commitAll(t, s, "d", user("z", "uid=z,dc=y", "z@x.test"))
	gen := s.served.Load().gens["c"]
	err = s.db.Update(func(txn *badger.Txn) error {
		if err := txn.Set(indexChunkKey(genPrefix("c", gen), 0), []byte{0x05, 'a'}); err != nil {
			return err
		}
		return txn.Set(dataKey("c", gen, tEntry, "b"), []byte{9, 9})
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		err := s.View(context.Background(), func(v *View) error {
			return expectAddresses(v, "undecodable b", map[string]string{"a@x.test": "a", "z@x.test": "z", "b@x.test": ""})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := log.Count("index records damaged"); n != 1 {
		t.Errorf("%d loads for 20 lookups:\n%s", n, log.String())
	}
	if n := log.Count("cannot be decoded"); n != 1 {
		t.Errorf("the undecodable entry was logged %d times", n)
	}
}

// Closing a store while a view looks up a generation whose index nobody
// loaded yet fails the lookup; it does not start a load on a closed
// database.
func TestLookupWhileClosing(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	commitAll(t, s, "c", user("a", "uid=a,dc=x", "a@x.test"))
	inView, closed := make(chan struct{}), make(chan error)
	go func() {
		<-inView
		closed <- s.Close()
	}()
	err = s.View(context.Background(), func(v *View) error {
		close(inView)
		// Close waits for views only through the drops it runs; give it
		// the time to mark the store closing.
		for !closingOf(s) {
			time.Sleep(time.Millisecond)
		}
		_, err := v.ByAddress("a@x.test")
		return err
	})
	if !errors.Is(err, badger.ErrDBClosed) {
		t.Fatalf("lookup during Close: %v, want ErrDBClosed", err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
}

func closingOf(s *Store) bool {
	s.hotMu.Lock()
	defer s.hotMu.Unlock()
	return s.closing
}

// Index keys a delta adds are counted against the limit; records are
// not. A damaged chunk and an earlier layout count as drift whatever the
// keys.
func TestIndexDrift(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	drift := func(limit int) bool {
		t.Helper()
		d, err := s.IndexDrift(ctx, "c", limit)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if drift(0) {
		t.Fatal("drift without a generation")
	}
	commitAll(t, s, "c", user("a", "uid=a,dc=x", "a@x.test"), user("b", "uid=b,dc=x", "b@x.test"))
	if drift(0) {
		t.Fatal("drift after a full sync")
	}
	apply := func(d *Delta) {
		t.Helper()
		if _, err := s.ApplyDelta(ctx, "c", d, nil, nil, false); err != nil {
			t.Fatal(err)
		}
	}
	// Deleted and upserted in one delta with the same keys: none written.
	apply(&Delta{Deletes: []string{"b"}, Upserts: []*Entry{user("b", "uid=b,dc=x", "b@x.test")}})
	if drift(0) {
		t.Error("an entry deleted and upserted unchanged in one delta wrote index keys")
	}
	// a gains one address: its mail attribute and address keys, two.
	apply(&Delta{Upserts: []*Entry{user("a", "uid=a,dc=x", "a@x.test", "a2@x.test")}})
	if !drift(1) || drift(2) {
		t.Errorf("after a delta adding two keys: drift(1) %v, drift(2) %v", drift(1), drift(2))
	}
	gen := s.served.Load().gens["c"]
	key := indexChunkKey(genPrefix("c", gen), 0)
	var chunk []byte
	err := s.db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if err != nil {
			return err
		}
		if chunk, err = item.ValueCopy(nil); err != nil {
			return err
		}
		return txn.Set(key, append(bytes.Clone(chunk[:len(chunk)-1]), chunk[len(chunk)-1]^1))
	})
	if err != nil {
		t.Fatal(err)
	}
	if !drift(100) {
		t.Error("a damaged chunk is not drift")
	}
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(key, chunk) }); err != nil {
		t.Fatal(err)
	}
	toLayout2(t, s, "c")
	if !drift(100) {
		t.Error("a layout 2 generation is not drift")
	}
}

// A load that fails leaves lookups failing with its error, without
// loading again, until indexRetry has passed; then a lookup loads again.
func TestIndexLoadRetry(t *testing.T) {
	s := openTest(t)
	commitAll(t, s, "c", user("a", "uid=a,dc=x", "a@x.test"))
	gen := s.served.Load().gens["c"]
	failed := &hotIndex{done: make(chan struct{}), retryAt: time.Now().Add(time.Hour)}
	failed.filled(errors.New("disk on fire"))
	s.setHot("c", gen, failed)
	lookup := func() error {
		return s.View(context.Background(), func(v *View) error { return expectAddresses(v, "lookup", map[string]string{"a@x.test": "a"}) })
	}
	if err := lookup(); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("lookup before the retry time: %v", err)
	}
	if s.hotFor("c", gen) != failed {
		t.Fatal("the failed load was replaced before its retry time")
	}
	failed.retryAt = time.Now().Add(-time.Second)
	if err := lookup(); err != nil {
		t.Fatalf("lookup after the retry time: %v", err)
	}
}
