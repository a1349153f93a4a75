package testconn

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/upstream"
)

// StepAgent is the first step of a connector read through a sync agent
// (via: agent): reaching one of its agents, which runs the other steps
// from its side of the network.
const StepAgent = "agent"

// Agents runs Test Connection on one of a connector's sync agents
// (agentsource.Tester over the hub's agent listener).
type Agents interface {
	// Test returns the agent's report and the ID of the agent that ran it
	// (when one was reached).
	Test(ctx context.Context, connector string) (report *Report, agent string, err error)
}

// errNoListener is the failure of an agent test in a process that runs no
// agent listener (the CLI on a machine other than the hub).
var errNoListener = fmt.Errorf("%w: this process has no agent listener; run Test Connection through the hub's admin console or API", upstream.ErrUnreachable)

// RunAgent tests a connector read through a sync agent: the agent tests
// the directory from its own network with Run, and its steps follow a
// first step, agent, that says which agent answered. agents nil (a
// process without the agent listener) or no agent connected makes that
// step fail, with what to do.
func RunAgent(ctx context.Context, c *config.Connector, agents Agents) *Report {
	start := time.Now()
	var (
		rep   *Report
		agent string
		err   = errNoListener
	)
	if agents != nil {
		rep, agent, err = agents.Test(ctx, c.Name)
	}
	step := Step{Host: "agent " + agent, Name: StepAgent, Duration: time.Since(start)}
	if agent == "" {
		step.Host = "agent"
	}
	if err != nil {
		step.Detail = err.Error()
		step.Fix = agentFix(err)
		return &Report{Connector: c.Name, Steps: []Step{step}}
	}
	step.OK = true
	step.Detail = fmt.Sprintf("agent %s ran the test from its network in %s", agent, step.Duration.Round(time.Millisecond))
	return &Report{Connector: c.Name, OK: rep.OK, Steps: append([]Step{step}, rep.Steps...)}
}

// agentFix is the next step after an agent could not run the test.
func agentFix(err error) string {
	if errors.Is(err, upstream.ErrUnreachable) {
		return "No agent of this connector answered this hub: check that `dirgate agent` runs next to the directory, is enrolled for this connector, and can open an outbound connection to the hub's agent listener (its log says why it cannot). The Agents page lists the connected agents."
	}
	return "The agent could not run the test; its log has the details."
}
