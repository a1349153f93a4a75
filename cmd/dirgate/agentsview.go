package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/dirgate/dirgate/admin"
	"github.com/dirgate/dirgate/agent/hub"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/metrics"
	"github.com/dirgate/dirgate/state"
)

// agentsView is the sync agents as the admin server shows them
// (admin.Agents): the enrolled agents from the store, with the connections
// this replica's hub holds.
type agentsView struct {
	hub   *hub.Hub
	store state.Agents
	cfg   func() *config.Config
	url   string // the agent listener's URL as agents reach it
	// replicas returns, in a cluster, the live replicas each agent is
	// connected to (registry.ConnectedAgents); nil outside one.
	replicas func(context.Context) (map[string][]string, error)
}

// newAgentsView returns the admin view of the hub h, whose agent listener
// agents reach at hubURL (agent.advertise), and in a cluster of the
// replicas each agent is connected to; nil, and no Agents page, without a
// hub.
func newAgentsView(h *hub.Hub, store state.Agents, cfg func() *config.Config, hubURL string,
	replicas func(context.Context) (map[string][]string, error)) admin.Agents {
	if h == nil {
		return nil
	}
	return &agentsView{hub: h, store: store, cfg: cfg, url: hubURL, replicas: replicas}
}

func (v *agentsView) List(ctx context.Context) ([]admin.AgentStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	enrolled, err := v.store.Agents(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the enrolled agents: %w", err)
	}
	live := map[string]hub.Status{}
	for _, st := range v.hub.Agents() {
		live[st.ID] = st
	}
	var replicas map[string][]string
	if v.replicas != nil {
		// A registry that cannot be read leaves the column empty; the
		// page still shows this replica's connections.
		replicas, _ = v.replicas(ctx)
	}
	out := make([]admin.AgentStatus, 0, len(enrolled))
	for _, a := range enrolled {
		s := admin.AgentStatus{ID: a.ID, Connector: a.Connector, Name: a.Name, Fingerprint: a.Fingerprint,
			Enrolled: a.Enrolled, Revoked: a.Revoked, CertExpires: hub.CertExpiry(a)}
		s.CertExpiring = a.Revoked.IsZero() && time.Until(s.CertExpires) < hub.CertWarnBefore
		if st, ok := live[a.ID]; ok {
			s.Connected, s.Version, s.Hostname, s.Address = true, st.Version, st.Hostname, st.Address
			s.ConnectedSince, s.LastHeartbeat, s.RTTSeconds = st.ConnectedSince, st.LastHeartbeat, st.RTT.Seconds()
			s.InFlight, s.ChecksPerSec, s.Reconnects = st.InFlight, st.ChecksPerSec, reconnects(st.Connector, st.ID)
			s.CheckLatencySeconds = st.CheckLatency.Seconds()
		}
		s.Replicas = replicas[a.ID]
		out = append(out, s)
	}
	return out, nil
}

// reconnects is how many connections a connected agent opened to this
// replica after its first, as dirgate_agent_connects_total counts them.
func reconnects(connector, id string) int {
	var m dto.Metric
	if err := metrics.AgentConnects.WithLabelValues(connector, id).Write(&m); err != nil {
		return 0
	}
	return max(int(m.GetCounter().GetValue())-1, 0)
}

func (v *agentsView) Connectors() []string {
	var out []string
	for _, c := range v.cfg().Connectors {
		if c.ViaAgent() {
			out = append(out, c.Name)
		}
	}
	return out
}

func (v *agentsView) CreateToken(ctx context.Context, connector string, ttl time.Duration) (*admin.EnrollToken, error) {
	c, ok := v.cfg().Connector(connector)
	switch {
	case !ok:
		return nil, fmt.Errorf("%w: %q", admin.ErrUnknownConnector, connector)
	case !c.ViaAgent():
		return nil, fmt.Errorf("%w: %q", admin.ErrNotViaAgent, connector)
	}
	t, err := v.hub.CreateToken(ctx, connector, ttl)
	if err != nil {
		return nil, err
	}
	return &admin.EnrollToken{Token: t.Token, Connector: t.Connector, Expires: t.Expires, CASHA256: t.CASHA256,
		Hub: v.url, Command: admin.EnrollCommand(v.url, t.Token, t.CASHA256)}, nil
}

func (v *agentsView) Revoke(ctx context.Context, id string) error {
	err := v.hub.Revoke(ctx, id)
	if errors.Is(err, state.ErrNotFound) {
		return fmt.Errorf("%w: %q", admin.ErrUnknownAgent, id)
	}
	return err
}
