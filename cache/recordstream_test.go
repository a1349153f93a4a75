package cache

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"reflect"
	"testing"
	"testing/iotest"
	"time"
)

// TestRecordEncodingPinned: the record encoding stays version 1, byte for
// byte, so replicas of the previous release read the records of this one
// and the other way round.
func TestRecordEncodingPinned(t *testing.T) {
	r := &Record{Connector: "c", Base: true, Cursor: []byte("k"), Time: time.Unix(0, 5).UTC(), Deletes: []string{"d"},
		Entries: []*Entry{{ID: "i", DN: "cn=x", Kind: KindGroup}}}
	b, err := EncodeRecord(r)
	if err != nil {
		t.Fatal(err)
	}
	// Version 1, flags base|cursor, "c", time 5 (zigzag 10), "k", 1 entry:
	// "i" and its encoding (20 bytes: encVersion 2, content hash, kind
	// group, no flags, the DN, no addresses, members, attributes, an empty
	// DN key), then 1 deleted ID "d".
	const want = "0103" + "0163" + "0a" + "016b" + "01" + "0169" + "14" + "02" + "d99398c2ebb9fb37" + "0200" + "04636e3d78" + "00" + "00" + "00" + "00" + "01" + "0164"
	if got := hex.EncodeToString(b); got != want {
		t.Fatalf("encoding %s, want %s", got, want)
	}
}

// TestStreamedBaseIsTheSnapshot: the Base a commit publishes, streamed
// from the generation, encodes as the whole-record snapshot of the same
// state does, and a follower that applies it streamed from a reader
// serves that state.
func TestStreamedBaseIsTheSnapshot(t *testing.T) {
	ctx := context.Background()
	leader, follower := openTest(t), openTest(t)
	log := &memLog{}
	leader.SetPublisher(log)
	commitAll(t, leader, "corp", user("u1", "uid=u1,dc=x", "u1@x.test"), user("u2", "uid=u2,dc=x", "u2@x.test"))
	snap, err := leader.SnapshotRecord(ctx, "corp")
	if err != nil {
		t.Fatal(err)
	}
	published, err := DecodeRecord(log.recs[0])
	if err != nil {
		t.Fatal(err)
	}
	whole, err := EncodeRecord(&Record{Connector: "corp", Base: true, Entries: snap.Entries, Cursor: snap.Cursor, Run: published.Run, Time: published.Time})
	if err != nil || !bytes.Equal(log.recs[0], whole) {
		t.Fatalf("published Base %x, snapshot %x (%v)", log.recs[0], whole, err)
	}
	r, err := ReadRecord(iotest.OneByteReader(bytes.NewReader(log.recs[0])))
	if err != nil || !r.Streamed() {
		t.Fatalf("read a Base: streamed %v, %v", r != nil && r.Streamed(), err)
	}
	if err := follower.ApplyRecord(ctx, r, 1); err != nil {
		t.Fatal(err)
	}
	if got, want := dump(t, follower), dump(t, leader); got != want {
		t.Fatalf("follower:\n%s\nleader:\n%s", got, want)
	}
}

// TestStreamedBaseCorruptTailChangesNothing: a Base read from a stream
// that turns out corrupt after some entries (truncated, or with bytes
// after its end) is not applied: the follower's state and position stay.
func TestStreamedBaseCorruptTailChangesNothing(t *testing.T) {
	ctx := context.Background()
	leader, follower := openTest(t), openTest(t)
	log := &memLog{}
	leader.SetPublisher(log)
	commitAll(t, leader, "corp", user("u1", "uid=u1,dc=x", "u1@x.test"))
	commitAll(t, leader, "corp", user("u2", "uid=u2,dc=x", "u2@x.test"), user("u3", "uid=u3,dc=x", "u3@x.test"))
	log.replayTo(t, follower)
	before := dump(t, follower)
	b := log.recs[1]
	for name, bad := range map[string][]byte{"truncated": b[:len(b)-3], "trailing": append(append([]byte{}, b...), 0)} {
		r, err := ReadRecord(bytes.NewReader(bad))
		if err != nil {
			t.Fatalf("%s: header: %v", name, err)
		}
		if err := follower.ApplyRecord(ctx, r, 3); !errors.Is(err, errBadRecord) {
			t.Fatalf("%s: apply %v, want a corrupt record", name, err)
		}
		if got := dump(t, follower); got != before {
			t.Fatalf("%s: the follower changed:\n%s\nwas:\n%s", name, got, before)
		}
	}
}

// FuzzReadRecord: reading a record from a stream, one byte at a time,
// accepts what DecodeRecord accepts and yields the same record.
func FuzzReadRecord(f *testing.F) {
	for _, r := range []*Record{
		{Connector: "c", Base: true, Entries: []*Entry{user("u1", "uid=u1,dc=x", "u1@x.test")}, Cursor: []byte("k"), Run: run("c", 1)},
		{Connector: "c", Entries: []*Entry{user("u1", "uid=u1,dc=x", "u1@x.test")}, Deletes: []string{"a"}},
	} {
		b, err := EncodeRecord(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		whole, werr := DecodeRecord(b)
		r, err := ReadRecord(iotest.OneByteReader(bytes.NewReader(b)))
		if err == nil {
			err = r.collect()
		}
		if (err == nil) != (werr == nil) {
			t.Fatalf("streamed: %v, whole: %v", err, werr)
		}
		if err != nil {
			return
		}
		x, err1 := EncodeRecord(whole)
		y, err2 := EncodeRecord(r)
		if err1 != nil || err2 != nil || !bytes.Equal(x, y) || !reflect.DeepEqual(r.Deletes, whole.Deletes) {
			t.Fatalf("streamed and whole reads differ: %x / %x (%v, %v)", y, x, err2, err1)
		}
	})
}
