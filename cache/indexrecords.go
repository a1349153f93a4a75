package cache

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/dgraph-io/badger/v4"
)

// A generation written whole (a full sync, a rewritten delta, a replayed
// snapshot) stores its address and attribute index as records in a few
// large values under tIndex, not as a Badger key per indexed value:
//
//	tIndex big-endian uint32 chunk number -> records, CRC-32C of records
//	record: uvarint len(id) id uvarint n, then n times:
//	        type byte uvarint len(attr) attr uvarint len(value) value
//
// Writing a key per value cost a full sync of 100,000 cloud users about
// 900,000 Badger keys, most of its time; the records cost a few hundred
// large values. The index is only ever read whole, into the in-memory
// index (hot.go) that every lookup uses, so nothing is lost by not being
// able to seek in it. Deltas add the keys their entries gain as single
// keys (tAddr, tAttr) beside the records; loading reads both. Neither is
// ever removed while the generation lives: the in-memory index proposes
// candidates that a lookup checks against the entry itself, so a key an
// entry no longer holds costs a read, never a wrong answer. A full run
// writes a new generation once the single keys outnumber the entries
// (IndexDrift). A chunk whose checksum or records are wrong is damage:
// the index is then rebuilt from the entries themselves (fillHot).

// indexChunkSize is the size at which a chunk of records is written out.
// It stays far below Badger's value threshold and a memtable, so a chunk
// is one ordinary value.
const indexChunkSize = 256 << 10

// errIndexRecord means stored index records do not parse.
var errIndexRecord = errors.New("cache: damaged index records")

// castagnoli is the CRC-32C table of the chunks' checksums.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// sealChunk appends the checksum of the records in chunk.
func sealChunk(chunk []byte) []byte {
	return binary.BigEndian.AppendUint32(chunk, crc32.Checksum(chunk, castagnoli))
}

// openChunk returns the records of a sealed chunk, errIndexRecord when its
// checksum does not match them.
func openChunk(v []byte) ([]byte, error) {
	if len(v) < 4 {
		return nil, errIndexRecord
	}
	records := v[:len(v)-4]
	if binary.BigEndian.Uint32(v[len(v)-4:]) != crc32.Checksum(records, castagnoli) {
		return nil, errIndexRecord
	}
	return records, nil
}

// appendIndexRecord appends the record of entry id with its index keys.
func appendIndexRecord(buf []byte, id string, keys []indexEntry) []byte {
	buf = appendString(buf, id)
	buf = binary.AppendUvarint(buf, uint64(len(keys)))
	for _, k := range keys {
		buf = append(buf, k.t)
		buf = appendString(buf, k.attr)
		buf = appendString(buf, k.val)
	}
	return buf
}

// indexChunkKey is the key of chunk n of generation prefix's records.
func indexChunkKey(prefix []byte, n uint32) []byte {
	k := make([]byte, 0, len(prefix)+5)
	k = append(append(k, prefix...), tIndex)
	return binary.BigEndian.AppendUint32(k, n)
}

// eachIndexRecord calls fn with each record of chunk: the entry ID (a copy
// the caller may keep) and its keys, whose strings point into chunk and
// into keys, which fn must not keep.
func eachIndexRecord(chunk []byte, fn func(id string, keys []indexEntry)) error {
	var keys []indexEntry
	for len(chunk) > 0 {
		id, rest, ok := cutString(chunk)
		if !ok {
			return errIndexRecord
		}
		n, w := binary.Uvarint(rest)
		// Each key takes at least three bytes: a bound before allocating.
		if w <= 0 || n > uint64(len(rest)-w)/3 {
			return errIndexRecord
		}
		rest = rest[w:]
		keys = keys[:0]
		for range n {
			if len(rest) == 0 {
				return errIndexRecord
			}
			t := rest[0]
			attr, r, ok := cutString(rest[1:])
			if !ok {
				return errIndexRecord
			}
			val, r, ok := cutString(r)
			if !ok {
				return errIndexRecord
			}
			keys = append(keys, indexEntry{t, unsafeString(attr), unsafeString(val)})
			rest = r
		}
		fn(string(id), keys)
		chunk = rest
	}
	return nil
}

// cutString splits a uvarint-length-prefixed string off the front of b.
func cutString(b []byte) (s, rest []byte, ok bool) {
	n, w := binary.Uvarint(b)
	if w <= 0 || n > uint64(len(b)-w) {
		return nil, nil, false
	}
	end := w + int(n)
	return b[w:end], b[end:], true
}

// IndexDrift reports whether conn's served generation should be written
// anew for its index: it holds more index keys outside its records than
// limit (the keys its deltas added, or all of them in a generation
// written before layout 3; they are never removed while the generation
// lives), a chunk of its records is damaged, or it was written in an
// earlier layout. A full run then writes a new generation, whose records
// hold the keys of its entries only. It counts at most limit+1 keys.
func (s *Store) IndexDrift(ctx context.Context, conn string, limit int) (bool, error) {
	drift := false
	err := s.db.View(func(txn *badger.Txn) error {
		gen, err := currentGen(txn, conn)
		if err != nil || gen == 0 {
			return err
		}
		layout, err := valueIn(txn, dataKey(conn, gen, tLayout))
		if err != nil {
			return err
		}
		if len(layout) != 1 || layout[0] < layoutVersion {
			drift = true
			return nil
		}
		n := 0
		for _, t := range []byte{tAddr, tAttr} {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: dataKey(conn, gen, t)})
			for it.Rewind(); it.Valid() && n <= limit; it.Next() {
				n++
			}
			it.Close()
		}
		if n > limit {
			drift = true
			return ctx.Err()
		}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: dataKey(conn, gen, tIndex), PrefetchValues: true, PrefetchSize: 4})
		defer it.Close()
		for it.Rewind(); it.Valid() && !drift; it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			err := it.Item().Value(func(v []byte) error {
				_, err := openChunk(v)
				drift = err != nil
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("cache: index of %s: %w", conn, err)
	}
	return drift, nil
}
