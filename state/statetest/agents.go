package statetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/dirgate/dirgate/state"
)

// RunAgents runs the conformance suite of state.Agents; open returns an
// empty store for each subtest. It is separate from Run because the
// agents' store is not part of state.Stores.
func RunAgents(t *testing.T, open func(t *testing.T) state.Agents) {
	t.Run("EnrollTokens", func(t *testing.T) { enrollTokens(t, open(t)) })
	t.Run("EnrollTokenRedeemedOnce", func(t *testing.T) { enrollTokenRedeemedOnce(t, open(t)) })
	t.Run("AgentsRevoked", func(t *testing.T) { agentsRevoked(t, open(t)) })
	t.Run("AgentCertRenewed", func(t *testing.T) { agentCertRenewed(t, open(t)) })
}

func testAgent(id string) state.Agent {
	return state.Agent{ID: id, Connector: "ad", Name: "agent " + id, Fingerprint: "fp-" + id, Serial: "0a" + id, Enrolled: t0,
		CertExpires: t0.Add(365 * 24 * time.Hour)}
}

func sameAgent(got, want state.Agent) bool {
	return got.ID == want.ID && got.Connector == want.Connector && got.Name == want.Name && got.Fingerprint == want.Fingerprint &&
		got.Serial == want.Serial && got.Enrolled.Equal(want.Enrolled) && got.Revoked.Equal(want.Revoked) &&
		got.CertExpires.Equal(want.CertExpires) && got.PreviousFingerprint == want.PreviousFingerprint
}

func enrollTokens(t *testing.T, s state.Agents) {
	ctx := t.Context()
	exp := t0.Add(time.Hour)
	for _, h := range []string{"h1", "h2"} {
		if err := s.PutEnrollToken(ctx, h, state.EnrollToken{Connector: "ad", Created: t0, Expires: exp}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.EnrollToken(ctx, "h1", t0)
	if err != nil || got.Connector != "ad" || !got.Expires.Equal(exp) || !got.Created.Equal(t0) || !got.Used.IsZero() {
		t.Fatalf("EnrollToken = %+v, %v", got, err)
	}
	a := testAgent("a1")
	other := a
	other.Connector = "ldap"
	tests := []struct {
		name string
		hash string
		a    state.Agent
		at   time.Time
		want error
	}{
		{"unknown", "nope", a, t0, state.ErrTokenUnknown},
		{"another connector", "h1", other, t0, state.ErrTokenConnector},
		{"expired", "h2", testAgent("a2"), exp, state.ErrTokenExpired},
		{"good", "h1", a, t0.Add(time.Minute), nil},
		{"used", "h1", testAgent("a3"), t0.Add(2 * time.Minute), state.ErrTokenUsed},
	}
	for _, tt := range tests {
		if err := s.RedeemEnrollToken(ctx, tt.hash, tt.a, tt.at); !errors.Is(err, tt.want) {
			t.Errorf("%s: RedeemEnrollToken = %v, want %v", tt.name, err, tt.want)
		}
		if _, err := s.EnrollToken(ctx, tt.hash, tt.at); tt.want != nil && tt.want != state.ErrTokenConnector && !errors.Is(err, tt.want) {
			t.Errorf("%s: EnrollToken = %v, want %v", tt.name, err, tt.want)
		}
	}
	if _, err := s.EnrollToken(ctx, "h1", t0); !errors.Is(err, state.ErrTokenUsed) {
		t.Errorf("EnrollToken after redemption = %v, want ErrTokenUsed", err)
	}
	if got, err := s.Agent(ctx, "a1"); err != nil || !sameAgent(got, a) {
		t.Errorf("Agent = %+v, %v; want %+v", got, err, a)
	}
	// A failed redemption stores no agent.
	for _, id := range []string{"a2", "a3"} {
		if _, err := s.Agent(ctx, id); !errors.Is(err, state.ErrNotFound) {
			t.Errorf("Agent(%s) after a failed redemption = %v, want ErrNotFound", id, err)
		}
	}
}

func enrollTokenRedeemedOnce(t *testing.T, s state.Agents) {
	ctx := t.Context()
	// Several rounds: a race that one round misses, one of them catches.
	const rounds, racers = 8, 16
	for r := range rounds {
		h := fmt.Sprint("h", r)
		if err := s.PutEnrollToken(ctx, h, state.EnrollToken{Connector: "ad", Created: t0, Expires: t0.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		ids := make(chan string, racers)
		for i := range racers {
			ids <- fmt.Sprintf("a%d-%d", r, i)
		}
		errs := concurrently(racers, func() error { return s.RedeemEnrollToken(ctx, h, testAgent(<-ids), t0) })
		n := 0
		for _, err := range errs {
			switch {
			case err == nil:
				n++
			case !errors.Is(err, state.ErrTokenUsed):
				t.Errorf("RedeemEnrollToken: %v", err)
			}
		}
		if n != 1 {
			t.Fatalf("%d of %d concurrent redemptions succeeded, want 1", n, racers)
		}
		tok, err := s.EnrollToken(ctx, h, t0)
		if !errors.Is(err, state.ErrTokenUsed) || tok.UsedBy == "" || !tok.Used.Equal(t0) {
			t.Fatalf("token after redemption = %+v, %v; want used", tok, err)
		}
		if _, err := s.Agent(ctx, tok.UsedBy); err != nil {
			t.Fatalf("the winner %s: %v", tok.UsedBy, err)
		}
	}
	if agents, err := s.Agents(ctx); err != nil || len(agents) != rounds {
		t.Fatalf("Agents = %d, %v; want the %d winners alone", len(agents), err, rounds)
	}
}

func agentsRevoked(t *testing.T, s state.Agents) {
	ctx := t.Context()
	if _, err := s.Agent(ctx, "a1"); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("Agent(unknown) = %v, want ErrNotFound", err)
	}
	if got, err := s.Agents(ctx); err != nil || len(got) != 0 {
		t.Fatalf("Agents of an empty store = %+v, %v", got, err)
	}
	for i, id := range []string{"b", "a", "c"} {
		h := fmt.Sprint("h", i)
		if err := s.PutEnrollToken(ctx, h, state.EnrollToken{Connector: "ad", Expires: t0.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if err := s.RedeemEnrollToken(ctx, h, testAgent(id), t0); err != nil {
			t.Fatal(err)
		}
	}
	revoked := t0.Add(time.Hour)
	if err := s.RevokeAgent(ctx, "b", revoked); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeAgent(ctx, "b", revoked.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeAgent(ctx, "zz", revoked); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("RevokeAgent(unknown) = %v, want ErrNotFound", err)
	}
	got, err := s.Agents(ctx)
	if err != nil || len(got) != 3 {
		t.Fatalf("Agents = %+v, %v", got, err)
	}
	for i, id := range []string{"a", "b", "c"} {
		want := testAgent(id)
		if id == "b" {
			want.Revoked = revoked // the first revocation's time
		}
		if !sameAgent(got[i], want) {
			t.Errorf("Agents[%d] = %+v, want %+v", i, got[i], want)
		}
	}
	if a, err := s.Agent(ctx, "b"); err != nil || !a.Revoked.Equal(revoked) {
		t.Errorf("Agent(b) = %+v, %v; want revoked at %s", a, err, revoked)
	}
}

func agentCertRenewed(t *testing.T, s state.Agents) {
	ctx := t.Context()
	for i, id := range []string{"a", "b"} {
		h := fmt.Sprint("h", i)
		if err := s.PutEnrollToken(ctx, h, state.EnrollToken{Connector: "ad", Expires: t0.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if err := s.RedeemEnrollToken(ctx, h, testAgent(id), t0); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RevokeAgent(ctx, "b", t0); err != nil {
		t.Fatal(err)
	}
	renewal := func(n int) state.Agent {
		return state.Agent{Fingerprint: fmt.Sprint("fp-a-", n), Serial: fmt.Sprint("0b", n), CertExpires: t0.Add(time.Duration(n) * 24 * time.Hour)}
	}
	want := testAgent("a")
	tests := []struct {
		name      string
		id        string
		presented string
		renewed   state.Agent
		err       error
		pinned    string // the previous fingerprint after a renewal
	}{
		{"unknown agent", "zz", "fp-zz", renewal(1), state.ErrNotFound, ""},
		{"revoked agent", "b", "fp-b", renewal(1), state.ErrCertSuperseded, ""},
		{"a certificate never pinned", "a", "fp-other", renewal(1), state.ErrCertSuperseded, ""},
		{"no certificate", "a", "", renewal(1), state.ErrCertSuperseded, ""},
		{"the current certificate", "a", "fp-a", renewal(1), nil, "fp-a"},
		// A replaced certificate still authenticates but does not renew:
		// a copy of the old key cannot take the agent's place.
		{"the replaced certificate", "a", "fp-a", renewal(2), state.ErrCertSuperseded, ""},
		{"the renewed one", "a", "fp-a-1", renewal(3), nil, "fp-a-1"},
		{"one renewed twice since", "a", "fp-a", renewal(4), state.ErrCertSuperseded, ""},
	}
	for _, tt := range tests {
		err := s.RenewAgentCert(ctx, tt.id, tt.presented, tt.renewed)
		if !errors.Is(err, tt.err) {
			t.Fatalf("%s: RenewAgentCert = %v, want %v", tt.name, err, tt.err)
		}
		if err == nil {
			want.Fingerprint, want.Serial, want.CertExpires = tt.renewed.Fingerprint, tt.renewed.Serial, tt.renewed.CertExpires
			want.PreviousFingerprint = tt.pinned
		}
		got, err := s.Agent(ctx, "a")
		if err != nil || !sameAgent(got, want) {
			t.Fatalf("%s: Agent(a) = %+v, %v; want %+v", tt.name, got, err, want)
		}
		if !got.Pins(want.Fingerprint) || (want.PreviousFingerprint != "" && !got.Pins(want.PreviousFingerprint)) || got.Pins("") {
			t.Fatalf("%s: %+v does not pin what it should", tt.name, got)
		}
	}
}
