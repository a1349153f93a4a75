package wire

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dirgate/dirgate/authn"
	"github.com/dirgate/dirgate/cache"
	dirsync "github.com/dirgate/dirgate/sync"
	"github.com/dirgate/dirgate/testconn"
	"github.com/dirgate/dirgate/upstream"
)

func TestMessageRoundTrip(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	user, _ := cache.EncodeEntry(&cache.Entry{Connector: "ad", ID: "u1", DN: "cn=u1", Kind: cache.KindUser})
	tests := []*Message{
		{Type: TypeHello, Hello: &Hello{AgentID: "a1", Name: "n", Version: "v1", Connector: "ad", Hostname: "h"}},
		{Type: TypeWelcome, Welcome: &Welcome{Replica: "r1", Heartbeat: 15 * time.Second, Peers: []string{"https://r1:8444"}}},
		{Type: TypePing, ID: 7, Sent: at},
		{Type: TypePong, ID: 7, Sent: at},
		{Type: TypeCancel, ID: 9},
		{Type: TypeRequest, ID: 1, Request: &Request{Kind: KindFull, Connector: "ad", Deadline: at}},
		{Type: TypeRequest, ID: 2, Request: &Request{Kind: KindChanges, Connector: "ad", Cursor: []byte{0, 1, 255}, HasKnown: true}},
		{Type: TypeRequest, ID: 3, Request: &Request{Kind: KindCheck, Connector: "ad", Check: &CheckRequest{DN: "cn=a,dc=x", Password: "pw"}}},
		{Type: TypeRequest, ID: 4, Request: &Request{Kind: KindTest, Connector: "ad"}},
		{Type: TypeResult, ID: 1, Result: &Result{Host: "dc1", Listing: &dirsync.Listing{Host: "dc1", Cursor: []byte("c")}}},
		{Type: TypeResult, ID: 2, Result: &Result{Changes: &dirsync.ChangeSet{Host: "dc1", Cursor: []byte("d"), Read: 3, Method: "dirsync"}}},
		{Type: TypeResult, ID: 3, Result: &Result{Error: &WireError{Kind: ErrKindAuth, Message: "m", Reason: "account_disabled", PasswordVerified: true}}},
		{Type: TypeResult, ID: 4, Result: &Result{Report: &testconn.Report{Connector: "ad", OK: true, Steps: []testconn.Step{}}}},
		{Type: TypeBatch, ID: 5, Batch: &Batch{Entries: [][]byte{user}, Changes: []Change{{Upsert: user}, {DeleteID: "x"}}, Known: []KnownID{{"u1", 42}}}},
		{Type: TypeBatch, ID: 6, Batch: &Batch{Entries: [][]byte{user}, Same: []KnownID{{"u2", 7}, {"u3", 1 << 63}}}},
	}
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for _, m := range tests {
		if err := w.Write(m); err != nil {
			t.Fatal(err)
		}
	}
	r := NewReader(&buf)
	for _, want := range tests {
		got, err := r.Read()
		if err != nil {
			t.Fatalf("%s: %v", want.Type, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", want.Type, got, want)
		}
	}
	if _, err := r.Read(); err != io.EOF {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
}

func TestFrameErrors(t *testing.T) {
	frame := func(body string) []byte {
		return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
	}
	huge := binary.BigEndian.AppendUint32(nil, MaxFrame+1)
	bin := func(body string) []byte {
		return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))|binaryFrame), body...)
	}
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"too large", huge, ErrFrameTooLarge},
		{"cut header", []byte{0, 0}, io.ErrUnexpectedEOF},
		{"cut body", frame(`{"type":"ping"}`)[:8], io.ErrUnexpectedEOF},
		{"unknown type", frame(`{"type":"nope"}`), ErrMalformed},
		{"hello without hello", frame(`{"type":"hello"}`), ErrMalformed},
		{"check without check", frame(`{"type":"request","request":{"kind":"check"}}`), ErrMalformed},
		{"unknown kind", frame(`{"type":"request","request":{"kind":"rm"}}`), ErrMalformed},
		{"binary: no stream", bin(""), ErrMalformed},
		{"binary: unknown tag", bin("\x01\x09\x00"), ErrMalformed},
		{"binary: item past the end", bin("\x01\x01\x05abc"), ErrMalformed},
		{"binary: known without its hash", bin("\x01\x04\x01a1234"), ErrMalformed},
		{"binary: empty deleted ID", bin("\x01\x03\x00"), ErrMalformed},
		{"binary: two parts", bin("\x01\x05\x00\x01a\x05\x00\x01b"), ErrMalformed},
		{"binary: part flags", bin("\x01\x05\x04\x01a"), ErrMalformed},
		{"binary: too large", bin(string(make([]byte, MaxFrame+1))), ErrFrameTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewReader(bytes.NewReader(tt.in)).Read()
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	big := &Message{Type: TypeBatch, Batch: &Batch{Entries: [][]byte{make([]byte, MaxFrame)}}}
	if err := NewWriter(io.Discard).Write(big); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("writing a frame over the cap: %v", err)
	}
}

func entries(conn string, n int) []*cache.Entry {
	out := make([]*cache.Entry, n)
	for i := range out {
		out[i] = &cache.Entry{Connector: conn, ID: fmt.Sprint("id", i), DN: fmt.Sprintf("cn=u%d,dc=x", i), Kind: cache.KindUser,
			Attrs: []cache.Attr{{Name: "description", Values: []string{strings.Repeat("x", 2000)}}}}
	}
	return out
}

func TestReplyStream(t *testing.T) {
	var buf bytes.Buffer
	bw := NewBatchWriter(NewWriter(&buf), 3)
	in := entries("ad", 1500) // several batches
	for _, e := range in {
		if err := bw.Entry(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := bw.Finish(&Result{Listing: &dirsync.Listing{Host: "dc1"}}); err != nil {
		t.Fatal(err)
	}
	frames := 0
	for r := NewReader(bytes.NewReader(buf.Bytes())); ; frames++ {
		if m, err := r.Read(); err != nil || m.Type != TypeBatch {
			break
		}
	}
	if frames < 2 {
		t.Fatalf("%d batch frames for %d bytes, want several", frames, buf.Len())
	}
	var got []*cache.Entry
	res, err := ReadReply(NewReader(&buf), 3, "ad", func(e *cache.Entry) error { got = append(got, e); return nil }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Listing.Host != "dc1" || len(got) != len(in) {
		t.Fatalf("result %+v, %d entries, want dc1 and %d", res, len(got), len(in))
	}
	for i := range in {
		if got[i].ID != in[i].ID || got[i].Hash() != in[i].Hash() {
			t.Fatalf("entry %d differs", i)
		}
	}
}

func TestFullReplySkipsKnownEntries(t *testing.T) {
	in := entries("ad", 4)
	var hashes []uint64
	for _, e := range in {
		_, h, err := cache.EncodeEntryHash(e, nil)
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, h)
	}
	// The hub holds id0 as read and id1 in another version; id2 and id3
	// are new to it.
	known := dirsync.Known{in[0].ID: hashes[0], in[1].ID: hashes[1] + 1}
	var buf bytes.Buffer
	bw := NewBatchWriter(NewWriter(&buf), 1)
	bw.SkipKnown(known)
	for _, e := range in {
		if err := bw.Entry(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := bw.Finish(&Result{Listing: &dirsync.Listing{}}); err != nil {
		t.Fatal(err)
	}
	got := map[string]*cache.Entry{}
	if _, err := ReadReply(NewReader(&buf), 1, "ad", func(e *cache.Entry) error { got[e.ID] = e; return nil }, nil); err != nil {
		t.Fatal(err)
	}
	for i, e := range in {
		g := got[e.ID]
		switch {
		case g == nil:
			t.Fatalf("%s missing", e.ID)
		case g.IsUnchanged() != (i == 0):
			t.Fatalf("%s: stand-in %v, want %v", e.ID, g.IsUnchanged(), i == 0)
		case g.Hash() != hashes[i]:
			t.Fatalf("%s: hash %x, want %x", e.ID, g.Hash(), hashes[i])
		}
	}
}

func TestReplyStreamRefuses(t *testing.T) {
	write := func(f func(bw *BatchWriter) error) *Reader {
		var buf bytes.Buffer
		if err := f(NewBatchWriter(NewWriter(&buf), 1)); err != nil {
			t.Fatal(err)
		}
		return NewReader(&buf)
	}
	ok := func(*cache.Entry) error { return nil }
	tests := []struct {
		name   string
		stream func(bw *BatchWriter) error
		want   error
	}{
		{"no result", func(bw *BatchWriter) error { return errors.Join(bw.Entry(entries("ad", 1)[0]), bw.Flush()) }, ErrTruncated},
		{"other connector", func(bw *BatchWriter) error {
			return errors.Join(bw.Entry(entries("ldap", 1)[0]), bw.Finish(&Result{}))
		}, ErrMalformed},
		{"changes in a full read", func(bw *BatchWriter) error {
			return errors.Join(bw.Change(dirsync.Change{DeleteID: "x"}), bw.Finish(&Result{}))
		}, ErrMalformed},
		{"stand-ins in changes", func(bw *BatchWriter) error {
			bw.SkipKnown(dirsync.Known{"id0": hashOf(t, entries("ad", 1)[0])})
			return errors.Join(bw.Entry(entries("ad", 1)[0]), bw.Finish(&Result{}))
		}, ErrMalformed},
		{"other stream", func(bw *BatchWriter) error {
			return NewBatchWriter(bw.w, 2).Finish(&Result{})
		}, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entry, change := ok, func(dirsync.Change) error { return nil }
			if strings.Contains(tt.name, "in changes") {
				entry = nil
			} else {
				change = nil
			}
			_, err := ReadReply(write(tt.stream), 1, "ad", entry, change)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestChangesAndKnownStreams(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	bw := NewBatchWriter(w, 8)
	in := []dirsync.Change{{Upsert: entries("ad", 1)[0]}, {DeleteID: "gone"}}
	for _, c := range in {
		if err := bw.Change(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := bw.Change(dirsync.Change{}); err == nil {
		t.Fatal("an empty change was accepted")
	}
	if err := bw.Finish(&Result{Changes: &dirsync.ChangeSet{Read: 2}}); err != nil {
		t.Fatal(err)
	}
	kw := NewBatchWriter(w, 9)
	for _, k := range []KnownID{{"a", 1}, {"b", 2}} {
		if err := kw.Known(k.ID, k.Hash); err != nil {
			t.Fatal(err)
		}
	}
	if err := kw.Finish(&Result{}); err != nil {
		t.Fatal(err)
	}
	r := NewReader(&buf)
	var got []dirsync.Change
	res, err := ReadReply(r, 8, "ad", nil, func(c dirsync.Change) error { got = append(got, c); return nil })
	if err != nil || res.Changes.Read != 2 || len(got) != 2 || got[0].Upsert.ID != "id0" || got[1].DeleteID != "gone" {
		t.Fatalf("changes: %v %+v %+v", err, res, got)
	}
	known, err := ReadKnown(r, 9)
	if err != nil || !reflect.DeepEqual(known, dirsync.Known{"a": 1, "b": 2}) {
		t.Fatalf("known: %v %v", known, err)
	}
}

func TestErrorMapping(t *testing.T) {
	unreach := fmt.Errorf("dial: %w", upstream.ErrUnreachable)
	tests := []struct {
		name     string
		err      error
		kind     string
		sentinel error
		reason   authn.Reason
	}{
		{"cursor", fmt.Errorf("x: %w", dirsync.ErrCursorInvalid), ErrKindCursorInvalid, dirsync.ErrCursorInvalid, 0},
		{"unreachable", unreach, ErrKindUnreachable, upstream.ErrUnreachable, 0},
		{"canceled", context.Canceled, ErrKindCanceled, context.Canceled, 0},
		{"deadline", context.DeadlineExceeded, ErrKindCanceled, context.Canceled, 0},
		{"internal", errors.New("boom"), ErrKindInternal, nil, 0},
		{"wrong password", &authn.Error{Reason: authn.ReasonInvalidCredentials, Err: errors.New("49")}, ErrKindAuth, nil, authn.ReasonInvalidCredentials},
		{"must change", &authn.Error{Reason: authn.ReasonMustChangePassword, PasswordVerified: true}, ErrKindAuth, nil, authn.ReasonMustChangePassword},
		{"auth unreachable", &authn.Error{Reason: authn.ReasonUnavailable, Err: unreach}, ErrKindAuth, upstream.ErrUnreachable, authn.ReasonUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := ToWire(tt.err)
			if w.Kind != tt.kind {
				t.Fatalf("kind %q, want %q", w.Kind, tt.kind)
			}
			var buf bytes.Buffer
			if err := NewWriter(&buf).Write(&Message{Type: TypeResult, Result: &Result{Error: w}}); err != nil {
				t.Fatal(err)
			}
			m, err := NewReader(&buf).Read()
			if err != nil {
				t.Fatal(err)
			}
			back := m.Result.Error.Err("ad")
			if tt.sentinel != nil && !errors.Is(back, tt.sentinel) {
				t.Errorf("%v does not match %v", back, tt.sentinel)
			}
			if got := authn.ReasonOf(back); got != tt.reason {
				t.Errorf("reason %v, want %v", got, tt.reason)
			}
			var ae *authn.Error
			if errors.As(tt.err, &ae) {
				var bae *authn.Error
				errors.As(back, &bae)
				if bae.PasswordVerified != ae.PasswordVerified || bae.Connector != "ad" {
					t.Errorf("got %+v, want %+v", bae, ae)
				}
			}
		})
	}
	if ToWire(nil) != nil {
		t.Fatal("nil error mapped")
	}
	if r := reasonNamed("from_the_future"); r != authn.ReasonUnavailable {
		t.Fatalf("unknown reason parsed as %v", r)
	}
}

func FuzzDecode(f *testing.F) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	user, _ := cache.EncodeEntry(entries("ad", 1)[0])
	w.Write(&Message{Type: TypeBatch, ID: 1, Batch: &Batch{Entries: [][]byte{user}, Changes: []Change{{DeleteID: "x"}}}})
	w.Write(&Message{Type: TypeResult, ID: 1, Result: &Result{}})
	f.Add(buf.Bytes())
	buf.Reset() // an entry in parts, then a change's
	for _, up := range []bool{false, true} {
		w.Write(&Message{Type: TypeBatch, ID: 1, Batch: &Batch{Part: &Part{Upsert: up, Data: user[:7], More: true}}})
		w.Write(&Message{Type: TypeBatch, ID: 1, Batch: &Batch{Part: &Part{Upsert: up, Data: user[7:]}}})
	}
	w.Write(&Message{Type: TypeResult, ID: 1, Result: &Result{}})
	f.Add(buf.Bytes())
	f.Add([]byte{0, 0, 0, 2, '{', '}'})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReader(bytes.NewReader(b))
		for {
			m, err := r.Read()
			if err != nil {
				break
			}
			if err := NewWriter(io.Discard).Write(m); err != nil {
				t.Fatalf("a decoded frame does not encode: %v", err)
			}
		}
		n := 0
		ReadReply(NewReader(bytes.NewReader(b)), 1, "ad", func(*cache.Entry) error { n++; return nil },
			func(c dirsync.Change) error {
				if (c.Upsert == nil) == (c.DeleteID == "") {
					t.Fatal("an invalid change passed")
				}
				return nil
			})
		ReadKnown(NewReader(bytes.NewReader(b)), 1)
	})
}

// group is a group of n members whose DNs are about 45 bytes each.
func group(conn string, n int) *cache.Entry {
	members := make([]string, n)
	for i := range members {
		members[i] = fmt.Sprintf("uid=user%07d,ou=people,dc=example,dc=test", i)
	}
	return &cache.Entry{Connector: conn, ID: fmt.Sprint("group", n), DN: fmt.Sprintf("cn=all%d,ou=groups,dc=x", n), Kind: cache.KindGroup, Members: members}
}

// encodedSize is the size of e's encoding.
func encodedSize(t *testing.T, e *cache.Entry) int {
	t.Helper()
	b, err := cache.EncodeEntry(e)
	if err != nil {
		t.Fatal(err)
	}
	return len(b)
}

// TestLargeEntries: entries larger than a frame, and a batch near its
// bound followed by a large entry, cross whole and in order, in full and
// incremental reads; no frame exceeds MaxFrame (the Writer refuses one).
func TestLargeEntries(t *testing.T) {
	big := group("ad", 280_000)  // 12 MiB: parts
	mid := group("ad", 120_000)  // 5.2 MiB: parts; with a full batch before it, over a frame
	whole := group("ad", 90_000) // 3.9 MiB: sent whole, after the batch before it
	fill := entries("ad", 495)   // just under a batch
	if n := encodedSize(t, big); n < 12<<20 {
		t.Fatalf("the big group encodes to %d bytes", n)
	}
	if n := encodedSize(t, whole); n > 4<<20 {
		t.Fatalf("the group sent whole encodes to %d bytes, over a part", n)
	}
	var in []*cache.Entry
	in = append(append(in, fill...), mid)
	in = append(append(in, fill...), whole)
	in = append(append(in, big), fill[:3]...)
	in = append(in, big)

	var buf bytes.Buffer
	w := NewWriter(&buf)
	bw := NewBatchWriter(w, 1)
	for _, e := range in {
		if err := bw.Entry(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := bw.Finish(&Result{}); err != nil {
		t.Fatal(err)
	}
	cw := NewBatchWriter(w, 2)
	for _, e := range in {
		if err := cw.Change(dirsync.Change{Upsert: e}); err != nil {
			t.Fatal(err)
		}
		if err := cw.Change(dirsync.Change{DeleteID: e.ID}); err != nil {
			t.Fatal(err)
		}
	}
	if err := cw.Finish(&Result{}); err != nil {
		t.Fatal(err)
	}

	r := NewReader(&buf)
	var got []*cache.Entry
	if _, err := ReadReply(r, 1, "ad", func(e *cache.Entry) error { got = append(got, e); return nil }, nil); err != nil {
		t.Fatal(err)
	}
	var changes []dirsync.Change
	if _, err := ReadReply(r, 2, "ad", nil, func(c dirsync.Change) error { changes = append(changes, c); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(in) || len(changes) != 2*len(in) {
		t.Fatalf("%d entries and %d changes, want %d and %d", len(got), len(changes), len(in), 2*len(in))
	}
	for i, e := range in {
		up, del := changes[2*i], changes[2*i+1]
		if got[i].ID != e.ID || got[i].Hash() != e.Hash() || up.Upsert == nil || up.Upsert.Hash() != e.Hash() || del.DeleteID != e.ID {
			t.Fatalf("item %d (%s) differs", i, e.ID)
		}
	}
}

// TestPartsRefused: a reply whose parts do not make one entry, or make
// one over MaxEntry, is refused.
func TestPartsRefused(t *testing.T) {
	user, _ := cache.EncodeEntry(entries("ad", 1)[0])
	part := func(b []byte, upsert, more bool) *Message {
		return &Message{Type: TypeBatch, ID: 1, Batch: &Batch{Part: &Part{Data: b, Upsert: upsert, More: more}}}
	}
	end := &Message{Type: TypeResult, ID: 1, Result: &Result{}}
	ok := func(*cache.Entry) error { return nil }
	okc := func(dirsync.Change) error { return nil }
	tests := []struct {
		name   string
		frames []*Message
		want   error
	}{
		{"whole", []*Message{part(user[:10], false, true), part(user[10:], false, false), end}, nil},
		{"result inside", []*Message{part(user[:10], false, true), end}, ErrMalformed},
		{"items inside", []*Message{part(user[:10], false, true), {Type: TypeBatch, ID: 1, Batch: &Batch{Entries: [][]byte{user}}}, end}, ErrMalformed},
		{"items with a part", []*Message{{Type: TypeBatch, ID: 1, Batch: &Batch{Entries: [][]byte{user}, Part: &Part{Data: user}}}, end}, ErrMalformed},
		{"kinds mixed", []*Message{part(user[:10], false, true), part(user[10:], true, false), end}, ErrMalformed},
		{"cut", []*Message{part(user[:10], false, false), end}, nil}, // decoded: an error of the entry's encoding
		{"none", []*Message{part(nil, false, false), end}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := NewWriter(&buf)
			for _, m := range tt.frames {
				if err := w.Write(m); err != nil {
					t.Fatal(err)
				}
			}
			n := 0
			_, err := ReadReply(NewReader(&buf), 1, "ad", func(*cache.Entry) error { n++; return ok(nil) }, okc)
			switch {
			case tt.name == "whole" && (err != nil || n != 1):
				t.Fatalf("%d entries, %v", n, err)
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Fatalf("got %v, want %v", err, tt.want)
			case tt.want == nil && tt.name != "whole" && (err == nil || n != 0):
				t.Fatalf("a broken entry passed: %d, %v", n, err)
			}
		})
	}

	var j joiner
	piece := make([]byte, MaxEntry/4)
	for range 4 {
		if _, _, err := j.add(&Part{Data: piece, More: true}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := j.add(&Part{Data: []byte{0}}); !errors.Is(err, ErrEntryTooLarge) {
		t.Fatalf("a byte past MaxEntry: %v", err)
	}
	huge := &cache.Entry{Connector: "ad", ID: "x", DN: "cn=x", Attrs: []cache.Attr{{Name: "photo", Values: []string{string(make([]byte, MaxEntry))}}}}
	if err := NewBatchWriter(NewWriter(io.Discard), 1).Entry(huge); !errors.Is(err, ErrEntryTooLarge) {
		t.Fatalf("sending an entry over MaxEntry: %v", err)
	}
}

// TestReplyReadsAhead: while the consumer works on a batch, the next one
// is read from the stream (a pipe, which takes a frame only as it is
// read): the writer of the second batch finishes before the consumer of
// the first returns.
func TestReplyReadsAhead(t *testing.T) {
	pr, pw := io.Pipe()
	defer pr.Close()
	second := make(chan struct{})
	go func() {
		bw := NewBatchWriter(NewWriter(pw), 1)
		for i, e := range entries("ad", 2) {
			if err := errors.Join(bw.Entry(e), bw.Flush()); err != nil {
				pw.CloseWithError(err)
				return
			}
			if i == 1 {
				close(second)
			}
		}
		pw.CloseWithError(bw.Finish(&Result{}))
	}()
	n := 0
	_, err := ReadReply(NewReader(pr), 1, "ad", func(*cache.Entry) error {
		if n++; n == 1 {
			select {
			case <-second:
			case <-time.After(30 * time.Second):
				return errors.New("the second batch was not read while the first was consumed")
			}
		}
		return nil
	}, nil)
	if err != nil || n != 2 {
		t.Fatalf("%d entries, %v", n, err)
	}
}

// hashOf is the content hash the receiver computes for e.
func hashOf(t *testing.T, e *cache.Entry) uint64 {
	t.Helper()
	_, h, err := cache.EncodeEntryHash(e, nil)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestKnownStreamRefusesStandIns(t *testing.T) {
	var buf bytes.Buffer
	bw := NewBatchWriter(NewWriter(&buf), 1)
	e := entries("ad", 1)[0]
	bw.SkipKnown(dirsync.Known{e.ID: hashOf(t, e)})
	if err := errors.Join(bw.Entry(e), bw.Finish(&Result{})); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadKnown(NewReader(&buf), 1); !errors.Is(err, ErrMalformed) {
		t.Fatalf("got %v, want ErrMalformed", err)
	}
}

// TestCheckRequestBothReleases: a check carries the DN for this release's
// agents and the account as an encoded entry for the previous release's,
// and an agent reads the DN from either.
func TestCheckRequestBothReleases(t *testing.T) {
	e := entries("ad", 1)[0]
	cr, err := NewCheckRequest(e, "pw")
	if err != nil {
		t.Fatal(err)
	}
	old, err := cache.DecodeEntry(cr.Entry)
	if err != nil || old.DN != e.DN || cr.DN != e.DN || cr.Password != "pw" {
		t.Fatalf("check %+v: entry %+v %v", cr, old, err)
	}
	for _, c := range []*CheckRequest{{DN: e.DN}, {Entry: cr.Entry}, cr} {
		if dn, err := c.CheckDN(); err != nil || dn != e.DN {
			t.Fatalf("CheckDN of %+v = %q, %v", c, dn, err)
		}
	}
	if _, err := (&CheckRequest{Entry: []byte{1}}).CheckDN(); err == nil {
		t.Fatal("a garbled entry gave a DN")
	}
}
