package wire

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
)

// MaxFrame bounds a frame's body: a peer that sends more is refused.
const MaxFrame = 8 << 20

// ErrFrameTooLarge is matched (errors.Is) by the error of a frame whose
// length exceeds MaxFrame, sent or received.
var ErrFrameTooLarge = errors.New("wire: frame larger than 8 MiB")

// Writer writes frames; it is safe for concurrent use, each frame written
// whole. When the underlying writer can flush (an http.ResponseWriter, an
// HTTP/2 request body pipe through bufio), frames are flushed at once, so
// that none waits in a buffer.
//
// Frames written while another goroutine's write is under way are
// gathered and written, and flushed, together by whichever caller writes
// next: eight password checks in flight then cost one TLS record and one
// system call, not eight. Write returns once its frame was written.
type Writer struct {
	w    io.Writer
	mu   sync.Mutex
	cond sync.Cond
	// pending holds frames not yet handed to w, up to frame number
	// queued; written counts the frames handed over.
	pending         []byte
	spare           []byte
	queued, written uint64
	writing         bool
	err             error // the first write's failure; the stream is broken
}

// NewWriter returns a Writer on w.
func NewWriter(w io.Writer) *Writer {
	wr := &Writer{w: w}
	wr.cond.L = &wr.mu
	return wr
}

// maxKeep bounds the buffer a Writer keeps between frames: a large batch
// is not kept for every later ping.
const maxKeep = 1 << 20

// Write sends m as one frame: a batch in binary (appendBatch), anything
// else in JSON.
func (w *Writer) Write(m *Message) error {
	var body []byte
	if m.Type != TypeBatch || m.Batch == nil {
		var err error
		if body, err = json.Marshal(m); err != nil {
			return fmt.Errorf("wire: encode %s: %w", m.Type, err)
		}
		if len(body) > MaxFrame {
			return fmt.Errorf("%w: %s of %d bytes", ErrFrameTooLarge, m.Type, len(body))
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return fmt.Errorf("wire: write %s: %w", m.Type, w.err)
	}
	start := len(w.pending)
	if body != nil {
		w.pending = binary.BigEndian.AppendUint32(w.pending, uint32(len(body)))
		w.pending = append(w.pending, body...)
	} else {
		w.pending = appendBatch(append(w.pending, 0, 0, 0, 0), m.ID, m.Batch)
		n := len(w.pending) - start - 4
		if n > MaxFrame {
			w.pending = w.pending[:start]
			return fmt.Errorf("%w: %s of %d bytes", ErrFrameTooLarge, m.Type, n)
		}
		binary.BigEndian.PutUint32(w.pending[start:], uint32(n)|binaryFrame)
	}
	w.queued++
	mine := w.queued
	for w.written < mine && w.err == nil {
		if w.writing {
			w.cond.Wait()
			continue
		}
		w.flushPending()
	}
	if w.err != nil {
		return fmt.Errorf("wire: write %s: %w", m.Type, w.err)
	}
	return nil
}

// flushPending writes and flushes the frames pending now, with w.mu held
// except around the write. Frames queued meanwhile are left to their
// writers, one of which writes them all next: no caller keeps writing
// others' frames for long.
func (w *Writer) flushPending() {
	w.writing = true
	defer func() { w.writing = false; w.cond.Broadcast() }()
	buf, upto := w.pending, w.queued
	w.pending = w.spare[:0]
	err := func() (err error) {
		w.mu.Unlock()
		defer w.mu.Lock()
		// A writer that panics (an HTTP/2 stream written after its
		// handler returned) breaks the stream, not the process: the
		// frames it carried and all later ones fail with the error.
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("wire: the stream's writer panicked: %v", r)
			}
		}()
		return w.writeOut(buf)
	}()
	if cap(buf) <= maxKeep {
		w.spare = buf
	} else {
		w.spare = nil
	}
	w.written, w.err = upto, err
}

// writeOut hands buf to the underlying writer and flushes it.
func (w *Writer) writeOut(buf []byte) error {
	if _, err := w.w.Write(buf); err != nil {
		return err
	}
	switch f := w.w.(type) {
	case interface{ Flush() error }:
		return f.Flush()
	case http.Flusher:
		f.Flush()
	}
	return nil
}

// Reader reads frames; it is not safe for concurrent use.
type Reader struct {
	r   io.Reader
	hdr [4]byte
}

// NewReader returns a Reader on r.
func NewReader(r io.Reader) *Reader { return &Reader{r: r} }

// Read returns the next frame. At the end of the stream, between frames,
// it returns io.EOF; a stream cut inside a frame is io.ErrUnexpectedEOF.
func (r *Reader) Read() (*Message, error) { return r.ReadLimit(MaxFrame) }

// firstChunk is how much of a frame's body is allocated before its bytes
// arrive; the buffer then doubles as they do.
const firstChunk = 64 << 10

// ReadLimit is Read of a frame of at most limit bytes (MaxFrame at most):
// the hub reads an agent's hello, before it knows the agent, with a small
// one. The body's buffer grows as its bytes arrive, so that a peer
// announcing a large frame and sending little costs little memory.
func (r *Reader) ReadLimit(limit uint32) (*Message, error) {
	if _, err := io.ReadFull(r.r, r.hdr[:]); err != nil {
		return nil, err
	}
	hdr := binary.BigEndian.Uint32(r.hdr[:])
	n := int(hdr &^ binaryFrame)
	if n > int(min(limit, MaxFrame)) {
		return nil, fmt.Errorf("%w: announced %d bytes, at most %d here", ErrFrameTooLarge, n, min(limit, MaxFrame))
	}
	body := make([]byte, 0, min(n, firstChunk))
	for len(body) < n {
		chunk := min(n-len(body), max(len(body), firstChunk))
		body = slices.Grow(body, chunk)
		k, err := io.ReadFull(r.r, body[len(body):len(body)+chunk])
		body = body[:len(body)+k]
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	if hdr&binaryFrame != 0 {
		return decodeBatch(body)
	}
	return Decode(body)
}

// Decode parses one frame's JSON and checks that the message is well
// formed: a known type and the part that type needs.
func Decode(body []byte) (*Message, error) {
	var m Message
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("wire: decode frame: %w", err)
	}
	if err := m.check(); err != nil {
		return nil, err
	}
	return &m, nil
}

// ErrMalformed is matched by the error of a frame that parses but lacks
// what its type needs.
var ErrMalformed = errors.New("wire: malformed message")

func (m *Message) check() error {
	var ok bool
	switch m.Type {
	case TypeHello:
		ok = m.Hello != nil
	case TypeWelcome:
		ok = m.Welcome != nil
	case TypeRequest:
		ok = m.Request != nil && m.Request.valid()
	case TypeResult:
		ok = m.Result != nil
	case TypeBatch:
		ok = m.Batch != nil
	case TypePing, TypePong, TypeCancel:
		ok = true
	}
	if !ok {
		return fmt.Errorf("%w: type %q", ErrMalformed, m.Type)
	}
	return nil
}

func (r *Request) valid() bool {
	switch r.Kind {
	case KindFull, KindChanges, KindTest:
		return true
	case KindCheck:
		return r.Check != nil
	}
	return false
}
