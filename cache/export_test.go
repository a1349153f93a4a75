package cache

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/dirgate/dirgate/state"
)

// What the state stores wrote comes back from the Export functions whole.
func TestExport(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	st := s.States()
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	tokens := map[string]state.Refresh{
		"h1": {Family: "f1", ClientID: "app", Connector: "corp", ID: "u1", Scope: []string{"openid"}, AuthTime: now, Expires: now.Add(time.Hour)},
		"h2": {ClientID: "app", Connector: "corp", ID: "u\x00odd", AuthTime: now, Expires: now.Add(-time.Hour), Rotated: true},
	}
	for h, r := range tokens {
		if err := st.Grants.PutRefresh(ctx, h, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Grants.RevokeFamily(ctx, "f9", now); err != nil {
		t.Fatal(err)
	}
	v := state.Verifier{Created: now, Stamp: "s1", Hash: "$argon2id$x"}
	if err := st.Verifiers.PutVerifier(ctx, "corp", "id\x00with-nul", v); err != nil {
		t.Fatal(err)
	}
	eng := state.Engine{LastFull: now, NeedFull: true, LastError: "boom", Scope: "sc"}
	if err := st.Sync.SaveEngineState(ctx, "corp", eng); err != nil {
		t.Fatal(err)
	}
	runs := []state.Run{{Connector: "corp", Start: now, End: now.Add(time.Second), Mode: "full", Added: 3},
		{Connector: "corp", Start: now.Add(time.Hour), Mode: "incremental"}, {Connector: "hr", Start: now, Error: "down"}}
	for i := range runs {
		if err := st.Sync.RecordRun(ctx, &runs[i]); err != nil {
			t.Fatal(err)
		}
	}

	gotTokens := map[string]state.Refresh{}
	if err := s.ExportRefresh(ctx, func(h string, r state.Refresh) error { gotTokens[h] = r; return nil }); err != nil {
		t.Fatal(err)
	}
	tokens["h2"] = withFamily(tokens["h2"], "h2")
	if !reflect.DeepEqual(gotTokens, tokens) {
		t.Errorf("refresh tokens:\n got %+v\nwant %+v", gotTokens, tokens)
	}
	var families []string
	if err := s.ExportRevokedFamilies(ctx, func(f string, at time.Time) error {
		families = append(families, fmt.Sprint(f, " ", at.UTC()))
		return nil
	}); err != nil || !reflect.DeepEqual(families, []string{"f9 " + now.String()}) {
		t.Errorf("families %v, %v", families, err)
	}
	var verifiers []string
	if err := s.ExportVerifiers(ctx, func(c, id string, got state.Verifier) error {
		verifiers = append(verifiers, fmt.Sprintf("%s|%q|%v", c, id, got == state.Verifier{Created: now.Local(), Stamp: v.Stamp, Hash: v.Hash}))
		return nil
	}); err != nil || !reflect.DeepEqual(verifiers, []string{`corp|"id\x00with-nul"|true`}) {
		t.Errorf("verifiers %v, %v", verifiers, err)
	}
	engines := map[string]state.Engine{}
	if err := s.ExportEngineStates(ctx, func(c string, e state.Engine) error { engines[c] = e; return nil }); err != nil ||
		len(engines) != 1 || !engines["corp"].LastFull.Equal(now) || engines["corp"].LastError != "boom" {
		t.Errorf("engines %+v, %v", engines, err)
	}
	var gotRuns []string
	if err := s.ExportRuns(ctx, func(r *state.Run) error {
		gotRuns = append(gotRuns, r.Connector+" "+r.Mode+r.Error)
		return nil
	}); err != nil || !reflect.DeepEqual(gotRuns, []string{"corp full", "corp incremental", "hr down"}) {
		t.Errorf("runs %v, %v", gotRuns, err)
	}

	stop := errors.New("stop")
	if err := s.ExportRuns(ctx, func(*state.Run) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("fn's error: got %v", err)
	}
}

func withFamily(r state.Refresh, f string) state.Refresh { r.Family = f; return r }
