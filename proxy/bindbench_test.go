package proxy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/authn"
	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/demodir"
	dirsync "github.com/dirgate/dirgate/sync"
	"github.com/dirgate/dirgate/sync/ldapsource"
)

// BenchmarkBind compares a bind by email through dirgate with the same
// bind by DN made directly to the (in-process demo) upstream.
func BenchmarkBind(b *testing.B) {
	up, err := demodir.Start("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer up.Stop()
	b.Setenv("DIRGATE_BENCH_SYNC_PW", demodir.SyncPassword)
	cfg, err := config.Parse("b.yaml", []byte(fmt.Sprintf(`cache: {dir: %s}
connectors: [{name: demo, type: openldap, host: 127.0.0.1, port: %d, encryption: none, bind_dn: %q, bind_password_env: DIRGATE_BENCH_SYNC_PW, root_dn: %q}]
`, b.TempDir(), up.Port(), demodir.SyncDN, demodir.Base)))
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := cache.Open(cfg.Cache.Dir, cache.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	src, _ := ldapsource.New(&cfg.Connectors[0], log)
	if _, err := dirsync.New(store, store.States(), log).Run(context.Background(), &cfg.Connectors[0], src, dirsync.Options{}); err != nil {
		b.Fatal(err)
	}
	auth, err := authn.New(cfg, store, store.States(), log)
	if err != nil {
		b.Fatal(err)
	}
	defer auth.Close()
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
	for _, c := range []struct{ name, addr, login string }{
		{"direct", up.Addr(), "uid=bob,ou=people,dc=demo,dc=dirgate"},
		{"dirgate", ln.Addr().String(), "bob@demo.dirgate"},
	} {
		b.Run(c.name, func(b *testing.B) {
			conn, err := ldap.DialURL("ldap://" + c.addr)
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			for b.Loop() {
				if err := conn.Bind(c.login, "bob-pw"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
