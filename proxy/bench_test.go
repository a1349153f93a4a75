package proxy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/authn"
	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/passwd"
)

// BenchmarkSearchByMail measures the search path end to end (go-ldap client
// on loopback, equality on mail over 20,000 cached users).
func BenchmarkSearchByMail(b *testing.B) {
	store, err := cache.Open(b.TempDir(), cache.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	g, _ := store.NewGeneration("c")
	const n = 20000
	for i := range n {
		mail := fmt.Sprintf("user%05d@example.test", i)
		_ = g.Put(&cache.Entry{ID: fmt.Sprintf("id-%d", i), DN: fmt.Sprintf("uid=user%05d,ou=people,dc=example,dc=test", i), Kind: cache.KindUser,
			Addresses: []string{mail}, Attrs: []cache.Attr{{Name: "objectClass", Values: []string{"inetOrgPerson"}}, {Name: "uid", Values: []string{fmt.Sprintf("user%05d", i)}},
				{Name: "cn", Values: []string{fmt.Sprintf("Test User %05d", i)}}, {Name: "mail", Values: []string{mail}}, {Name: "sn", Values: []string{"User"}}}})
	}
	if err := g.Commit(context.Background(), nil, nil); err != nil {
		b.Fatal(err)
	}
	h, _ := passwd.Hash("pw")
	cfg, err := config.Parse("b.yaml", []byte(fmt.Sprintf("cache: {dir: %s}\nservice_accounts: [{dn: \"cn=app\", password_hash: %q}]\n"+
		"connectors: [{name: c, type: openldap, host: 127.0.0.1, encryption: none, root_dn: \"dc=example,dc=test\"}]\n", b.TempDir(), h)))
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	// The service account's bind goes through authn like every password.
	auth, err := authn.New(cfg, store, store.States(), log)
	if err != nil {
		b.Fatal(err)
	}
	srv, err := New(cfg, store, auth, nil, log)
	if err != nil {
		b.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go func() { _ = srv.Serve(ln, false) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	c, err := ldap.DialURL("ldap://" + ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if err := c.Bind("cn=app", "pw"); err != nil {
		b.Fatal(err)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	b.ResetTimer()
	for b.Loop() {
		res, err := c.Search(ldap.NewSearchRequest("dc=example,dc=test", ldap.ScopeWholeSubtree, 0, 0, 0, false,
			fmt.Sprintf("(mail=user%05d@example.test)", rnd.IntN(n)), []string{"cn", "mail", "uid"}, nil))
		if err != nil || len(res.Entries) != 1 {
			b.Fatalf("%v %d", err, len(res.Entries))
		}
	}
}
