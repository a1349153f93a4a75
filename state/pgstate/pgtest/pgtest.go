// Package pgtest gives tests of the PostgreSQL state stores a private,
// migrated schema of the test database (cluster/schema/pgtest's), stores on
// it as several replicas have them, and a TCP proxy that cuts the database
// away.
package pgtest

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	schematest "github.com/dirgate/dirgate/cluster/schema/pgtest"
	"github.com/dirgate/dirgate/state/pgstate"
)

// Key is the signing-key encryption key every test replica shares.
var Key = bytes.Repeat([]byte{7}, 32)

// DB is one test's private schema with pgstate's tables.
type DB struct{ *schematest.DB }

// New creates and migrates the schema (see schematest.New for the
// server and when the test is skipped).
func New(t testing.TB) *DB {
	t.Helper()
	d := &DB{schematest.New(t)}
	if err := pgstate.Migrate(context.Background(), d.DB.Pool); err != nil {
		t.Fatal(err)
	}
	return d
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

// Store returns a store on the schema, as one replica has it (through addr
// when not empty).
func (d *DB) Store(t testing.TB, addr string) *pgstate.Store {
	t.Helper()
	s, err := pgstate.New(d.PoolVia(t, addr), Key)
	if err != nil {
		t.Fatal(err)
	}
	return s
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
// connection and refuses new ones until Restore.
type Proxy struct {
	target string
	mu     sync.Mutex
	conns  []net.Conn
	cut    bool
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
		go forward(s, c)
		go forward(c, s)
	}
}

func forward(dst, src net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
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
