package client

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// The replicas the hub names are merged over its lists: an empty list
// (a replica whose registry has not beaten yet) or one list leaving a
// replica out does not lose it; only one left out of several lists and
// unreachable for forgetAfter is given up, and a later list brings it back.
func TestPeersMergedNotForgotten(t *testing.T) {
	a := &Agent{log: slog.New(slog.DiscardHandler), sessions: map[string]bool{}, peers: map[string]*peer{}, forgetAfter: time.Hour}
	done, cancel := context.WithCancel(context.Background())
	cancel() // no session is started: only the bookkeeping is tested
	learn := func(urls ...string) { a.learnPeers(done, urls) }
	long := time.Now().Add(-2 * time.Hour)
	steps := []struct {
		name   string
		learn  [][]string
		lastUp time.Time
		forget bool
	}{
		{"named", [][]string{{"r1", "r2", "r3/"}}, long, false},
		{"an empty list", [][]string{{}}, long, false},
		{"left out once", [][]string{{"r1", "r2"}}, long, false},
		{"left out thrice, recently up", [][]string{{"r1", "r2"}, {"r1", "r2"}}, time.Now(), false},
		{"left out thrice, long down", nil, long, true},
		{"named again", [][]string{{"r1", "r3"}}, long, false},
	}
	for _, s := range steps {
		for _, l := range s.learn {
			learn(l...)
		}
		if got := a.forget("r3", s.lastUp); got != s.forget {
			t.Fatalf("%s: forget = %v, want %v", s.name, got, s.forget)
		}
	}
}

// A connection the hub cuts right after welcoming it (two agents run from
// copies of one state directory, each cutting the other's) does not
// restart the backoff, and says why it may happen: the agent reconnected
// every second before, forever, in silence.
func TestWelcomeCutBacksOff(t *testing.T) {
	hub := newFakeHub(t, "corp")
	hub.cut.Store(true)
	_, logs := enrolled(t, hub, hub.url, agentFile(t, hub.url, offlineConnector))
	start, n := time.Now(), 0
	for time.Since(start) < 7*time.Second {
		select {
		case <-hub.connCh:
			n++
		case <-time.After(100 * time.Millisecond):
		}
	}
	// Backoff waits of at least 0.5, 1, 2 and 4 seconds leave room for
	// four reconnections in 7s; waits restarting at 1s allowed seven.
	if n > 4 {
		t.Errorf("%d reconnections in 7s to a hub that cuts each at once", n)
	}
	if !strings.Contains(logs.String(), "copy of this agent's state directory") {
		t.Errorf("the cut connections were not explained:\n%s", logs.String())
	}
}
