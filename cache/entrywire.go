package cache

import "fmt"

// EncodeEntry serialises e, connector and ID included, in the cache's own
// entry encoding, for a process that sends entries to another (the sync
// agent streams them to its hub); DecodeEntry reads it back. e is not
// changed: entries read from the cache are shared by readers, so the
// encoding is made on a copy.
func EncodeEntry(e *Entry) ([]byte, error) {
	b, _, err := EncodeEntryHash(e, nil)
	return b, err
}

// EncodeEntryHash is EncodeEntry that also returns the entry's content
// hash, as Hash gives it once the receiver normalised the entry: a sender
// that knows the receiver's hashes sends Unchanged's ID and hash instead
// of an entry the receiver holds already. When skip (if not nil) reports
// that hash as one to leave out, the entry is not encoded and the bytes
// are nil.
func EncodeEntryHash(e *Entry, skip func(hash uint64) bool) ([]byte, uint64, error) {
	if e.partial {
		return nil, 0, fmt.Errorf("cache: entry %q was read without some attributes and cannot be sent", e.DN)
	}
	c := *e
	c.body, c.hashed = nil, false
	c.Attrs = append([]Attr(nil), e.Attrs...)
	c.Normalize()
	if skip != nil && skip(c.Hash()) {
		return nil, c.bodyHash, nil
	}
	v := c.encode()
	b := make([]byte, 0, len(e.Connector)+len(e.ID)+len(v)+15)
	b = appendString(b, e.Connector)
	b = appendString(b, e.ID)
	return append(b, v...), c.bodyHash, nil
}

// Unchanged returns a stand-in for the entry with stable ID id whose
// content hash is hash, for a reader that only learned that its sender
// holds that version unchanged (a full read through a sync agent, which
// was told the cached hashes). It has no content: writing or sending it
// fails, as for an entry read without some attributes.
func Unchanged(id string, hash uint64) *Entry {
	return &Entry{ID: id, bodyHash: hash, hashed: true, partial: true, unchanged: true}
}

// IsUnchanged reports whether e is a stand-in made by Unchanged.
func (e *Entry) IsUnchanged() bool { return e.unchanged }

// DecodeEntry parses an entry written by EncodeEntry. Its content hash is
// recomputed where it is needed, not taken from the sender, as for the
// change log (DecodeRecord).
func DecodeEntry(b []byte) (*Entry, error) {
	d := decoder{b: b}
	connector := d.string()
	id := d.string()
	if d.err != nil {
		return nil, fmt.Errorf("decode entry: %w", d.err)
	}
	e, err := decodeEntry(connector, id, d.b)
	if err != nil {
		return nil, err
	}
	e.hashed = false
	return e, nil
}
