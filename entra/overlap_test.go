package entra

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/cloudapi"
	"github.com/dirgate/dirgate/internal/fakeentra"
)

// gate holds the Graph requests that match until it is opened, and fails
// them if it is not opened in time (an implementation that waits for them
// first would otherwise hang the test).
type gate struct {
	base     http.RoundTripper
	match    func(*http.Request) bool
	open     chan struct{}
	once     sync.Once
	timedOut atomic.Bool // the retries of a request fail at once
}

var errGateShut = errors.New("the request waited for something that never happened")

func (g *gate) RoundTrip(r *http.Request) (*http.Response, error) {
	if g.match(r) {
		if g.timedOut.Load() {
			return nil, errGateShut
		}
		select {
		case <-g.open:
		case <-time.After(5 * time.Second):
			g.timedOut.Store(true)
			return nil, errGateShut
		}
	}
	return g.base.RoundTrip(r)
}

func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

// gatedSource is a source for tn whose Graph requests matching match wait
// for the gate it returns.
func gatedSource(t *testing.T, tn *tenant, match func(*http.Request) bool) (*Source, *gate) {
	t.Helper()
	hc := tn.HTTPClient()
	g := &gate{base: hc.Transport, match: match, open: make(chan struct{})}
	s, err := New(tn.conn, nil, cloudapi.WithHTTPClient(&http.Client{Transport: g}), cloudapi.WithClock(tn.clk))
	if err != nil {
		t.Fatal(err)
	}
	return s, g
}

// TestFullEmitsUsersWhileGroupsAreRead: the users go to the engine once
// their round has ended, before the groups round has: the groups round's
// requests wait here for the first user emitted.
func TestFullEmitsUsersWhileGroupsAreRead(t *testing.T) {
	tn := newTenant(t, "", fakeentra.WithPageSize(2))
	ann, bob := tn.user(fakeentra.User{}), tn.user(fakeentra.User{})
	g := tn.group("Team", ann, bob)
	s, gt := gatedSource(t, tn, func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/groups/delta") })
	var got []string
	_, err := s.Full(context.Background(), func(e *cache.Entry) error {
		got = append(got, e.ID)
		gt.release()
		return nil
	})
	if err != nil {
		t.Fatalf("Full: %v", err)
	}
	if want := []string{ann, bob, g}; !slices.Equal(got, want) {
		t.Fatalf("emitted %v, want %v", got, want)
	}
}

// TestNextPageWhileObjectsApplied: follow requests the next page while
// the objects of the last one are taken, in their order.
func TestNextPageWhileObjectsApplied(t *testing.T) {
	tn := newTenant(t, "", fakeentra.WithPageSize(1))
	var ids []string
	for range 3 {
		ids = append(ids, tn.user(fakeentra.User{}))
	}
	var s *Source
	var requested sync.WaitGroup
	requested.Add(1)
	var once sync.Once
	s, _ = gatedSource(t, tn, func(r *http.Request) bool {
		if r.URL.Query().Has("$skiptoken") {
			once.Do(requested.Done)
		}
		return false
	})
	usersLink, _ := DeltaQueries(tn.conn.Entra.GraphURL)
	var got []string
	_, err := s.follow(context.Background(), usersLink, func(o *object) error {
		if len(got) == 0 {
			waited := make(chan struct{})
			go func() { requested.Wait(); close(waited) }()
			select {
			case <-waited:
			case <-time.After(5 * time.Second):
				return errors.New("the second page was not requested while the first was taken")
			}
		}
		got = append(got, o.ID)
		return nil
	})
	if err != nil {
		t.Fatalf("follow: %v", err)
	}
	if !slices.Equal(got, ids) {
		t.Fatalf("took %v, want %v", got, ids)
	}
}

// TestFullRoundLastUserWins: a user Graph sends twice in one full round
// is emitted once, as last sent, and one removed after it was sent is not
// emitted, whatever pages they come on.
func TestFullRoundLastUserWins(t *testing.T) {
	user := func(id, name string) map[string]any {
		return map[string]any{"id": id, "displayName": name, "userPrincipalName": id + "@contoso.example", "accountEnabled": true}
	}
	pages := [][]any{
		{user("a", "Old"), user("b", "Bob")},
		{user("a", "New"), map[string]any{"id": "B", "@removed": map[string]any{"reason": "changed"}}},
		{user("c", "Cid"), map[string]any{"id": "c", "@removed": map[string]any{"reason": "deleted"}}, user("c", "Back")},
	}
	s := scriptedGraph(t, func(self string, r *http.Request) any {
		if r.URL.Path != "/v1.0/users/delta" {
			return map[string]any{"value": []any{}, "@odata.deltaLink": self + r.URL.Path + "?$deltatoken=D"}
		}
		i := 0
		if skip := r.URL.Query().Get("$skiptoken"); skip != "" {
			i = int(skip[0] - '0')
		}
		p := map[string]any{"value": pages[i]}
		if i+1 < len(pages) {
			p["@odata.nextLink"] = self + r.URL.Path + "?$skiptoken=" + string(rune('0'+i+1))
		} else {
			p["@odata.deltaLink"] = self + r.URL.Path + "?$deltatoken=D"
		}
		return p
	})
	got := map[string]string{}
	_, err := s.Full(context.Background(), func(e *cache.Entry) error {
		if _, dup := got[e.ID]; dup {
			t.Errorf("%s emitted twice", e.ID)
		}
		got[e.ID] = e.First("displayName")
		return nil
	})
	if err != nil {
		t.Fatalf("Full: %v", err)
	}
	if want := map[string]string{"a": "New", "c": "Back"}; len(got) != len(want) || got["a"] != want["a"] || got["c"] != want["c"] {
		t.Fatalf("emitted %v, want %v", got, want)
	}
}

// TestEntriesComeNormalized: users and groups are mapped with their
// attributes in cache.Entry.Normalize's order, which the engine then
// need not sort.
func TestEntriesComeNormalized(t *testing.T) {
	tn := newTenant(t, "")
	ann := tn.user(fakeentra.User{ProxyAddresses: []string{"SMTP:ann@contoso.com"}, OtherMails: []string{"a@x.example"}})
	tn.group("Team", ann)
	for _, e := range entries(t, tn) {
		names := func() []string {
			var n []string
			for _, a := range e.Attrs {
				n = append(n, a.Name)
			}
			return n
		}
		before := names()
		e.Normalize()
		if after := names(); !slices.Equal(before, after) {
			t.Errorf("%s: attributes %v, normalized %v", e.ID, before, after)
		}
	}
}

// entries reads tn in full.
func entries(t *testing.T, tn *tenant) map[string]*cache.Entry {
	t.Helper()
	got, _ := full(t, tn.source(t, tn.conn))
	return got
}
