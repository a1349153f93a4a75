package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/dirgate/dirgate/state"
)

// The sync agents' records (state.Agents), under metaKey("x", kind, name)
// like the other state stores.
const (
	agentTokenKind = "agent-token" // name: hash of the token
	agentKind      = "agent"       // name: agent ID
)

var _ state.Agents = (*Store)(nil)

// PutEnrollToken implements state.Agents.
func (s *Store) PutEnrollToken(_ context.Context, hash string, t state.EnrollToken) error {
	return s.putMetaJSON(agentTokenKind, hash, t)
}

// EnrollToken implements state.Agents.
func (s *Store) EnrollToken(_ context.Context, hash string, now time.Time) (state.EnrollToken, error) {
	var t state.EnrollToken
	if err := s.metaJSON(agentTokenKind, hash, &t, state.ErrTokenUnknown); err != nil {
		return t, err
	}
	return t, t.Redeemable(now)
}

// RedeemEnrollToken implements state.Agents: the check and both writes
// happen under stateMu, in one transaction.
func (s *Store) RedeemEnrollToken(ctx context.Context, hash string, a state.Agent, now time.Time) error {
	stateMu.Lock()
	defer stateMu.Unlock()
	t, err := s.EnrollToken(ctx, hash, now)
	if err != nil {
		return err
	}
	if t.Connector != a.Connector {
		return state.ErrTokenConnector
	}
	t.Used, t.UsedBy = now, a.ID
	tb, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("cache: encode %s: %w", agentTokenKind, err)
	}
	ab, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("cache: encode %s: %w", agentKind, err)
	}
	err = s.db.Update(func(txn *badger.Txn) error {
		if err := txn.Set(metaKey("x", agentTokenKind, hash), tb); err != nil {
			return err
		}
		return txn.Set(metaKey("x", agentKind, a.ID), ab)
	})
	if err != nil {
		return fmt.Errorf("cache: redeem enrollment token: %w", err)
	}
	return nil
}

// Agent implements state.Agents.
func (s *Store) Agent(_ context.Context, id string) (state.Agent, error) {
	var a state.Agent
	err := s.metaJSON(agentKind, id, &a, state.ErrNotFound)
	return a, err
}

// Agents implements state.Agents.
func (s *Store) Agents(ctx context.Context) ([]state.Agent, error) {
	var out []state.Agent
	err := exportJSON(ctx, s, agentKind, func(_ string, a state.Agent) error {
		out = append(out, a)
		return nil
	})
	return out, err
}

// RevokeAgent implements state.Agents.
func (s *Store) RevokeAgent(ctx context.Context, id string, at time.Time) error {
	stateMu.Lock()
	defer stateMu.Unlock()
	a, err := s.Agent(ctx, id)
	if err != nil || !a.Revoked.IsZero() {
		return err
	}
	a.Revoked = at
	return s.putMetaJSON(agentKind, id, a)
}

// RenewAgentCert implements state.Agents: the check and the write happen
// under stateMu.
func (s *Store) RenewAgentCert(ctx context.Context, id, presented string, renewed state.Agent) error {
	stateMu.Lock()
	defer stateMu.Unlock()
	a, err := s.Agent(ctx, id)
	if err != nil {
		return err
	}
	if !a.Revoked.IsZero() || presented == "" || presented != a.Fingerprint {
		return state.ErrCertSuperseded
	}
	a.PreviousFingerprint, a.Fingerprint = presented, renewed.Fingerprint
	a.Serial, a.CertExpires = renewed.Serial, renewed.CertExpires
	return s.putMetaJSON(agentKind, id, a)
}

// metaJSON decodes the value under kind and name into v; missing when
// there is none.
func (s *Store) metaJSON(kind, name string, v any, missing error) error {
	b, err := s.getMeta(kind, name)
	switch {
	case err != nil:
		return err
	case b == nil:
		return missing
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("cache: %s %q: %w: %v", kind, name, state.ErrCorrupt, err)
	}
	return nil
}
