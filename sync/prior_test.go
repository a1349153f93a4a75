package dirsync

import (
	"context"
	"fmt"
	"testing"

	"github.com/dirgate/dirgate/cache"
)

// priorSource is a full-only source that numbers its listings in its
// cursor and records the prior cursor each listing was given.
type priorSource struct {
	*fakeSource // for its entries; Changes is not promoted
	priors      []string
}

func (p *priorSource) Changes() {}

func (p *priorSource) Full(context.Context, func(*cache.Entry) error) (Listing, error) {
	panic("the engine called Full of a PriorSource")
}

func (p *priorSource) FullAfter(ctx context.Context, prior []byte, emit func(*cache.Entry) error) (Listing, error) {
	p.priors = append(p.priors, string(prior))
	l, err := p.fakeSource.Full(ctx, emit)
	l.Cursor = fmt.Appendf(nil, "listing %d", len(p.priors))
	return l, err
}

// TestPriorSourceGetsTheCommittedCursor: a PriorSource is given the
// cursor committed with the cached generation (none at first), also when
// the listing changed nothing, and not the cursor of a blocked run.
func TestPriorSourceGetsTheCommittedCursor(t *testing.T) {
	e, _, c := setup(t)
	ctx := context.Background()
	src := &priorSource{fakeSource: newFake(10)}
	for range 2 {
		if _, err := e.Run(ctx, c, src, Options{}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 9 {
		src.del(fmt.Sprintf("u%03d", i))
	}
	if _, err := e.Run(ctx, c, src, Options{}); err == nil {
		t.Fatal("a run deleting 9 of 10 entries was not blocked")
	}
	if _, err := e.Run(ctx, c, src, Options{Force: true}); err != nil {
		t.Fatal(err)
	}
	want := []string{"", "listing 1", "listing 2", "listing 2"}
	if fmt.Sprint(src.priors) != fmt.Sprint(want) {
		t.Errorf("priors %q, want %q", src.priors, want)
	}
}
