package authn

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/demodir"
	"github.com/dirgate/dirgate/internal/testlog"
	dirsync "github.com/dirgate/dirgate/sync"
	"github.com/dirgate/dirgate/sync/ldapsource"
)

// fakeClock is the time the authenticator sees in tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// sleeps records the throttle delays instead of waiting them out.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) wait(_ context.Context, _ time.Time, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return nil
}

func (s *sleeps) take() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.d
	s.d = nil
	return out
}

// forwarder is a TCP relay in front of an upstream that counts the
// connections made through it and the LDAP bind requests sent, can hold
// each bind back for a latency, and can kill or freeze the connections it
// carries: a counting test upstream.
type forwarder struct {
	ln      net.Listener
	target  string
	dials   atomic.Int64
	binds   atomic.Int64
	latency atomic.Int64 // time.Duration added before each bind is relayed

	mu    sync.Mutex
	conns []*relay
}

type relay struct {
	client, server net.Conn
	frozen         atomic.Bool
}

func startForwarder(t *testing.T, target string) *forwarder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &forwarder{ln: ln, target: target}
	go f.serve()
	t.Cleanup(f.stop)
	return f
}

func (f *forwarder) port() int { return f.ln.Addr().(*net.TCPAddr).Port }

func (f *forwarder) serve() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", f.target)
		if err != nil {
			c.Close()
			continue
		}
		f.dials.Add(1)
		r := &relay{client: c, server: s}
		f.mu.Lock()
		f.conns = append(f.conns, r)
		f.mu.Unlock()
		go func() {
			defer c.Close()
			defer s.Close()
			for {
				p, err := ber.ReadPacket(c)
				if err != nil {
					return
				}
				if r.frozen.Load() {
					continue // swallowed: the client waits for an answer
				}
				if len(p.Children) > 1 && p.Children[1].ClassType == ber.ClassApplication && p.Children[1].Tag == 0 {
					f.binds.Add(1)
					time.Sleep(time.Duration(f.latency.Load()))
				}
				if _, err := s.Write(p.Bytes()); err != nil {
					return
				}
			}
		}()
		go func() {
			_, _ = io.Copy(c, s)
			c.Close()
		}()
	}
}

// kill closes every connection relayed so far, as a server restart would.
func (f *forwarder) kill() {
	f.mu.Lock()
	conns := f.conns
	f.conns = nil
	f.mu.Unlock()
	for _, r := range conns {
		r.client.Close()
		r.server.Close()
	}
}

// freeze makes every connection relayed so far swallow what the client
// sends, without closing it: a hung server.
func (f *forwarder) freeze() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.conns {
		r.frozen.Store(true)
	}
}

func (f *forwarder) stop() {
	f.ln.Close()
	f.kill()
}

// demoEnv is the bundled demo directory synced into a cache, with an
// authenticator on it whose clock, sleeps and log the test controls.
type demoEnv struct {
	up    *demodir.Server
	fwd   *forwarder // nil when the connector talks to the demo directly
	cfg   *config.Config
	store *cache.Store
	a     *Authenticator
	clock *fakeClock
	slept *sleeps
	logs  *testlog.Buffer
}

type demoOpt struct {
	auth      string // YAML under auth:
	forwarder bool
	timeout   string // connector timeout
}

func startDemo(t *testing.T, o demoOpt) *demoEnv {
	t.Helper()
	up, err := demodir.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = up.Stop() })
	env := &demoEnv{up: up, clock: newClock(), slept: &sleeps{}, logs: &testlog.Buffer{}}
	port := up.Port()
	if o.forwarder {
		env.fwd = startForwarder(t, up.Addr())
		port = env.fwd.port()
	}
	if o.timeout == "" {
		o.timeout = "5s"
	}
	if o.auth == "" {
		o.auth = "{}"
	}
	t.Setenv("DIRGATE_TEST_SYNC_PW", demodir.SyncPassword)
	y := fmt.Sprintf(`cache: {dir: %s}
connectors:
  - {name: demo, type: openldap, host: 127.0.0.1, port: %d, encryption: none, bind_dn: %q,
     bind_password_env: DIRGATE_TEST_SYNC_PW, root_dn: %q, timeout: %s}
auth: %s
`, t.TempDir(), port, demodir.SyncDN, demodir.Base, o.timeout, o.auth)
	cfg, err := config.Parse("test.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	env.cfg = cfg
	quiet := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		quiet = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	env.store, err = cache.Open(cfg.Cache.Dir, cache.Options{Logger: quiet, InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.store.Close() })
	env.resync(t)
	if env.fwd != nil {
		env.fwd.dials.Store(0)
		env.fwd.binds.Store(0)
	}
	env.a, err = New(cfg, env.store, env.store.States(), slog.New(slog.NewJSONHandler(env.logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.a.Close() })
	env.a.now = env.clock.Now
	env.a.wait = env.slept.wait
	return env
}

// resync runs a sync of the demo connector.
func (env *demoEnv) resync(t *testing.T) {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	src, err := ldapsource.New(&env.cfg.Connectors[0], log)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dirsync.New(env.store, env.store.States(), log).Run(context.Background(), &env.cfg.Connectors[0], src, dirsync.Options{}); err != nil {
		t.Fatal(err)
	}
}

// rewrite replaces the demo connector's cache generation with its current
// entries as changed by edit, as a sync that saw those changes would.
func (env *demoEnv) rewrite(t *testing.T, edit func(e *cache.Entry)) {
	t.Helper()
	var entries []*cache.Entry
	err := env.store.View(context.Background(), func(v *cache.View) error {
		return v.Scan("", func(e *cache.Entry) (bool, error) {
			entries = append(entries, e)
			return true, nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		edit(e)
	}
	putGeneration(t, env.store, "demo", entries...)
}

func (env *demoEnv) login(login, password, remote string) (*Identity, error) {
	return env.a.Login(context.Background(), Attempt{Login: login, Password: password, Remote: remote, Protocol: "ldap"})
}

// cachedAuthenticator is an authenticator for the configuration y over an
// in-memory cache whose generation of conn holds entries, logging JSON to
// logs; the cache and the authenticator close when t ends.
func cachedAuthenticator(t *testing.T, y, conn string, entries []*cache.Entry, logs io.Writer) *Authenticator {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	store, err := cache.Open(cfg.Cache.Dir, cache.Options{Logger: slog.New(slog.DiscardHandler), InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	putGeneration(t, store, conn, entries...)
	a, err := New(cfg, store, store.States(), slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// putGeneration commits a generation of conn holding entries.
func putGeneration(t *testing.T, store *cache.Store, conn string, entries ...*cache.Entry) {
	t.Helper()
	g, err := store.NewGeneration(conn)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := g.Put(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Commit(context.Background(), nil, nil); err != nil {
		t.Fatal(err)
	}
}
