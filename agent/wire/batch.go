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
//
// An entry too large for one frame (a group of a hundred thousand
// members) travels as Parts in consecutive batches that carry nothing
// else; the reader joins them, up to MaxEntry bytes.
type Batch struct {
	Entries [][]byte  `json:"entries,omitempty"`
	Changes []Change  `json:"changes,omitempty"`
	Known   []KnownID `json:"known,omitempty"`
	// Same are entries of a full read that the hub holds with these
	// hashes already (it sent them as the read's known set): the agent
	// sends their IDs and hashes instead of the entries.
	Same []KnownID `json:"same,omitempty"`
	Part *Part     `json:"part,omitempty"`
}

// Part is a piece of one encoded entry sent in several frames.
type Part struct {
	// Upsert says the entry is a change's (an incremental read), not a
	// full read's.
	Upsert bool   `json:"upsert,omitempty"`
	Data   []byte `json:"data"`
	// More says that pieces of the same entry follow; the last has none.
	More bool `json:"more,omitempty"`
}

// MaxEntry bounds one encoded entry on a reply stream, however many frames
// carry it: the largest value the cache can store (its value-log file
// size), far above the largest group a direct connector syncs in practice.
// A larger one fails the read with ErrEntryTooLarge.
const MaxEntry = 64 << 20

// ErrEntryTooLarge is matched by the error of a reply stream whose entry
// is larger than MaxEntry, sent or received.
var ErrEntryTooLarge = errors.New("wire: entry larger than 64 MiB")

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

// batchBytes is the encoded size at which a batch is sent: small enough
// that the hub feeds the engine while the agent still reads the
// directory. An entry goes into a batch only if the batch stays within
// it, unless the batch is empty; partBytes bounds an entry sent whole, a
// larger one is sent in parts of that size. A frame stays far below
// MaxFrame either way.
const (
	batchBytes = 1 << 20
	partBytes  = 4 << 20
)

// BatchWriter gathers the items of stream id into batches and writes each
// as a frame when it is full; Flush sends the rest. It is not safe for
// concurrent use.
type BatchWriter struct {
	w     *Writer
	id    uint64
	b     Batch
	size  int
	known dirsync.Known
}

// NewBatchWriter returns a BatchWriter for stream id on w.
func NewBatchWriter(w *Writer, id uint64) *BatchWriter { return &BatchWriter{w: w, id: id} }

// SkipKnown makes Entry send only the ID and hash of an entry that known
// holds with the same hash: the hub that sent known holds it already.
func (bw *BatchWriter) SkipKnown(known dirsync.Known) { bw.known = known }

// Entry adds an entry of a full read.
func (bw *BatchWriter) Entry(e *cache.Entry) error {
	var skip func(uint64) bool
	if h, ok := bw.known[e.ID]; ok {
		skip = func(hash uint64) bool { return hash == h }
	}
	b, hash, err := cache.EncodeEntryHash(e, skip)
	if err != nil {
		return err
	}
	if b == nil {
		n := stringSize(e.ID) + 8
		if err := bw.room(n); err != nil {
			return err
		}
		bw.b.Same = append(bw.b.Same, KnownID{ID: e.ID, Hash: hash})
		return bw.grow(n)
	}
	if len(b) > partBytes {
		return bw.parts(b, false)
	}
	n := len(b) + 8
	if err := bw.room(n); err != nil {
		return err
	}
	bw.b.Entries = append(bw.b.Entries, b)
	return bw.grow(n)
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
	if len(wc.Upsert) > partBytes {
		return bw.parts(wc.Upsert, true)
	}
	n := len(wc.Upsert) + stringSize(wc.DeleteID)
	if err := bw.room(n); err != nil {
		return err
	}
	bw.b.Changes = append(bw.b.Changes, wc)
	return bw.grow(n)
}

// Known adds a cached ID and its hash.
func (bw *BatchWriter) Known(id string, hash uint64) error {
	n := stringSize(id) + 8
	if err := bw.room(n); err != nil {
		return err
	}
	bw.b.Known = append(bw.b.Known, KnownID{ID: id, Hash: hash})
	return bw.grow(n)
}

// stringSize bounds the encoded size of a string item.
func stringSize(s string) int { return len(s) + 10 }

// room sends the batch first when an item of n bytes would overflow it.
func (bw *BatchWriter) room(n int) error {
	if bw.size > 0 && bw.size+n > batchBytes {
		return bw.Flush()
	}
	return nil
}

// grow counts an added item of n bytes and sends a full batch.
func (bw *BatchWriter) grow(n int) error {
	bw.size += n
	if bw.size < batchBytes {
		return nil
	}
	return bw.Flush()
}

// parts sends encoded entry b, too large for a batch, in parts of its own
// frames, after the batch gathered so far.
func (bw *BatchWriter) parts(b []byte, upsert bool) error {
	if len(b) > MaxEntry {
		return fmt.Errorf("%w: %d bytes", ErrEntryTooLarge, len(b))
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	for off := 0; off < len(b); off += partBytes {
		end := min(off+partBytes, len(b))
		p := &Part{Upsert: upsert, Data: b[off:end], More: end < len(b)}
		if err := bw.w.Write(&Message{Type: TypeBatch, ID: bw.id, Batch: &Batch{Part: p}}); err != nil {
			return err
		}
	}
	return nil
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

// joiner puts together an entry sent in parts.
type joiner struct {
	buf    []byte
	upsert bool
	open   bool // a part came, not yet the last
}

// add takes the next part; with the last (done) it returns the whole
// entry.
func (j *joiner) add(p *Part) (whole []byte, done bool, err error) {
	if j.open && p.Upsert != j.upsert {
		return nil, false, fmt.Errorf("%w: parts of a change's entry and of a full read's mixed", ErrMalformed)
	}
	if len(j.buf)+len(p.Data) > MaxEntry {
		return nil, false, fmt.Errorf("%w: more than %d bytes in parts", ErrEntryTooLarge, MaxEntry)
	}
	j.buf = append(j.buf, p.Data...)
	j.open, j.upsert = true, p.Upsert
	if p.More {
		return nil, false, nil
	}
	whole = j.buf
	*j = joiner{}
	return whole, true, nil
}

// ErrTruncated is matched by the error of a stream that ends without its
// result: the sender failed or the connection was cut, and what was read
// must not be used.
var ErrTruncated = errors.New("wire: stream ended before its result")

// replyAhead is how many decoded batches ReadReply holds ahead of its
// consumer.
const replyAhead = 2

// decoded is a batch of a reply decoded ahead, or the reply's end (a
// result or an error).
type decoded struct {
	entries []*cache.Entry
	changes []dirsync.Change
	res     *Result
	err     error
	end     bool
}

// ReadReply reads reply stream id of connector: it passes each entry to
// entry and each change to change, in order, and returns the final
// result. Entries of another connector, items of another stream, an entry
// whose parts do not follow one another or exceed MaxEntry, and a stream
// without a result are errors. A nil entry or change refuses that kind of
// item.
//
// The stream is read and decoded in a goroutine of its own, up to
// replyAhead batches ahead of entry and change, which run on the caller's
// goroutine: decoding overlaps the consumer's work. When entry or change
// fails, ReadReply returns at once and that goroutine ends after its
// current read, which closing r's stream ends.
func ReadReply(r *Reader, id uint64, connector string, entry func(*cache.Entry) error, change func(dirsync.Change) error) (*Result, error) {
	batches := make(chan decoded, replyAhead)
	quit := make(chan struct{})
	defer close(quit)
	go func() {
		var d decoded
		send := func() error {
			select {
			case batches <- d:
				d = decoded{}
				return nil
			case <-quit:
				return errQuit
			}
		}
		var onEntry func(*cache.Entry) error
		if entry != nil {
			onEntry = func(e *cache.Entry) error { d.entries = append(d.entries, e); return nil }
		}
		var onChange func(dirsync.Change) error
		if change != nil {
			onChange = func(c dirsync.Change) error { d.changes = append(d.changes, c); return nil }
		}
		res, err := decodeReply(r, id, connector, onEntry, onChange, send)
		if !errors.Is(err, errQuit) {
			d = decoded{res: res, err: err, end: true}
			_ = send()
		}
	}()
	for {
		d := <-batches
		for _, e := range d.entries {
			if err := entry(e); err != nil {
				return nil, err
			}
		}
		for _, c := range d.changes {
			if err := change(c); err != nil {
				return nil, err
			}
		}
		if d.end {
			return d.res, d.err
		}
	}
}

// errQuit ends decodeReply's goroutine once ReadReply returned.
var errQuit = errors.New("wire: the reply's consumer stopped")

// decodeReply is ReadReply's reading half: it decodes the stream's items
// and passes them to entry and change, and calls batchDone after each
// batch.
func decodeReply(r *Reader, id uint64, connector string, entry func(*cache.Entry) error, change func(dirsync.Change) error, batchDone func() error) (*Result, error) {
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
	onEntry := func(b []byte) error {
		e, err := decode(b)
		if err != nil {
			return err
		}
		return entry(e)
	}
	onChange := func(c Change) error {
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
		return change(dc)
	}
	var j joiner
	res, err := readStream(r, id, func(b *Batch) error {
		entries, changes := len(b.Entries) > 0, len(b.Changes) > 0
		if p := b.Part; p != nil {
			entries, changes = entries || !p.Upsert, changes || p.Upsert
		}
		entries = entries || len(b.Same) > 0
		if (entries && entry == nil) || (changes && change == nil) || len(b.Known) > 0 {
			return fmt.Errorf("%w: unexpected items in reply %d", ErrMalformed, id)
		}
		if b.Part != nil {
			if len(b.Entries) > 0 || len(b.Changes) > 0 || len(b.Same) > 0 {
				return fmt.Errorf("%w: a part of an entry with other items in reply %d", ErrMalformed, id)
			}
			whole, done, err := j.add(b.Part)
			switch {
			case err != nil || !done:
				return err
			case b.Part.Upsert:
				err = onChange(Change{Upsert: whole})
			default:
				err = onEntry(whole)
			}
			if err != nil {
				return err
			}
			return batchDone()
		}
		if j.open {
			return fmt.Errorf("%w: items between the parts of an entry in reply %d", ErrMalformed, id)
		}
		for _, v := range b.Entries {
			if err := onEntry(v); err != nil {
				return err
			}
		}
		for _, k := range b.Same {
			if err := entry(cache.Unchanged(k.ID, k.Hash)); err != nil {
				return err
			}
		}
		for _, c := range b.Changes {
			if err := onChange(c); err != nil {
				return err
			}
		}
		return batchDone()
	})
	if err == nil && j.open {
		return nil, fmt.Errorf("%w: reply %d ended inside an entry sent in parts", ErrMalformed, id)
	}
	return res, err
}

// ReadKnown reads known stream id to its end (an empty result).
func ReadKnown(r *Reader, id uint64) (dirsync.Known, error) {
	known := dirsync.Known{}
	_, err := readStream(r, id, func(b *Batch) error {
		if len(b.Entries) > 0 || len(b.Changes) > 0 || len(b.Same) > 0 || b.Part != nil {
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
