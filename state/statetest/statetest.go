// Package statetest is the conformance suite of the state stores: every
// implementation of package state runs Run against fresh stores. Besides
// the plain contracts it checks the concurrency properties replicas sharing
// one store rely on: a code is redeemed once however many redeem it at the
// same time, a refresh token rotates once and its reuse revokes its family,
// a signing key set is published with compare-and-set so two rotations
// cannot overwrite each other, and failures counted at once are all
// counted.
package statetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dirgate/dirgate/state"
)

// Run runs the suite; open returns empty stores for each subtest.
func Run(t *testing.T, open func(t *testing.T) state.Stores) {
	t.Run("CodeRedeemedOnce", func(t *testing.T) { codeRedeemedOnce(t, open(t).Grants) })
	t.Run("CodeReplayedAfterExpiry", func(t *testing.T) { codeReplayedAfterExpiry(t, open(t).Grants) })
	t.Run("RefreshRotation", func(t *testing.T) { refreshRotation(t, open(t).Grants) })
	t.Run("RefreshRotatesOnceConcurrently", func(t *testing.T) { refreshConcurrent(t, open(t).Grants) })
	t.Run("AccessRevocation", func(t *testing.T) { accessRevocation(t, open(t).Grants) })
	t.Run("SweepExpired", func(t *testing.T) { sweepExpired(t, open(t).Grants) })
	t.Run("KeysPublishedOnce", func(t *testing.T) { keysPublished(t, open(t).Keys) })
	t.Run("Verifiers", func(t *testing.T) { verifiers(t, open(t).Verifiers) })
	t.Run("Sync", func(t *testing.T) { syncState(t, open(t).Sync) })
	t.Run("HeldPlans", func(t *testing.T) { heldPlans(t, open(t).Sync) })
	t.Run("ThrottleCounts", func(t *testing.T) { throttleCounts(t, open(t).Throttle) })
	t.Run("ThrottleReservations", func(t *testing.T) { throttleReservations(t, open(t).Throttle) })
	t.Run("SignInRequests", func(t *testing.T) { signInRequests(t, open(t).SignIns) })
	t.Run("UpstreamLogins", func(t *testing.T) { upstreamLogins(t, open(t).SignIns) })
}

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// concurrently runs f n times at once and returns its results.
func concurrently[T any](n int, f func() T) []T {
	out := make([]T, n)
	var start, done sync.WaitGroup
	start.Add(1)
	for i := range n {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			out[i] = f()
		}()
	}
	start.Done()
	done.Wait()
	return out
}

func codeRedeemedOnce(t *testing.T, g state.Grants) {
	ctx := t.Context()
	c := state.Code{ClientID: "app", ID: "u1", Family: "f1", Expires: t0.Add(time.Minute), Scope: []string{"openid"}}
	if err := g.PutCode(ctx, "h1", c, t0); err != nil {
		t.Fatal(err)
	}
	errs := concurrently(16, func() error {
		got, err := g.RedeemCode(ctx, "h1", t0)
		if err == nil || errors.Is(err, state.ErrReplayed) {
			if got.ClientID != "app" || got.Family != "f1" {
				return fmt.Errorf("redeemed %+v", got)
			}
		}
		return err
	})
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, state.ErrReplayed):
			t.Errorf("RedeemCode: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d of 16 concurrent redemptions succeeded, want 1", won)
	}
	if err := g.SetCodeAccess(ctx, "h1", "jti-1", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, err := g.RedeemCode(ctx, "h1", t0); !errors.Is(err, state.ErrReplayed) || got.AccessJTI != "jti-1" {
		t.Errorf("replay = %+v, %v; want the access token jti-1 and ErrReplayed", got, err)
	}
	if _, err := g.RedeemCode(ctx, "unknown", t0); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("RedeemCode(unknown) = %v, want ErrNotFound", err)
	}
}

// codeReplayedAfterExpiry: a spent code presented again after it expired
// is still a replay until the sweep drops it (a minute past its expiry),
// so the caller revokes what its first redemption issued; an unspent code
// that expired is merely not found.
func codeReplayedAfterExpiry(t *testing.T, g state.Grants) {
	ctx := t.Context()
	exp := t0.Add(time.Minute)
	for _, h := range []string{"spent", "unspent"} {
		if err := g.PutCode(ctx, h, state.Code{ClientID: "app", Family: "f-" + h, Expires: exp}, t0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := g.RedeemCode(ctx, "spent", t0); err != nil {
		t.Fatal(err)
	}
	if err := g.SetCodeAccess(ctx, "spent", "jti-1", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	later := exp.Add(30 * time.Second)
	if _, err := g.SweepExpired(ctx, later, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if got, err := g.RedeemCode(ctx, "spent", later); !errors.Is(err, state.ErrReplayed) || got.Family != "f-spent" || got.AccessJTI != "jti-1" {
		t.Errorf("replay after expiry = %+v, %v; want family f-spent, access token jti-1 and ErrReplayed", got, err)
	}
	if _, err := g.RedeemCode(ctx, "unspent", later); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("expired unspent code = %v, want ErrNotFound", err)
	}
	gone := exp.Add(time.Minute + time.Second)
	if _, err := g.SweepExpired(ctx, gone, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := g.RedeemCode(ctx, "spent", gone); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("spent code after the sweep = %v, want ErrNotFound", err)
	}
}

func putRefresh(t *testing.T, g state.Grants, hash string, r state.Refresh) {
	t.Helper()
	if err := g.PutRefresh(t.Context(), hash, r); err != nil {
		t.Fatal(err)
	}
}

func rotate(t *testing.T, g state.Grants, hash, client string, now time.Time) (state.Refresh, state.RefreshOutcome) {
	t.Helper()
	r, out, err := g.RotateRefresh(t.Context(), hash, client, now)
	if err != nil {
		t.Fatalf("RotateRefresh(%s): %v", hash, err)
	}
	return r, out
}

func refreshRotation(t *testing.T, g state.Grants) {
	ctx := t.Context()
	exp := t0.Add(24 * time.Hour)
	putRefresh(t, g, "a", state.Refresh{ClientID: "app", ID: "u1", Family: "fam", Expires: exp})
	putRefresh(t, g, "legacy", state.Refresh{ClientID: "app", ID: "u2", Expires: exp})
	if _, out := rotate(t, g, "a", "other", t0); out != state.RefreshOtherClient {
		t.Fatalf("another client's rotation = %v, want RefreshOtherClient", out)
	}
	r, out := rotate(t, g, "a", "app", t0)
	if out != state.RefreshLive || r.ID != "u1" || r.Family != "fam" {
		t.Fatalf("first rotation = %+v, %v; want RefreshLive of family fam", r, out)
	}
	putRefresh(t, g, "b", state.Refresh{ClientID: "app", ID: "u1", Family: "fam", Expires: exp})
	if got, err := g.Refresh(ctx, "a", t0); err != nil || !got.Rotated {
		t.Errorf("Refresh(a) after rotation = %+v, %v; want it marked rotated", got, err)
	}
	if _, out := rotate(t, g, "a", "app", t0); out != state.RefreshReused {
		t.Fatalf("second rotation = %v, want RefreshReused", out)
	}
	for _, h := range []string{"a", "b"} {
		if _, err := g.Refresh(ctx, h, t0); !errors.Is(err, state.ErrNotFound) {
			t.Errorf("Refresh(%s) after reuse = %v, want ErrNotFound: the family is revoked", h, err)
		}
		if _, out := rotate(t, g, h, "app", t0); out != state.RefreshInvalid {
			t.Errorf("rotation of %s after reuse = %v, want RefreshInvalid", h, out)
		}
	}
	// A token stored before families is a family of its own, named by its
	// hash.
	if r, out := rotate(t, g, "legacy", "app", t0); out != state.RefreshLive || r.Family != "legacy" {
		t.Errorf("legacy rotation = %+v, %v; want RefreshLive of family legacy", r, out)
	}
	if _, out := rotate(t, g, "legacy", "app", exp.Add(time.Second)); out != state.RefreshInvalid {
		t.Errorf("rotation after expiry = %v, want RefreshInvalid", out)
	}
	if err := g.RevokeFamily(ctx, "legacy", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Refresh(ctx, "legacy", t0); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("Refresh(legacy) after RevokeFamily = %v, want ErrNotFound", err)
	}
}

func refreshConcurrent(t *testing.T, g state.Grants) {
	putRefresh(t, g, "a", state.Refresh{ClientID: "app", Family: "fam", Expires: t0.Add(time.Hour)})
	outs := concurrently(16, func() state.RefreshOutcome {
		_, out, err := g.RotateRefresh(t.Context(), "a", "app", t0)
		if err != nil {
			t.Error(err)
		}
		return out
	})
	count := map[state.RefreshOutcome]int{}
	for _, o := range outs {
		count[o]++
	}
	// The first spends it; the next one finds it rotated and revokes the
	// family; the rest find it revoked.
	if count[state.RefreshLive] != 1 || count[state.RefreshReused] != 1 || count[state.RefreshInvalid] != 14 {
		t.Errorf("16 concurrent rotations: %v; want 1 live, 1 reused, 14 invalid", count)
	}
}

func accessRevocation(t *testing.T, g state.Grants) {
	ctx := t.Context()
	if err := g.RevokeAccess(ctx, "j1", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for jti, want := range map[string]bool{"j1": true, "j2": false} {
		if got, err := g.AccessRevoked(ctx, jti); err != nil || got != want {
			t.Errorf("AccessRevoked(%s) = %v, %v; want %v", jti, got, err, want)
		}
	}
}

func sweepExpired(t *testing.T, g state.Grants) {
	ctx := t.Context()
	const ttl = 24 * time.Hour
	putRefresh(t, g, "old", state.Refresh{ClientID: "app", Family: "f-old", Expires: t0.Add(-time.Second)})
	putRefresh(t, g, "live", state.Refresh{ClientID: "app", Family: "f-live", Expires: t0.Add(time.Hour)})
	putRefresh(t, g, "spent", state.Refresh{ClientID: "app", Family: "f-spent", Expires: t0.Add(time.Hour)})
	rotate(t, g, "spent", "app", t0)
	for fam, at := range map[string]time.Time{"f-gone": t0.Add(-ttl - time.Second), "f-kept": t0.Add(-ttl + time.Hour)} {
		if err := g.RevokeFamily(ctx, fam, at); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.PutCode(ctx, "c-old", state.Code{Expires: t0.Add(-2 * time.Minute)}, t0); err != nil {
		t.Fatal(err)
	}
	if err := g.PutCode(ctx, "c-live", state.Code{Expires: t0.Add(time.Minute)}, t0); err != nil {
		t.Fatal(err)
	}
	if err := g.RevokeAccess(ctx, "j-old", t0.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := g.RevokeAccess(ctx, "j-live", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// Removed: refresh "old", family "f-gone", code "c-old", access "j-old".
	if n, err := g.SweepExpired(ctx, t0, ttl); err != nil || n != 4 {
		t.Fatalf("SweepExpired = %d, %v; want 4, nil", n, err)
	}
	if n, err := g.SweepExpired(ctx, t0, ttl); err != nil || n != 0 {
		t.Errorf("second SweepExpired = %d, %v; want 0, nil", n, err)
	}
	if _, err := g.Refresh(ctx, "live", t0); err != nil {
		t.Errorf("live token swept: %v", err)
	}
	// A rotated token is kept until it expires: presenting it again must
	// still revoke its family.
	if _, out := rotate(t, g, "spent", "app", t0); out != state.RefreshReused {
		t.Errorf("spent token after sweep: %v, want RefreshReused", out)
	}
	if _, err := g.RedeemCode(ctx, "c-live", t0); err != nil {
		t.Errorf("live code swept: %v", err)
	}
	if ok, _ := g.AccessRevoked(ctx, "j-live"); !ok {
		t.Error("unexpired access revocation swept")
	}
	// The later revocation of f-kept is still in force: a token of that
	// family stored now is refused.
	putRefresh(t, g, "late", state.Refresh{ClientID: "app", Family: "f-kept", Expires: t0.Add(time.Hour)})
	if _, err := g.Refresh(ctx, "late", t0); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("token of a revoked family = %v, want ErrNotFound", err)
	}
}

func keysPublished(t *testing.T, k state.Keys) {
	ctx := t.Context()
	if b, err := k.SigningKeys(ctx); err != nil || b != nil {
		t.Fatalf("SigningKeys of an empty store = %q, %v", b, err)
	}
	if err := k.PublishSigningKeys(ctx, nil, []byte("v1")); err != nil {
		t.Fatal(err)
	}
	// Two replicas rotate from v1 at once: one wins, the other must
	// reload instead of overwriting the winner's key.
	errs := concurrently(8, func() error {
		return k.PublishSigningKeys(context.WithoutCancel(ctx), []byte("v1"), []byte("v2"))
	})
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, state.ErrConflict):
			t.Errorf("PublishSigningKeys: %v", err)
		}
	}
	if won != 1 {
		t.Errorf("%d of 8 concurrent publications from one version succeeded, want 1", won)
	}
	if b, err := k.SigningKeys(ctx); err != nil || string(b) != "v2" {
		t.Errorf("SigningKeys = %q, %v; want v2", b, err)
	}
	if err := k.PublishSigningKeys(ctx, nil, []byte("v3")); !errors.Is(err, state.ErrConflict) {
		t.Errorf("publication from a stale version = %v, want ErrConflict", err)
	}
}

func verifiers(t *testing.T, v state.Verifiers) {
	ctx := t.Context()
	want := state.Verifier{Created: t0, Stamp: "pwdChangedTime:1", Hash: "$argon2id$x"}
	for _, acct := range [][2]string{{"corp", "u1"}, {"corp", "u2"}, {"corp\x00u1", ""}} {
		if err := v.PutVerifier(ctx, acct[0], acct[1], want); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := v.Verifier(ctx, "corp", "u1"); err != nil || !got.Created.Equal(want.Created) || got.Stamp != want.Stamp || got.Hash != want.Hash {
		t.Errorf("Verifier = %+v, %v; want %+v", got, err, want)
	}
	if err := v.DeleteVerifier(ctx, "corp", "u1"); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verifier(ctx, "corp", "u1"); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("Verifier after delete = %v, want ErrNotFound", err)
	}
	if _, err := v.Verifier(ctx, "corp", "u2"); err != nil {
		t.Errorf("other account's verifier: %v", err)
	}
	if n, err := v.DeleteAllVerifiers(ctx); err != nil || n != 2 {
		t.Errorf("DeleteAllVerifiers = %d, %v; want 2", n, err)
	}
	if _, err := v.Verifier(ctx, "corp", "u2"); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("Verifier after DeleteAllVerifiers = %v, want ErrNotFound", err)
	}
}

func syncState(t *testing.T, s state.Sync) {
	ctx := t.Context()
	if st, err := s.EngineState(ctx, "corp"); err != nil || st != (state.Engine{}) {
		t.Fatalf("EngineState of a new connector = %+v, %v; want zero", st, err)
	}
	want := state.Engine{LastFull: t0, NeedFull: true, LastError: "boom", Scope: "abc"}
	if err := s.SaveEngineState(ctx, "corp", want); err != nil {
		t.Fatal(err)
	}
	if st, err := s.EngineState(ctx, "corp"); err != nil || !st.LastFull.Equal(t0) || st.NeedFull != want.NeedFull || st.LastError != want.LastError || st.Scope != want.Scope {
		t.Errorf("EngineState = %+v, %v; want %+v", st, err, want)
	}
	if c, err := s.Cursor(ctx, "corp"); err != nil || c != nil {
		t.Errorf("Cursor of a never synced connector = %q, %v", c, err)
	}
	for i := range 3 {
		if err := s.RecordRun(ctx, &state.Run{Connector: "corp", Start: t0.Add(time.Duration(i) * time.Hour), Mode: "full"}); err != nil {
			t.Fatal(err)
		}
	}
	runs, err := s.Runs(ctx, "corp", 2)
	if err != nil || len(runs) != 2 || !runs[0].Start.Equal(t0.Add(2*time.Hour)) || !runs[1].Start.Equal(t0.Add(time.Hour)) {
		t.Errorf("Runs = %+v, %v; want the two newest, newest first", runs, err)
	}
}

func throttleCounts(t *testing.T, th state.Throttle) {
	ctx := t.Context()
	l := state.Limit{Failures: 5, Window: 10 * time.Minute, Lockout: 15 * time.Minute}
	// Failures counted at once on several replicas are all counted.
	counters := concurrently(20, func() state.Counter {
		c, err := th.Fail(ctx, "accounts", "alice", t0, l)
		if err != nil {
			t.Error(err)
		}
		return c
	})
	seen := map[int]bool{}
	for _, c := range counters {
		seen[c.Failures] = true
		if c.Locked() != (c.Failures >= l.Failures) {
			t.Errorf("counter %+v: locked at %d failures, want from %d", c, c.Failures, l.Failures)
		}
	}
	if len(seen) != 20 {
		t.Errorf("20 concurrent failures returned %d distinct counts, want 20", len(seen))
	}
	c, err := th.Counter(ctx, "accounts", "alice", t0, l)
	if err != nil || c.Failures != 20 || !c.Until.Equal(t0.Add(l.Lockout)) {
		t.Errorf("Counter = %+v, %v; want 20 failures locked until %s", c, err, t0.Add(l.Lockout))
	}
	for name, tc := range map[string]struct {
		table, key string
		at         time.Time
		want       int
	}{
		"other table":  {"addresses", "alice", t0, 0},
		"lock is over": {"accounts", "alice", t0.Add(l.Lockout), 0},
	} {
		if c, err := th.Counter(ctx, tc.table, tc.key, tc.at, l); err != nil || c.Failures != tc.want || c.Locked() {
			t.Errorf("%s: %+v, %v; want %d failures, unlocked", name, c, err, tc.want)
		}
	}
	if _, err := th.Fail(ctx, "accounts", "bob", t0, l); err != nil {
		t.Fatal(err)
	}
	if c, _ := th.Counter(ctx, "accounts", "bob", t0.Add(l.Window+time.Second), l); c.Failures != 0 {
		t.Errorf("failure older than the window still counted: %+v", c)
	}
	if _, err := th.Fail(ctx, "accounts", "carol", t0, l); err != nil {
		t.Fatal(err)
	}
	if err := th.Reset(ctx, "accounts", "carol"); err != nil {
		t.Fatal(err)
	}
	if c, _ := th.Counter(ctx, "accounts", "carol", t0, l); c.Failures != 0 {
		t.Errorf("counter after Reset: %+v", c)
	}
}
