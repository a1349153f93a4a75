package client

import (
	"context"
	"log/slog"
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
