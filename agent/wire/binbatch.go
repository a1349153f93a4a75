package wire

import (
	"encoding/binary"
	"fmt"
)

// Batch frames are binary, not JSON: a batch is nearly all encoded
// entries, which JSON would carry in base64 and scan byte by byte on both
// sides. A frame header with binaryFrame set announces one; its length
// is the other bits. The body is the stream ID (uvarint), then items, each
// a tag byte and its fields: byte strings as a uvarint length and the
// bytes, a known hash as 8 bytes big-endian, a part's More as one byte.
const binaryFrame = 1 << 31

// Item tags of a binary batch.
const (
	tagEntry  = 1 // an entry of a full read
	tagUpsert = 2 // a change's entry
	tagDelete = 3 // a change's deleted ID
	tagKnown  = 4 // a known ID and its hash
	tagPart   = 5 // a part: Upsert and More as a byte of flags, then its data
	tagSame   = 6 // a full read's entry the hub holds already: its ID and hash
)

// Flags of a part.
const (
	partUpsert = 1
	partMore   = 2
)

// appendBatch appends the binary body of batch b of stream id to buf.
func appendBatch(buf []byte, id uint64, b *Batch) []byte {
	buf = binary.AppendUvarint(buf, id)
	for _, e := range b.Entries {
		buf = appendItem(buf, tagEntry, e)
	}
	for _, c := range b.Changes {
		if c.Upsert != nil {
			buf = appendItem(buf, tagUpsert, c.Upsert)
		} else {
			buf = appendItem(buf, tagDelete, c.DeleteID)
		}
	}
	buf = appendKnown(buf, tagKnown, b.Known)
	buf = appendKnown(buf, tagSame, b.Same)
	if p := b.Part; p != nil {
		var flags byte
		if p.Upsert {
			flags |= partUpsert
		}
		if p.More {
			flags |= partMore
		}
		buf = appendItem(append(buf, tagPart), flags, p.Data)
	}
	return buf
}

// appendKnown appends IDs and hashes as items of tag.
func appendKnown(buf []byte, tag byte, ks []KnownID) []byte {
	for _, k := range ks {
		buf = appendItem(buf, tag, k.ID)
		buf = binary.BigEndian.AppendUint64(buf, k.Hash)
	}
	return buf
}

// appendItem appends a tag byte and a byte string to buf.
func appendItem[T string | []byte](buf []byte, tag byte, v T) []byte {
	buf = binary.AppendUvarint(append(buf, tag), uint64(len(v)))
	return append(buf, v...)
}

// decodeBatch parses a binary batch frame's body. The entries it returns
// share body's memory.
func decodeBatch(body []byte) (*Message, error) {
	d := body
	fail := func(what string) (*Message, error) {
		return nil, fmt.Errorf("%w: binary batch: %s at byte %d", ErrMalformed, what, len(body)-len(d))
	}
	uvarint := func() (uint64, bool) {
		v, n := binary.Uvarint(d)
		if n <= 0 {
			return 0, false
		}
		d = d[n:]
		return v, true
	}
	bytesOf := func() ([]byte, bool) {
		n, ok := uvarint()
		if !ok || n > uint64(len(d)) {
			return nil, false
		}
		v := d[:n:n]
		d = d[n:]
		return v, true
	}
	id, ok := uvarint()
	if !ok {
		return fail("stream ID")
	}
	b := &Batch{}
	for len(d) > 0 {
		tag := d[0]
		d = d[1:]
		if tag == tagPart {
			if len(d) == 0 || d[0]&^(partUpsert|partMore) != 0 || b.Part != nil {
				return fail("part")
			}
			p := &Part{Upsert: d[0]&partUpsert != 0, More: d[0]&partMore != 0}
			d = d[1:]
			if p.Data, ok = bytesOf(); !ok {
				return fail("part")
			}
			b.Part = p
			continue
		}
		v, ok := bytesOf()
		if !ok {
			return fail("item")
		}
		switch tag {
		case tagEntry:
			b.Entries = append(b.Entries, v)
		case tagUpsert:
			b.Changes = append(b.Changes, Change{Upsert: v})
		case tagDelete:
			if len(v) == 0 {
				return fail("empty deleted ID")
			}
			b.Changes = append(b.Changes, Change{DeleteID: string(v)})
		case tagKnown, tagSame:
			if len(d) < 8 || len(v) == 0 {
				return fail("ID and hash")
			}
			k := KnownID{ID: string(v), Hash: binary.BigEndian.Uint64(d)}
			d = d[8:]
			if tag == tagKnown {
				b.Known = append(b.Known, k)
			} else {
				b.Same = append(b.Same, k)
			}
		default:
			return fail(fmt.Sprintf("tag %d", tag))
		}
	}
	return &Message{Type: TypeBatch, ID: id, Batch: b}, nil
}
