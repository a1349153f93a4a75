package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/dirgate/dirgate/agent/hub"
	"github.com/dirgate/dirgate/agent/pki"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/state"
)

// agentHub is the hub's agent listener of a serving process (config
// agent:): the hub, its TLS server, and what start and stop need.
type agentHub struct {
	cfg   *config.Agent
	hub   *hub.Hub
	store state.Agents
	srv   *http.Server
	stop  context.CancelFunc // ends Run; nil before start
	done  chan struct{}
}

// openAgentHub builds the agent listener from cfg.Agent (nil: none). Its
// CA is loaded from agent.ca_dir, created at the first start; agents live
// in store (the cache alone, PostgreSQL in a cluster); peers lists the
// agent URLs of the live replicas for Welcome (nil: this one only).
func openAgentHub(cfg *config.Config, store state.Agents, replica string, peers func() []string, log *slog.Logger) (*agentHub, error) {
	if cfg.Agent == nil {
		return nil, nil
	}
	ca, err := pki.LoadOrCreate(cfg.Agent.CADir)
	if err != nil {
		return nil, fmt.Errorf("agent.ca_dir: %w", err)
	}
	if replica == "" {
		replica, _ = os.Hostname()
	}
	h, err := hub.New(hubConfig(cfg.Agent, ca, replica, peers), store, log)
	if err != nil {
		return nil, fmt.Errorf("agent listener: %w", err)
	}
	srv, err := h.Server(cfg.Agent.ServerNames)
	if err != nil {
		return nil, fmt.Errorf("agent listener: %w", err)
	}
	return &agentHub{cfg: cfg.Agent, hub: h, store: store, srv: srv}, nil
}

// hubConfig is the hub's configuration from the agent section.
func hubConfig(a *config.Agent, ca *pki.CA, replica string, peers func() []string) hub.Config {
	return hub.Config{CA: ca, Replica: replica, Peers: peers, TokenTTL: a.TokenTTL.Std(),
		ReplyStart: a.ReplyStart.Std(), ReplyIdle: a.ReplyIdle.Std()}
}

// start listens on agent.listen and serves until stopped; a listener that
// stops is reported on errc.
func (a *agentHub) start(ctx context.Context, errc chan<- error, log *slog.Logger) error {
	ln, err := net.Listen("tcp", a.cfg.Listen)
	if err != nil {
		return fmt.Errorf("agent listener: listen on %s: %w", a.cfg.Listen, err)
	}
	log.Info("agent listener listening", "addr", ln.Addr().String(), "advertise", a.cfg.Advertise)
	rctx, cancel := context.WithCancel(ctx)
	a.stop, a.done = cancel, make(chan struct{})
	go func() { _ = a.hub.Run(rctx); close(a.done) }()
	go func() { errc <- serveOn(a.srv, ln) }()
	return nil
}

// shutdown drops the agents' connections (their handlers last as long as
// the agents stay), then closes the listener.
func (a *agentHub) shutdown(ctx context.Context) error {
	if a.stop == nil {
		return nil
	}
	a.stop()
	<-a.done
	return a.srv.Shutdown(ctx)
}

// ready is the agent rule of /readyz for connector c: a via: agent
// connector fails once no agent has been connected to this replica for
// longer than agent.max_disconnected.
func (a *agentHub) ready(c *config.Connector, now time.Time) (bool, string) {
	if a == nil || !c.ViaAgent() {
		return true, ""
	}
	n, since := a.hub.Connected(c.Name)
	if n > 0 {
		return true, ""
	}
	if gone := now.Sub(since); gone > a.cfg.MaxDisconnected.Std() {
		return false, fmt.Sprintf("no agent connected for %s (since %s), longer than agent.max_disconnected %s",
			gone.Round(time.Second), since.UTC().Format(time.RFC3339), a.cfg.MaxDisconnected)
	}
	return true, ""
}

// connectedIDs returns the IDs of the agents connected to this replica.
func (a *agentHub) connectedIDs() []string {
	var ids []string
	for _, st := range a.hub.Agents() {
		ids = append(ids, st.ID)
	}
	return ids
}
