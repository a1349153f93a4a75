package cache

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// A Base record holds every entry of a connector (about 1 KiB each, 100 MiB
// for 100,000 users), so neither side holds one whole: the leader streams
// its entries from the generation it commits into the publisher's writer,
// and a replica reads them one at a time from the log into a generation.
// The encoding is the same as EncodeRecord's, so either side reads records
// the other release wrote.

// entryStream is a streamed record's entries, as encoded in the record: n
// of them, which each passes to fn in order (v is valid only during fn).
// each runs once.
type entryStream struct {
	n    uint64
	each func(fn func(id string, v []byte) error) error
}

// eachRaw passes every entry of r to fn as its ID and its encoding (see
// Entry.encode), from the stream or from Entries.
func (r *Record) eachRaw(fn func(id string, v []byte) error) error {
	if r.stream != nil {
		return r.stream.each(fn)
	}
	for _, e := range r.Entries {
		if e.partial {
			return fmt.Errorf("cache: entry %q was read without some attributes and cannot be published", e.DN)
		}
		e.Normalize()
		if err := fn(e.ID, e.encode()); err != nil {
			return err
		}
	}
	return nil
}

// eachEntry passes every entry of r to fn, decoded from the stream or from
// Entries. Decoded entries have no hash: it is recomputed where they are
// written, not taken from the record.
func (r *Record) eachEntry(fn func(e *Entry) error) error {
	if r.stream == nil {
		for _, e := range r.Entries {
			if err := fn(e); err != nil {
				return err
			}
		}
		return nil
	}
	return r.stream.each(func(id string, v []byte) error {
		e, err := decodeEntry(r.Connector, id, v)
		if err != nil {
			return fmt.Errorf("%w: %v", errBadRecord, err)
		}
		e.hashed = false
		return fn(e)
	})
}

// entryCount is how many entries r holds.
func (r *Record) entryCount() uint64 {
	if r.stream != nil {
		return r.stream.n
	}
	return uint64(len(r.Entries))
}

// Streamed reports whether r's entries are streamed rather than in
// Entries: a Base record the cache publishes (read from the generation
// during Publish only), or one ReadRecord returns (read as it is applied).
func (r *Record) Streamed() bool { return r.stream != nil }

// generationStream streams the entries of generation gen of conn from txn,
// which must stay open while the stream is read.
func generationStream(ctx context.Context, txn *badger.Txn, conn string, gen uint64) (*entryStream, error) {
	prefix := dataKey(conn, gen, tEntry)
	var n uint64
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	for it.Rewind(); it.Valid(); it.Next() {
		n++
	}
	it.Close()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	each := func(fn func(id string, v []byte) error) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		var seen uint64
		for it.Rewind(); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			item := it.Item()
			id := string(item.Key()[len(prefix):])
			if err := item.Value(func(v []byte) error { return fn(id, v) }); err != nil {
				return err
			}
			seen++
		}
		if seen != n {
			return fmt.Errorf("cache: generation %s/%d changed while it was published", conn, gen)
		}
		return nil
	}
	return &entryStream{n: n, each: once(each)}, nil
}

// once makes each fail when called again: a stream is read once.
func once(each func(fn func(id string, v []byte) error) error) func(fn func(id string, v []byte) error) error {
	used := false
	return func(fn func(id string, v []byte) error) error {
		if used {
			return errors.New("cache: a streamed record's entries were read already")
		}
		used = true
		return each(fn)
	}
}

// WriteRecord writes r to w in the record encoding (see EncodeRecord),
// entry by entry: a streamed record is never whole in memory.
func WriteRecord(w io.Writer, r *Record) error {
	var flags byte
	if r.Base {
		flags |= recBase
	}
	if r.Cursor != nil {
		flags |= recCursor
	}
	var run []byte
	if r.Run != nil {
		flags |= recRun
		var err error
		if run, err = json.Marshal(r.Run); err != nil {
			return fmt.Errorf("cache: encode run of %s: %w", r.Connector, err)
		}
	}
	b := make([]byte, 0, 64<<10)
	b = append(b, recVersion, flags)
	b = appendString(b, r.Connector)
	b = binary.AppendVarint(b, r.Time.UnixNano())
	if r.Cursor != nil {
		b = appendString(b, string(r.Cursor))
	}
	if r.Run != nil {
		b = appendString(b, string(run))
	}
	b = binary.AppendUvarint(b, r.entryCount())
	err := r.eachRaw(func(id string, v []byte) error {
		b = appendString(b, id)
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
		if len(b) < 32<<10 {
			return nil
		}
		_, err := w.Write(b)
		b = b[:0]
		return err
	})
	if err != nil {
		return err
	}
	b = appendStrings(b, r.Deletes)
	_, err = w.Write(b)
	return err
}

// ReadRecord reads a record in the encoding WriteRecord writes from rd,
// which it reads to the end of the record. A delta record is read whole.
// A Base record's entries are streamed (Streamed): they are read from rd
// as the record is applied (ApplyRecord), which fails, changing nothing,
// when the rest of the record is corrupt; rd must stay readable until
// then.
func ReadRecord(rd io.Reader) (*Record, error) {
	d := &streamDecoder{r: bufio.NewReaderSize(rd, 64<<10)}
	version, flags := d.byte(), d.byte()
	if d.err != nil || version != recVersion {
		return nil, errBadRecord
	}
	r := &Record{Base: flags&recBase != 0}
	r.Connector = d.string()
	ns, err := binary.ReadVarint(d.r)
	if d.err != nil || err != nil {
		return nil, errBadRecord
	}
	r.Time = time.Unix(0, ns).UTC()
	if flags&recCursor != 0 {
		r.Cursor = append([]byte{}, d.bytes()...)
	}
	if flags&recRun != 0 {
		run := d.bytes()
		if d.err == nil {
			r.Run = new(Run)
			if err := json.Unmarshal(run, r.Run); err != nil {
				return nil, fmt.Errorf("%w: run: %v", errBadRecord, err)
			}
		}
	}
	n := d.uvarint()
	if d.err != nil {
		return nil, errBadRecord
	}
	r.stream = &entryStream{n: n, each: once(func(fn func(id string, v []byte) error) error {
		return d.entries(n, fn, &r.Deletes)
	})}
	if !r.Base {
		if err := r.collect(); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// collect reads a streamed record's entries into Entries.
func (r *Record) collect() error {
	if r.stream == nil {
		return nil
	}
	var entries []*Entry
	if err := r.eachEntry(func(e *Entry) error { entries = append(entries, e); return nil }); err != nil {
		return err
	}
	r.Entries, r.stream = entries, nil
	return nil
}

// streamDecoder reads the parts of a record from a stream; the first
// error sticks.
type streamDecoder struct {
	r   *bufio.Reader
	err error
	buf []byte // bytes' result, reused
}

func (d *streamDecoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *streamDecoder) byte() byte {
	if d.err != nil {
		return 0
	}
	c, err := d.r.ReadByte()
	if err != nil {
		d.fail(errBadRecord)
	}
	return c
}

func (d *streamDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	n, err := binary.ReadUvarint(d.r)
	if err != nil {
		d.fail(errBadRecord)
	}
	return n
}

// bytes returns the next length-prefixed string in a buffer that the next
// call reuses. It grows with what arrives, so a corrupt length costs no
// more memory than the stream holds.
func (d *streamDecoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	b := d.buf[:0]
	for uint64(len(b)) < n {
		chunk := int(min(n-uint64(len(b)), 1<<20))
		if cap(b)-len(b) < chunk {
			b = append(b, make([]byte, chunk)...)[:len(b)]
		}
		k, err := io.ReadFull(d.r, b[len(b):len(b)+chunk])
		b = b[:len(b)+k]
		if err != nil {
			d.fail(errBadRecord)
			return nil
		}
	}
	d.buf = b
	return b
}

func (d *streamDecoder) string() string { return string(d.bytes()) }

// entries reads n entries, passing each to fn, then the deleted IDs into
// deletes, and checks that the record ends there.
func (d *streamDecoder) entries(n uint64, fn func(id string, v []byte) error, deletes *[]string) error {
	var id []byte
	for range n {
		id = append(id[:0], d.bytes()...)
		v := d.bytes()
		if d.err != nil {
			return d.err
		}
		if err := fn(string(id), v); err != nil {
			return err
		}
	}
	k := d.uvarint()
	for ; k > 0 && d.err == nil; k-- {
		*deletes = append(*deletes, d.string())
	}
	if d.err != nil {
		return d.err
	}
	if _, err := d.r.ReadByte(); err != io.EOF {
		return errBadRecord
	}
	return nil
}
