package memsource_test

import (
	"context"
	"errors"
	"maps"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/dirtype"
	"github.com/dirgate/dirgate/dn"
	dirsync "github.com/dirgate/dirgate/sync"
	"github.com/dirgate/dirgate/sync/memsource"
	"github.com/dirgate/dirgate/sync/sourcetest"
)

// harness runs the source contract against a Dir per subtest. With
// typ set, the Dir keeps member references intact, and the back-links of
// typ's mapping, and the connector has that directory type.
type harness struct{ typ *dirtype.Type }

func (h harness) Capabilities() sourcetest.Capabilities {
	return sourcetest.Capabilities{Incremental: true, IncrementalDeletes: true, Rename: true, ContainerRename: true,
		MemberIntegrity: h.typ != nil, MemberOf: h.typ != nil && len(h.typ.Mapping.MemberOf) > 0}
}

func (h harness) Scope(*testing.T) sourcetest.Scope {
	s := &scope{typ: "memory", ids: map[string]string{}, suffix: ",ou=People,o=Memory"}
	if h.typ == nil {
		s.dir = memsource.New()
	} else {
		opts := []memsource.Option{memsource.WithMemberIntegrity(h.typ.Mapping.Members...)}
		for _, a := range h.typ.Mapping.MemberOf {
			opts = append(opts, memsource.WithMemberOf(a))
		}
		s.typ, s.dir = h.typ.Name, memsource.New(opts...)
	}
	return s
}

// scope adds its entries beneath suffix; the scope of a container shares
// the directory and the ID index with the scope it is in.
type scope struct {
	dir    *memsource.Dir
	typ    string
	ids    map[string]string // DN key -> ID
	suffix string
}

func (s *scope) Connector(*testing.T) *config.Connector {
	return &config.Connector{Name: "memory", Type: s.typ}
}

func (s *scope) Source(*testing.T, *config.Connector) dirsync.Source { return s.dir.Source("memory") }

func (s *scope) add(t *testing.T, e *cache.Entry) string {
	t.Helper()
	id, err := s.dir.Add(e)
	if err != nil {
		t.Fatal(err)
	}
	s.ids[dnKey(t, e.DN)] = id
	return e.DN
}

func dnKey(t *testing.T, s string) string {
	t.Helper()
	k, err := dn.Key(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (s *scope) AddUser(t *testing.T, name, mail string) string {
	return s.add(t, &cache.Entry{DN: "cn=" + ldap.EscapeDN(name) + s.suffix, Kind: cache.KindUser, Addresses: []string{mail},
		Attrs: []cache.Attr{{Name: "cn", Values: []string{name}}, {Name: "mail", Values: []string{mail}}}})
}

func (s *scope) AddGroup(t *testing.T, name string, members ...string) string {
	return s.add(t, &cache.Entry{DN: "cn=" + ldap.EscapeDN(name) + s.suffix, Kind: cache.KindGroup, Members: members,
		Attrs: []cache.Attr{{Name: "cn", Values: []string{name}}, {Name: "member", Values: members}}})
}

func (s *scope) modify(t *testing.T, d string, fn func(e *cache.Entry)) {
	t.Helper()
	if err := s.dir.Modify(s.ids[dnKey(t, d)], fn); err != nil {
		t.Fatal(err)
	}
}

func (s *scope) SetMail(t *testing.T, d, mail string) {
	s.modify(t, d, func(e *cache.Entry) {
		e.Addresses = []string{mail}
		e.Attrs[1].Values = []string{mail}
	})
}

func (s *scope) Rename(t *testing.T, d, name string) string {
	nd := "cn=" + ldap.EscapeDN(name) + s.suffix
	s.modify(t, d, func(e *cache.Entry) {
		e.DN = nd
		e.Attrs[0].Values = []string{name}
	})
	s.ids[dnKey(t, nd)] = s.ids[dnKey(t, d)]
	delete(s.ids, dnKey(t, d))
	return nd
}

func (s *scope) AddContainer(t *testing.T, name string) (string, sourcetest.Scope) {
	c := "ou=" + ldap.EscapeDN(name) + s.suffix
	in := *s
	in.suffix = "," + c
	return c, &in
}

func (s *scope) RenameContainer(t *testing.T, d, name string) string {
	nd := "ou=" + ldap.EscapeDN(name) + s.suffix
	if err := s.dir.RenameSubtree(d, nd); err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, id := range s.ids {
		if e, ok := s.dir.Get(id); ok {
			ids[dnKey(t, e.DN)] = id
		}
	}
	clear(s.ids) // shared with the container's scope
	maps.Copy(s.ids, ids)
	return nd
}

func (s *scope) Delete(t *testing.T, d string) {
	if err := s.dir.Delete(s.ids[dnKey(t, d)]); err != nil {
		t.Fatal(err)
	}
	delete(s.ids, dnKey(t, d))
}

func TestContract(t *testing.T) { sourcetest.Run(t, harness{}) }

// TestContractMemberIntegrity runs the contract against a directory that
// keeps member references intact without reporting the groups it rewrites,
// as Active Directory does, under a type that declares it.
func TestContractMemberIntegrity(t *testing.T) {
	typ := dirtype.ActiveDirectoryType
	typ.Name, typ.DisplayName = "memory-integrity", "In-memory directory with member integrity"
	remove, err := dirtype.Register(&typ)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(remove)
	sourcetest.Run(t, harness{typ: &typ})
}

func TestDirRefusesDuplicateDNs(t *testing.T) {
	d := memsource.New()
	id, err := d.Add(&cache.Entry{DN: "cn=A,o=x", Kind: cache.KindUser})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Add(&cache.Entry{DN: "CN=a, O=X", Kind: cache.KindUser}); !errors.Is(err, memsource.ErrExists) {
		t.Errorf("second add of the DN in another spelling: %v, want ErrExists", err)
	}
	other, _ := d.Add(&cache.Entry{DN: "cn=B,o=x", Kind: cache.KindUser})
	if err := d.Modify(other, func(e *cache.Entry) { e.DN = "cn=a,o=x" }); !errors.Is(err, memsource.ErrExists) {
		t.Errorf("rename onto a taken DN: %v, want ErrExists", err)
	}
	if err := d.Modify(id, func(e *cache.Entry) { e.ID = "stolen"; e.DN = "cn=A2,o=x" }); err != nil {
		t.Fatal(err)
	}
	if e, ok := d.Get(id); !ok || e.DN != "cn=A2,o=x" {
		t.Errorf("after a rename that tried to change the ID: %+v %v", e, ok)
	}
	if err := d.Delete("nope"); !errors.Is(err, memsource.ErrNotFound) {
		t.Errorf("delete of an unknown ID: %v", err)
	}
}

func TestCursorValidity(t *testing.T) {
	ctx := context.Background()
	cursorOf := func(d *memsource.Dir) []byte {
		l, err := d.Source("h").Full(ctx, func(*cache.Entry) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		return l.Cursor
	}
	changes := func(d *memsource.Dir, cur []byte) ([]dirsync.Change, error) {
		var out []dirsync.Change
		_, err := d.Source("h").Changes(ctx, cur, nil, func(c dirsync.Change) error { out = append(out, c); return nil })
		return out, err
	}
	d := memsource.New()
	id, _ := d.Add(&cache.Entry{DN: "cn=a,o=x", Kind: cache.KindUser})
	cur := cursorOf(d)
	_ = d.Modify(id, func(e *cache.Entry) { e.Disabled = true })
	gone, _ := d.Add(&cache.Entry{DN: "cn=b,o=x", Kind: cache.KindUser})
	_ = d.Delete(gone)
	got, err := changes(d, cur)
	if err != nil || len(got) != 2 || got[0].Upsert == nil || !got[0].Upsert.Disabled || got[1].DeleteID != gone {
		t.Fatalf("changes since the cursor: %+v %v; want the modification, then the deletion", got, err)
	}

	d.Compact()
	cases := []struct {
		name string
		dir  *memsource.Dir
		cur  []byte
	}{
		{"cursor older than the log", d, cur},
		{"cursor of another directory", memsource.New(), cursorOf(d)},
		{"garbage", d, []byte("{")},
	}
	for _, c := range cases {
		if _, err := changes(c.dir, c.cur); !errors.Is(err, dirsync.ErrCursorInvalid) {
			t.Errorf("%s: %v, want ErrCursorInvalid", c.name, err)
		}
	}
	if got, err := changes(d, cursorOf(d)); err != nil || len(got) != 0 {
		t.Errorf("a fresh cursor after compaction: %+v %v", got, err)
	}
}
