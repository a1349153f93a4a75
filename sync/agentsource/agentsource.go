// Package agentsource is the hub's side of a connector read and checked
// through a sync agent (via: agent): a dirsync.Source whose reads are
// requests to one of the connector's agents over agent/hub, streamed into
// the engine as they arrive, and the adapters through which authn's
// password checks and testconn's Test Connection go to an agent too.
//
// It is the one place that turns dirgate's interfaces into agent requests,
// so that authn and testconn, which agent/wire itself imports, need not
// import the hub.
package agentsource

import (
	"context"
	"errors"
	"fmt"

	"github.com/dirgate/dirgate/agent/hub"
	"github.com/dirgate/dirgate/agent/wire"
	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
	dirsync "github.com/dirgate/dirgate/sync"
	"github.com/dirgate/dirgate/testconn"
)

// Source reads a connector's directory through one of its agents. Each
// read is one request to one agent: an agent lost mid-read fails the read
// (hub.ErrAgentLost), and the engine applies nothing of it.
type Source struct {
	hub       *hub.Hub
	connector string
}

// ErrNoResult is matched by the error of a read whose agent ended its
// stream without the result the read needs.
var ErrNoResult = errors.New("the agent's answer lacks the read's result")

// New returns the source of connector c through h. It sends nothing until
// the first read.
func New(h *hub.Hub, c *config.Connector) (*Source, error) {
	if h == nil {
		return nil, fmt.Errorf("connector %s: via: agent needs the hub's agent listener, which this process does not run", c.Name)
	}
	return &Source{hub: h, connector: c.Name}, nil
}

// Full asks an agent for a full read and passes its entries to emit as
// they arrive.
func (s *Source) Full(ctx context.Context, emit func(*cache.Entry) error) (dirsync.Listing, error) {
	return s.FullKnown(ctx, nil, emit)
}

// FullKnown is Full for a hub that caches known (dirsync.KnownFullSource):
// the agent fetches known first and, for an entry it reads with the hash
// known gives, sends its ID and hash alone, passed to emit as a
// cache.Unchanged stand-in. A re-read of an unchanged directory then
// carries a few bytes per entry to the hub instead of the entry.
func (s *Source) FullKnown(ctx context.Context, known dirsync.Known, emit func(*cache.Entry) error) (dirsync.Listing, error) {
	if len(known) == 0 {
		known = nil // nothing to fetch: every entry is sent
	}
	res, err := s.read(ctx, &wire.Request{Kind: wire.KindFull}, known, emit, nil)
	if err != nil {
		return dirsync.Listing{}, err
	}
	if res.Listing == nil {
		return dirsync.Listing{Host: res.Host}, fmt.Errorf("connector %s: full read: %w", s.connector, ErrNoResult)
	}
	l := *res.Listing
	if l.Host == "" {
		l.Host = res.Host
	}
	return l, nil
}

// Changes asks an agent for the changes since cursor, giving it known
// (which the agent fetches on its own stream), and passes the changes to
// emit as they arrive. A cursor the directory no longer accepts fails
// with an error that matches dirsync.ErrCursorInvalid, as it does on a
// direct connector.
func (s *Source) Changes(ctx context.Context, cursor []byte, known dirsync.Known, emit func(dirsync.Change) error) (dirsync.ChangeSet, error) {
	if known == nil {
		known = dirsync.Known{} // the agent's source derives deletions from it
	}
	res, err := s.read(ctx, &wire.Request{Kind: wire.KindChanges, Cursor: cursor}, known, nil, emit)
	if err != nil {
		return dirsync.ChangeSet{}, err
	}
	if res.Changes == nil {
		return dirsync.ChangeSet{Host: res.Host}, fmt.Errorf("connector %s: incremental read: %w", s.connector, ErrNoResult)
	}
	cs := *res.Changes
	if cs.Host == "" {
		cs.Host = res.Host
	}
	return cs, nil
}

// Scope is the fingerprint of the connector settings in the agents'
// agent.yaml (dirsync.ScopedSource): the hub's settings of a via: agent
// connector hold no filters. It fails when no agent is connected, or when
// the connected ones disagree (hub.ErrScopeMismatch).
func (s *Source) Scope() (string, error) { return s.hub.Scope(s.connector) }

// read sends req to an agent and streams its reply. Agents that disagree
// on their scope read nothing: whose entries to keep cannot be told.
func (s *Source) read(ctx context.Context, req *wire.Request, known dirsync.Known, entry func(*cache.Entry) error, change func(dirsync.Change) error) (*wire.Result, error) {
	if _, err := s.hub.Scope(s.connector); errors.Is(err, hub.ErrScopeMismatch) {
		return nil, fmt.Errorf("%s read: %w", req.Kind, err)
	}
	call, err := s.hub.DoWithKnown(ctx, s.connector, req, known)
	if err != nil {
		return nil, fmt.Errorf("connector %s: %s read: %w", s.connector, req.Kind, err)
	}
	var panicked any
	res, err := call.Stream(ctx, recovering(entry, &panicked), recovering(change, &panicked))
	if panicked != nil {
		// Re-raised once the stream was ended properly, so that the
		// agent's read, answered with an error, frees its read slot
		// instead of waiting on a hub that stopped reading.
		panic(panicked)
	}
	if err != nil {
		return nil, fmt.Errorf("connector %s: %s read through agent %s: %w", s.connector, req.Kind, call.Agent, err)
	}
	return res, nil
}

// Checker sends password checks to the connectors' agents: authn's
// AgentChecker over the hub.
type Checker struct{ Hub *hub.Hub }

// Check asks one agent of connector to check password for the cached
// account e. Its error is a typed *authn.Error when the agent answered
// (the directory's refusal, or the directory unreachable from the agent),
// else the hub's *hub.UnreachableError.
func (c Checker) Check(ctx context.Context, connector string, e *cache.Entry, password string) (string, error) {
	check, err := wire.NewCheckRequest(e, password)
	if err != nil {
		return "", err
	}
	call, err := c.Hub.Do(ctx, connector, &wire.Request{Kind: wire.KindCheck, Check: check})
	if err != nil {
		return "", err
	}
	res, err := call.Wait(ctx)
	if res == nil {
		return "", err
	}
	return res.Host, err
}

// Tester runs Test Connection on the connectors' agents: testconn's
// Agents over the hub.
type Tester struct{ Hub *hub.Hub }

// Test asks one agent of connector to run Test Connection from its side
// of the network and returns its report.
func (t Tester) Test(ctx context.Context, connector string) (*testconn.Report, string, error) {
	call, err := t.Hub.Do(ctx, connector, &wire.Request{Kind: wire.KindTest})
	if err != nil {
		return nil, "", err
	}
	res, err := call.Wait(ctx)
	switch {
	case err != nil:
		return nil, call.Agent, err
	case res.Report == nil:
		return nil, call.Agent, fmt.Errorf("agent %s: Test Connection: %w", call.Agent, ErrNoResult)
	}
	return res.Report, call.Agent, nil
}

// errPanicked stops a stream whose consumer panicked.
var errPanicked = errors.New("the consumer of the read panicked")

// recovering returns emit with a panic turned into errPanicked, the panic's
// value kept in *p; nil stays nil.
func recovering[T any](emit func(T) error, p *any) func(T) error {
	if emit == nil {
		return nil
	}
	return func(v T) (err error) {
		defer func() {
			if r := recover(); r != nil {
				*p, err = r, errPanicked
			}
		}()
		return emit(v)
	}
}
