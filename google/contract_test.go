package google

import (
	"strings"
	"testing"

	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/internal/fakegoogle"
	dirsync "github.com/dirgate/dirgate/sync"
	"github.com/dirgate/dirgate/sync/sourcetest"
)

// TestContract runs the source contract suite against the fake account:
// full runs only (the Directory API has no delta), entries named by ID so
// renames keep DNs, and member references kept by ID as Google keeps
// them.
func TestContract(t *testing.T) { sourcetest.Run(t, contractHarness{}) }

type contractHarness struct{}

func (contractHarness) Capabilities() sourcetest.Capabilities {
	return sourcetest.Capabilities{MemberIntegrity: true}
}

func (contractHarness) Scope(t *testing.T) sourcetest.Scope {
	return &contractScope{account: newAccount(t, "contract.test", "admin.contract.test")}
}

type contractScope struct{ *account }

func (s *contractScope) Connector(*testing.T) *config.Connector { c := *s.conn; return &c }

func (s *contractScope) Source(t *testing.T, c *config.Connector) dirsync.Source {
	return s.source(t, c)
}

func (s *contractScope) AddUser(t *testing.T, name, mail string) string {
	id := s.user(fakegoogle.User{FullName: name, PrimaryEmail: mail})
	return "cn=" + id + ",ou=users," + s.conn.RootDN
}

func (s *contractScope) AddGroup(t *testing.T, name string, members ...string) string {
	var ms []fakegoogle.Member
	for _, m := range members {
		typ := "USER"
		if strings.Contains(m, ",ou=groups,") {
			typ = "GROUP"
		}
		ms = append(ms, fakegoogle.Member{ID: idOf(t, m), Type: typ})
	}
	id := s.group(fakegoogle.Group{Name: name, Email: "group" + s.id() + "@contract.test", Members: ms})
	return "cn=" + id + ",ou=groups," + s.conn.RootDN
}

func (s *contractScope) SetMail(t *testing.T, dn, mail string) {
	u, ok := s.User(idOf(t, dn))
	if !ok {
		t.Fatalf("no user %s", dn)
	}
	u.PrimaryEmail = mail
	s.PutUser(u)
}

func (s *contractScope) Rename(t *testing.T, dn, _ string) string {
	t.Fatal("google entries are named by ID: renames keep the DN")
	return dn
}

func (s *contractScope) Delete(t *testing.T, dn string) {
	if strings.Contains(dn, ",ou=groups,") {
		s.DeleteGroup(idOf(t, dn))
	} else {
		s.DeleteUser(idOf(t, dn))
	}
}

// idOf reads the Directory ID from an entry's DN (cn=<id>,ou=...).
func idOf(t *testing.T, dn string) string {
	t.Helper()
	rdn, _, ok := strings.Cut(dn, ",")
	id, found := strings.CutPrefix(rdn, "cn=")
	if !ok || !found {
		t.Fatalf("%q is not a google DN", dn)
	}
	return id
}
