// Package fakegoogle is an in-process fake of the Google cloud a Google
// Workspace connector talks to: the OAuth token endpoint (the JWT-bearer
// grant of a service account with domain-wide delegation, and the
// authorization_code grant of "Sign in with Google"), the Admin SDK
// Directory API (users, groups, members) and the Google-style OpenID
// Connect provider. It is built from the documented payloads and error
// bodies, is strict about what it accepts, and runs on a fake clock so
// token expiry and per-minute quotas need no sleeping.
//
// The accounts side (token endpoint, OIDC) and the Directory API are two
// loopback httptest servers (plain HTTP by default; WithTLS serves HTTPS,
// trusted by HTTPClient). A test changes the customer with Go methods
// (PutUser, DeleteUser, PutGroup, AddMember …) and injects faults
// (RateLimit, Fail, MutateBetweenPages, RevokeDelegation, DisableAPI).
//
// What is not modelled: users.watch and the Reports API, custom schemas
// beyond what User.CustomSchemas holds, write methods, the
// domain_public view, service accounts holding an admin role themselves
// (a token without a subject is refused by the Directory API), and the
// refresh-token grant. The fields parameter supports the selector forms
// a sync sends (a,b/c,d(e,f)); see fields.go.
package fakegoogle

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dirgate/dirgate/clock"
	"github.com/dirgate/dirgate/internal/fakecloud"
)

// Directory API scopes.
const (
	ScopeUserReadonly        = "https://www.googleapis.com/auth/admin.directory.user.readonly"
	ScopeUser                = "https://www.googleapis.com/auth/admin.directory.user"
	ScopeGroupReadonly       = "https://www.googleapis.com/auth/admin.directory.group.readonly"
	ScopeGroup               = "https://www.googleapis.com/auth/admin.directory.group"
	ScopeGroupMemberReadonly = "https://www.googleapis.com/auth/admin.directory.group.member.readonly"
	ScopeGroupMember         = "https://www.googleapis.com/auth/admin.directory.group.member"
)

// User is a Workspace user. ID is the immutable numeric ID; FullName
// defaults to "GivenName FamilyName".
type User struct {
	ID, PrimaryEmail, GivenName, FamilyName, FullName, OrgUnitPath string
	Aliases, NonEditableAliases                                    []string
	Suspended, Archived, IsAdmin                                   bool
	// CustomSchemas is served with projection=full (and custom, for the
	// schemas in customFieldMask).
	CustomSchemas map[string]map[string]any
}

// Member is a group member. Type is USER, GROUP, CUSTOMER or EXTERNAL;
// empty Role means MEMBER; for USER members an empty Status is derived
// from the user (ACTIVE or SUSPENDED), and an empty Email or ID from the
// user or group it names.
type Member struct{ ID, Email, Role, Type, Status string }

// Group is a Workspace group.
type Group struct {
	ID, Email, Name, Description string
	Aliases                      []string
	Members                      []Member
	// NonEditableAliases are served as the group's nonEditableAliases.
	NonEditableAliases []string
}

// Option configures New.
type Option func(*Customer)

// WithClock drives all expiry and quota checks from c (default: a fake
// clock at a fixed date).
func WithClock(c *clock.Fake) Option { return func(cu *Customer) { cu.clock = c } }

// WithCustomerID sets the customer ID (default C0fake01).
func WithCustomerID(id string) Option { return func(cu *Customer) { cu.id = id } }

// WithDomains sets the customer's domains; the first is the primary
// (default example.test).
func WithDomains(d ...string) Option {
	return func(cu *Customer) {
		cu.domains = nil
		for _, x := range d {
			cu.domains = append(cu.domains, strings.ToLower(x))
		}
	}
}

// WithTLS serves both servers over HTTPS; HTTPClient trusts them.
func WithTLS() Option { return func(cu *Customer) { cu.tls = true } }

// serviceAccount is a service account key with its delegation grant.
type serviceAccount struct {
	email, clientID string
	key             fakecloud.Key
	// delegated is the domain-wide delegation allow-list; nil is "no
	// delegation".
	delegated []string
}

// accessToken is what the fake remembers of a token it issued.
type accessToken struct {
	subject string // the impersonated user's ID, "" for the service account itself
	scopes  []string
	expires time.Time
	oidc    bool // issued by the authorization_code grant, not for the Directory API
}

// fault is an injected Directory failure.
type fault struct {
	n      int
	status int
	reason string
}

// Customer is one fake Workspace customer with its servers.
type Customer struct {
	tb      testing.TB
	clock   *clock.Fake
	id      string
	domains []string
	tls     bool

	accounts, directory *httptest.Server
	sealer              *fakecloud.Sealer
	ring                fakecloud.KeyRing

	mu         sync.Mutex
	users      map[string]*User // by ID
	deleted    map[string]deletedUser
	groups     map[string]*Group // by ID
	index      map[string]string // lower-cased address -> user or group ID; nil after a change
	sas        map[string]*serviceAccount
	tokens     map[string]accessToken
	tokenTTL   time.Duration
	perMinute  int
	minute     map[string]int // subject+minute -> requests
	fault      fault
	apiOff     bool
	mutate     func()
	snapshots  map[int64][]string
	snapOrder  []int64
	nextSnap   int64
	requests   int
	times      []time.Time
	tokenReqs  int
	nextNumber int
	oidc       oidcState
}

// deletedUser is a user in the restore window.
type deletedUser struct {
	user    User
	deleted time.Time
}

// New starts the fake's servers; they stop when the test ends.
func New(tb testing.TB, opts ...Option) *Customer {
	tb.Helper()
	c := &Customer{
		tb: tb, id: "C0fake01", domains: []string{"example.test"}, sealer: fakecloud.NewSealer(),
		users: map[string]*User{}, deleted: map[string]deletedUser{}, groups: map[string]*Group{},
		sas: map[string]*serviceAccount{}, tokens: map[string]accessToken{}, tokenTTL: 3599 * time.Second,
		minute: map[string]int{}, snapshots: map[int64][]string{},
	}
	for _, o := range opts {
		o(c)
	}
	if c.clock == nil {
		c.clock = fakecloud.NewClock()
	}
	c.oidc.init()
	mux := http.NewServeMux()
	mux.HandleFunc("/token", c.serveToken)
	c.registerOIDC(mux)
	c.accounts = fakecloud.Start(tb, mux, c.tls)
	c.directory = fakecloud.Start(tb, http.HandlerFunc(c.serveDirectory), c.tls)
	return c
}

// ID returns the customer ID.
func (c *Customer) ID() string { return c.id }

// Domains returns the customer's domains, primary first.
func (c *Customer) Domains() []string { return slices.Clone(c.domains) }

// TokenURL is the OAuth token endpoint (JWT-bearer and authorization_code).
func (c *Customer) TokenURL() string { return c.accounts.URL + "/token" }

// DirectoryURL is the Directory API base: DirectoryURL()+"/admin/directory/v1/users".
func (c *Customer) DirectoryURL() string { return c.directory.URL }

// IssuerURL is the OIDC issuer; discovery is at
// IssuerURL()+"/.well-known/openid-configuration".
func (c *Customer) IssuerURL() string { return c.accounts.URL }

// HTTPClient returns a client for both servers (trusting their certificate
// under WithTLS).
func (c *Customer) HTTPClient() *http.Client { return c.accounts.Client() }

// CACertPEM returns the PEM of the certificate the servers present under
// WithTLS (nil otherwise), for a process that needs a CA file.
func (c *Customer) CACertPEM() []byte { return fakecloud.CACertPEM(c.accounts) }

func (c *Customer) now() time.Time { return c.clock.Now() }

// number returns a fresh numeric ID of 21 digits, as Google's are; c.mu is
// held.
func (c *Customer) number() string {
	c.nextNumber++
	return fmt.Sprintf("1%020d", c.nextNumber)
}

// ServiceAccountKey makes a service account with a fresh key and grants it
// domain-wide delegation for delegatedScopes (none: no delegation). It
// returns the key file's JSON, which google.JWTConfigFromJSON accepts, and
// the account's numeric client ID (the one delegation is granted to).
func (c *Customer) ServiceAccountKey(tb testing.TB, delegatedScopes ...string) (keyJSON []byte, clientID string) {
	tb.Helper()
	key := fakecloud.NewKey()
	c.mu.Lock()
	clientID = c.number()
	sa := &serviceAccount{
		email:    fmt.Sprintf("dirgate-sync-%d@fake-project.iam.gserviceaccount.com", len(c.sas)+1),
		clientID: clientID, key: key,
	}
	if len(delegatedScopes) > 0 {
		sa.delegated = slices.Clone(delegatedScopes)
	}
	c.sas[sa.email] = sa
	c.mu.Unlock()
	der, err := x509.MarshalPKCS8PrivateKey(key.Private)
	if err != nil {
		tb.Fatalf("fakegoogle: encoding the key: %v", err)
	}
	keyJSON, err = json.MarshalIndent(map[string]string{
		"type": "service_account", "project_id": "fake-project", "private_key_id": key.ID,
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": sa.email, "client_id": clientID,
		"auth_uri": c.IssuerURL() + "/o/oauth2/auth", "token_uri": c.TokenURL(),
		"auth_provider_x509_cert_url": c.IssuerURL() + "/oauth2/v1/certs",
		"client_x509_cert_url":        c.IssuerURL() + "/robot/v1/metadata/x509/" + sa.email,
		"universe_domain":             "googleapis.com",
	}, "", "  ")
	if err != nil {
		tb.Fatalf("fakegoogle: encoding the key file: %v", err)
	}
	return keyJSON, clientID
}

// SetDelegation replaces the domain-wide delegation of the service account
// with this client ID (no scopes: delegation removed).
func (c *Customer) SetDelegation(clientID string, scopes ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, sa := range c.sas {
		if sa.clientID == clientID {
			sa.delegated = nil
			if len(scopes) > 0 {
				sa.delegated = slices.Clone(scopes)
			}
		}
	}
}

// SetAccessTokenLifetime sets the lifetime of access tokens issued from now
// on (default 3599 s).
func (c *Customer) SetAccessTokenLifetime(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tokenTTL = d
}

// DisableAPI makes the Directory API answer 403 accessNotConfigured, as
// when the Admin SDK API is not enabled in the service account's project.
func (c *Customer) DisableAPI(off bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.apiOff = off
}

// RateLimit sets how many Directory requests one impersonated user may
// make per minute of fake time (0: unlimited); beyond it the answer is 403
// userRateLimitExceeded.
func (c *Customer) RateLimit(perMinute int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.perMinute = perMinute
}

// Fail makes the next n Directory requests answer status with reason in
// Google's error body (429 rateLimitExceeded, 503 backendError, 403
// quotaExceeded …), without Retry-After.
func (c *Customer) Fail(n int, status int, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fault = fault{n: n, status: status, reason: reason}
}

// MutateBetweenPages runs f once, right after the next list page that has
// a next page is served, so a client sees the change mid-enumeration.
func (c *Customer) MutateBetweenPages(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mutate = f
}

// Requests returns how many Directory requests the fake has received.
func (c *Customer) Requests() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.requests
}

// RequestTimes returns the fake-clock time of every Directory request.
func (c *Customer) RequestTimes() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.times)
}

// TokenRequests returns how many token endpoint requests the fake has
// received.
func (c *Customer) TokenRequests() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tokenReqs
}
