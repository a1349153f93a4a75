package wire

import (
	"errors"
	"fmt"
	"io"

	"github.com/dirgate/dirgate/cache"
	dirsync "github.com/dirgate/dirgate/sync"
)

// Batch is a part of a reply stream (entries of a full read, changes of an
// incremental one) or of a known stream (the cached IDs and hashes an
// incremental read needs). Entries are in the cache's own encoding
// (cache.EncodeEntry), which keeps every field.
type Batch struct {
	Entries [][]byte  `json:"entries,omitempty"`
	Changes []Change  `json:"changes,omitempty"`
	Known   []KnownID `json:"known,omitempty"`
}

// Change is a dirsync.Change on the wire: Upsert is an encoded entry.
type Change struct {
	Upsert   []byte `json:"upsert,omitempty"`
	DeleteID string `json:"delete_id,omitempty"`
}

// KnownID is one entry of dirsync.Known.
type KnownID struct {
	ID   string `json:"id"`
	Hash uint64 `json:"hash"`
}

// batchBytes is the encoded size at which a batch is sent: with base64 in
// JSON it stays far below MaxFrame, and a batch is small enough that the
// hub feeds the engine while the agent still reads the directory.
const batchBytes = 1 << 20

// BatchWriter gathers the items of stream id into batches and writes each
// as a frame when it is full; Flush sends the rest. It is not safe for
// concurrent use.
type BatchWriter struct {
	w    *Writer
	id   uint64
	b    Batch
	size int
}

// NewBatchWriter returns a BatchWriter for stream id on w.
func NewBatchWriter(w *Writer, id uint64) *BatchWriter { return &BatchWriter{w: w, id: id} }

// Entry adds an entry of a full read.
func (bw *BatchWriter) Entry(e *cache.Entry) error {
	b, err := cache.EncodeEntry(e)
	if err != nil {
		return err
	}
	bw.b.Entries = append(bw.b.Entries, b)
	return bw.grow(len(b))
}

// Change adds a change of an incremental read.
func (bw *BatchWriter) Change(c dirsync.Change) error {
	wc := Change{DeleteID: c.DeleteID}
	if c.Upsert != nil {
		b, err := cache.EncodeEntry(c.Upsert)
		if err != nil {
			return err
		}
		wc.Upsert = b
	}
	if (wc.Upsert == nil) == (wc.DeleteID == "") {
		return fmt.Errorf("wire: a change needs exactly one of an entry and a deleted ID")
	}
	bw.b.Changes = append(bw.b.Changes, wc)
	return bw.grow(len(wc.Upsert) + len(wc.DeleteID))
}

// Known adds a cached ID and its hash.
func (bw *BatchWriter) Known(id string, hash uint64) error {
	bw.b.Known = append(bw.b.Known, KnownID{ID: id, Hash: hash})
	return bw.grow(len(id) + 30)
}

func (bw *BatchWriter) grow(n int) error {
	bw.size += n + 8
	if bw.size < batchBytes {
		return nil
	}
	return bw.Flush()
}

// Flush sends what is gathered, if anything.
func (bw *BatchWriter) Flush() error {
	if bw.size == 0 {
		return nil
	}
	b := bw.b
	bw.b, bw.size = Batch{}, 0
	return bw.w.Write(&Message{Type: TypeBatch, ID: bw.id, Batch: &b})
}

// Finish flushes the batches and ends the stream with res.
func (bw *BatchWriter) Finish(res *Result) error {
	if err := bw.Flush(); err != nil {
		return err
	}
	return bw.w.Write(&Message{Type: TypeResult, ID: bw.id, Result: res})
}

// ErrTruncated is matched by the error of a stream that ends without its
// result: the sender failed or the connection was cut, and what was read
// must not be used.
var ErrTruncated = errors.New("wire: stream ended before its result")

// ReadReply reads reply stream id of connector: it passes each entry to
// entry and each change to change, in order, and returns the final
// result. Entries of another connector, items of another stream and a
// stream without a result are errors. A nil entry or change refuses that
// kind of item.
func ReadReply(r *Reader, id uint64, connector string, entry func(*cache.Entry) error, change func(dirsync.Change) error) (*Result, error) {
	decode := func(b []byte) (*cache.Entry, error) {
		e, err := cache.DecodeEntry(b)
		if err != nil {
			return nil, err
		}
		if e.Connector != connector {
			return nil, fmt.Errorf("%w: an entry of connector %q in a reply for %q", ErrMalformed, e.Connector, connector)
		}
		return e, nil
	}
	return readStream(r, id, func(b *Batch) error {
		if (len(b.Entries) > 0 && entry == nil) || (len(b.Changes) > 0 && change == nil) || len(b.Known) > 0 {
			return fmt.Errorf("%w: unexpected items in reply %d", ErrMalformed, id)
		}
		for _, v := range b.Entries {
			e, err := decode(v)
			if err != nil {
				return err
			}
			if err := entry(e); err != nil {
				return err
			}
		}
		for _, c := range b.Changes {
			dc := dirsync.Change{DeleteID: c.DeleteID}
			if c.Upsert != nil {
				e, err := decode(c.Upsert)
				if err != nil {
					return err
				}
				dc.Upsert = e
			}
			if (dc.Upsert == nil) == (dc.DeleteID == "") {
				return fmt.Errorf("%w: a change needs exactly one of an entry and a deleted ID", ErrMalformed)
			}
			if err := change(dc); err != nil {
				return err
			}
		}
		return nil
	})
}

// ReadKnown reads known stream id to its end (an empty result).
func ReadKnown(r *Reader, id uint64) (dirsync.Known, error) {
	known := dirsync.Known{}
	_, err := readStream(r, id, func(b *Batch) error {
		if len(b.Entries) > 0 || len(b.Changes) > 0 {
			return fmt.Errorf("%w: unexpected items in known stream %d", ErrMalformed, id)
		}
		for _, k := range b.Known {
			known[k.ID] = k.Hash
		}
		return nil
	})
	return known, err
}

func readStream(r *Reader, id uint64, batch func(*Batch) error) (*Result, error) {
	for {
		m, err := r.Read()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: %v", ErrTruncated, err)
		}
		if err != nil {
			return nil, err
		}
		if m.ID != id {
			return nil, fmt.Errorf("%w: frame of stream %d in stream %d", ErrMalformed, m.ID, id)
		}
		switch m.Type {
		case TypeBatch:
			if err := batch(m.Batch); err != nil {
				return nil, err
			}
		case TypeResult:
			return m.Result, nil
		default:
			return nil, fmt.Errorf("%w: %s frame in stream %d", ErrMalformed, m.Type, id)
		}
	}
}
