// Package pgtest gives a test a PostgreSQL schema of its own on the test
// environment's server, dropped when the test ends, so tests and runs do
// not see each other's rows.
package pgtest

import (
	"context"
	"crypto/rand"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dirgate/dirgate/internal/testenv"
)

// URL is the test server: DIRGATE_PG_URL, else the test environment file
// (which skips, or fails when upstreams are required).
func URL(t testing.TB) string {
	t.Helper()
	if u := os.Getenv("DIRGATE_PG_URL"); u != "" {
		return u
	}
	return testenv.PostgresURL(t)
}

// DB is one test's private schema.
type DB struct {
	URL    string // the server's URL
	Schema string // the schema's name
	Pool   *pgxpool.Pool
}

// New creates an empty schema for t and a pool whose connections use it.
func New(t testing.TB) *DB {
	t.Helper()
	ctx := context.Background()
	url := URL(t)
	name := "t_" + strings.ToLower(rand.Text())
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+name); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, url)
		if err == nil {
			_, err = c.Exec(ctx, "DROP SCHEMA "+name+" CASCADE")
			c.Close(ctx)
		}
		if err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	d := &DB{URL: url, Schema: name}
	d.Pool = d.NewPool(t)
	return d
}

// NewPool opens another pool on the schema (a second replica), closed
// when the test ends.
func (d *DB) NewPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(d.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = d.Schema
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// SearchPathURL is the server's URL with the schema as search path, for
// code that opens its own connections from a URL (a config file).
func (d *DB) SearchPathURL() string {
	sep := "?"
	if strings.Contains(d.URL, "?") {
		sep = "&"
	}
	return d.URL + sep + "search_path=" + d.Schema
}

// PoolVia opens a pool on the schema through addr ("host:port"), a proxy,
// instead of the server's own address; "" is the server.
func (d *DB) PoolVia(t testing.TB, addr string) *pgxpool.Pool {
	t.Helper()
	if addr == "" {
		return d.NewPool(t)
	}
	cfg, err := pgxpool.ParseConfig(d.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = d.Schema
	cfg.ConnConfig.ConnectTimeout = 2 * time.Second
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Fallbacks = host, uint16(p), nil
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// Addr is the database server's host:port.
func (d *DB) Addr(t testing.TB) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(d.URL)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
}

// Proxy forwards TCP to the database until Cut, which drops every
// connection and refuses new ones until Restore. After Hang it keeps every
// connection open and forwards nothing: a database host that stopped
// answering.
type Proxy struct {
	target string
	mu     sync.Mutex
	conns  []net.Conn
	cut    bool
	hung   bool
	ln     net.Listener
}

// NewProxy listens on a loopback port and forwards to d's server.
func (d *DB) NewProxy(t testing.TB) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{target: d.Addr(t), ln: ln}
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.Cut()
	})
	return p
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		cut := p.cut
		p.mu.Unlock()
		if cut {
			c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
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
}

func (p *Proxy) forward(dst, src net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		p.mu.Lock()
		hung := p.hung
		p.mu.Unlock()
		if n > 0 && !hung {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Addr is where the proxy listens.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut drops every connection and refuses new ones: the database is
// unreachable.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// Restore forwards new connections again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

// Hang makes the proxy swallow everything from now on.
func (p *Proxy) Hang() {
	p.mu.Lock()
	p.hung = true
	p.mu.Unlock()
}
