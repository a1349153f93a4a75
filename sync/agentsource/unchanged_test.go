package agentsource

import (
	"context"
	"log/slog"
	"testing"

	"github.com/dirgate/dirgate/cache"
	dirsync "github.com/dirgate/dirgate/sync"
	"github.com/dirgate/dirgate/sync/agentsource/agenttest"
	"github.com/dirgate/dirgate/sync/ldapsource"
)

// standInCounter is the agent source with the stand-ins its full reads
// pass counted.
type standInCounter struct {
	*Source
	standIns, entries int
}

func (c *standInCounter) FullKnown(ctx context.Context, known dirsync.Known, emit func(*cache.Entry) error) (dirsync.Listing, error) {
	c.standIns, c.entries = 0, 0
	return c.Source.FullKnown(ctx, known, func(e *cache.Entry) error {
		if e.IsUnchanged() {
			c.standIns++
		} else {
			c.entries++
		}
		return emit(e)
	})
}

// TestFullReReadSendsStandIns: a real agent given the hub's cached hashes
// sends the ID and hash of every entry it reads unchanged instead of the
// entry, and the hub's cache ends as after a read of whole entries (the
// same hashes as a direct read's).
func TestFullReReadSendsStandIns(t *testing.T) {
	const users = 300
	conn := stubDirectory(t, users)
	h := agenttest.NewHub(t)
	h.StartAgent(t, conn)
	via, err := New(h.Hub, conn)
	if err != nil {
		t.Fatal(err)
	}
	src := &standInCounter{Source: via}
	store, eng := newEngine(t)
	all := users + users/100
	if res, err := eng.Run(t.Context(), conn, src, dirsync.Options{Mode: dirsync.ModeFull}); err != nil || res.Added != all {
		t.Fatalf("fill: %v, %+v", err, res)
	}
	if src.standIns != 0 || src.entries != all {
		t.Fatalf("fill: %d stand-ins and %d entries, want 0 and %d", src.standIns, src.entries, all)
	}
	res, err := eng.Run(t.Context(), conn, src, dirsync.Options{Mode: dirsync.ModeFull})
	if err != nil || res.Unchanged != all || res.Added+res.Updated+res.Deleted != 0 {
		t.Fatalf("re-read: %v, %+v", err, res)
	}
	if src.standIns != all || src.entries != 0 {
		t.Fatalf("re-read: %d stand-ins and %d entries, want %d and 0", src.standIns, src.entries, all)
	}

	// The same directory read directly gives the same hashes.
	direct, err := ldapsource.New(conn, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	dstore, deng := newEngine(t)
	if _, err := deng.Run(t.Context(), conn, direct, dirsync.Options{Mode: dirsync.ModeFull}); err != nil {
		t.Fatal(err)
	}
	hashes := func(s *cache.Store) map[string]uint64 {
		var m map[string]uint64
		if err := s.View(t.Context(), func(v *cache.View) error { m, err = v.Hashes(conn.Name); return err }); err != nil {
			t.Fatal(err)
		}
		return m
	}
	got, want := hashes(store), hashes(dstore)
	if len(got) != len(want) {
		t.Fatalf("%d entries through the agent, %d direct", len(got), len(want))
	}
	for id, h := range want {
		if got[id] != h {
			t.Fatalf("%s: hash %x through the agent, %x direct", id, got[id], h)
		}
	}
}
