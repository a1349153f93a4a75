package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"
)

// Agents is the sync agents' part of the admin server: the Agents page
// and the /api/v1/agents endpoints. It is nil when the hub has no agent
// listener.
type Agents interface {
	// List returns every enrolled agent, revoked ones included, each with
	// its connection to this replica if it has one.
	List(ctx context.Context) ([]AgentStatus, error)
	// Connectors names the connectors read through agents (via: agent):
	// the ones enrollment tokens are for.
	Connectors() []string
	// CreateToken makes a one-time enrollment token for connector, valid
	// for ttl (zero: the hub's default). An unknown connector fails with
	// ErrUnknownConnector (wrapped), one not read through agents with
	// ErrNotViaAgent.
	CreateToken(ctx context.Context, connector string, ttl time.Duration) (*EnrollToken, error)
	// Revoke revokes agent id in the store and cuts its connection; an
	// unknown id fails with ErrUnknownAgent (wrapped). Revoking a revoked
	// agent again succeeds and keeps the first time.
	Revoke(ctx context.Context, id string) error
}

// Errors of Agents, which the API answers with 404 and 400.
var (
	// ErrUnknownAgent: Revoke of an ID that was never enrolled.
	ErrUnknownAgent = errors.New("no such agent")
	// ErrNotViaAgent: CreateToken for a connector whose directory the
	// hub reads itself.
	ErrNotViaAgent = errors.New("the connector is not read through sync agents (via: agent)")
)

// AgentStatus is an enrolled agent and, while it is connected to this
// replica, its connection; in a cluster, also the replicas it is
// connected to.
type AgentStatus struct {
	ID          string    `json:"id"`
	Connector   string    `json:"connector"`
	Name        string    `json:"name"`
	Fingerprint string    `json:"fingerprint"` // SHA-256 of its client certificate
	Enrolled    time.Time `json:"enrolled"`
	Revoked     time.Time `json:"revoked,omitzero"`
	// CertExpires is when its client certificate expires; CertExpiring is
	// set for an unrevoked agent within a month of it: it must be enrolled
	// again (a new token) before then.
	CertExpires  time.Time `json:"cert_expires,omitzero"`
	CertExpiring bool      `json:"cert_expiring,omitempty"`

	Connected      bool      `json:"connected"`
	Version        string    `json:"version,omitempty"`
	Hostname       string    `json:"hostname,omitempty"`
	Address        string    `json:"address,omitempty"` // as this replica sees it (perhaps its proxy's)
	ConnectedSince time.Time `json:"connected_since,omitzero"`
	LastHeartbeat  time.Time `json:"last_heartbeat,omitzero"`
	RTTSeconds     float64   `json:"rtt_seconds,omitempty"`
	InFlight       int       `json:"in_flight"` // requests sent and not answered: its queue depth
	ChecksPerSec   float64   `json:"checks_per_second"`
	// CheckLatencySeconds is the moving average of its answered password
	// checks' latency (about the last ten).
	CheckLatencySeconds float64 `json:"check_latency_seconds,omitempty"`
	Reconnects          int     `json:"reconnects"` // connections to this replica after the first
	// Replicas names, in a cluster, the replicas the agent is connected
	// to as of their last heartbeats (a few seconds old at most).
	Replicas []string `json:"replicas,omitempty"`
}

// EnrollToken is a new enrollment token with what an administrator needs
// to enroll an agent with it. The token is shown once: only its hash is
// stored.
type EnrollToken struct {
	Token     string    `json:"token"`
	Connector string    `json:"connector"`
	Expires   time.Time `json:"expires"`
	// CASHA256 is the SHA-256 fingerprint of the hub's agent CA, which the
	// agent checks the hub's chain against before sending the token.
	CASHA256 string `json:"ca_sha256"`
	// Hub is the agent listener's URL as agents reach it.
	Hub string `json:"hub"`
	// Command is the exact command line that enrolls an agent.
	Command string `json:"command"`
}

// EnrollCommand is the command line that enrolls an agent with token.
func EnrollCommand(hub, token, caSHA256 string) string {
	return "dirgate agent enroll --hub " + hub + " --token " + token + " --ca-sha256 " + caSHA256
}

// Bounds of an enrollment token's lifetime: long enough to carry it to
// the agent's machine, short enough that a leaked one soon stops working.
const (
	MinTokenTTL = time.Minute
	MaxTokenTTL = 7 * 24 * time.Hour
)

// parseTTL reads a token lifetime such as "1h"; "" means the default.
func parseTTL(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < MinTokenTTL || d > MaxTokenTTL {
		return 0, fmt.Errorf("ttl %q: give a duration from %s to %s, such as 1h", s, MinTokenTTL, humanDuration(MaxTokenTTL))
	}
	return d, nil
}

// agentsOff answers a request for the agents when the hub has none.
const agentsOff = "the agent listener is off: the configuration has no agent section"

// agentStatus maps an error of Agents to an HTTP status.
func agentStatus(err error) int {
	switch {
	case errors.Is(err, ErrUnknownAgent):
		return http.StatusNotFound
	case errors.Is(err, ErrNotViaAgent):
		return http.StatusBadRequest
	}
	return statusOf(err)
}

// listAgents returns the agents by connector, then name, then ID.
func (s *server) listAgents(ctx context.Context) ([]AgentStatus, error) {
	as, err := s.o.Agents.List(ctx)
	if err != nil {
		return nil, err
	}
	sort.SliceStable(as, func(i, j int) bool {
		a, b := as[i], as[j]
		if a.Connector != b.Connector {
			return a.Connector < b.Connector
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.ID < b.ID
	})
	return nonNil(as), nil
}

// agentsAnswer is the body of GET /api/v1/agents.
type agentsAnswer struct {
	Agents []AgentStatus `json:"agents"`
}

// requireAgents answers 404 when the hub has no agent listener.
func (s *server) requireAgents(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.o.Agents == nil {
			writeError(w, http.StatusNotFound, agentsOff)
			return
		}
		h(w, r)
	}
}

func (s *server) apiAgents(w http.ResponseWriter, r *http.Request) {
	as, err := s.listAgents(r.Context())
	if err != nil {
		writeError(w, agentStatus(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, agentsAnswer{Agents: as})
}

// tokenRequest is the body of POST /api/v1/agents/tokens.
type tokenRequest struct {
	Connector string `json:"connector"`
	TTL       string `json:"ttl,omitempty"` // a Go duration, e.g. "1h"; empty: the hub's default
}

// createToken checks a token request, makes the token and logs it
// (without the token).
func (s *server) createToken(r *http.Request, req tokenRequest) (*EnrollToken, int, error) {
	if strings.TrimSpace(req.Connector) == "" {
		return nil, http.StatusBadRequest, errors.New("name the connector the agent will serve")
	}
	ttl, err := parseTTL(req.TTL)
	if err != nil {
		return nil, http.StatusBadRequest, err
	}
	tok, err := s.o.Agents.CreateToken(r.Context(), req.Connector, ttl)
	if err != nil {
		return nil, agentStatus(err), err
	}
	s.log.Info("admin: agent enrollment token created", "connector", tok.Connector, "expires", tok.Expires, "remote", r.RemoteAddr)
	return tok, http.StatusCreated, nil
}

func (s *server) apiCreateToken(w http.ResponseWriter, r *http.Request) {
	var req tokenRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, `body must be JSON like {"connector":"ad","ttl":"1h"}: `+err.Error())
		return
	}
	tok, status, err := s.createToken(r, req)
	if err != nil {
		writeError(w, status, err.Error())
		return
	}
	writeJSON(w, status, tok)
}

// revokeAnswer is the body of POST /api/v1/agents/{id}/revoke.
type revokeAnswer struct {
	ID     string `json:"id"`
	Status string `json:"status"` // "revoked"
}

// revoke revokes agent id and logs it.
func (s *server) revoke(r *http.Request, id string) error {
	if err := s.o.Agents.Revoke(r.Context(), id); err != nil {
		return err
	}
	s.log.Info("admin: agent revoked", "agent", id, "remote", r.RemoteAddr)
	return nil
}

func (s *server) apiRevoke(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.revoke(r, id); err != nil {
		writeError(w, agentStatus(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, revokeAnswer{ID: id, Status: "revoked"})
}

// agentsPath is the console's Agents page.
const agentsPath = "/agents"

func (s *server) agentRoutes(m *http.ServeMux) {
	m.HandleFunc("GET "+agentsPath, s.page(s.agentsPage))
	m.HandleFunc("POST "+agentsPath+"/tokens", s.action(s.tokenAction))
	m.HandleFunc("POST "+agentsPath+"/{id}/revoke", s.action(s.revokeAction))
}

// agentsData is what the Agents page shows.
type agentsData struct {
	Agents     []AgentStatus
	Connectors []string // read through agents: the token form's choice
	// Confirm is the agent whose revocation the page asks to confirm
	// (?revoke=ID).
	Confirm *AgentStatus
	// Token is a token just created: the page that shows it is the only
	// one that ever does.
	Token *EnrollToken
	// Done says what the last action did; Error why it failed.
	Done, Error string
}

// agentsConsole answers for a console page when the hub has no agents;
// it returns false when it has answered.
func (s *server) agentsConsole(w http.ResponseWriter, r *http.Request, sess *session) bool {
	if s.o.Agents != nil {
		return true
	}
	s.errorPage(w, r, sess, http.StatusNotFound, "Sync agents are off",
		"This dirgate has no agent listener: its configuration has no agent section.")
	return false
}

func (s *server) agentsPage(w http.ResponseWriter, r *http.Request, sess *session) {
	if !s.agentsConsole(w, r, sess) {
		return
	}
	as, err := s.listAgents(r.Context())
	if err != nil {
		s.errorPage(w, r, sess, http.StatusInternalServerError, "Agents unavailable", err.Error())
		return
	}
	d := agentsData{Agents: as}
	if f := s.sessions.takeFlash(sess); f != nil && f.Action == "agents" {
		d.Token, d.Done, d.Error = f.Enroll, f.Status, f.Error
	}
	if id := r.URL.Query().Get("revoke"); id != "" {
		for i := range as {
			if as[i].ID == id {
				d.Confirm = &as[i]
			}
		}
		if d.Confirm == nil {
			d.Error = "No agent " + id + " is enrolled."
		}
	}
	d.Connectors = slices.Sorted(slices.Values(s.o.Agents.Connectors()))
	s.render(w, http.StatusOK, "agents", page{Title: "Sync agents", Nav: "agents", CSRF: sess.csrf, Data: d})
}

// agentsBack shows the outcome of an agents action on the Agents page.
func (s *server) agentsBack(w http.ResponseWriter, r *http.Request, sess *session, f *flash) {
	f.Action = "agents"
	s.sessions.setFlash(sess, f)
	http.Redirect(w, r, agentsPath+"#result", http.StatusSeeOther)
}

func (s *server) tokenAction(w http.ResponseWriter, r *http.Request, sess *session) {
	if !s.agentsConsole(w, r, sess) {
		return
	}
	tok, _, err := s.createToken(r, tokenRequest{Connector: r.PostFormValue("connector"), TTL: r.PostFormValue("ttl")})
	f := &flash{Enroll: tok}
	if err != nil {
		f.Error = "No token was created: " + err.Error()
	}
	s.agentsBack(w, r, sess, f)
}

func (s *server) revokeAction(w http.ResponseWriter, r *http.Request, sess *session) {
	if !s.agentsConsole(w, r, sess) {
		return
	}
	id := r.PathValue("id")
	f := &flash{Status: "Agent " + id + " is revoked: it was cut off and can no longer connect."}
	if err := s.revoke(r, id); err != nil {
		f.Status, f.Error = "", "Agent "+id+" was not revoked: "+err.Error()
	}
	s.agentsBack(w, r, sess, f)
}
