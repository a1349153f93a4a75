package hub

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
)

// ErrScopeMismatch is matched by the error of Scope when the connected
// agents of a connector report different scopes.
var ErrScopeMismatch = errors.New("the connector's agents are configured with different scopes")

// ScopeMismatchError names the agents of a connector by the scope each
// reported. Sync reads are refused until their agent.yaml files agree:
// which agent's entries to keep cannot be told.
type ScopeMismatchError struct {
	Connector string
	Agents    map[string][]string // by scope
}

func (e *ScopeMismatchError) Error() string {
	var parts []string
	for scope, ids := range e.Agents {
		parts = append(parts, fmt.Sprintf("%s (agents %s)", scope, strings.Join(ids, ", ")))
	}
	sort.Strings(parts)
	return fmt.Sprintf("connector %s: %v: %s; sync reads are refused until their connector settings (filters, attributes, domains) in agent.yaml agree",
		e.Connector, ErrScopeMismatch, strings.Join(parts, "; "))
}

// Unwrap makes the error match ErrScopeMismatch.
func (e *ScopeMismatchError) Unwrap() error { return ErrScopeMismatch }

// Scope returns the scope fingerprint (dirsync.ScopeOf of their connector
// settings) the connected agents of connector reported in their hellos:
// empty when none of them reported one (agents of an earlier release), an
// *UnreachableError with ErrNoAgent when none is connected, and a
// *ScopeMismatchError, logged, when they differ.
func (h *Hub) Scope(connector string) (string, error) {
	h.mu.Lock()
	cs := append([]*conn(nil), h.conns[connector]...)
	h.mu.Unlock()
	if len(cs) == 0 {
		return "", &UnreachableError{Connector: connector, Err: ErrNoAgent}
	}
	scope, err := agreedScope(connector, cs)
	if err != nil {
		h.log.Error("agents of one connector read different scopes: sync refused", slog.String("connector", connector), slog.Any("err", err))
	}
	return scope, err
}

// agreedScope is the scope the agents of cs share; those that reported
// none are left out, so that agents can be upgraded one at a time.
func agreedScope(connector string, cs []*conn) (string, error) {
	by := map[string][]string{}
	var scope string
	for _, c := range cs {
		if s := c.hello.Scope; s != "" {
			by[s] = append(by[s], c.agent.ID)
			scope = s
		}
	}
	if len(by) > 1 {
		for _, ids := range by {
			sort.Strings(ids)
		}
		return "", &ScopeMismatchError{Connector: connector, Agents: by}
	}
	return scope, nil
}
