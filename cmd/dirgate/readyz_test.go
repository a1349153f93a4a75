package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	schematest "github.com/dirgate/dirgate/cluster/schema/pgtest"
	"github.com/dirgate/dirgate/demodir"
)

// outageProxy stands between a replica and its database: it forwards,
// refuses connections (the database is down), or accepts them and never
// answers (the database hangs, or the network drops its packets).
type outageProxy struct {
	target string
	ln     net.Listener
	mu     sync.Mutex
	mode   string // "", "refuse", "stall"
	conns  []net.Conn
}

func newOutageProxy(t *testing.T, target string) *outageProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &outageProxy{target: target, ln: ln}
	t.Cleanup(func() { ln.Close(); p.set("refuse") })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			switch p.mode {
			case "refuse":
				c.Close()
			case "stall":
				p.conns = append(p.conns, c)
			default:
				s, err := net.Dial("tcp", p.target)
				if err != nil {
					c.Close()
					break
				}
				p.conns = append(p.conns, c, s)
				go func() { _, _ = io.Copy(s, c); s.Close() }()
				go func() { _, _ = io.Copy(c, s); c.Close() }()
			}
			p.mu.Unlock()
		}
	}()
	return p
}

// set drops every connection and changes the mode; "" forwards again.
func (p *outageProxy) set(mode string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = mode
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// proxiedReplica is one replica whose database is reached through an
// outageProxy, with an LDAP and an OIDC listener.
type proxiedReplica struct {
	testReplica
	ldap, oidc string
	proxy      *outageProxy
	dbUser     string
	dbSchema   string
}

func newProxiedReplica(t *testing.T, maxLag time.Duration) *proxiedReplica {
	t.Helper()
	db := schematest.New(t)
	u, err := url.Parse(db.SearchPathURL())
	if err != nil {
		t.Fatal(err)
	}
	r := &proxiedReplica{proxy: newOutageProxy(t, u.Host), dbUser: u.User.Username(), dbSchema: db.Schema,
		ldap: freePort(t), oidc: freePort(t)}
	pw, _ := u.User.Password()
	u.User, u.Host = url.User(r.dbUser), r.proxy.ln.Addr().String()
	t.Setenv("DIRGATE_TEST_PG_PASSWORD", pw)
	up, err := demodir.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = up.Stop() })
	t.Setenv("DEMO_PW", demodir.SyncPassword)
	t.Setenv("DIRGATE_TEST_ADMIN_TOKEN", "test-admin-token-0123456789")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cluster.key"), []byte(strings.Repeat("ab", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	r.testReplica = testReplica{path: filepath.Join(dir, "a.yaml"), admin: freePort(t)}
	y := fmt.Sprintf("cache: {dir: %s}\nldap: {listen: %q}\nadmin: {listen: %q, token_env: DIRGATE_TEST_ADMIN_TOKEN}\n"+
		"connectors: [{name: demo, type: openldap, host: 127.0.0.1, port: %d, encryption: none, bind_dn: %q, bind_password_env: DEMO_PW, root_dn: %q}]\n"+
		"oidc: {issuer: \"http://%s\", listen: %q, clients: [{id: rp, public: true, redirect_uris: [\"http://127.0.0.1:3000/cb\"]}]}\n"+
		"cluster: {postgres: %q, postgres_password_env: DIRGATE_TEST_PG_PASSWORD, encryption_key_file: cluster.key, replica_name: a, lease_ttl: 2s, poll_interval: 200ms, max_lag: %s}\n",
		filepath.Join(dir, "a"), r.ldap, r.admin, up.Port(), demodir.SyncDN, demodir.Base, r.oidc, r.oidc, u.String(), maxLag)
	if err := os.WriteFile(r.path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return r
}

// get answers GET path on the admin listener: status, body and how long
// it took.
func (r *proxiedReplica) get(path string) (int, string, time.Duration) {
	c := http.Client{Timeout: 30 * time.Second}
	t0 := time.Now()
	resp, err := c.Get("http://" + r.admin + path)
	if err != nil {
		return 0, err.Error(), time.Since(t0)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), time.Since(t0)
}

// TestReadyzWhilePostgresDown: a replica stays ready while its database
// refuses connections or stops answering, as long as its change-log lag
// is within cluster.max_lag; the probe answers promptly, its body names no
// database; once max_lag passed it is unready for the lag alone.
func TestReadyzWhilePostgresDown(t *testing.T) {
	for _, mode := range []string{"refuse", "stall"} {
		t.Run(mode, func(t *testing.T) {
			const maxLag = 6 * time.Second
			r := newProxiedReplica(t, maxLag)
			startServe(t, r.testReplica)
			get := func() (int, string, time.Duration) { return r.get("/readyz") }
			eventually(t, "ready", func() bool { s, _, _ := get(); return s == http.StatusOK })
			req, _ := http.NewRequest("GET", "http://"+r.admin+"/api/v1/cluster", nil)
			req.Header.Set("Authorization", "Bearer test-admin-token-0123456789")
			if resp, err := http.DefaultClient.Do(req); err != nil {
				t.Fatal(err)
			} else {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if !strings.Contains(string(b), `"throttle": {`) {
					t.Errorf("the cluster status does not show where the throttle counts: %s", b)
				}
			}

			r.proxy.set(mode)
			down := time.Now()
			for time.Since(down) < maxLag/2 {
				s, body, took := get()
				if s != http.StatusOK && time.Since(down) < maxLag {
					t.Fatalf("/readyz %v into the outage (max_lag %v): %d %s", time.Since(down).Round(time.Millisecond), maxLag, s, body)
				}
				if took > 3*time.Second {
					t.Fatalf("/readyz took %v while the database was unreachable", took)
				}
				time.Sleep(200 * time.Millisecond)
			}
			var body string
			eventually(t, "unready on the lag", func() bool {
				var s int
				s, body, _ = get()
				return s == http.StatusServiceUnavailable
			})
			if !strings.Contains(body, "max_lag") {
				t.Errorf("unready for another reason than the lag: %s", body)
			}
			for _, secret := range []string{r.dbUser, r.dbSchema, "database", r.proxy.ln.Addr().String()} {
				if secret != "" && strings.Contains(body, secret) {
					t.Errorf("the open /readyz body names %q: %s", secret, body)
				}
			}
			r.proxy.set("")
			eventually(t, "ready again", func() bool { s, _, _ := get(); return s == http.StatusOK })
		})
	}
}
