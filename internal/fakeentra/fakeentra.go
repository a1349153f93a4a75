// Package fakeentra is an in-process fake of the Microsoft cloud that an
// Entra ID connector talks to: the identity platform's token endpoint
// (client credentials with a secret or a certificate assertion, and the
// resource-owner password grant with AADSTS error bodies) and the parts of
// Microsoft Graph a directory sync uses (users/groups delta queries, a plain
// users page, the organization). It is built from the documented payloads,
// is strict about what it accepts, and runs on a fake clock so expiry and
// Retry-After need no sleeping.
//
// The authority and Graph are two loopback httptest servers (plain HTTP by
// default; WithTLS serves HTTPS, trusted by HTTPClient). A test mutates the
// tenant between sync rounds with Go methods (PutUser, SoftDelete, AddMember
// …) and injects faults (Throttle, ExpireDeltaTokens, ResetSyncState,
// InjectEmptyPage, InjectReplay).
//
// Beyond the API agreed for issue 15 it offers: WithTLS, WithDomain,
// WithCloud, WithMemberChunk, WithInitialRemoved, WithDeltaTTL,
// WithLockoutThreshold, Domain, CACertPEM, Generate, InjectEmptyPage,
// InjectReplay, PasswordFailures, TokenRequests, the User fields
// OnPremisesSyncEnabled and MailNickname, the Group fields GroupTypes and
// ProxyAddresses, and the App field ConsentMissing.
//
// The servers, sealed tokens, signing keys and key rotation come from
// internal/fakecloud, shared with the Google fake.
package fakeentra

import (
	"crypto/x509"
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

// User is a directory user. Empty strings and nil slices are "not set";
// once a property has had a value, clearing it is served as null ([] for
// collections), as Graph does.
type User struct {
	ID, UserPrincipalName, Mail, DisplayName, GivenName, Surname, UserType, OnPremisesImmutableID string
	ProxyAddresses, OtherMails                                                                    []string
	AccountEnabled                                                                                bool
	// Password is what the password grant accepts for this user.
	Password string
	// Sign-in conditions the password grant reports with their AADSTS code.
	MFARequired, Locked, PasswordExpired, Federated, BlockedByConditionalAccess bool
	// OnPremisesSyncEnabled marks a user synced from on-premises AD
	// (served as true; false is served as null, as for cloud-only users).
	OnPremisesSyncEnabled bool
	// MailNickname is the Exchange alias.
	MailNickname string
	// LastPasswordChangeDateTime is when the password was last set; the
	// zero time is "not set".
	LastPasswordChangeDateTime time.Time
}

// Group is a directory group. Members holds user or group IDs.
type Group struct {
	ID, DisplayName, Mail        string
	SecurityEnabled, MailEnabled bool
	Members                      []string
	// GroupTypes holds "Unified" for Microsoft 365 groups.
	GroupTypes     []string
	ProxyAddresses []string
}

// App is an app registration with its granted application permissions.
type App struct {
	ClientID, Secret string
	Cert             *x509.Certificate
	// Roles are the Graph application permissions admin-consented for the app.
	Roles []string
	// PublicClient is "Allow public client flows": the password grant may
	// be used without a client credential.
	PublicClient bool
	RedirectURIs []string
	// ConsentMissing makes the password grant fail with AADSTS65001.
	ConsentMissing bool
}

// Option configures New.
type Option func(*Tenant)

// WithClock drives all expiry checks from c (default: a fake clock at a
// fixed date).
func WithClock(c *clock.Fake) Option { return func(t *Tenant) { t.clock = c } }

// WithPageSize sets how many objects a delta page carries (default 3, so
// that small fixtures still page).
func WithPageSize(n int) Option { return func(t *Tenant) { t.pageSize = max(n, 1) } }

// WithTenantID sets the tenant GUID.
func WithTenantID(id string) Option { return func(t *Tenant) { t.id = id } }

// WithDomain adds a verified domain; the first one is the default domain
// (default contoso.onmicrosoft.com). The token endpoint accepts the tenant
// GUID or any verified domain.
func WithDomain(d string) Option {
	return func(t *Tenant) { t.domains = append(t.domains, strings.ToLower(d)) }
}

// WithCloud picks the Graph resource the fake issues tokens for:
// "global" (https://graph.microsoft.com, default) or "usgov"
// (https://graph.microsoft.us).
func WithCloud(name string) Option {
	return func(t *Tenant) {
		if name == "usgov" {
			t.resource = "https://graph.microsoft.us"
		}
	}
}

// WithTLS serves both endpoints over HTTPS; HTTPClient trusts them.
func WithTLS() Option { return func(t *Tenant) { t.tls = true } }

// WithMemberChunk sets how many members@delta entries one group object
// carries before the group is repeated on the next item (default 10), so a
// large group is split across pages.
func WithMemberChunk(n int) Option { return func(t *Tenant) { t.memberChunk = max(n, 1) } }

// WithInitialRemoved sets whether a full round lists soft-deleted users as
// @removed "changed" (default true, as observed on Graph).
func WithInitialRemoved(on bool) Option { return func(t *Tenant) { t.initialRemoved = on } }

// WithDeltaTTL sets how long a delta token stays usable (default 7 days of
// fake time).
func WithDeltaTTL(d time.Duration) Option { return func(t *Tenant) { t.deltaTTL = d } }

// WithLockoutThreshold sets after how many wrong passwords the password
// grant locks a user (smart lockout; default 10).
func WithLockoutThreshold(n int) Option { return func(t *Tenant) { t.lockoutAfter = n } }

// Tenant is one fake tenant with its authority and Graph servers.
type Tenant struct {
	tb             testing.TB
	clock          *clock.Fake
	id             string
	domains        []string
	resource       string
	tls            bool
	pageSize       int
	memberChunk    int
	initialRemoved bool
	deltaTTL       time.Duration
	lockoutAfter   int

	authority, graph *httptest.Server
	authorityMux     *http.ServeMux
	// grants maps a grant_type to its handler on the token endpoint.
	grants map[string]grantHandler
	keys   fakecloud.Key
	sealer *fakecloud.Sealer

	mu          sync.Mutex
	apps        map[string]App
	users       map[string]*object
	groups      map[string]*object
	userOrder   []string
	groupOrder  []string
	log         []change
	seq         int64
	rounds      map[int64]*round
	nextRound   int64
	expireEpoch int
	resetEpoch  int
	tokenTTL    time.Duration
	usedJTI     map[string]time.Time
	throttle    throttle
	emptyPage   bool
	replay      bool
	requests    int
	tokenReqs   int
	// oidc is the OpenID Connect and admin-consent side; its mutex is
	// separate from mu.
	oidc idp
}

// New starts the fake's servers; they stop when the test ends.
func New(tb testing.TB, opts ...Option) *Tenant {
	tb.Helper()
	t := &Tenant{
		tb: tb, id: "00000000-0000-4000-8000-0000000000aa",
		resource: "https://graph.microsoft.com", pageSize: 3, memberChunk: 10,
		initialRemoved: true, deltaTTL: 7 * 24 * time.Hour, lockoutAfter: 10,
		grants: map[string]grantHandler{}, sealer: fakecloud.NewSealer(),
		apps: map[string]App{}, users: map[string]*object{}, groups: map[string]*object{},
		rounds: map[int64]*round{}, tokenTTL: 3599 * time.Second, usedJTI: map[string]time.Time{},
	}
	for _, o := range opts {
		o(t)
	}
	if t.clock == nil {
		t.clock = fakecloud.NewClock()
	}
	if len(t.domains) == 0 {
		t.domains = []string{"contoso.onmicrosoft.com"}
	}
	t.keys = fakecloud.SharedKey()
	t.authorityMux = http.NewServeMux()
	t.registerSTS()
	t.oidc.codes = map[string]*authCode{}
	t.registerOIDC()
	t.registerConsent()
	t.authority = fakecloud.Start(tb, t.authorityMux, t.tls)
	t.graph = fakecloud.Start(tb, http.HandlerFunc(t.serveGraph), t.tls)
	return t
}

// ID returns the tenant GUID.
func (t *Tenant) ID() string { return t.id }

// Domain returns the default verified domain.
func (t *Tenant) Domain() string { return t.domains[0] }

// AuthorityURL is the authority base; the token URL is
// AuthorityURL()+"/"+tenant+"/oauth2/v2.0/token".
func (t *Tenant) AuthorityURL() string { return t.authority.URL }

// GraphURL is the Graph base, e.g. GraphURL()+"/v1.0/users/delta".
func (t *Tenant) GraphURL() string { return t.graph.URL }

// HTTPClient returns a client for both servers (trusting their
// certificate under WithTLS).
func (t *Tenant) HTTPClient() *http.Client { return t.authority.Client() }

// CACertPEM returns the PEM of the certificate the servers present under
// WithTLS (nil otherwise), for a process that needs a CA file.
func (t *Tenant) CACertPEM() []byte { return fakecloud.CACertPEM(t.authority) }

// AddApp registers (or replaces) an app registration.
func (t *Tenant) AddApp(a App) {
	t.mu.Lock()
	defer t.mu.Unlock()
	a.Roles = slices.Clone(a.Roles)
	t.apps[a.ClientID] = a
}

// SetAccessTokenLifetime sets the lifetime of access tokens issued from now
// on (default 3599 s).
func (t *Tenant) SetAccessTokenLifetime(d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.tokenTTL = d
}

// Requests returns how many Graph requests the fake has received.
func (t *Tenant) Requests() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.requests
}

// TokenRequests returns how many token endpoint requests the fake has
// received.
func (t *Tenant) TokenRequests() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.tokenReqs
}

func (t *Tenant) now() time.Time { return t.clock.Now() }
