package cache

import (
	"encoding/binary"
	"errors"
)

// A generation written whole (a full sync, a rewritten delta, a replayed
// snapshot) stores its address and attribute index as records in a few
// large values under tIndex, not as a Badger key per indexed value:
//
//	tIndex big-endian uint32 chunk number -> records
//	record: uvarint len(id) id uvarint n, then n times:
//	        type byte uvarint len(attr) attr uvarint len(value) value
//
// Writing a key per value cost a full sync of 100,000 cloud users about
// 900,000 Badger keys, most of its time; the records cost a few hundred
// large values. The index is only ever read whole, into the in-memory
// index (hot.go) that every lookup uses, so nothing is lost by not being
// able to seek in it. Deltas add the keys of the entries they write as
// single keys (tAddr, tAttr) beside the records; loading reads both.
// Neither is ever removed while the generation lives: the in-memory index
// proposes candidates that a lookup checks against the entry itself, so a
// key an entry no longer holds costs a read, never a wrong answer.

// indexChunkSize is the size at which a chunk of records is written out.
// It stays far below Badger's value threshold and a memtable, so a chunk
// is one ordinary value.
const indexChunkSize = 256 << 10

// errIndexRecord means stored index records do not parse.
var errIndexRecord = errors.New("cache: damaged index records")

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
