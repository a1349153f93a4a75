package agentsource

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/internal/ldapstub"
	"github.com/dirgate/dirgate/sync/agentsource/agenttest"
	"github.com/dirgate/dirgate/sync/ldapsource"
)

// searchEntry encodes an LDAP search result entry.
func searchEntry(dn string, attrs map[string][]string) *ber.Packet {
	e := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationSearchResultEntry, nil, "entry")
	e.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, dn, "dn"))
	list := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "attributes")
	for name, vs := range attrs {
		a := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "attribute")
		a.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, name, "type"))
		set := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSet, nil, "vals")
		for _, v := range vs {
			set.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, v, "value"))
		}
		a.AppendChild(set)
		list.AppendChild(a)
	}
	e.AppendChild(list)
	return e
}

// serveDirectory serves entries on an LDAP stub to every search but the
// syncrepl cursor's (a filter that matches nothing: it gets no cookie, so
// the source reads in full only), their answer encoded once per message ID
// so that the stub costs little next to the reads measured; it returns a
// connector that reads it.
func serveDirectory(t testing.TB, entries []*ber.Packet) *config.Connector {
	var mu sync.Mutex
	answers := map[int64][]byte{}
	answer := func(msg int64) []byte {
		mu.Lock()
		defer mu.Unlock()
		if a, ok := answers[msg]; ok {
			return a
		}
		var buf bytes.Buffer
		for _, e := range entries {
			ldapstub.Write(&buf, msg, e, nil)
		}
		answers[msg] = buf.Bytes()
		return answers[msg]
	}
	port := ldapstub.Serve(t, func(c net.Conn, msg int64, op *ber.Packet) bool {
		if op.Tag != ldap.ApplicationSearchRequest {
			return false
		}
		if f, _ := ldap.DecompileFilter(op.Children[6]); !strings.Contains(f, "(!(objectClass=*))") {
			if _, err := c.Write(answer(msg)); err != nil {
				return false
			}
		}
		ldapstub.Write(c, msg, ldapstub.Result(ldap.ApplicationSearchResultDone, ldap.LDAPResultSuccess, ""), nil)
		return true
	})
	return &config.Connector{Name: "corp", Type: "openldap", Host: "127.0.0.1", Port: port, Encryption: config.EncryptionNone,
		RootDN: "dc=corp,dc=example", UserFilter: "(objectClass=inetOrgPerson)", GroupFilter: "(objectClass=groupOfNames)",
		PageSize: 1000, Timeout: config.Duration(time.Minute), FullSyncInterval: config.Duration(time.Hour),
		Safety: config.Safety{MaxDeletes: 1 << 30, MaxDeletePercent: 100}}
}

// TestLargeGroupThroughAgent: a full read through a real agent and hub of
// a directory with a group of 150,000 members (an encoding of about 13
// MiB, more than a frame) passes every entry on as a direct read of the
// same directory does.
func TestLargeGroupThroughAgent(t *testing.T) {
	const users, members = 20, 150_000
	var dir []*ber.Packet
	dns := make([]string, members)
	for i := range dns {
		dns[i] = fmt.Sprintf("uid=user%06d,ou=people,dc=corp,dc=example", i)
	}
	for i := range users {
		dir = append(dir, searchEntry(dns[i], map[string][]string{"objectClass": {"inetOrgPerson"},
			"entryUUID": {fmt.Sprintf("00000000-0000-0000-0000-%012d", i)}, "uid": {fmt.Sprintf("user%06d", i)},
			"mail": {fmt.Sprintf("user%06d@corp.example", i)}}))
	}
	dir = append(dir, searchEntry("cn=all-users,ou=groups,dc=corp,dc=example", map[string][]string{"objectClass": {"groupOfNames"},
		"entryUUID": {"00000000-0000-0000-0001-000000000000"}, "cn": {"all-users"}, "member": dns}))
	conn := serveDirectory(t, dir)

	want := map[string]uint64{}
	direct, err := ldapsource.New(conn, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := direct.Full(t.Context(), func(e *cache.Entry) error { e.Connector = "corp"; e.Normalize(); want[e.ID] = e.Hash(); return nil }); err != nil {
		t.Fatalf("direct read: %v", err)
	}

	h := agenttest.NewHub(t)
	h.StartAgent(t, conn)
	src, err := New(h.Hub, corp)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	largest := 0
	if _, err := src.Full(t.Context(), func(e *cache.Entry) error {
		e.Normalize()
		got[e.ID] = e.Hash()
		largest = max(largest, len(e.Members))
		return nil
	}); err != nil {
		t.Fatalf("read through the agent: %v", err)
	}
	if len(want) != users+1 || largest != members {
		t.Fatalf("%d entries read directly, the largest group through the agent has %d members; want %d and %d", len(want), largest, users+1, members)
	}
	if len(got) != len(want) {
		t.Fatalf("%d entries through the agent, %d directly", len(got), len(want))
	}
	for id, hash := range want {
		if got[id] != hash {
			t.Errorf("entry %s differs through the agent", id)
		}
	}
}
