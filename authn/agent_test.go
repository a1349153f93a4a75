package authn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/upstream"
)

// fakeAgents answers checks with answer; it records whether the check
// carried a deadline.
type fakeAgents struct {
	answer   func(ctx context.Context) (string, error)
	deadline bool
}

func (f *fakeAgents) Check(ctx context.Context, _ string, _ *cache.Entry, _ string) (string, error) {
	_, f.deadline = ctx.Deadline()
	return f.answer(ctx)
}

// errUnreachableAgent is the hub's answer with no agent connected.
var errUnreachableAgent = fmt.Errorf("agent hub: %w", upstream.ErrUnreachable)

const agentConfig = `
agent: {server_names: [hub.example.com]}
connectors:
  - name: corp
    type: openldap
    via: agent
    root_dn: dc=corp,dc=example
auth: {bind_timeout: 300ms, offline_verifier: {enabled: %v}}
`

func agentAuthenticator(t *testing.T, offline bool, f *fakeAgents) *Authenticator {
	t.Helper()
	a := cachedAuthenticator(t, fmt.Sprintf(agentConfig, offline), "corp", []*cache.Entry{{Connector: "corp", ID: "u1",
		DN: "uid=ann,dc=corp,dc=example", Kind: cache.KindUser, Addresses: []string{"ann@corp.example"}}}, io.Discard)
	if f != nil {
		a.checkers["corp"] = agentChecker{connector: "corp", agents: f}
	}
	return a
}

func login(a *Authenticator, password string) (*Identity, error) {
	return a.Login(context.Background(), Attempt{Login: "ann@corp.example", Password: password, Protocol: "ldap"})
}

// TestAgentChecks: a via: agent connector's checks go to the agent within
// bind_timeout; its typed answer is kept; no agent is the unreachable
// failure, after which the offline verifier answers when enabled.
func TestAgentChecks(t *testing.T) {
	f := &fakeAgents{answer: func(context.Context) (string, error) { return "dc1", nil }}
	a := agentAuthenticator(t, true, f)
	if id, err := login(a, "right"); err != nil || id.Host != "dc1" || !f.deadline {
		t.Fatalf("answered check: %+v, %v (deadline %v)", id, err, f.deadline)
	}
	f.answer = func(context.Context) (string, error) {
		return "dc1", &Error{Reason: ReasonMustChangePassword, Connector: "corp", Err: errors.New("773")}
	}
	if _, err := login(a, "right"); ReasonOf(err) != ReasonMustChangePassword {
		t.Fatalf("typed refusal: %v", err)
	}
	f.answer = func(context.Context) (string, error) { return "dc1", nil }
	if _, err := login(a, "right"); err != nil {
		t.Fatal(err)
	}
	f.answer = func(context.Context) (string, error) { return "", errUnreachableAgent }
	if id, err := login(a, "right"); err != nil || !id.Offline {
		t.Fatalf("no agent, offline verifier on: %+v, %v; want the offline verifier's answer", id, err)
	}
	if _, err := login(a, "wrong"); ReasonOf(err) != ReasonInvalidCredentials {
		t.Fatalf("no agent, wrong password against the offline verifier: %v", err)
	}

	f.answer = func(ctx context.Context) (string, error) {
		<-ctx.Done()
		return "", fmt.Errorf("%w: %v", upstream.ErrUnreachable, ctx.Err())
	}
	start := time.Now()
	_, err := login(agentAuthenticator(t, false, f), "right")
	if ReasonOf(err) != ReasonUnavailable || !errors.Is(err, upstream.ErrUnreachable) || time.Since(start) > 10*time.Second {
		t.Fatalf("silent agent: %v after %s; want unavailable within bind_timeout", err, time.Since(start))
	}
	_, err = login(agentAuthenticator(t, false, nil), "right")
	if ReasonOf(err) != ReasonUnavailable || !errors.Is(err, upstream.ErrUnreachable) {
		t.Fatalf("no agent channel in the process: %v", err)
	}
}
