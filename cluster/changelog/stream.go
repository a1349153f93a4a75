package changelog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/klauspost/compress/zstd"

	"github.com/dirgate/dirgate/cache"
)

// A record is compressed and cut into parts as it is encoded, and read back
// part by part as it is applied, so that neither side holds a whole Base
// record (100 MiB encoded for 100,000 users): see cache.WriteRecord and
// cache.ReadRecord.

// codecs pools the zstd streams of a Log: each is used by one record at a
// time.
type codecs struct {
	enc, dec sync.Pool
}

// The window bounds what a decoder keeps of a stream; a few MiB compress
// directory entries nearly as well as a whole record would.
const window = 4 << 20

func (c *codecs) encoder(w io.Writer) (*zstd.Encoder, error) {
	if e, ok := c.enc.Get().(*zstd.Encoder); ok {
		e.Reset(w)
		return e, nil
	}
	return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(window))
}

func (c *codecs) putEncoder(e *zstd.Encoder) {
	e.Reset(io.Discard) // drops the reference to the record's writer
	c.enc.Put(e)
}

func (c *codecs) decoder(r io.Reader) (*zstd.Decoder, error) {
	if d, ok := c.dec.Get().(*zstd.Decoder); ok {
		if err := d.Reset(r); err != nil {
			return nil, err
		}
		return d, nil
	}
	return zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxMemory(1<<30))
}

func (c *codecs) putDecoder(d *zstd.Decoder) {
	if d.Reset(nil) == nil {
		c.dec.Put(d)
	}
}

// stage receives a record's compressed bytes and cuts them into parts of
// PartSize: every full part is written to changelog_stage at once (one
// bounded call each); the last one stays in memory for the publishing
// transaction, which also moves the staged ones (see publisher.Publish).
type stage struct {
	l      *Log
	ctx    context.Context
	id     int64
	buf    []byte // the part being filled
	staged int    // parts in changelog_stage
	size   int64  // compressed bytes written
	moved  bool   // the staged parts are in the log now
}

func (l *Log) newStage(ctx context.Context) *stage {
	return &stage{l: l, ctx: ctx, id: rand.Int64()}
}

func (s *stage) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		if len(s.buf) == s.l.opt.PartSize {
			if err := s.flush(); err != nil {
				return 0, err
			}
		}
		k := min(len(b), s.l.opt.PartSize-len(s.buf))
		s.buf = append(s.buf, b[:k]...)
		b = b[k:]
	}
	s.size += int64(n)
	return n, nil
}

func (s *stage) flush() error {
	ctx, cancel := s.l.bound(s.ctx)
	defer cancel()
	if _, err := s.l.pool.Exec(ctx, `INSERT INTO changelog_stage (id, part, data) VALUES ($1, $2, $3)`, s.id, s.staged, s.buf); err != nil {
		return fmt.Errorf("changelog: stage part %d: %w", s.staged, err)
	}
	s.staged++
	s.buf = s.buf[:0]
	return nil
}

// write encodes r, compressed, into the stage.
func (s *stage) write(r *cache.Record) error {
	zw, err := s.l.codecs.encoder(s)
	if err != nil {
		return err
	}
	defer s.l.codecs.putEncoder(zw)
	if err := cache.WriteRecord(zw, r); err != nil {
		return err
	}
	return zw.Close()
}

// move inserts the record's parts as record seq within tx: the staged
// ones, then the last.
func (s *stage) move(ctx context.Context, tx pgx.Tx, seq int64) error {
	if s.staged > 0 {
		tag, err := tx.Exec(ctx, `INSERT INTO changelog_part (seq, part, data) SELECT $1, part, data FROM changelog_stage WHERE id = $2`, seq, s.id)
		if err != nil {
			return err
		}
		if n := tag.RowsAffected(); n != int64(s.staged) {
			return fmt.Errorf("changelog: %d of the record's %d staged parts are left", n, s.staged)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM changelog_stage WHERE id = $1`, s.id); err != nil {
			return err
		}
	}
	_, err := tx.Exec(ctx, `INSERT INTO changelog_part (seq, part, data) VALUES ($1, $2, $3)`, seq, s.staged, s.buf)
	return err
}

// discard deletes the staged parts of a record that was not published;
// compaction deletes them later if this fails.
func (s *stage) discard() {
	if s.staged == 0 || s.moved {
		return
	}
	ctx, cancel := s.l.bound(context.WithoutCancel(s.ctx))
	defer cancel()
	if _, err := s.l.pool.Exec(ctx, `DELETE FROM changelog_stage WHERE id = $1`, s.id); err != nil {
		s.l.log.Warn("change log: could not delete the staged parts of an unpublished record", "err", err)
	}
}

// partReader reads record seq's compressed bytes part by part, one bounded
// call each. Its err is the first read failure: a record pruned meanwhile
// (errGone), PostgreSQL failing.
type partReader struct {
	l     *Log
	ctx   context.Context
	seq   uint64
	next  int // the part to read next
	parts int // the record's count, -1 until the first part is read
	data  []byte
	err   error
}

func (p *partReader) Read(b []byte) (int, error) {
	for len(p.data) == 0 {
		if p.err != nil {
			return 0, p.err
		}
		if p.next == p.parts {
			return 0, io.EOF
		}
		p.err = p.fetch()
	}
	n := copy(b, p.data)
	p.data = p.data[n:]
	return n, nil
}

func (p *partReader) fetch() error {
	ctx, cancel := p.l.bound(p.ctx)
	defer cancel()
	var parts int
	err := p.l.pool.QueryRow(ctx, `SELECT c.parts, p.data FROM changelog c JOIN changelog_part p USING (seq)
		WHERE seq = $1 AND p.part = $2`, int64(p.seq), p.next).Scan(&parts, &p.data)
	switch {
	case errors.Is(err, pgx.ErrNoRows), err == nil && p.parts >= 0 && parts != p.parts:
		return fmt.Errorf("%w: %d", errGone, p.seq)
	case err != nil:
		return fmt.Errorf("changelog: read record %d: %w", p.seq, err)
	}
	p.parts = parts
	p.next++
	return nil
}

// readRecord opens record seq for reading: a delta is read whole, a
// Base's entries as they are applied (cache.ReadRecord); apply reads the
// record within fn, and gets the record's read failure, if any, in place
// of what it caused.
func (l *Log) readRecord(ctx context.Context, seq uint64, fn func(*cache.Record) error) error {
	pr := &partReader{l: l, ctx: ctx, seq: seq, parts: -1}
	zr, err := l.codecs.decoder(pr)
	if err != nil {
		return fmt.Errorf("changelog: record %d: %w", seq, err)
	}
	defer l.codecs.putDecoder(zr)
	r, err := cache.ReadRecord(zr)
	if err == nil {
		err = fn(r)
	}
	switch {
	case pr.err != nil && err != nil:
		return pr.err
	case err != nil:
		return fmt.Errorf("changelog: record %d: %w", seq, err)
	}
	return nil
}
