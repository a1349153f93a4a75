// Package wire is the protocol between a sync agent and its hub: the
// messages they exchange, their framing (a 4-byte big-endian length, then
// JSON, or a binary body for batches, at most MaxFrame bytes), the batches
// of entries, changes and known IDs that stream the data of a sync read,
// and the mapping of typed errors to and from their form on the wire. Both sides use it; it does no I/O of
// its own beyond the io.Reader and io.Writer it is given.
package wire

import (
	"fmt"
	"time"

	"github.com/dirgate/dirgate/cache"
	dirsync "github.com/dirgate/dirgate/sync"
	"github.com/dirgate/dirgate/testconn"
)

// Message types.
const (
	TypeHello   = "hello"   // agent → hub, first frame on connect
	TypeWelcome = "welcome" // hub → agent, answer to hello
	TypePing    = "ping"    // either way; ID is a sequence, Sent the send time
	TypePong    = "pong"    // answer to a ping, echoing its ID and Sent
	TypeRequest = "request" // hub → agent
	TypeResult  = "result"  // agent → hub: the end of a request
	TypeCancel  = "cancel"  // hub → agent: abandon request ID
	TypeBatch   = "batch"   // reply and known streams: entries, changes or known IDs
)

// Request kinds.
const (
	KindFull    = "full"    // dirsync.Source.Full
	KindChanges = "changes" // dirsync.IncrementalSource.Changes
	KindCheck   = "check"   // a password check
	KindTest    = "test"    // Test Connection (testconn.Run)
)

// Message is one frame.
type Message struct {
	Type    string    `json:"type"`
	ID      uint64    `json:"id,omitempty"`
	Hello   *Hello    `json:"hello,omitempty"`
	Welcome *Welcome  `json:"welcome,omitempty"`
	Request *Request  `json:"request,omitempty"`
	Result  *Result   `json:"result,omitempty"`
	Batch   *Batch    `json:"batch,omitempty"`
	Sent    time.Time `json:"sent,omitzero"`
	// Peers (hub → agent pings) are the agent URLs of the live replicas
	// again, as in Welcome: a replica that joins after the agent
	// connected is learned from the next ping. Agents of an earlier
	// release ignore it.
	Peers []string `json:"peers,omitempty"`
}

// Hello introduces an agent on its connection. The hub trusts only the
// client certificate for the agent's identity: AgentID and Connector must
// match what it enrolled as.
type Hello struct {
	AgentID   string `json:"agent_id"`
	Name      string `json:"name"`
	Version   string `json:"version"`
	Connector string `json:"connector"`
	Hostname  string `json:"hostname,omitempty"`
	// Scope is the fingerprint (dirsync.ScopeOf) of the agent's connector
	// settings, which choose and convert the entries it reads: the hub
	// forces a full sync when it changes. Empty from an agent of an
	// earlier release.
	Scope string `json:"scope,omitempty"`
}

// Welcome answers Hello.
type Welcome struct {
	Replica   string        `json:"replica"`
	Heartbeat time.Duration `json:"heartbeat"`
	// Peers are the agent URLs of every live replica, this one included,
	// so that an agent keeps a connection to each.
	Peers []string `json:"peers,omitempty"`
}

// Request asks the agent for one operation.
type Request struct {
	Kind      string `json:"kind"`
	Connector string `json:"connector"`
	Cursor    []byte `json:"cursor,omitempty"` // changes
	// HasKnown (changes, full): the agent first fetches the cached IDs
	// and hashes (dirsync.Known) from the hub's known stream.
	HasKnown bool          `json:"has_known,omitempty"`
	Check    *CheckRequest `json:"check,omitempty"`
	// Deadline is the hub's deadline on the hub's clock, kept for agents
	// of an earlier release; Timeout, the time left when the request was
	// sent, is what an agent applies when set, since the two clocks may
	// differ by more than the time a check is given.
	Deadline time.Time     `json:"deadline,omitzero"`
	Timeout  time.Duration `json:"timeout,omitempty"`
}

// CheckRequest is a password check: a bind as the cached account's DN,
// the one thing of the account the agent's checker uses. The password is
// never logged: String hides it.
type CheckRequest struct {
	DN string `json:"dn"`
	// Entry is the account as agents of the previous release read it (an
	// encoded entry: cache.EncodeEntry); the hub sends the DN in it too,
	// and an agent takes it only from a hub that sends no DN, so that hub
	// and agents can be upgraded one after the other.
	Entry    []byte `json:"entry,omitempty"`
	Password string `json:"password"`
}

// CheckDN returns the DN to check: DN, or from a hub of the previous
// release, the DN of Entry.
func (c *CheckRequest) CheckDN() (string, error) {
	if c.DN != "" || len(c.Entry) == 0 {
		return c.DN, nil
	}
	e, err := cache.DecodeEntry(c.Entry)
	if err != nil {
		return "", fmt.Errorf("the check's account entry: %w", err)
	}
	return e.DN, nil
}

// NewCheckRequest is the check of password for the account e, readable by
// agents of this release and of the previous one.
func NewCheckRequest(e *cache.Entry, password string) (*CheckRequest, error) {
	entry, err := cache.EncodeEntry(&cache.Entry{Connector: e.Connector, ID: e.ID, DN: e.DN, Kind: e.Kind})
	if err != nil {
		return nil, fmt.Errorf("encode the account for the agent: %w", err)
	}
	return &CheckRequest{DN: e.DN, Entry: entry, Password: password}, nil
}

// String describes the check without its password.
func (c *CheckRequest) String() string { return "password check (password withheld)" }

// Result ends a request.
type Result struct {
	Error   *WireError         `json:"error,omitempty"`
	Host    string             `json:"host,omitempty"` // the directory host that answered
	Listing *dirsync.Listing   `json:"listing,omitempty"`
	Changes *dirsync.ChangeSet `json:"changes,omitempty"`
	Report  *testconn.Report   `json:"report,omitempty"`
}
