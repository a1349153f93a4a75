package pending

import (
	"fmt"
	"testing"
	"time"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// TestSingleUseAndExpiry: an entry is taken once, and not after it
// expired.
func TestSingleUseAndExpiry(t *testing.T) {
	tb := New[string](10, 0)
	for _, id := range []string{"a", "b"} {
		if !tb.Put(t0, id, "o", "v-"+id, t0.Add(time.Minute)) {
			t.Fatalf("Put %s refused", id)
		}
	}
	if v, ok := tb.Take(t0, "a"); !ok || v != "v-a" {
		t.Errorf("Take a = %q, %v", v, ok)
	}
	if _, ok := tb.Take(t0, "a"); ok {
		t.Error("a taken twice")
	}
	if _, ok := tb.Take(t0.Add(time.Minute+time.Second), "b"); ok {
		t.Error("expired b taken")
	}
	if tb.Len() != 0 {
		t.Errorf("Len = %d after taking everything", tb.Len())
	}
}

// TestBounds: a full table refuses until its entries expire; one owner
// cannot take more than its share, and a taken entry frees its share.
func TestBounds(t *testing.T) {
	tb := New[int](4, 2)
	put := func(now time.Time, id, owner string) bool { return tb.Put(now, id, owner, 0, now.Add(time.Minute)) }
	if !put(t0, "1", "x") || !put(t0, "2", "x") {
		t.Fatal("owner x refused within its share")
	}
	if put(t0, "3", "x") {
		t.Error("owner x got a third entry")
	}
	if !put(t0, "3", "y") || !put(t0, "4", "z") {
		t.Fatal("other owners refused")
	}
	if put(t0, "5", "w") {
		t.Error("full table accepted an entry")
	}
	if _, ok := tb.Take(t0, "1"); !ok {
		t.Fatal("Take 1")
	}
	if !put(t0, "5", "x") {
		t.Error("owner x refused after its entry was taken")
	}
	// Everything expired: the next Put sweeps (a second after the last
	// full sweep) and is accepted.
	if !put(t0.Add(2*time.Minute), "6", "w") {
		t.Error("Put refused although every entry expired")
	}
	if tb.Len() != 1 {
		t.Errorf("Len = %d after the sweep, want 1", tb.Len())
	}
}

// TestSweepAmortised: filling a large table walks it a bounded number of
// times per Put on average, and a flood against a full table of live
// entries does not walk it at every refusal.
func TestSweepAmortised(t *testing.T) {
	const n = 20000
	tb := New[int](n, 0)
	for i := range n {
		if !tb.Put(t0, fmt.Sprint(i), "", i, t0.Add(time.Hour)) {
			t.Fatalf("Put %d refused", i)
		}
	}
	if tb.walked > 4*n {
		t.Errorf("filling %d entries walked %d, want at most %d", n, tb.walked, 4*n)
	}
	before := tb.walked
	for i := range 1000 {
		if tb.Put(t0.Add(time.Millisecond), fmt.Sprint("flood", i), "", 0, t0.Add(time.Hour)) {
			t.Fatal("full table accepted an entry")
		}
	}
	if w := tb.walked - before; w > n {
		t.Errorf("1000 refused Puts walked %d entries, want at most one sweep (%d)", w, n)
	}
}

func TestGetLeavesDeleteRemoves(t *testing.T) {
	now := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	tb := New[int](10, 2)
	tb.Put(now, "a", "o", 1, now.Add(time.Minute))
	for range 2 {
		if v, ok := tb.Get(now, "a"); !ok || v != 1 {
			t.Fatalf("Get: %v %v", v, ok)
		}
	}
	if _, ok := tb.Get(now.Add(2*time.Minute), "a"); ok {
		t.Fatal("Get returned an expired entry")
	}
	tb.Delete("a")
	if _, ok := tb.Get(now, "a"); ok || tb.Len() != 0 {
		t.Fatal("Delete left the entry")
	}
	// The owner's share is released: two more fit.
	if !tb.Put(now, "b", "o", 2, now.Add(time.Minute)) || !tb.Put(now, "c", "o", 3, now.Add(time.Minute)) {
		t.Fatal("Delete did not release the owner's share")
	}
}
