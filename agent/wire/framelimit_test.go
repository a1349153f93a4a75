package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"
)

// frame is a frame header announcing n bytes followed by body.
func frame(n uint32, body []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, n), body...)
}

// A peer that announces a large frame and sends a few bytes must not make
// the reader allocate the announced size: one agent could otherwise hold
// 8 MiB of the hub's memory per stream it opens.
func TestReadAllocatesAsBytesArrive(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const streams = 20
	for range streams {
		if _, err := NewReader(bytes.NewReader(frame(MaxFrame, []byte("{")))).Read(); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("a cut frame: %v", err)
		}
	}
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > streams*(1<<20) {
		t.Fatalf("%d frames announcing %d bytes and cut after one allocated %d bytes", streams, MaxFrame, got)
	}
}

func TestReadLimit(t *testing.T) {
	ping := []byte(`{"type":"ping","id":1}`)
	big := bytes.Repeat([]byte(" "), 3*firstChunk+17) // crosses several growth steps
	cases := []struct {
		name  string
		in    []byte
		limit uint32
		err   error
	}{
		{"within", frame(uint32(len(ping)), ping), 64, nil},
		{"announced over the limit", frame(65, ping), 64, ErrFrameTooLarge},
		{"limit above MaxFrame", frame(MaxFrame+1, nil), MaxFrame + 10, ErrFrameTooLarge},
		{"grown in steps", frame(uint32(len(big)+len(ping)), append(append([]byte{}, big...), ping...)), MaxFrame, nil},
		{"cut", frame(uint32(len(big)), big[:len(big)-1]), MaxFrame, io.ErrUnexpectedEOF},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := NewReader(bytes.NewReader(c.in)).ReadLimit(c.limit)
			switch {
			case c.err != nil && !errors.Is(err, c.err):
				t.Fatalf("err = %v, want %v", err, c.err)
			case c.err == nil && (err != nil || m.Type != TypePing || m.ID != 1):
				t.Fatalf("got %+v, %v", m, err)
			}
		})
	}
}
