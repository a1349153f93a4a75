package google

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/clock"
	"github.com/dirgate/dirgate/cloudapi"
	"github.com/dirgate/dirgate/internal/fakegoogle"
)

// watch is a transport that counts the member listings in flight at
// once, and can hold requests or answer some itself.
type watch struct {
	base      http.RoundTripper
	mu        sync.Mutex
	inFlight  int
	most      int           // member listings in flight at once, at most
	answered  chan struct{} // closed when a member listing was first answered
	once      sync.Once
	intercept func(*http.Request) *http.Response // answers a request itself when not nil
}

func newWatch(hc *http.Client) (*http.Client, *watch) {
	w := &watch{base: hc.Transport, answered: make(chan struct{})}
	c := *hc
	c.Transport = w
	return &c, w
}

func (w *watch) RoundTrip(r *http.Request) (*http.Response, error) {
	if w.intercept != nil {
		if resp := w.intercept(r); resp != nil {
			return resp, nil
		}
	}
	if !strings.HasSuffix(r.URL.Path, "/members") {
		return w.base.RoundTrip(r)
	}
	w.mu.Lock()
	w.inFlight++
	w.most = max(w.most, w.inFlight)
	w.mu.Unlock()
	time.Sleep(5 * time.Millisecond) // so that listings read together overlap
	resp, err := w.base.RoundTrip(r)
	w.mu.Lock()
	w.inFlight--
	w.mu.Unlock()
	w.once.Do(func() { close(w.answered) })
	return resp, err
}

// TestMemberListsReadTogether: the groups' member lists are read
// memberListings at a time, and beside the users listing: a users page
// after the first waits for a member list to be answered.
func TestMemberListsReadTogether(t *testing.T) {
	a := newAccount(t)
	var users []string
	for i := range 1200 { // three pages
		users = append(users, a.user(fakegoogle.User{PrimaryEmail: fmt.Sprintf("u%04d@example.test", i)}))
	}
	for i := range 20 {
		a.group(fakegoogle.Group{Email: fmt.Sprintf("g%d@example.test", i), Members: []fakegoogle.Member{{ID: users[i], Type: "USER"}}})
	}
	hc, w := newWatch(a.HTTPClient())
	var late bool
	w.intercept = func(r *http.Request) *http.Response {
		if strings.HasSuffix(r.URL.Path, "/users") && r.URL.Query().Get("pageToken") != "" {
			select {
			case <-w.answered:
			case <-time.After(10 * time.Second):
				late = true
			}
		}
		return nil
	}
	s, err := New(a.conn, nil, cloudapi.WithHTTPClient(hc), cloudapi.WithClock(a.clk))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*cache.Entry{}
	if _, err := s.Full(context.Background(), func(e *cache.Entry) error { got[e.ID] = e; return nil }); err != nil {
		t.Fatal(err)
	}
	if late {
		t.Error("the users listing went on without a member list read beside it")
	}
	if w.most < 2 || w.most > memberListings {
		t.Errorf("%d member listings at once, want 2 to %d", w.most, memberListings)
	}
	if len(got) != 1200+20 {
		t.Errorf("%d entries, want 1220", len(got))
	}
}

// TestMemberListingFailureEndsRun: a member list that cannot be read
// fails the run with its own error, not the cancellation it causes in the
// other listings.
func TestMemberListingFailureEndsRun(t *testing.T) {
	a := newAccount(t)
	for i := range 1200 {
		a.user(fakegoogle.User{PrimaryEmail: fmt.Sprintf("u%04d@example.test", i)})
	}
	for i := range 20 {
		a.group(fakegoogle.Group{ID: fmt.Sprintf("g%02d", i), Email: fmt.Sprintf("g%d@example.test", i)})
	}
	hc, w := newWatch(a.HTTPClient())
	w.intercept = func(r *http.Request) *http.Response {
		if strings.Contains(r.URL.Path, "/g07/") {
			return &http.Response{StatusCode: http.StatusNotFound, Body: http.NoBody, Header: http.Header{}, Request: r}
		}
		return nil
	}
	s, err := New(a.conn, nil, cloudapi.WithHTTPClient(hc), cloudapi.WithClock(a.clk))
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Full(context.Background(), func(*cache.Entry) error { return nil })
	var he *cloudapi.HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusNotFound || !strings.Contains(err.Error(), "members of group g7@example.test") {
		t.Errorf("err = %v, want the 404 of g7's members", err)
	}
}

// TestBudgetDatesRequestsByAnswer: a request counts from when it was
// answered, as Google counts it when it arrives: requests sent together
// and answered a minute later let the next one go a minute after that.
func TestBudgetDatesRequestsByAnswer(t *testing.T) {
	clk := clock.NewFake(time.Date(2030, 1, 6, 8, 0, 0, 0, time.UTC))
	b := newBudget(clk, 2)
	ctx := context.Background()
	done1, _ := b.wait(ctx)
	done2, _ := b.wait(ctx)
	clk.Advance(time.Minute)
	done1()
	done2()
	start := clk.Now()
	done3, err := b.wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	done3()
	if d := clk.Now().Sub(start); d != time.Minute {
		t.Errorf("the third request waited %s after the first two were answered, want 1m0s", d)
	}
}

// TestBudgetWaitsForRequestsInFlight: a request that has to wait for its
// turn first waits for those in flight to be answered, so that its wait
// dates none of them later than they came.
func TestBudgetWaitsForRequestsInFlight(t *testing.T) {
	clk := clock.NewFake(time.Date(2030, 1, 6, 8, 0, 0, 0, time.UTC))
	b := newBudget(clk, 1)
	ctx := context.Background()
	done1, _ := b.wait(ctx)
	granted := make(chan struct{})
	go func() {
		done2, err := b.wait(ctx)
		if err == nil {
			done2()
		}
		close(granted)
	}()
	select {
	case <-granted:
		t.Fatal("a request went while the budget's only one was in flight")
	case <-time.After(50 * time.Millisecond):
	}
	done1()
	<-granted
}

// TestListReadsAhead: a listing's next page is requested while the page
// before is still being taken; fn's error still ends the listing.
func TestListReadsAhead(t *testing.T) {
	a := newAccount(t)
	for i := range 1200 { // three pages
		a.user(fakegoogle.User{PrimaryEmail: fmt.Sprintf("u%04d@example.test", i)})
	}
	hc, w := newWatch(a.HTTPClient())
	second := make(chan struct{}, 3)
	w.intercept = func(r *http.Request) *http.Response {
		if r.URL.Query().Get("pageToken") != "" {
			second <- struct{}{}
		}
		return nil
	}
	s, err := New(a.conn, nil, cloudapi.WithHTTPClient(hc), cloudapi.WithClock(a.clk))
	if err != nil {
		t.Fatal(err)
	}
	pages, users := 0, 0
	err = s.list(context.Background(), s.listURL("users", s.scope(usersPageSize, userFields)), func(p *page) error {
		if pages++; pages == 1 {
			select {
			case <-second:
			case <-time.After(10 * time.Second):
				t.Error("the second page was not requested while the first was taken")
			}
		}
		users += len(p.Users)
		return nil
	})
	if err != nil || pages != 3 || users != 1201 { // the admin too
		t.Errorf("%d pages, %d users, %v; want 3 pages of 1201 users", pages, users, err)
	}
	// fn's error ends the listing, the page read ahead dropped.
	stop := errors.New("stop")
	err = s.list(context.Background(), s.listURL("users", s.scope(usersPageSize, userFields)), func(*page) error { return stop })
	if !errors.Is(err, stop) {
		t.Errorf("err = %v, want fn's", err)
	}
}
