package statetest

import (
	"bytes"
	"testing"

	"github.com/dirgate/dirgate/state"
)

// heldPlans: a held plan is kept per connector, replaced by the next one,
// and dropped by nil; a connector without one reads nil.
func heldPlans(t *testing.T, s state.Sync) {
	ctx := t.Context()
	read := func(conn string) []byte {
		t.Helper()
		p, err := s.HeldPlan(ctx, conn)
		if err != nil {
			t.Fatalf("HeldPlan(%s): %v", conn, err)
		}
		return p
	}
	if p := read("corp"); p != nil {
		t.Fatalf("HeldPlan of a connector without one = %q, want nil", p)
	}
	for _, step := range []struct{ conn, plan string }{{"corp", `{"a":1}`}, {"other", `{"b":2}`}, {"corp", `{"a":3}`}} {
		if err := s.HoldPlan(ctx, step.conn, []byte(step.plan)); err != nil {
			t.Fatal(err)
		}
	}
	if p := read("corp"); !bytes.Equal(p, []byte(`{"a":3}`)) {
		t.Errorf("HeldPlan(corp) = %q, want the later plan", p)
	}
	if err := s.HoldPlan(ctx, "corp", nil); err != nil {
		t.Fatal(err)
	}
	if p := read("corp"); p != nil {
		t.Errorf("HeldPlan(corp) after dropping it = %q", p)
	}
	if p := read("other"); !bytes.Equal(p, []byte(`{"b":2}`)) {
		t.Errorf("HeldPlan(other) = %q: dropping corp's plan touched it", p)
	}
	if err := s.HoldPlan(ctx, "corp", nil); err != nil {
		t.Errorf("dropping a plan that is not held: %v", err)
	}
}
