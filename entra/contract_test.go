package entra

import (
	"strings"
	"testing"

	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/dirtype"
	"github.com/dirgate/dirgate/internal/fakeentra"
	dirsync "github.com/dirgate/dirgate/sync"
	"github.com/dirgate/dirgate/sync/sourcetest"
)

// TestContract runs the source contract suite against the fake tenant.
// Entries are named by object ID, so a rename never changes a DN: the
// suite's rename subtests do not apply.
func TestContract(t *testing.T) { sourcetest.Run(t, contractHarness{}) }

type contractHarness struct{}

func (contractHarness) Capabilities() sourcetest.Capabilities {
	return sourcetest.Capabilities{Incremental: true, IncrementalDeletes: true, MemberIntegrity: dirtype.EntraType.MemberIntegrity}
}

func (contractHarness) Scope(t *testing.T) sourcetest.Scope {
	return &contractScope{tenant: newTenant(t, "")}
}

type contractScope struct{ *tenant }

func (s *contractScope) Connector(*testing.T) *config.Connector { c := *s.conn; return &c }

func (s *contractScope) Source(t *testing.T, c *config.Connector) dirsync.Source {
	return s.source(t, c)
}

func (s *contractScope) AddUser(t *testing.T, name, mail string) string {
	id := s.user(fakeentra.User{DisplayName: name, Mail: mail, UserPrincipalName: mail})
	return "cn=" + id + ",ou=users," + s.conn.RootDN
}

func (s *contractScope) AddGroup(t *testing.T, name string, members ...string) string {
	ids := make([]string, len(members))
	for i, m := range members {
		ids[i] = idOf(t, m)
	}
	return "cn=" + s.group(name, ids...) + ",ou=groups," + s.conn.RootDN
}

func (s *contractScope) SetMail(t *testing.T, dn, mail string) {
	u, ok := s.User(idOf(t, dn))
	if !ok {
		t.Fatalf("no user %s", dn)
	}
	u.Mail, u.UserPrincipalName = mail, mail
	s.PutUser(u)
}

func (s *contractScope) Rename(t *testing.T, dn, _ string) string {
	t.Fatal("entra entries are named by ID: renames keep the DN")
	return dn
}

func (s *contractScope) Delete(t *testing.T, dn string) {
	if strings.Contains(dn, ",ou=groups,") {
		s.DeleteGroup(idOf(t, dn))
	} else {
		s.HardDelete(idOf(t, dn))
	}
}

// idOf reads the object ID from an entry's DN (cn=<id>,ou=...).
func idOf(t *testing.T, dn string) string {
	t.Helper()
	rdn, _, ok := strings.Cut(dn, ",")
	id, found := strings.CutPrefix(rdn, "cn=")
	if !ok || !found {
		t.Fatalf("%q is not an entra DN", dn)
	}
	return id
}
