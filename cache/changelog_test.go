package cache

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// memLog is an in-memory change log: it keeps each published record
// encoded, as the real one does, and numbers them from 1.
type memLog struct {
	recs [][]byte
	err  error // returned by Publish, after storing the record when keep is set
	keep bool
}

func (l *memLog) Publish(_ context.Context, r *Record) (uint64, error) {
	if l.err != nil && !l.keep {
		return 0, l.err
	}
	b, err := EncodeRecord(r)
	if err != nil {
		return 0, err
	}
	l.recs = append(l.recs, b)
	return uint64(len(l.recs)), l.err
}

// replayTo applies every record after the follower's position.
func (l *memLog) replayTo(t *testing.T, s *Store) {
	t.Helper()
	pos, _, err := s.Position()
	if err != nil {
		t.Fatal(err)
	}
	for i := int(pos); i < len(l.recs); i++ {
		r, err := DecodeRecord(l.recs[i])
		if err != nil {
			t.Fatalf("record %d: %v", i+1, err)
		}
		if err := s.ApplyRecord(context.Background(), r, uint64(i+1)); err != nil {
			t.Fatalf("apply record %d: %v", i+1, err)
		}
	}
}

// dump describes everything a reader of s can see: entries with their
// content hashes, the address and attribute lookups, members both ways,
// cursors, history and the change-log position.
func dump(t *testing.T, s *Store) string {
	t.Helper()
	var out []string
	ctx := context.Background()
	err := s.View(ctx, func(v *View) error {
		v.IncludeHidden()
		return v.Scan("", func(e *Entry) (bool, error) {
			line := fmt.Sprintf("%s/%s %q %x disabled=%v", e.Connector, e.ID, e.DN, e.Hash(), e.Disabled)
			for _, a := range e.Addresses {
				found, err := v.ByAddress(a)
				if err != nil {
					return false, err
				}
				line += " addr " + a + "=" + connIDs(found)
			}
			found, err := v.ByAttr("uid", e.First("uid"))
			if err != nil {
				return false, err
			}
			line += " uid=" + connIDs(found)
			member, err := v.MemberOf(e)
			if err != nil {
				return false, err
			}
			line += fmt.Sprintf(" memberOf=%q", member)
			if e.Kind == KindGroup {
				m, err := v.MemberIDs(e)
				if err != nil {
					return false, err
				}
				line += fmt.Sprintf(" members=%q", m)
			}
			out = append(out, line)
			return true, nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	conns, err := s.Connectors()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range conns {
		cur, err := s.Cursor(c)
		if err != nil {
			t.Fatal(err)
		}
		runs, err := s.Runs(ctx, c, 100)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s cursor=%q runs=%+v", c, cur, runs))
	}
	pos, at, err := s.Position()
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, fmt.Sprintf("position %d at %v", pos, at))
	slices.Sort(out)
	return strings.Join(out, "\n")
}

func connIDs(es []*Entry) string {
	var out []string
	for _, e := range es {
		out = append(out, e.Connector+"/"+e.ID)
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

func run(conn string, i int) *Run {
	return &Run{Connector: conn, Start: time.Date(2026, 1, 1, 0, i, 0, 0, time.UTC), Mode: "incremental"}
}

func TestChangelogReplicaConverges(t *testing.T) {
	ctx := context.Background()
	leader, follower := openTest(t), openTest(t)
	log := &memLog{}
	leader.SetPublisher(log)
	const dnG = "cn=staff,ou=groups,dc=example,dc=test"
	udn := func(i int) string { return fmt.Sprintf("uid=u%d,ou=people,dc=example,dc=test", i) }
	group := func(members ...string) *Entry {
		return &Entry{ID: "g", DN: dnG, Kind: KindGroup, Members: members, Attrs: []Attr{{Name: "cn", Values: []string{"staff"}}}}
	}
	steps := []struct {
		name string
		do   func() error
	}{
		{"full sync", func() error {
			commitAll(t, leader, "corp", user("u1", udn(1), "u1@example.test"), user("u2", udn(2), "u2@example.test"), group(udn(1), udn(2)))
			commitAll(t, leader, "other", user("x1", "uid=x1,dc=other", "x1@other.test"))
			return nil
		}},
		{"delta: add, update, delete", func() error {
			d := &Delta{Upserts: []*Entry{user("u3", udn(3), "u3@example.test"), user("u1", udn(1), "new1@example.test")}, Deletes: []string{"u2", "nobody"}}
			_, err := leader.ApplyDelta(ctx, "corp", d, []byte("c2"), run("corp", 2), false)
			return err
		}},
		{"delta: rename and swap into a released DN", func() error {
			d := &Delta{Upserts: []*Entry{user("u1", udn(9), "new1@example.test"), user("u4", udn(1), "u4@example.test")}}
			_, err := leader.ApplyDelta(ctx, "corp", d, []byte("c3"), run("corp", 3), false)
			return err
		}},
		{"dry run publishes nothing", func() error {
			n := len(log.recs)
			d := &Delta{Deletes: []string{"u3"}}
			if _, err := leader.ApplyDelta(ctx, "corp", d, []byte("dry"), nil, true); err != nil {
				return err
			}
			if len(log.recs) != n {
				return errors.New("a dry run published a record")
			}
			return nil
		}},
		{"big delta, written as a new generation", func() error {
			d := &Delta{Upserts: []*Entry{user("u5", udn(5), "u5@example.test"), group(udn(9), udn(5))}, Deletes: []string{"u3"}}
			_, err := leader.rewriteDelta(ctx, "corp", d, []byte("c4"), run("corp", 4), false, nil)
			return err
		}},
		{"nothing changed: cursor and run", func() error {
			return leader.SaveCursor(t.Context(), "other", []byte("o2"), run("other", 5))
		}},
		{"second full sync", func() error {
			commitAll(t, leader, "corp", user("u1", udn(9), "new1@example.test"), user("u6", udn(6), "u6@example.test"), group(udn(6)))
			return nil
		}},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		log.replayTo(t, follower)
		if got, want := dump(t, follower), dump(t, leader); got != want {
			t.Fatalf("after %s the follower differs:\n%s\nleader:\n%s", st.name, got, want)
		}
	}
	if pos, _, _ := follower.Position(); pos != uint64(len(log.recs)) || pos < 7 {
		t.Fatalf("follower position %d, %d records", pos, len(log.recs))
	}

	// Applying every record again, newest first, changes nothing.
	before := dump(t, follower)
	for i := len(log.recs) - 1; i >= 0; i-- {
		r, err := DecodeRecord(log.recs[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := follower.ApplyRecord(ctx, r, uint64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	if after := dump(t, follower); after != before {
		t.Fatalf("re-applying changed the follower:\n%s\nbefore:\n%s", after, before)
	}
}

func TestChangelogPublishErrorLeavesLeaderUnchanged(t *testing.T) {
	ctx := context.Background()
	leader := openTest(t)
	log := &memLog{}
	leader.SetPublisher(log)
	commitAll(t, leader, "corp", user("u1", "uid=u1,dc=x", "u1@x.test"), user("u2", "uid=u2,dc=x", "u2@x.test"))
	before := dump(t, leader)
	log.err = errors.New("fenced")
	changes := map[string]func() error{
		"generation": func() error {
			g, err := leader.NewGeneration("corp")
			if err != nil {
				return err
			}
			if err := g.Put(user("u9", "uid=u9,dc=x", "u9@x.test")); err != nil {
				return err
			}
			return g.Commit(ctx, []byte("c"), run("corp", 1))
		},
		"delta": func() error {
			_, err := leader.ApplyDelta(ctx, "corp", &Delta{Deletes: []string{"u1"}}, []byte("c"), run("corp", 2), false)
			return err
		},
		"rewrite": func() error {
			_, err := leader.rewriteDelta(ctx, "corp", &Delta{Deletes: []string{"u1"}}, []byte("c"), run("corp", 3), false, nil)
			return err
		},
		"cursor": func() error { return leader.SaveCursor(t.Context(), "corp", []byte("c"), run("corp", 4)) },
	}
	for name, change := range changes {
		if err := change(); !errors.Is(err, log.err) {
			t.Errorf("%s: error %v, want the publisher's", name, err)
		}
		if got := dump(t, leader); got != before {
			t.Fatalf("%s: a refused publish changed the leader:\n%s\nbefore:\n%s", name, got, before)
		}
	}
}

// TestChangelogCrashAfterPublish: a leader that published a record but
// died before its local commit (here: the commit failed after the
// publisher stored the record) is repaired by applying the record.
func TestChangelogCrashAfterPublish(t *testing.T) {
	ctx := context.Background()
	leader, follower := openTest(t), openTest(t)
	log := &memLog{}
	leader.SetPublisher(log)
	commitAll(t, leader, "corp", user("u1", "uid=u1,dc=x", "u1@x.test"))
	log.err, log.keep = errors.New("connection lost after commit"), true
	if _, err := leader.ApplyDelta(ctx, "corp", &Delta{Upserts: []*Entry{user("u2", "uid=u2,dc=x", "u2@x.test")}}, []byte("c2"), run("corp", 1), false); err == nil {
		t.Fatal("no error")
	}
	log.err, log.keep = nil, false
	log.replayTo(t, follower)
	if dump(t, leader) == dump(t, follower) {
		t.Fatal("the leader has the change it failed to commit")
	}
	log.replayTo(t, leader)
	if got, want := dump(t, leader), dump(t, follower); got != want {
		t.Fatalf("leader not repaired:\n%s\nwant:\n%s", got, want)
	}
}

func TestSnapshotRecord(t *testing.T) {
	ctx := context.Background()
	leader, follower := openTest(t), openTest(t)
	commitAll(t, leader, "corp", user("u1", "uid=u1,dc=x", "u1@x.test"))
	if _, err := leader.ApplyDelta(ctx, "corp", &Delta{Upserts: []*Entry{user("u2", "uid=u2,dc=x", "u2@x.test")}}, []byte("c2"), nil, false); err != nil {
		t.Fatal(err)
	}
	conns, err := leader.Connectors()
	if err != nil || !reflect.DeepEqual(conns, []string{"corp"}) {
		t.Fatalf("connectors %v, %v", conns, err)
	}
	r, err := leader.SnapshotRecord(ctx, "corp")
	if err != nil {
		t.Fatal(err)
	}
	b, err := EncodeRecord(r)
	if err != nil {
		t.Fatal(err)
	}
	if r, err = DecodeRecord(b); err != nil {
		t.Fatal(err)
	}
	if err := follower.ApplyRecord(ctx, r, 5); err != nil {
		t.Fatal(err)
	}
	// A snapshot carries no history, and the positions differ.
	strip := func(s string) string {
		s = s[:strings.LastIndex(s, "\n")]
		return regexp.MustCompile(` runs=.*`).ReplaceAllString(s, "")
	}
	if got, want := strip(dump(t, follower)), strip(dump(t, leader)); got != want {
		t.Fatalf("snapshot differs:\n%s\nwant:\n%s", got, want)
	}
	if _, err := leader.SnapshotRecord(ctx, "none"); !errors.Is(err, ErrNoGeneration) {
		t.Fatalf("snapshot of an unknown connector: %v", err)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	cases := []*Record{
		{Connector: "c", Time: time.Unix(5, 6).UTC()},
		{Connector: "c", Base: true, Entries: []*Entry{user("u1", "uid=u1,dc=x", "u1@x.test")}, Cursor: []byte{}, Run: run("c", 1), Time: time.Unix(1, 0).UTC()},
		{Connector: "c", Entries: []*Entry{{ID: "g", DN: "cn=g", Kind: KindGroup, Disabled: true, Members: []string{"uid=a"}}}, Deletes: []string{"a", "b"}, Cursor: []byte("x"), Time: time.Unix(0, 0).UTC()},
	}
	for i, r := range cases {
		b, err := EncodeRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeRecord(b)
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		b2, err := EncodeRecord(got)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != string(b2) || got.Base != r.Base || (got.Cursor == nil) != (r.Cursor == nil) || !got.Time.Equal(r.Time) ||
			!reflect.DeepEqual(got.Deletes, r.Deletes) || !reflect.DeepEqual(got.Run, r.Run) || len(got.Entries) != len(r.Entries) {
			t.Fatalf("%d: round trip %+v, want %+v", i, got, r)
		}
		for j, e := range got.Entries {
			if e.Hash() != r.Entries[j].Hash() || e.ID != r.Entries[j].ID {
				t.Fatalf("%d: entry %d differs", i, j)
			}
		}
		if _, err := DecodeRecord(b[:len(b)-1]); err == nil {
			t.Fatalf("%d: a truncated record decoded", i)
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	for _, r := range []*Record{
		{Connector: "c", Base: true, Entries: []*Entry{user("u1", "uid=u1,dc=x", "u1@x.test")}, Cursor: []byte("k"), Run: run("c", 1)},
		{Connector: "c", Deletes: []string{"a"}},
	} {
		b, err := EncodeRecord(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRecord(b)
		if err != nil {
			return
		}
		if _, err := EncodeRecord(r); err != nil {
			t.Fatalf("a decoded record does not encode: %v", err)
		}
	})
}

// TestChangelogWaitingForBase: a delta for a connector without state, or
// whose state another history left (ResetLog), is skipped and marks the
// connector as waiting, without touching what it serves; its next Base
// applies and ends the wait. The position keeps the log it is in.
func TestChangelogWaitingForBase(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	at := time.Unix(1700000000, 0).UTC()
	waiting := func(want ...string) {
		t.Helper()
		got, err := s.Waiting()
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("waiting %q (%v), want %q", got, err, want)
		}
	}
	pos := func(wantLog string, wantSeq uint64) {
		t.Helper()
		log, seq, _, err := s.LogPosition()
		if err != nil || log != wantLog || seq != wantSeq {
			t.Fatalf("position %q/%d (%v), want %q/%d", log, seq, err, wantLog, wantSeq)
		}
	}
	u1 := user("u1", "uid=u1,dc=corp", "u1@corp.test")
	delta := &Record{Connector: "corp", Entries: []*Entry{user("u2", "uid=u2,dc=corp", "u2@corp.test")}, Time: at, Log: "A"}
	if err := s.ApplyRecord(ctx, delta, 1); err != nil {
		t.Fatal(err)
	}
	pos("A", 1)
	waiting("corp")
	if err := s.ApplyRecord(ctx, &Record{Connector: "corp", Base: true, Entries: []*Entry{u1}, Cursor: []byte("c1"), Time: at}, 2); err != nil {
		t.Fatal(err)
	}
	pos("A", 2) // a record without a log keeps the stored one
	waiting()
	served := dump(t, s)

	// Another history: the position restarts, corp's state is distrusted.
	if err := s.ResetLog("B", true); err != nil {
		t.Fatal(err)
	}
	pos("B", 0)
	waiting("corp")
	if err := s.ApplyRecord(ctx, &Record{Connector: "corp", Deletes: []string{"u1"}, Cursor: []byte("c2"), Time: at}, 1); err != nil {
		t.Fatal(err)
	}
	pos("B", 1)
	waiting("corp")
	if got := dump(t, s); !strings.Contains(got, "corp/u1") || !strings.Contains(got, `"c1"`) {
		t.Fatalf("a skipped record changed the served state:\n%s\nwas:\n%s", got, served)
	}
	if err := s.ResetLog("C", false); err != nil {
		t.Fatal(err)
	}
	pos("C", 1)
}
