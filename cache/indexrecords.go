package cache

import (
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

// IndexDrift reports whether conn's served generation holds more index
// keys outside its records than limit: the keys its deltas added, or all
// of them in a generation written before layout 3. They are never removed
// while the generation lives, so a full run compares them with the
// entries and writes a new generation, whose records hold the keys of its
// entries only, once they outnumber them. It counts at most limit+1.
func (s *Store) IndexDrift(conn string, limit int) (bool, error) {
	n := 0
	err := s.db.View(func(txn *badger.Txn) error {
		gen, err := currentGen(txn, conn)
		if err != nil || gen == 0 {
			return err
		}
		for _, t := range []byte{tAddr, tAttr} {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: dataKey(conn, gen, t)})
			for it.Rewind(); it.Valid() && n <= limit; it.Next() {
				n++
			}
			it.Close()
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("cache: index of %s: %w", conn, err)
	}
	return n > limit, nil
}
