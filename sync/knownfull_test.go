package dirsync

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/dirgate/dirgate/cache"
)

// knownSource is a fakeSource whose full read, given the cached hashes,
// passes a stand-in for every entry it holds with the same hash, as a read
// through a sync agent does. lie makes it pass stand-ins regardless: with
// a wrong hash for cached entries and for entries the cache lacks.
type knownSource struct {
	*fakeSource
	lie    bool
	stands int // stand-ins passed by the last read
}

func (k *knownSource) FullKnown(ctx context.Context, known Known, emit func(*cache.Entry) error) (Listing, error) {
	k.stands = 0
	return k.Full(ctx, func(e *cache.Entry) error {
		c := *e
		c.Normalize()
		h, ok := known[e.ID]
		switch {
		case k.lie:
			e = cache.Unchanged(e.ID, h+1)
		case ok && h == c.Hash():
			e = cache.Unchanged(e.ID, h)
		}
		if e.IsUnchanged() {
			k.stands++
		}
		return emit(e)
	})
}

func TestFullReadWithStandIns(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		users   int
		changed int // entries given a new value before the re-read
		added   int // entries added before it
	}{
		{"nothing changed", 50, 0, 0},
		{"a few changes: a delta", 50, 3, 2},
		{"many changes: a new generation, stand-ins copied in batches", 3000, 500, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, s, c := setup(t)
			c.Safety.MaxDeletes, c.Safety.MaxDeletePercent = 0, 0
			src := &knownSource{fakeSource: newFake(tt.users)}
			if _, err := e.Run(ctx, c, src, Options{Mode: ModeFull}); err != nil {
				t.Fatal(err)
			}
			if src.stands != 0 {
				t.Fatalf("the first read into an empty cache passed %d stand-ins", src.stands)
			}
			for i := range tt.changed {
				src.entries[fmt.Sprintf("u%03d", i)].Attrs = []cache.Attr{{Name: "uid", Values: []string{"changed"}}}
			}
			for i := range tt.added {
				src.put(fmt.Sprintf("new%03d", i))
			}
			res, err := e.Run(ctx, c, src, Options{Mode: ModeFull})
			if err != nil {
				t.Fatal(err)
			}
			unchanged := tt.users - tt.changed
			if res.Updated != tt.changed || res.Added != tt.added || res.Unchanged != unchanged || src.stands != unchanged {
				t.Fatalf("updated %d, added %d, unchanged %d, stand-ins %d; want %d, %d, %d, %d",
					res.Updated, res.Added, res.Unchanged, src.stands, tt.changed, tt.added, unchanged, unchanged)
			}
			if n := count(t, s); n != tt.users+tt.added {
				t.Fatalf("cache holds %d entries, want %d", n, tt.users+tt.added)
			}
			// Every entry is in the cache whole, the unchanged ones as
			// they were (copied from the served generation when the run
			// wrote a new one), the changed ones changed.
			err = s.View(ctx, func(v *cache.View) error {
				for id, want := range src.entries {
					got, err := v.Get("c", id)
					if err != nil {
						return fmt.Errorf("%s: %w", id, err)
					}
					if got.DN != want.DN || strings.Join(got.Values("uid"), ",") != strings.Join(want.Values("uid"), ",") {
						return fmt.Errorf("%s: cached %q %v, want %q %v", id, got.DN, got.Values("uid"), want.DN, want.Values("uid"))
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestFullReadRefusesFalseStandIns(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		add  string // an entry added upstream before the lying read
		want string
	}{
		{"another hash than the cache's", "", "another version"},
		{"an entry the cache lacks", "new", "no such entry"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e, s, c := setup(t)
			src := &knownSource{fakeSource: newFake(1)}
			if _, err := e.Run(ctx, c, src, Options{Mode: ModeFull}); err != nil {
				t.Fatal(err)
			}
			if tt.add != "" {
				delete(src.entries, "u000")
				src.put(tt.add)
			}
			src.lie = true
			_, err := e.Run(ctx, c, src, Options{Mode: ModeFull, Force: true})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error saying %q", err, tt.want)
			}
			if n := count(t, s); n != 1 {
				t.Fatalf("the refused run changed the cache: %d entries", n)
			}
		})
	}
}

// TestStandInsOfAChangedServedEntry: an entry passed as unchanged whose
// served version changes during the run (another writer) fails the run
// when the run copies it into a new generation, instead of keeping a
// version the source never vouched for.
func TestStandInsOfAChangedServedEntry(t *testing.T) {
	ctx := context.Background()
	e, s, c := setup(t)
	c.Safety.MaxDeletes, c.Safety.MaxDeletePercent = 0, 0
	src := &knownSource{fakeSource: newFake(3000)}
	if _, err := e.Run(ctx, c, src, Options{Mode: ModeFull}); err != nil {
		t.Fatal(err)
	}
	for i := range 500 { // enough changes for a new generation
		src.entries[fmt.Sprintf("u%03d", i)].Attrs = []cache.Attr{{Name: "uid", Values: []string{"changed"}}}
	}
	changed := src.entry("u2999")
	changed.Attrs = []cache.Attr{{Name: "uid", Values: []string{"changed behind the run"}}}
	once := false
	hooked := &hookFull{knownSource: src, during: func() {
		if once {
			return
		}
		once = true
		if _, err := s.ApplyDelta(ctx, "c", &cache.Delta{Upserts: []*cache.Entry{changed}}, nil, nil, false); err != nil {
			t.Error(err)
		}
	}}
	_, err := e.Run(ctx, c, hooked, Options{Mode: ModeFull})
	if err == nil || !strings.Contains(err.Error(), "changed during the run") {
		t.Fatalf("got %v, want the run to fail on the changed entry", err)
	}
}

// hookFull is a knownSource that calls during before its full read.
type hookFull struct {
	*knownSource
	during func()
}

func (h *hookFull) FullKnown(ctx context.Context, known Known, emit func(*cache.Entry) error) (Listing, error) {
	h.during()
	return h.knownSource.FullKnown(ctx, known, emit)
}

// TestDryRunWithStandIns: a dry run given stand-ins plans as a full read
// does and writes nothing.
func TestDryRunWithStandIns(t *testing.T) {
	ctx := context.Background()
	e, s, c := setup(t)
	src := &knownSource{fakeSource: newFake(50)}
	if _, err := e.Run(ctx, c, src, Options{Mode: ModeFull}); err != nil {
		t.Fatal(err)
	}
	src.entries["u000"].Attrs = []cache.Attr{{Name: "uid", Values: []string{"changed"}}}
	res, err := e.Run(ctx, c, src, Options{Mode: ModeFull, DryRun: true})
	if err != nil || res.Updated != 1 || res.Unchanged != 49 || src.stands != 49 {
		t.Fatalf("dry run: %v, %+v, %d stand-ins", err, res, src.stands)
	}
	err = s.View(ctx, func(v *cache.View) error {
		en, err := v.Get("c", "u000")
		if err == nil && en.Values("uid")[0] != "u000" {
			err = fmt.Errorf("the dry run wrote %v", en.Values("uid"))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
