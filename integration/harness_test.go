package integration

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/authn"
	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/internal/testenv"
	"github.com/dirgate/dirgate/passwd"
	"github.com/dirgate/dirgate/proxy"
	dirsync "github.com/dirgate/dirgate/sync"
	"github.com/dirgate/dirgate/sync/ldapsource"
)

// env is the parsed test environment file.
type env = testenv.Env

func loadEnv(t testing.TB) env { return testenv.Load(t) }

// serviceDN/servicePW is the service account configured on dirgate.
const (
	serviceDN = "cn=app,ou=services,dc=dirgate"
	servicePW = "app-secret"
)

var serviceHash = func() string {
	h, err := passwd.Hash(servicePW)
	if err != nil {
		panic(err)
	}
	return h
}()

// connectorYAML describes the OpenLDAP test upstream as a connector; extra
// is appended to the connector mapping (indented by 4 spaces).
func connectorYAML(t testing.TB, e env, name, host, alternate string, extra ...string) string {
	t.Helper()
	t.Setenv("DIRGATE_IT_SYNC_PW", e.Get(t, "DIRGATE_OL_SYNC_PW"))
	var b strings.Builder
	fmt.Fprintf(&b, "  - name: %s\n    type: openldap\n    host: %s\n", name, host)
	if alternate != "" {
		fmt.Fprintf(&b, "    alternate_host: %s\n", alternate)
	}
	fmt.Fprintf(&b, "    port: %s\n    encryption: strict\n    tls_mode: ldaps\n    ca_file: %s\n", e.Get(t, "DIRGATE_OL_LDAPS_PORT"), e.Get(t, "DIRGATE_OL_CA"))
	fmt.Fprintf(&b, "    bind_dn: %s\n    bind_password_env: DIRGATE_IT_SYNC_PW\n    root_dn: %s\n", e.Get(t, "DIRGATE_OL_SYNC_DN"), e.Get(t, "DIRGATE_OL_BASE"))
	fmt.Fprintf(&b, "    timeout: 3s\n    safety:\n      max_deletes: 100000\n      max_delete_percent: 100\n")
	for _, x := range extra {
		fmt.Fprintf(&b, "    %s\n", x)
	}
	return b.String()
}

func parseConfig(t testing.TB, connectors string, extraTop ...string) *config.Config {
	t.Helper()
	y := fmt.Sprintf("cache:\n  dir: %s\nldap:\n  listen: 127.0.0.1:0\n  size_limit: 500\nservice_accounts:\n  - dn: %s\n    password_hash: %q\nconnectors:\n%s",
		t.TempDir(), serviceDN, serviceHash, connectors)
	for _, x := range extraTop {
		y += x + "\n"
	}
	cfg, err := config.Parse("it.yaml", []byte(y))
	if err != nil {
		t.Fatalf("config:\n%s\n%v", y, err)
	}
	return cfg
}

// gateway is dirgate assembled in-process: cache, sync engine, LDAP server.
type gateway struct {
	cfg    *config.Config
	store  *cache.Store
	engine *dirsync.Engine
	addr   string
	log    *slog.Logger
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func startGateway(t testing.TB, cfg *config.Config) *gateway {
	t.Helper()
	log := testLogger(t)
	// HotIndex as dirgate serve has it, so the comparisons with the real
	// servers go through the in-memory index.
	store, err := cache.Open(cfg.Cache.Dir, cache.Options{Logger: log, HotIndex: true})
	if err != nil {
		t.Fatal(err)
	}
	auth, err := authn.New(cfg, store, store.States(), log)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := proxy.New(cfg, store, auth, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln, false) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		store.Close()
	})
	return &gateway{cfg: cfg, store: store, engine: dirsync.New(store, store.States(), log), addr: ln.Addr().String(), log: log}
}

func (g *gateway) sync(t testing.TB, name string, o dirsync.Options, opts ...ldapsource.Option) (*dirsync.Result, error) {
	t.Helper()
	c, ok := g.cfg.Connector(name)
	if !ok {
		t.Fatalf("no connector %s", name)
	}
	src, err := ldapsource.New(c, g.log, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return g.engine.Run(context.Background(), c, src, o)
}

func (g *gateway) dial(t testing.TB) *ldap.Conn {
	t.Helper()
	c, err := ldap.DialURL("ldap://" + g.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (g *gateway) dialService(t testing.TB) *ldap.Conn {
	t.Helper()
	c := g.dial(t)
	if err := c.Bind(serviceDN, servicePW); err != nil {
		t.Fatalf("service bind: %v", err)
	}
	return c
}

// dialUpstream connects to the test slapd as its sync account (unlimited
// size limit), the reference the gateway's answers are compared with.
func dialUpstream(t testing.TB, e env) *ldap.Conn {
	t.Helper()
	c, err := ldap.DialURL(e.Get(t, "DIRGATE_OL_URL"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Bind(e.Get(t, "DIRGATE_OL_SYNC_DN"), e.Get(t, "DIRGATE_OL_SYNC_PW")); err != nil {
		t.Fatal(err)
	}
	return c
}
