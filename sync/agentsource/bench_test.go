package agentsource

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/authn"
	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/internal/ldapstub"
	dirsync "github.com/dirgate/dirgate/sync"
	"github.com/dirgate/dirgate/sync/agentsource/agenttest"
	"github.com/dirgate/dirgate/sync/ldapsource"
)

// stubDirectory serves a directory of n users and n/100 groups of 100
// members on an LDAP stub (serveDirectory).
func stubDirectory(b testing.TB, n int) *config.Connector {
	var entries []*ber.Packet
	for i := range n {
		entries = append(entries, searchEntry(fmt.Sprintf("uid=user%06d,ou=people,dc=corp,dc=example", i), map[string][]string{
			"objectClass": {"inetOrgPerson", "organizationalPerson", "person"}, "entryUUID": {fmt.Sprintf("00000000-0000-0000-0000-%012d", i)},
			"uid": {fmt.Sprintf("user%06d", i)}, "cn": {fmt.Sprintf("User %d", i)}, "sn": {fmt.Sprint("Number", i)},
			"mail": {fmt.Sprintf("user%06d@corp.example", i)}, "description": {strings.Repeat("d", 100)}}))
	}
	for g := range n / 100 {
		var members []string
		for i := range 100 {
			members = append(members, fmt.Sprintf("uid=user%06d,ou=people,dc=corp,dc=example", g*100+i))
		}
		entries = append(entries, searchEntry(fmt.Sprintf("cn=group%d,ou=groups,dc=corp,dc=example", g), map[string][]string{
			"objectClass": {"groupOfNames"}, "entryUUID": {fmt.Sprintf("00000000-0000-0000-0001-%012d", g)}, "cn": {fmt.Sprint("group", g)}, "member": members}))
	}
	return serveDirectory(b, entries)
}

// BenchmarkFullRead runs full syncs of a stub directory of 20,000 users
// into an on-disk cache, read directly and through a real agent and hub in
// this process (the agent's cost is the ratio of the two): fill, into an
// empty cache, and reread, of a cache that holds everything already.
func BenchmarkFullRead(b *testing.B) {
	const users = 20_000
	conn := stubDirectory(b, users)
	direct, err := ldapsource.New(conn, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	h := agenttest.NewHub(b)
	h.StartAgent(b, conn)
	via, err := New(h.Hub, conn)
	if err != nil {
		b.Fatal(err)
	}
	for _, s := range []struct {
		name string
		src  dirsync.Source
	}{{"direct", direct}, {"agent", via}} {
		run := func(b *testing.B, eng *dirsync.Engine) *dirsync.Result {
			res, err := eng.Run(b.Context(), conn, s.src, dirsync.Options{Mode: dirsync.ModeFull})
			if err != nil {
				b.Fatalf("run: %v", err)
			}
			return res
		}
		open := func(b *testing.B) (*cache.Store, *dirsync.Engine) {
			store, err := cache.Open(b.TempDir(), cache.Options{})
			if err != nil {
				b.Fatal(err)
			}
			return store, dirsync.New(store, store.States(), nil)
		}
		b.Run("fill/"+s.name, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				store, eng := open(b)
				b.StartTimer()
				if res := run(b, eng); res.Added != users+users/100 {
					b.Fatalf("added %d", res.Added)
				}
				b.StopTimer()
				store.Close()
				b.StartTimer()
			}
		})
		b.Run("reread/"+s.name, func(b *testing.B) {
			store, eng := open(b)
			defer store.Close()
			run(b, eng)
			for b.Loop() {
				if res := run(b, eng); res.Added != 0 {
					b.Fatalf("added %d", res.Added)
				}
			}
		})
	}
}

// BenchmarkCheck runs password checks, eight at a time, against an LDAP
// stub that accepts every bind: directly with authn's pooled checker, and
// through a real agent and hub in this process.
func BenchmarkCheck(b *testing.B) {
	port := ldapstub.Serve(b, func(c net.Conn, msg int64, op *ber.Packet) bool {
		if op.Tag != ldap.ApplicationBindRequest {
			return false
		}
		ldapstub.Write(c, msg, ldapstub.Result(ldap.ApplicationBindResponse, ldap.LDAPResultSuccess, ""), nil)
		return true
	})
	conn := &config.Connector{Name: "corp", Type: "openldap", Host: "127.0.0.1", Port: port, Encryption: config.EncryptionNone,
		RootDN: "dc=corp,dc=example", UserFilter: "(objectClass=inetOrgPerson)", GroupFilter: "(objectClass=groupOfNames)",
		Timeout: config.Duration(time.Minute)}
	direct, err := authn.NewLDAPChecker(conn, 16)
	if err != nil {
		b.Fatal(err)
	}
	defer direct.Close()
	h := agenttest.NewHub(b)
	h.StartAgent(b, conn)
	via := Checker{Hub: h.Hub}
	user := entry(1)
	for _, s := range []struct {
		name  string
		check func(ctx context.Context) error
	}{
		{"direct", func(ctx context.Context) error { _, err := direct.Check(ctx, user.DN, "pw"); return err }},
		{"agent", func(ctx context.Context) error { _, err := via.Check(ctx, "corp", user, "pw"); return err }},
	} {
		b.Run(s.name, func(b *testing.B) {
			b.SetParallelism(4) // 8 at a time on 2 CPUs
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := s.check(context.Background()); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
