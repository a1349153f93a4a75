package oidc

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"sync"
	"time"

	"github.com/dirgate/dirgate/cache"
)

// authRequest is an authorization request waiting for the user to sign in.
type authRequest struct {
	ClientID      string
	RedirectURI   string
	State         string
	Nonce         string
	Scope         []string
	Challenge     string // PKCE S256 code_challenge, "" when none
	CSRF          string
	Expires       time.Time
	FailedLogins  int
	ClientName    string
	LoginHint     string
	ResponseMode  string
	RequestedAuth time.Time
}

// codeGrant is an issued authorization code.
type codeGrant struct {
	ClientID    string
	RedirectURI string
	Nonce       string
	Scope       []string
	Challenge   string
	Connector   string
	ID          string // stable ID of the account
	AuthTime    time.Time
	Expires     time.Time
	Used        bool
	Family      string // of the refresh tokens issued for it, to revoke on replay
	AccessJTI   string
	AccessExp   time.Time
}

// refreshGrant is a stored refresh token (only its hash is the key).
// Every refresh rotates the token; the tokens rotated from one code
// exchange form a family, and a rotated token presented again revokes its
// family (OAuth 2.0 Security BCP, RFC 9700 4.14.2): either the client or an
// attacker holds a stolen copy, and the provider cannot tell which.
type refreshGrant struct {
	ClientID  string    `json:"client_id"`
	Connector string    `json:"connector"`
	ID        string    `json:"id"`
	Scope     []string  `json:"scope"`
	AuthTime  time.Time `json:"auth_time"`
	Expires   time.Time `json:"expires"`
	// Family is empty in tokens stored before families existed; such a
	// token is a family of its own.
	Family string `json:"family,omitempty"`
	// Rotated marks a token already exchanged for its successor.
	Rotated bool `json:"rotated,omitempty"`
}

// refreshUse is the outcome of presenting a refresh token.
type refreshUse int

const (
	refreshInvalid     refreshUse = iota // unknown, expired or revoked
	refreshOtherClient                   // issued to another client; left alone
	refreshLive                          // spent now: the caller issues its successor
	refreshReused                        // spent before: its family is now revoked
)

// grants keeps pending requests and codes in memory (they live for
// minutes) and refresh tokens in the cache database (they live for weeks
// and must survive a restart). Access tokens are signed JWTs; revoked ones
// are remembered until they expire.
type grants struct {
	store *cache.Store
	now   func() time.Time

	mu        sync.Mutex
	refreshMu sync.Mutex // serialises spending refresh tokens
	requests  map[string]*authRequest
	codes     map[string]*codeGrant // by hash of the code
	revoked   map[string]time.Time  // access token jti -> expiry
}

const (
	refreshKind = "oidc-refresh"
	// familyKind holds a record for each revoked refresh token family.
	familyKind = "oidc-refresh-family"
)

func newGrants(store *cache.Store, now func() time.Time) *grants {
	return &grants{store: store, now: now, requests: map[string]*authRequest{}, codes: map[string]*codeGrant{}, revoked: map[string]time.Time{}}
}

// token returns n random bytes, URL-safe encoded.
func token(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("oidc: no randomness: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashToken(t string) string {
	s := sha256.Sum256([]byte(t))
	return hex.EncodeToString(s[:])
}

// maxPending bounds the in-memory maps against floods of unfinished
// requests.
const maxPending = 100000

func (g *grants) gc() {
	now := g.now()
	for k, r := range g.requests {
		if now.After(r.Expires) {
			delete(g.requests, k)
		}
	}
	for k, c := range g.codes {
		// Used codes are kept until they expire to detect replays.
		if now.After(c.Expires.Add(time.Minute)) {
			delete(g.codes, k)
		}
	}
	for k, exp := range g.revoked {
		if now.After(exp) {
			delete(g.revoked, k)
		}
	}
}

func (g *grants) putRequest(r *authRequest) (string, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gc()
	if len(g.requests) >= maxPending {
		return "", false
	}
	id := token(18)
	g.requests[id] = r
	return id, true
}

func (g *grants) request(id string) (*authRequest, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	r, ok := g.requests[id]
	if !ok || g.now().After(r.Expires) {
		return nil, false
	}
	return r, true
}

func (g *grants) dropRequest(id string) {
	g.mu.Lock()
	delete(g.requests, id)
	g.mu.Unlock()
}

func (g *grants) putCode(c *codeGrant) (string, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gc()
	if len(g.codes) >= maxPending {
		return "", false
	}
	code := token(32)
	g.codes[hashToken(code)] = c
	return code, true
}

// redeem marks a code used and returns it; a second redemption returns
// the grant with replay=true so the caller can revoke what the first one
// issued (RFC 6749 4.1.2).
func (g *grants) redeem(code string) (c *codeGrant, replay bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	c, ok := g.codes[hashToken(code)]
	if !ok || g.now().After(c.Expires) {
		return nil, false
	}
	if c.Used {
		return c, true
	}
	c.Used = true
	return c, false
}

func (g *grants) revokeAccess(jti string, exp time.Time) {
	if jti == "" {
		return
	}
	g.mu.Lock()
	g.revoked[jti] = exp
	g.mu.Unlock()
}

func (g *grants) accessRevoked(jti string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, ok := g.revoked[jti]
	return ok
}

// putRefresh stores a new refresh token of r.Family.
func (g *grants) putRefresh(r refreshGrant) (string, error) {
	t := token(32)
	return t, g.storeRefresh(hashToken(t), &r)
}

func (g *grants) storeRefresh(h string, r *refreshGrant) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return g.store.SetMeta(refreshKind, h, b)
}

// refresh returns the live refresh grant of t, nil when t is unknown,
// expired, rotated or revoked.
func (g *grants) refresh(t string) (*refreshGrant, error) {
	r, err := g.load(hashToken(t))
	if err != nil || r == nil || r.Rotated {
		return nil, err
	}
	return r, nil
}

// load reads the grant stored under hash h, nil when there is none, it
// expired, or its family was revoked.
func (g *grants) load(h string) (*refreshGrant, error) {
	b, err := g.store.Meta(refreshKind, h)
	if err != nil || len(b) == 0 {
		return nil, err
	}
	var r refreshGrant
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	if r.Family == "" {
		r.Family = h
	}
	if g.now().After(r.Expires) {
		return nil, nil
	}
	revoked, err := g.store.Meta(familyKind, r.Family)
	if err != nil || len(revoked) > 0 {
		return nil, err
	}
	return &r, nil
}

// use spends the refresh token t presented by client: a live token is
// marked rotated and returned for the caller to issue its successor in the
// same family; a rotated one revokes its family, the successor included.
func (g *grants) use(t, client string) (*refreshGrant, refreshUse, error) {
	g.refreshMu.Lock()
	defer g.refreshMu.Unlock()
	h := hashToken(t)
	r, err := g.load(h)
	switch {
	case err != nil || r == nil:
		return nil, refreshInvalid, err
	case r.ClientID != client:
		return nil, refreshOtherClient, nil
	case r.Rotated:
		return r, refreshReused, g.revokeFamily(r.Family)
	}
	r.Rotated = true
	if err := g.storeRefresh(h, r); err != nil {
		return nil, refreshInvalid, err
	}
	return r, refreshLive, nil
}

// revokeFamily revokes every refresh token of family, including the ones
// not yet issued.
func (g *grants) revokeFamily(family string) error {
	if family == "" {
		return nil
	}
	b, err := json.Marshal(struct {
		Revoked time.Time `json:"revoked"`
	}{g.now()})
	if err != nil {
		return err
	}
	return g.store.SetMeta(familyKind, family, b)
}
