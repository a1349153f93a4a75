package integration

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/dirtype"
	dirsync "github.com/dirgate/dirgate/sync"
	"github.com/dirgate/dirgate/sync/ldapsource"
	"github.com/dirgate/dirgate/sync/sourcetest"
)

// ldapHarness runs the source contract against one real LDAP upstream.
// Every subtest gets an OU of its own under parent, created and removed by
// the test, and a connector rooted there: the tests sharing the server see
// nothing of it.
type ldapHarness struct {
	caps      sourcetest.Capabilities
	admin     func(t *testing.T) *ldap.Conn
	parent    string
	connector func(t *testing.T, root string) string // connector YAML named "contract"
	user      func(name, mail string) map[string][]string
	group     func(name string, members []string) map[string][]string
	opts      []ldapsource.Option
	// escape, when set, replaces ldap.EscapeDN for this upstream's parser.
	escape func(string) string
}

// contractSeq makes account names unique across subtests and runs.
var contractSeq atomic.Int64

// uniqueName is a short name no other entry of the upstream has (AD's
// sAMAccountName: at most 20 characters, no special ones).
func uniqueName() string {
	return fmt.Sprintf("ct%d%d", time.Now().Unix()%100000, contractSeq.Add(1))
}

func (h *ldapHarness) Capabilities() sourcetest.Capabilities { return h.caps }

func (h *ldapHarness) Scope(t *testing.T) sourcetest.Scope {
	t.Helper()
	admin := h.admin(t)
	ou := "it-contract-" + uniqueName()
	root := "OU=" + ou + "," + h.parent
	s := &ldapScope{h: h, admin: admin, root: root, base: root}
	req := ldap.NewAddRequest(s.root, nil)
	req.Attribute("objectClass", []string{"top", "organizationalUnit"})
	req.Attribute("ou", []string{ou})
	if err := admin.Add(req); err != nil {
		t.Fatalf("add %s: %v", s.root, err)
	}
	t.Cleanup(func() { s.removeAll(t) })
	return s
}

// ldapScope adds its entries beneath base: the scope's root, or a
// container in it (AddContainer).
type ldapScope struct {
	h     *ldapHarness
	admin *ldap.Conn
	root  string
	base  string
}

// removeAll deletes the scope's subtree, deepest entries first, whatever
// the subtest renamed or left behind.
func (s *ldapScope) removeAll(t *testing.T) {
	res, err := s.admin.SearchWithPaging(ldap.NewSearchRequest(s.root, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"1.1"}, nil), 200)
	if err != nil {
		t.Errorf("clean up %s: %v", s.root, err)
		return
	}
	depth := func(d string) int {
		p, err := ldap.ParseDN(d)
		if err != nil {
			return 0
		}
		return len(p.RDNs)
	}
	slices.SortFunc(res.Entries, func(a, b *ldap.Entry) int { return depth(b.DN) - depth(a.DN) })
	for _, e := range res.Entries {
		if err := s.admin.Del(ldap.NewDelRequest(e.DN, nil)); err != nil {
			t.Errorf("clean up %s: %v", e.DN, err)
		}
	}
}

func (s *ldapScope) Connector(t *testing.T) *config.Connector {
	t.Helper()
	c, ok := parseConfig(t, s.h.connector(t, s.root)).Connector("contract")
	if !ok {
		t.Fatal("the contract connector is missing from the configuration")
	}
	return c
}

func (s *ldapScope) Source(t *testing.T, c *config.Connector) dirsync.Source {
	t.Helper()
	src, err := ldapsource.New(c, testLogger(t), s.h.opts...)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func (s *ldapScope) rdn(name string) string { return "CN=" + s.escape(name) }

func (s *ldapScope) escape(name string) string {
	if s.h.escape != nil {
		return s.h.escape(name)
	}
	return ldap.EscapeDN(name)
}

func (s *ldapScope) dn(name string) string { return s.rdn(name) + "," + s.base }

func (s *ldapScope) add(t *testing.T, name string, attrs map[string][]string) string {
	t.Helper()
	d := s.dn(name)
	req := ldap.NewAddRequest(d, nil)
	for k, v := range attrs {
		req.Attribute(k, v)
	}
	if err := s.admin.Add(req); err != nil {
		t.Fatalf("add %s: %v", d, err)
	}
	return d
}

func (s *ldapScope) AddUser(t *testing.T, name, mail string) string {
	return s.add(t, name, s.h.user(name, mail))
}

func (s *ldapScope) AddGroup(t *testing.T, name string, members ...string) string {
	return s.add(t, name, s.h.group(name, members))
}

func (s *ldapScope) SetMail(t *testing.T, d, mail string) {
	t.Helper()
	req := ldap.NewModifyRequest(d, nil)
	req.Replace("mail", []string{mail})
	if err := s.admin.Modify(req); err != nil {
		t.Fatalf("modify %s: %v", d, err)
	}
}

func (s *ldapScope) Rename(t *testing.T, d, name string) string {
	t.Helper()
	if err := s.admin.ModifyDN(ldap.NewModifyDNRequest(d, s.rdn(name), true, "")); err != nil {
		t.Fatalf("rename %s: %v", d, err)
	}
	return s.dn(name)
}

func (s *ldapScope) AddContainer(t *testing.T, name string) (string, sourcetest.Scope) {
	t.Helper()
	c := "OU=" + s.escape(name) + "," + s.base
	req := ldap.NewAddRequest(c, nil)
	req.Attribute("objectClass", []string{"top", "organizationalUnit"})
	req.Attribute("ou", []string{name})
	if err := s.admin.Add(req); err != nil {
		t.Fatalf("add %s: %v", c, err)
	}
	in := *s
	in.base = c
	return c, &in
}

func (s *ldapScope) RenameContainer(t *testing.T, d, name string) string {
	t.Helper()
	rdn := "OU=" + s.escape(name)
	if err := s.admin.ModifyDN(ldap.NewModifyDNRequest(d, rdn, true, "")); err != nil {
		t.Fatalf("rename %s: %v", d, err)
	}
	return rdn + "," + s.base
}

func (s *ldapScope) Delete(t *testing.T, d string) {
	t.Helper()
	if err := s.admin.Del(ldap.NewDelRequest(d, nil)); err != nil {
		t.Fatalf("delete %s: %v", d, err)
	}
}

// withRoot gives a connector's YAML the scope's root DN and the name the
// scope looks up.
func withRoot(y, name, root string) string {
	y = replaceLine(y, "root_dn", fmt.Sprintf("root_dn: %q", root))
	return strings.Replace(y, "  - name: "+name+"\n", "  - name: contract\n", 1)
}

// inetOrgPerson is a user entry slapd and the Domino emulator accept.
func inetOrgPerson(name, mail string, classes ...string) map[string][]string {
	return map[string][]string{"objectClass": append([]string{"top", "person", "organizationalPerson", "inetOrgPerson"}, classes...),
		"cn": {name}, "sn": {name}, "mail": {mail}}
}

func TestSourceContractOpenLDAP(t *testing.T) { sourcetest.Run(t, openLDAPHarness(loadEnv(t))) }

// openLDAPHarness is the contract's harness on the test environment's
// slapd.
func openLDAPHarness(e env) *ldapHarness {
	return &ldapHarness{
		caps: sourcetest.Capabilities{Incremental: true, IncrementalDeletes: true, Rename: true, ContainerRename: true,
			MemberIntegrity: dirtype.OpenLDAPType.MemberIntegrity},
		admin:  func(t *testing.T) *ldap.Conn { return adminConn(t, e) },
		parent: e["DIRGATE_OL_BASE"],
		connector: func(t *testing.T, root string) string {
			return withRoot(connectorYAML(t, e, "ol", e.Get(t, "DIRGATE_OL_HOST"), ""), "ol", root)
		},
		user: func(name, mail string) map[string][]string { return inetOrgPerson(name, mail) },
		group: func(name string, members []string) map[string][]string {
			return map[string][]string{"objectClass": {"top", "groupOfNames"}, "cn": {name}, "member": members}
		},
	}
}

// TestSourceContractAD runs the contract with DirSync and with uSNChanged
// polling (an account without the replication right).
func TestSourceContractAD(t *testing.T) {
	e := loadAD(t)
	for _, m := range []struct {
		method, account string
		opts            []ldapsource.Option
	}{{"dirsync", "SYNC", nil}, {"usn", "NODIRSYNC", []ldapsource.Option{ldapsource.WithoutDirSync()}}} {
		t.Run(m.method, func(t *testing.T) {
			sourcetest.Run(t, &ldapHarness{
				caps: sourcetest.Capabilities{Incremental: true, IncrementalDeletes: true, Rename: true, ContainerRename: true,
					MemberIntegrity: dirtype.ActiveDirectoryType.MemberIntegrity,
					MemberOf:        len(dirtype.ActiveDirectoryType.Mapping.MemberOf) > 0},
				admin:  func(t *testing.T) *ldap.Conn { return adAdmin(t, e) },
				parent: e.Get(t, "DIRGATE_AD_BASE"),
				connector: func(t *testing.T, root string) string {
					return withRoot(adConnector(t, e, "ad", m.account), "ad", root)
				},
				user: func(_, mail string) map[string][]string {
					sam := uniqueName()
					return map[string][]string{"objectClass": {"top", "person", "organizationalPerson", "user"},
						"sAMAccountName": {sam}, "userPrincipalName": {sam + "@example.test"}, "mail": {mail},
						"userAccountControl": {"544"}}
				},
				group: func(_ string, members []string) map[string][]string {
					return map[string][]string{"objectClass": {"top", "group"}, "sAMAccountName": {uniqueName()}, "member": members}
				},
				opts: m.opts,
				// Samba's DN parser refuses "\;" and a bare "=" in a value
				// (Windows AD takes both); hex escapes are equivalent.
				escape: func(v string) string {
					return strings.NewReplacer(`\;`, `\3B`, "=", `\3D`).Replace(ldap.EscapeDN(v))
				},
			})
		})
	}
}

// TestSourceContractDomino: the emulator has no incremental sync, as Domino
// over LDAP has none; its null suffix lets the scope sit under O=Acme.
func TestSourceContractDomino(t *testing.T) {
	e := loadEnv(t)
	if _, ok := e["DIRGATE_DOM_URL"]; !ok {
		t.Fatal("the test environment has no Domino emulator (scripts/testenv/up.sh)")
	}
	unid := func() []string {
		var b [16]byte
		_, _ = rand.Read(b[:])
		return []string{strings.ToUpper(hex.EncodeToString(b[:]))}
	}
	sourcetest.Run(t, &ldapHarness{
		caps: sourcetest.Capabilities{Rename: true, ContainerRename: true, MemberIntegrity: dirtype.DominoType.MemberIntegrity},
		admin: func(t *testing.T) *ldap.Conn {
			c, err := ldap.DialURL(e.Get(t, "DIRGATE_DOM_URL"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			if err := c.Bind(e.Get(t, "DIRGATE_DOM_ADMIN_DN"), e.Get(t, "DIRGATE_DOM_ADMIN_PW")); err != nil {
				t.Fatal(err)
			}
			return c
		},
		parent: e.Get(t, "DIRGATE_DOM_ORG_BASE"),
		connector: func(t *testing.T, root string) string {
			return withRoot(dominoConnector(t, e, "DIRGATE_DOM", "dom"), "dom", root)
		},
		user: func(name, mail string) map[string][]string {
			u := inetOrgPerson(name, mail, "dominoPerson")
			u["dominoUNID"] = unid()
			return u
		},
		group: func(name string, members []string) map[string][]string {
			return map[string][]string{"objectClass": {"top", "groupOfNames", "dominoGroup"}, "cn": {name}, "member": members,
				"dominoUNID": unid()}
		},
	})
}
