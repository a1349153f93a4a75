package ldapsource

import (
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"slices"
	"sync/atomic"
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/dirtype"
	"github.com/dirgate/dirgate/internal/ldapstub"
	dirsync "github.com/dirgate/dirgate/sync"
)

// TestRereadBatches: re-reading the entries beneath a renamed container
// asks for them by ID a hundred at a time, not one search each, and still
// passes every one on in order: found and in scope as an upsert; gone, or
// found out of scope, as a deletion when cached, else nothing.
func TestRereadBatches(t *testing.T) {
	const n = 250
	id := func(i int) string { return fmt.Sprintf("00000000-0000-0000-0000-%012d", i) }
	present := func(i int) bool { return i%2 == 0 }
	inScope := func(i int) bool { return i != 4 }
	assertion := regexp.MustCompile(`\(entryUUID=([0-9a-f-]+)\)`)
	var searches atomic.Int32
	port := ldapstub.Serve(t, func(c net.Conn, msg int64, op *ber.Packet) bool {
		if op.Tag != ldap.ApplicationSearchRequest {
			return false
		}
		searches.Add(1)
		f, err := ldap.DecompileFilter(op.Children[6])
		if err != nil {
			t.Errorf("filter: %v", err)
			return false
		}
		for _, m := range assertion.FindAllStringSubmatch(f, -1) {
			var i int
			fmt.Sscanf(m[1], "00000000-0000-0000-0000-%d", &i)
			if !present(i) {
				continue
			}
			class := "inetOrgPerson"
			if !inScope(i) {
				class = "device" // the stub does not filter: convert finds it out of scope
			}
			e := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationSearchResultEntry, nil, "entry")
			e.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, fmt.Sprintf("uid=u%d,ou=new,dc=example,dc=test", i), "dn"))
			attrs := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "attributes")
			for name, v := range map[string]string{"objectClass": class, "entryUUID": m[1], "uid": fmt.Sprintf("u%d", i)} {
				a := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "attribute")
				a.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, name, "type"))
				vals := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSet, nil, "vals")
				vals.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, v, "value"))
				a.AppendChild(vals)
				attrs.AppendChild(a)
			}
			e.AppendChild(attrs)
			ldapstub.Write(c, msg, e, nil)
		}
		ldapstub.Write(c, msg, ldapstub.Result(ldap.ApplicationSearchResultDone, ldap.LDAPResultSuccess, ""), nil)
		return true
	})
	s, err := New(&config.Connector{Name: "ol", Type: dirtype.OpenLDAP, Host: "127.0.0.1", Port: port, Encryption: config.EncryptionNone,
		RootDN: "dc=example,dc=test", UserFilter: "(objectClass=inetOrgPerson)", GroupFilter: "(objectClass=groupOfNames)"},
		slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := ldap.DialURL(fmt.Sprintf("ldap://127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	var refs []idRef
	known := dirsync.Known{}
	var want []string
	for i := range n {
		refs = append(refs, idRef{id: id(i), assertion: "(entryUUID=" + id(i) + ")"})
		if i%3 == 0 {
			known[id(i)] = 1
		}
		switch {
		case present(i) && inScope(i):
			want = append(want, "upsert "+id(i))
		case i%3 == 0:
			want = append(want, "delete "+id(i))
		}
	}
	var got []string
	var cs dirsync.ChangeSet
	err = s.reread(t.Context(), conn, refs, known, &cs, func(ch dirsync.Change) error {
		if ch.Upsert != nil {
			got = append(got, "upsert "+ch.Upsert.ID)
		} else {
			got = append(got, "delete "+ch.DeleteID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("changes:\n got %q\nwant %q", got, want)
	}
	if want := int32(3); searches.Load() != want { // 100 + 100 + 50
		t.Errorf("%d searches for %d entries, want %d", searches.Load(), n, want)
	}
	if cs.Read != n/2 {
		t.Errorf("Read %d, want %d", cs.Read, n/2)
	}
}
