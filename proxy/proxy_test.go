package proxy

import (
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/demodir"
	"github.com/dirgate/dirgate/passwd"
	"github.com/dirgate/dirgate/sync/ldapsource"
)

const (
	appDN = "cn=app,ou=services,dc=dirgate"
	appPW = "app-secret"
)

// startDemo runs the bundled demo directory as upstream, syncs it, and
// serves it through a proxy: the whole path without external servers.
func startDemo(t *testing.T) string {
	t.Helper()
	up, err := demodir.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = up.Stop() })
	hash, err := passwd.Hash(appPW)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("DIRGATE_TEST_SYNC_PW", demodir.SyncPassword)
	y := fmt.Sprintf(`cache: {dir: %s}
ldap: {listen: "127.0.0.1:0", size_limit: 3}
service_accounts: [{dn: %q, password_hash: %q}]
connectors:
  - {name: demo, type: openldap, host: 127.0.0.1, port: %d, encryption: none, bind_dn: %q,
     bind_password_env: DIRGATE_TEST_SYNC_PW, root_dn: %q, acknowledge_disabled_accounts: true}
`, t.TempDir(), appDN, hash, up.Port(), demodir.SyncDN, demodir.Base)
	cfg, err := config.Parse("test.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	src, err := ldapsource.New(&cfg.Connectors[0], log)
	if err != nil {
		t.Fatal(err)
	}
	store := syncedStore(t, cfg, cache.Options{HotIndex: true}, src, log)
	_, addr := serveStore(t, cfg, store, nil, false, log)
	return addr
}

func dial(t *testing.T, addr string) *ldap.Conn {
	t.Helper()
	c, err := ldap.DialURL("ldap://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetTimeout(5 * time.Second)
	t.Cleanup(func() { c.Close() })
	return c
}

func bound(t *testing.T, addr string) *ldap.Conn {
	t.Helper()
	c := dial(t, addr)
	if err := c.Bind(appDN, appPW); err != nil {
		t.Fatal(err)
	}
	return c
}

// stillServes proves the server answers a normal search on a new connection.
func stillServes(t *testing.T, addr string) {
	t.Helper()
	res, err := bound(t, addr).Search(ldap.NewSearchRequest(demodir.Base, ldap.ScopeWholeSubtree, 0, 0, 0, false,
		"(mail=alice@demo.dirgate)", []string{"cn"}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("server no longer serves: %v", err)
	}
}

func TestDemoPath(t *testing.T) {
	addr := startDemo(t)
	c := bound(t, addr)
	res, err := c.Search(ldap.NewSearchRequest(demodir.Base, ldap.ScopeWholeSubtree, 0, 0, 0, false,
		"(&(objectClass=inetOrgPerson)(memberOf=cn=leads,ou=groups,dc=demo,dc=dirgate))", []string{"mail", "memberOf"}, nil))
	if err != nil || len(res.Entries) != 1 || res.Entries[0].GetAttributeValue("mail") != "alice@demo.dirgate" {
		t.Fatalf("memberOf search: %v %+v", err, res)
	}
	if got := res.Entries[0].GetAttributeValues("memberOf"); len(got) != 2 {
		t.Fatalf("alice's memberOf = %v, want engineering and leads", got)
	}
	// Transitive membership (LDAP_MATCHING_RULE_IN_CHAIN): leads holds alice
	// and engineering, which holds bob and John Doe.
	res, err = c.SearchWithPaging(ldap.NewSearchRequest(demodir.Base, ldap.ScopeWholeSubtree, 0, 0, 0, false,
		"(memberOf:1.2.840.113556.1.4.1941:=cn=leads,ou=groups,dc=demo,dc=dirgate)", []string{"1.1"}, nil), 2)
	if err != nil || len(res.Entries) != 4 {
		t.Fatalf("IN_CHAIN memberOf: %v, %d entries, want alice, bob, john and engineering", err, len(res.Entries))
	}
	res, err = c.Search(ldap.NewSearchRequest(demodir.Base, ldap.ScopeWholeSubtree, 0, 0, 0, false,
		"(member:1.2.840.113556.1.4.1941:=uid=bob,ou=people,dc=demo,dc=dirgate)", []string{"cn"}, nil))
	if err != nil || len(res.Entries) != 2 {
		t.Fatalf("IN_CHAIN member: %v, %d groups, want engineering and leads", err, len(res.Entries))
	}
	for _, login := range []string{"alice@demo.dirgate", "A.Liddell@Demo.Dirgate", "uid=alice,ou=people,dc=demo,dc=dirgate", "alice"} {
		if err := dial(t, addr).Bind(login, "alice-pw"); err != nil {
			t.Errorf("bind %s: %v", login, err)
		}
	}
	if err := dial(t, addr).Bind("carol@demo.dirgate", "carol-pw"); !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
		t.Errorf("disabled account bind: %v", err)
	}
	ok, err := c.Compare("uid=bob,ou=people,dc=demo,dc=dirgate", "title", "site reliability engineer")
	if err != nil || !ok {
		t.Errorf("compare: %v %v", ok, err)
	}
	// Abandon (which go-ldap cannot send) must not drop the connection.
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	rc := ldap.NewConn(raw, false)
	rc.Start()
	defer rc.Close()
	if err := rc.Bind(appDN, appPW); err != nil {
		t.Fatal(err)
	}
	abandon := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "msg")
	abandon.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 99, "id"))
	abandon.AppendChild(ber.NewInteger(ber.ClassApplication, ber.TypePrimitive, 16, 42, "abandon"))
	if _, err := raw.Write(abandon.Bytes()); err != nil {
		t.Fatal(err)
	}
	if who, err := rc.WhoAmI(nil); err != nil || who.AuthzID != "dn:"+appDN {
		t.Errorf("connection unusable after abandon: %+v %v", who, err)
	}
	// A read-only gateway refuses writes with a clear code.
	err = c.Modify(ldap.NewModifyRequest("uid=bob,ou=people,dc=demo,dc=dirgate", nil))
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultUnwillingToPerform) {
		t.Errorf("modify: %v", err)
	}
}

func TestHostileInput(t *testing.T) {
	addr := startDemo(t)
	deep := strings.Repeat("(!", 5000) + "(cn=x)" + strings.Repeat(")", 5000)
	wide := "(|" + strings.Repeat("(cn=a)", 50000) + ")"
	for _, f := range []string{deep, wide} {
		c := bound(t, addr)
		_, err := c.Search(ldap.NewSearchRequest(demodir.Base, ldap.ScopeWholeSubtree, 0, 0, 0, false, f, nil, nil))
		if err == nil {
			t.Errorf("a %d-byte hostile filter was accepted", len(f))
		}
	}
	critical := ldap.NewControlString("1.2.3.4.5", true, "")
	_, err := bound(t, addr).Search(ldap.NewSearchRequest(demodir.Base, ldap.ScopeWholeSubtree, 0, 0, 0, false,
		"(cn=*)", nil, []ldap.Control{critical}))
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultUnavailableCriticalExtension) {
		t.Errorf("unknown critical control: %v", err)
	}
	_, err = bound(t, addr).Search(ldap.NewSearchRequest(demodir.Base, ldap.ScopeWholeSubtree, 0, 0, 0, false,
		"(objectClass=*)", nil, nil))
	if !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
		t.Errorf("size limit 3: %v", err)
	}

	garbage := [][]byte{
		{0x00},
		{0x30, 0x84, 0x7f, 0xff, 0xff, 0xff}, // a 2 GiB length header
		{0x30, 0x05, 0x02, 0x01, 0x01, 0x63, 0x00},
		{0x30, 0x03, 0x02, 0x01},
		[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		bindWithBadControl(),
		nestedFilterSearch(900),
	}
	for i, g := range garbage {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = conn.Write(g)
		_ = conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		_, _ = io.ReadAll(conn)
		conn.Close()
		stillServes(t, addr)
		_ = i
	}
}

// bindWithBadControl is a bind request whose control is not a sequence.
func bindWithBadControl() []byte {
	p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "msg")
	p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 1, "id"))
	b := ber.Encode(ber.ClassApplication, ber.TypeConstructed, 0, nil, "bind")
	b.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 3, "v"))
	b.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "cn=x", "dn"))
	b.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, "pw", "pw"))
	p.AppendChild(b)
	ctl := ber.Encode(ber.ClassContext, ber.TypeConstructed, 0, nil, "controls")
	ctl.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 7, "not a control"))
	p.AppendChild(ctl)
	return p.Bytes()
}

// nestedFilterSearch is a search whose filter nests NOTs depth deep: valid
// BER that the decoder must bound.
func nestedFilterSearch(depth int) []byte {
	p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "msg")
	p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 2, "id"))
	s := ber.Encode(ber.ClassApplication, ber.TypeConstructed, 3, nil, "search")
	s.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, demodir.Base, "base"))
	s.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, 2, "scope"))
	s.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, 0, "deref"))
	s.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 0, "size"))
	s.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 0, "time"))
	s.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, false, "types"))
	f := ber.NewString(ber.ClassContext, ber.TypePrimitive, 7, "cn", "present")
	for range depth {
		n := ber.Encode(ber.ClassContext, ber.TypeConstructed, 2, nil, "not")
		n.AppendChild(f)
		f = n
	}
	s.AppendChild(f)
	s.AppendChild(ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "attrs"))
	p.AppendChild(s)
	return p.Bytes()
}

// A search decodes only the attributes its filter reads and its request
// returns; what it matches and returns must not change.
func TestSearchProjection(t *testing.T) {
	c := bound(t, startDemo(t))
	for _, tt := range []struct {
		filter string
		attrs  []string
		want   map[string]string // attribute -> first value; nil: all user attributes
	}{
		{"(title=site reliability engineer)", []string{"mail"}, map[string]string{"mail": "bob@demo.dirgate"}},
		{"(commonName=Bob Builder)", []string{"GIVENNAME", "sn"}, map[string]string{"givenName": "Bob", "sn": "Builder"}},
		{"(&(givenName=bob)(sn=builder)(rfc822Mailbox=bob@demo.dirgate))", []string{"1.1"}, map[string]string{}},
		{"(uid=bob)", []string{"displayName", "entryDN"}, map[string]string{"displayName": "Bob Builder", "entryDN": "uid=bob,ou=people,dc=demo,dc=dirgate"}},
		{"(uid=bob)", []string{"*"}, nil},
	} {
		for _, paged := range []bool{false, true} {
			req := ldap.NewSearchRequest(demodir.Base, ldap.ScopeWholeSubtree, 0, 0, 0, false, tt.filter, tt.attrs, nil)
			var res *ldap.SearchResult
			var err error
			if paged {
				res, err = c.SearchWithPaging(req, 10)
			} else {
				res, err = c.Search(req)
			}
			if err != nil || len(res.Entries) != 1 || res.Entries[0].DN != "uid=bob,ou=people,dc=demo,dc=dirgate" {
				t.Fatalf("%s %v (paged %v): %v %+v", tt.filter, tt.attrs, paged, err, res)
			}
			e := res.Entries[0]
			if tt.want == nil {
				if e.GetAttributeValue("title") == "" || e.GetAttributeValue("mail") == "" {
					t.Errorf("%s with *: %v", tt.filter, e.Attributes)
				}
				continue
			}
			got := map[string]string{}
			for _, a := range e.Attributes {
				got[a.Name] = a.Values[0]
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("%s %v (paged %v) returned %v, want %v", tt.filter, tt.attrs, paged, got, tt.want)
			}
		}
	}
}
