package hub

import (
	"testing"
	"time"

	"github.com/dirgate/dirgate/agent/wire"
)

// TestSyncReadsStickToOneAgent: a connector's sync reads all go to one
// agent (its incremental cursor is tied to that agent's directory host)
// while checks are shared; the reads move only when that agent leaves,
// and stay with the new one when the first comes back.
func TestSyncReadsStickToOneAgent(t *testing.T) {
	f := newFixture(t, time.Hour)
	answer := func(ac *agentConn, id uint64, req *wire.Request) {
		ac.result(id, &wire.Result{Host: ac.a.id})
	}
	a, b := f.newAgent(t, "ad"), f.newAgent(t, "ad")
	acA, _ := a.connect(t, nil, answer)
	b.connect(t, nil, answer)
	read := func(kind string) string {
		t.Helper()
		req := &wire.Request{Kind: kind}
		if kind == wire.KindCheck {
			req.Check = &wire.CheckRequest{}
		}
		call, err := f.h.Do(t.Context(), "ad", req)
		if err != nil {
			t.Fatal(err)
		}
		var res *wire.Result
		if kind == wire.KindCheck {
			res, err = call.Wait(t.Context())
		} else {
			res, err = call.Stream(t.Context(), nil, nil)
		}
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		return res.Host
	}
	readers, checkers := map[string]int{}, map[string]int{}
	for i := range 10 {
		readers[read([]string{wire.KindFull, wire.KindChanges}[i%2])]++
	}
	for range 10 {
		checkers[read(wire.KindCheck)]++
	}
	if len(readers) != 1 || readers[a.id] != 10 {
		t.Fatalf("sync reads by agent %v; want all on the longest connected, %s", readers, a.id)
	}
	if len(checkers) != 2 {
		t.Fatalf("checks by agent %v; want them shared", checkers)
	}

	acA.close()
	waitFor(t, "a to be dropped", func() bool { n, _ := f.h.Connected("ad"); return n == 1 })
	if got := read(wire.KindChanges); got != b.id {
		t.Fatalf("read by %s after a left; want %s", got, b.id)
	}
	a.connect(t, nil, answer)
	for range 4 {
		if got := read(wire.KindChanges); got != b.id {
			t.Fatalf("read by %s after a came back; want it to stay on %s", got, b.id)
		}
	}
}
