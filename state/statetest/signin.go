package statetest

import (
	"errors"
	"fmt"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dirgate/dirgate/state"
)

// winners counts the nil errors of concurrent takes and reports any error
// other than ErrNotFound.
func winners(t *testing.T, errs []error) int {
	t.Helper()
	n := 0
	for _, err := range errs {
		switch {
		case err == nil:
			n++
		case !errors.Is(err, state.ErrNotFound):
			t.Errorf("take: %v", err)
		}
	}
	return n
}

func signInRequests(t *testing.T, s state.SignIns) {
	ctx := t.Context()
	exp := t0.Add(15 * time.Minute)
	want := state.SignInRequest{ClientID: "app", ClientName: "App", RedirectURI: "https://app/cb", State: "st", Nonce: "n",
		Scope: []string{"openid", "email"}, Challenge: "ch", CSRF: "csrf", LoginHint: "alice@example.com", Expires: exp}
	for _, k := range []string{"r1", "r2", "r3", "old"} {
		r := want
		if k == "old" {
			r.Expires = t0.Add(time.Minute)
		}
		if err := s.PutRequest(ctx, k, r, t0); err != nil {
			t.Fatal(err)
		}
	}
	// Read as often as the login page is posted, until it expires.
	for _, at := range []time.Time{t0, exp} {
		got, err := s.Request(ctx, "r1", at)
		if err != nil || !got.Expires.Equal(exp) {
			t.Fatalf("Request at %s = %+v, %v", at, got, err)
		}
		got.Expires = exp
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Request = %+v, want %+v", got, want)
		}
	}
	if _, err := s.Request(ctx, "r1", exp.Add(time.Second)); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("Request after expiry = %v, want ErrNotFound", err)
	}
	// Taken once, however many take it at the same time.
	errs := concurrently(16, func() error {
		got, err := s.TakeRequest(ctx, "r1", t0)
		if err == nil && got.CSRF != "csrf" {
			return fmt.Errorf("took %+v", got)
		}
		return err
	})
	if n := winners(t, errs); n != 1 {
		t.Errorf("%d of 16 concurrent takes got the request, want 1", n)
	}
	if _, err := s.Request(ctx, "r1", t0); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("Request after TakeRequest = %v, want ErrNotFound", err)
	}
	if _, err := s.TakeRequest(ctx, "r3", exp.Add(time.Second)); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("TakeRequest after expiry = %v, want ErrNotFound", err)
	}
	// The sweep keeps what is live.
	swept := t0.Add(2 * time.Minute)
	if _, err := s.SweepSignIns(ctx, swept); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]error{"r2": nil, "old": state.ErrNotFound, "unknown": state.ErrNotFound} {
		if _, err := s.Request(ctx, k, swept); !errors.Is(err, want) {
			t.Errorf("Request(%s) after the sweep = %v, want %v", k, err, want)
		}
	}
}

func upstreamLogins(t *testing.T, s state.SignIns) {
	ctx := t.Context()
	want := state.UpstreamLogin{Request: "r1", Upstream: "entra", Nonce: "n", Verifier: "v", Expires: t0.Add(10 * time.Minute)}
	for _, k := range []string{"s1", "s2"} {
		if err := s.PutUpstreamLogin(ctx, k, want, t0); err != nil {
			t.Fatal(err)
		}
	}
	errs := concurrently(16, func() error {
		got, err := s.TakeUpstreamLogin(ctx, "s1", t0)
		if err == nil && (got.Verifier != want.Verifier || got.Request != want.Request || !got.Expires.Equal(want.Expires)) {
			return fmt.Errorf("took %+v, want %+v", got, want)
		}
		return err
	})
	if n := winners(t, errs); n != 1 {
		t.Errorf("%d of 16 concurrent takes got the round trip, want 1", n)
	}
	if _, err := s.TakeUpstreamLogin(ctx, "s2", want.Expires.Add(time.Second)); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("TakeUpstreamLogin after expiry = %v, want ErrNotFound", err)
	}
	if _, err := s.TakeUpstreamLogin(ctx, "r1", t0); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("a request's key taken as a round trip: %v, want ErrNotFound", err)
	}
}

func throttleReservations(t *testing.T, th state.Throttle) {
	ctx := t.Context()
	l := state.Limit{Failures: 3, Window: 10 * time.Minute, Lockout: 15 * time.Minute}
	until := t0.Add(time.Minute)
	// Keys hold what logins and account IDs hold: NUL bytes, and bytes
	// that are not UTF-8.
	const alice = "id\x00corp\x00alice\xff"
	reserve := func(key, id string, at time.Time, l state.Limit) bool {
		t.Helper()
		_, ok, err := th.Reserve(ctx, "accounts", key, id, at, until, l)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	// However many reserve at once, on however many replicas, no more
	// attempts are admitted than failures are left.
	var ids [10]string
	for i := range ids {
		ids[i] = fmt.Sprint("a", i)
	}
	var next atomic.Int32
	oks := concurrently(len(ids), func() bool {
		return reserve(alice, ids[next.Add(1)-1], t0, l)
	})
	admitted := 0
	for _, ok := range oks {
		if ok {
			admitted++
		}
	}
	if admitted != l.Failures {
		t.Fatalf("%d of %d concurrent reservations admitted, want %d", admitted, len(ids), l.Failures)
	}
	if reserve(alice, "late", t0, l) {
		t.Error("a reservation beyond the limit was admitted")
	}
	// Releasing every id (most were never held) frees the places; a
	// failure counted takes one for the window.
	for _, id := range ids {
		if err := th.Release(ctx, "accounts", alice, id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := th.Fail(ctx, "accounts", alice, t0, l); err != nil {
		t.Fatal(err)
	}
	got := []bool{reserve(alice, "b1", t0, l), reserve(alice, "b2", t0, l), reserve(alice, "b3", t0, l)}
	if !reflect.DeepEqual(got, []bool{true, true, false}) {
		t.Errorf("reservations after one failure of 3: %v, want two admitted", got)
	}
	// A reservation whose holder never released it lapses at until.
	if !reserve(alice, "c1", until, l) {
		t.Error("reservations past their time still count")
	}
	// A locked key admits nothing; without a limit everything is admitted.
	for range 2 {
		if _, err := th.Fail(ctx, "accounts", alice, until, l); err != nil {
			t.Fatal(err)
		}
	}
	if c, ok, err := th.Reserve(ctx, "accounts", alice, "d1", until, until.Add(time.Minute), l); err != nil || ok || !c.Locked() || c.Failures != 3 {
		t.Errorf("Reserve of a locked key = %+v, %v, %v; want refused with its lock", c, ok, err)
	}
	for i := range 5 {
		if !reserve("bob", fmt.Sprint("e", i), t0, state.Limit{Window: time.Minute}) {
			t.Fatal("a reservation without a limit was refused")
		}
	}
}
