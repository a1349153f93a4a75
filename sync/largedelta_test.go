package dirsync_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/dirgate/dirgate/cache"
	dirsync "github.com/dirgate/dirgate/sync"
	"github.com/dirgate/dirgate/sync/memsource"
)

// fullCounter counts the full listings asked of a source.
type fullCounter struct {
	*memsource.Source
	full int
}

func (f *fullCounter) Full(ctx context.Context, emit func(*cache.Entry) error) (dirsync.Listing, error) {
	f.full++
	return f.Source.Full(ctx, emit)
}

// TestLargeIncrementalStaysIncremental changes more data than one cache
// transaction holds (600 entries of 8 KiB; a transaction holds about
// 2.5 MB): the run must stay incremental (the source is asked for its
// changes, not for a full listing), apply them all, and advance the cursor
// past them.
func TestLargeIncrementalStaysIncremental(t *testing.T) {
	const n = 600
	big := strings.Repeat("x", 8<<10)
	ctx := context.Background()
	dir := memsource.New()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = add(t, dir, fmt.Sprintf("u%05d", i), fmt.Sprintf("uid=u%05d,ou=people,dc=x", i))
	}
	src := &fullCounter{Source: dir.Source("mem")}
	e, s, c := newEngine(t)
	if _, err := e.Run(ctx, c, src, dirsync.Options{}); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		must(t, dir.Modify(id, func(e *cache.Entry) {
			e.Attrs = append(e.Attrs, cache.Attr{Name: "description", Values: []string{big}})
		}))
	}
	res, err := e.Run(ctx, c, src, dirsync.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Mode != dirsync.ModeIncremental || src.full != 1 || res.Updated != n {
		t.Fatalf("run mode %s, %d full listings (want 1), %d updated (want %d)", res.Mode, src.full, res.Updated, n)
	}
	err = s.View(ctx, func(v *cache.View) error {
		for _, id := range []string{ids[0], ids[n-1]} {
			en, err := v.Get(c.Name, id)
			if err != nil || en.First("description") != big {
				return fmt.Errorf("%s not changed: %v", id, err)
			}
		}
		users, _, err := v.Counts(c.Name)
		if users != n {
			return fmt.Errorf("%d users served, want %d", users, n)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err = e.Run(ctx, c, src, dirsync.Options{})
	if err != nil || res.Mode != dirsync.ModeIncremental || res.Read != 0 {
		t.Fatalf("the next run does not start after the changes: mode %s, read %d, %v", res.Mode, res.Read, err)
	}
}
