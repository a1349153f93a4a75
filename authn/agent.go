package authn

import (
	"context"
	"errors"
	"fmt"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/upstream"
)

// AgentChecker sends a password check to one of a connector's sync agents
// (agentsource.Checker over the hub's agent listener). Its error is a
// typed *Error when an agent answered, and matches upstream.ErrUnreachable
// when none did (none connected, lost, or too slow).
type AgentChecker interface {
	Check(ctx context.Context, connector string, e *cache.Entry, password string) (host string, err error)
}

// Option adjusts an Authenticator made by New.
type Option func(*Authenticator)

// WithAgents sends the checks of via: agent connectors to agents through
// ac. Without it, they fail as a directory that cannot be reached.
func WithAgents(ac AgentChecker) Option { return func(a *Authenticator) { a.agents = ac } }

// errNoAgentChannel is the failure of a via: agent connector's check in a
// process that was given no AgentChecker.
var errNoAgentChannel = fmt.Errorf("%w: no agent channel in this process", upstream.ErrUnreachable)

// agentChecker checks the passwords of a via: agent connector on one of
// its agents, which binds to the directory as the pool does on a direct
// connector and returns the typed result. The wait is bounded by Login's
// auth.bind_timeout, which travels with the request as its deadline.
type agentChecker struct {
	connector string
	agents    AgentChecker // nil: none in this process
}

func (c agentChecker) verify(ctx context.Context, e *cache.Entry, password string) (string, error) {
	if c.agents == nil {
		return "", &Error{Reason: ReasonUnavailable, Connector: c.connector, Err: errNoAgentChannel}
	}
	host, err := c.agents.Check(ctx, c.connector, e, password)
	if err == nil {
		return host, nil
	}
	if ae := (*Error)(nil); errors.As(err, &ae) {
		return host, err
	}
	// No answer: unavailable, and still upstream.ErrUnreachable for the
	// offline verifier.
	return host, &Error{Reason: ReasonUnavailable, Connector: c.connector, Err: err}
}

func (agentChecker) close() {}
