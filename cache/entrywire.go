package cache

import "fmt"

// EncodeEntry serialises e, connector and ID included, in the cache's own
// entry encoding, for a process that sends entries to another (the sync
// agent streams them to its hub); DecodeEntry reads it back. e is not
// changed: entries read from the cache are shared by readers, so the
// encoding is made on a copy.
func EncodeEntry(e *Entry) ([]byte, error) {
	if e.partial {
		return nil, fmt.Errorf("cache: entry %q was read without some attributes and cannot be sent", e.DN)
	}
	c := *e
	c.body, c.hashed = nil, false
	c.Attrs = append([]Attr(nil), e.Attrs...)
	c.Normalize()
	v := c.encode()
	b := make([]byte, 0, len(e.Connector)+len(e.ID)+len(v)+15)
	b = appendString(b, e.Connector)
	b = appendString(b, e.ID)
	return append(b, v...), nil
}

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
