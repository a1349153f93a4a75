package google

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/clock"
	"github.com/dirgate/dirgate/cloudapi"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/internal/fakecached"
	"github.com/dirgate/dirgate/internal/fakegoogle"
	dirsync "github.com/dirgate/dirgate/sync"
)

// account is a fake Workspace customer and a google connector for it,
// with the key granted the scopes the source asks for. domains are the
// customer's (default example.test and alias.example.test); the first is
// the connector's only email domain.
type account struct {
	*fakegoogle.Customer
	clk      *clock.Fake
	conn     *config.Connector
	clientID string // the service account's, which delegation names
	next     int
}

func newAccount(t testing.TB, domains ...string) *account {
	t.Helper()
	if len(domains) == 0 {
		domains = []string{"example.test", "alias.example.test"}
	}
	clk := clock.NewFake(time.Date(2030, 1, 6, 8, 0, 0, 0, time.UTC))
	fake := fakegoogle.New(t, fakegoogle.WithClock(clk), fakegoogle.WithDomains(domains...))
	// The admin's address is in the last domain, outside email_domains
	// (the first): the admin is not synced.
	admin := "admin@" + domains[len(domains)-1]
	fake.PutUser(fakegoogle.User{ID: "900", PrimaryEmail: admin, IsAdmin: true, GivenName: "Ada", FamilyName: "Admin"})
	key, clientID := fake.ServiceAccountKey(t, Scopes...)
	path := filepath.Join(t.TempDir(), "sa.json")
	if err := os.WriteFile(path, key, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(filepath.Join(t.TempDir(), "dirgate.yaml"), fmt.Appendf(nil, `
connectors:
  - name: gws
    type: google
    google:
      service_account_key_file: %s
      admin: %s
      token_url: %s
      directory_url: %s
    email_domains: [%s]
`, path, admin, fake.TokenURL(), fake.DirectoryURL(), domains[0]))
	if err != nil {
		t.Fatal(err)
	}
	return &account{Customer: fake, clk: clk, conn: &cfg.Connectors[0], clientID: clientID, next: 1000}
}

func (a *account) source(t testing.TB, c *config.Connector) *Source {
	t.Helper()
	s, err := New(c, nil, cloudapi.WithHTTPClient(a.HTTPClient()), cloudapi.WithClock(a.clk))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// id returns a fresh Directory ID.
func (a *account) id() string { a.next++; return fmt.Sprint(a.next) }

// user adds a user and returns its ID.
func (a *account) user(u fakegoogle.User) string {
	if u.ID == "" {
		u.ID = a.id()
	}
	a.PutUser(u)
	return u.ID
}

// group adds a group with members and returns its ID.
func (a *account) group(g fakegoogle.Group) string {
	if g.ID == "" {
		g.ID = "g" + a.id()
	}
	a.PutGroup(g)
	return g.ID
}

// full lists the account with s after the cursor prior and the entries
// cached with it (none when nil), and returns the entries by ID.
func full(t *testing.T, s *Source, prior []byte, cached map[string]*cache.Entry) (map[string]*cache.Entry, dirsync.Listing) {
	t.Helper()
	ctx := context.Background()
	if cached != nil {
		ctx = dirsync.WithCached(ctx, fakecached.Entries(cached))
	}
	got := map[string]*cache.Entry{}
	l, err := s.FullAfter(ctx, prior, func(e *cache.Entry) error {
		if got[e.ID] != nil {
			t.Errorf("%s emitted twice", e.ID)
		}
		got[e.ID] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got, l
}

func attr(e *cache.Entry, name string) []string {
	for _, a := range e.Attrs {
		if a.Name == name {
			return a.Values
		}
	}
	return nil
}
