package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/dirgate/dirgate/internal/testenv"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pgURL is the test PostgreSQL: DIRGATE_PG_URL, else the test environment
// file (which skips, or fails under DIRGATE_REQUIRE_UPSTREAMS=1).
func pgURL(t *testing.T) string {
	t.Helper()
	if u := os.Getenv("DIRGATE_PG_URL"); u != "" {
		return u
	}
	return testenv.PostgresURL(t)
}

// testDB is one test's private schema with the lease table migrated.
type testDB struct {
	url    string
	schema string
	pool   *pgxpool.Pool
}

// newTestDB creates a schema for this test only (dropped at cleanup) and a
// pool whose connections use it.
func newTestDB(t *testing.T) *testDB {
	t.Helper()
	ctx := context.Background()
	url := pgURL(t)
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	schema := "lease_test_" + hex.EncodeToString(b)
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), url)
		if err != nil {
			t.Errorf("drop schema: %v", err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	})
	d := &testDB{url: url, schema: schema}
	d.pool = d.newPool(t, "")
	if err := Migrate(ctx, d.pool); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return d
}

// newPool opens a pool on the test schema, through addr ("host:port") when
// given instead of the server's own address.
func (d *testDB) newPool(t *testing.T, addr string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(d.url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = d.schema
	cfg.ConnConfig.ConnectTimeout = 2 * time.Second
	if addr != "" {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		cfg.ConnConfig.Host = host
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			t.Fatal(err)
		}
		cfg.ConnConfig.Port = uint16(p)
		cfg.ConnConfig.Fallbacks = nil
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// serverAddr is the PostgreSQL server's host:port.
func (d *testDB) serverAddr(t *testing.T) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(d.url)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
}

// dbExpired reports whether the lease row has expired by the database clock.
func (d *testDB) dbExpired(t *testing.T, name string) bool {
	t.Helper()
	var expired bool
	err := d.pool.QueryRow(context.Background(),
		`SELECT expires_at <= clock_timestamp() FROM leader_lease WHERE name = $1`, name).Scan(&expired)
	if err != nil {
		t.Fatalf("read lease: %v", err)
	}
	return expired
}

// proxy forwards TCP to the database until cut, which drops every
// connection and refuses new ones, or stalled, which keeps connections open
// but forwards nothing (a silent network partition).
type proxy struct {
	ln      net.Listener
	mu      sync.Mutex
	conns   []net.Conn
	gate    sync.RWMutex // write-locked while stalled
	stalled bool
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go p.forward(s, c)
			go p.forward(c, s)
		}
	}()
	t.Cleanup(p.cut)
	return p
}

// forward copies src to dst, holding each chunk while the proxy is stalled.
func (p *proxy) forward(dst, src net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.gate.RLock()
			_, werr := dst.Write(buf[:n])
			p.gate.RUnlock()
			if werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) stall() {
	p.gate.Lock()
	p.mu.Lock()
	p.stalled = true
	p.mu.Unlock()
}

func (p *proxy) cut() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	if p.stalled {
		p.stalled = false
		p.gate.Unlock()
	}
}

// runLease runs l until the test ends, returning its status reports.
func runLease(t *testing.T, l *Lease) (<-chan Status, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan Status, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := l.Run(ctx, func(s Status) { ch <- s }); err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return ch, cancel
}

// next waits for l's next status report.
func next(t *testing.T, ch <-chan Status, within time.Duration) Status {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(within):
		t.Fatalf("no leadership change within %v", within)
		return Status{}
	}
}

func newLease(t *testing.T, db DB, holder string, cfg Config) *Lease {
	t.Helper()
	cfg.Holder = holder
	if cfg.Name == "" {
		cfg.Name = "sync"
	}
	l, err := New(db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// nextLeader waits for l's first report, which must be leadership.
func nextLeader(t *testing.T, ch <-chan Status) Status {
	t.Helper()
	s := next(t, ch, 10*time.Second)
	if !s.Leader {
		t.Fatalf("first report %+v, want leadership", s)
	}
	return s
}

// createWrites creates the table write records leader writes in.
func (d *testDB) createWrites(t *testing.T) {
	t.Helper()
	if _, err := d.pool.Exec(context.Background(), `CREATE TABLE writes (epoch bigint NOT NULL)`); err != nil {
		t.Fatal(err)
	}
}

// mustAcquire takes the lease once, as a leader that then never renews (a
// crashed or SIGSTOPped process).
func mustAcquire(t *testing.T, l *Lease) Fence {
	t.Helper()
	f, ok, err := l.acquire(context.Background())
	if err != nil || !ok {
		t.Fatalf("acquire: ok=%v err=%v", ok, err)
	}
	return f
}

// write records epoch in a table through a fenced transaction.
func write(ctx context.Context, db DB, f Fence) error {
	return f.Do(ctx, db, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO writes (epoch) VALUES ($1)`, f.Epoch)
		return err
	})
}

func isFenced(err error) bool { return errors.Is(err, ErrFenced) }
