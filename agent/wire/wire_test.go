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
		{Type: TypeRequest, ID: 3, Request: &Request{Kind: KindCheck, Connector: "ad", Check: &CheckRequest{Entry: user, Password: "pw"}}},
		{Type: TypeRequest, ID: 4, Request: &Request{Kind: KindTest, Connector: "ad"}},
		{Type: TypeResult, ID: 1, Result: &Result{Host: "dc1", Listing: &dirsync.Listing{Host: "dc1", Cursor: []byte("c")}}},
		{Type: TypeResult, ID: 2, Result: &Result{Changes: &dirsync.ChangeSet{Host: "dc1", Cursor: []byte("d"), Read: 3, Method: "dirsync"}}},
		{Type: TypeResult, ID: 3, Result: &Result{Error: &WireError{Kind: ErrKindAuth, Message: "m", Reason: "account_disabled", PasswordVerified: true}}},
		{Type: TypeResult, ID: 4, Result: &Result{Report: &testconn.Report{Connector: "ad", OK: true, Steps: []testconn.Step{}}}},
		{Type: TypeBatch, ID: 5, Batch: &Batch{Entries: [][]byte{user}, Changes: []Change{{Upsert: user}, {DeleteID: "x"}}, Known: []KnownID{{"u1", 42}}}},
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
	frames := bytes.Count(buf.Bytes(), []byte(`"type":"batch"`))
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
		{"other stream", func(bw *BatchWriter) error {
			return NewBatchWriter(bw.w, 2).Finish(&Result{})
		}, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadReply(write(tt.stream), 1, "ad", ok, nil)
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
