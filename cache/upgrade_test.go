package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/dirgate/dirgate/passwd"
	"github.com/dirgate/dirgate/state"
	"github.com/dirgate/dirgate/state/statetest"
)

// TestUpgradeFromRelease0 opens a cache written by the release before the
// state stores and reads every record it held through them.
func TestUpgradeFromRelease0(t *testing.T) {
	dir, r0 := statetest.OpenRelease0(t)
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	st := s.States()
	now := time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)

	for _, tc := range []struct {
		name, token, family string
		want                state.RefreshOutcome
	}{
		{"live", r0.Live, "fam-live", state.RefreshLive},
		{"successor", r0.Successor, "fam-rot", state.RefreshLive},
		{"legacy", r0.Legacy, hashOf(r0.Legacy), state.RefreshLive},
		{"revoked", r0.Revoked, "", state.RefreshInvalid},
		{"expired", r0.Expired, "", state.RefreshInvalid},
		// Presented again after its rotation: revokes fam-rot.
		{"spent", r0.Spent, "fam-rot", state.RefreshReused},
	} {
		got, out, err := st.Grants.RotateRefresh(ctx, hashOf(tc.token), "app", now)
		if err != nil || out != tc.want || got.Family != tc.family {
			t.Errorf("%s refresh token: %+v, %v, %v; want outcome %v in family %q", tc.name, got, out, err, tc.want, tc.family)
		}
	}

	keys, err := st.Keys.SigningKeys(ctx)
	var stored []struct{ ID, Alg string }
	if err == nil {
		err = json.Unmarshal(keys, &stored)
	}
	var kids []string
	for _, k := range slices.Backward(stored) {
		kids = append(kids, k.ID+"/"+k.Alg)
	}
	if err != nil || !slices.Equal(kids, r0.Kids) {
		t.Errorf("signing keys %v, %v; want %v", kids, err, r0.Kids)
	}

	v, err := st.Verifiers.Verifier(ctx, statetest.Release0Connector, statetest.Release0Account)
	if err != nil || v.Stamp != statetest.Release0Stamp || !passwd.Verify(v.Hash, statetest.Release0Password) || v.Created.Year() < 2025 {
		t.Errorf("offline verifier %+v, %v", v, err)
	}

	eng, err := st.Sync.EngineState(ctx, statetest.Release0Connector)
	if err != nil || !eng.NeedFull || eng.LastError != "upstream unreachable" || eng.Scope != "0123456789abcdef" || !eng.LastFull.Equal(time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)) {
		t.Errorf("engine state %+v, %v", eng, err)
	}
	if c, err := st.Sync.Cursor(ctx, statetest.Release0Connector); err != nil || string(c) != statetest.Release0Cursor {
		t.Errorf("cursor %q, %v", c, err)
	}
	runs, err := st.Sync.Runs(ctx, statetest.Release0Connector, 10)
	if err != nil || len(runs) != 2 || runs[0].Trigger != "api" || runs[0].Error == "" || runs[1].Method != "syncrepl" || runs[1].Read != 3 {
		t.Errorf("runs %+v, %v", runs, err)
	}

	// The sweep removes the expired token only: the revoked family is
	// younger than a refresh lifetime.
	if n, err := st.Grants.SweepExpired(ctx, now, 365*24*time.Hour); err != nil || n != 1 {
		t.Errorf("SweepExpired = %d, %v; want 1", n, err)
	}
	if _, err := st.Grants.Refresh(ctx, hashOf(r0.Revoked), now); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("token of the revoked family after the sweep: %v, want ErrNotFound", err)
	}
}

// hashOf is how the OIDC provider names a refresh token in the store.
func hashOf(token string) string {
	s := sha256.Sum256([]byte(token))
	return hex.EncodeToString(s[:])
}
