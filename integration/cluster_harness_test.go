package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/jackc/pgx/v5"

	"github.com/dirgate/dirgate/internal/testenv"
	"github.com/dirgate/dirgate/passwd"
)

// The cluster tests run real `dirgate serve` processes: three replicas (and
// sometimes a fourth) on loopback, one PostgreSQL database of their own, and a
// private slapd (scripts/testenv/openldap.sh) that the tests change freely,
// reached through a gate (a TCP relay the test can hold mid-sync).

// Settings every replica of a test cluster shares. The lease is short so
// that takeovers are quick; the change-log poll is the safety net only.
const (
	clusterLeaseTTL   = 3 * time.Second
	clusterConnector  = "corp"
	clusterClientID   = "rp"
	clusterClientPW   = "rp-secret"
	clusterRedirect   = "http://127.0.0.1/rp/callback"
	clusterAdminToken = "cluster-test-admin-token-0123456789"
)

// TestMain removes the dirgate binary the cluster tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if dirgateBuild.dir != "" {
		os.RemoveAll(dirgateBuild.dir)
	}
	os.Exit(code)
}

var dirgateBuild struct {
	once      sync.Once
	dir, path string
	err       error
}

// dirgateBinary builds cmd/dirgate once per test run. It is built without
// the race detector: four race-instrumented servers syncing at once would
// not fit the suite's time on two cores; the packages' own tests run -race.
func dirgateBinary(t testing.TB) string {
	t.Helper()
	dirgateBuild.once.Do(func() {
		dirgateBuild.dir, dirgateBuild.err = os.MkdirTemp("", "dirgate-cluster-bin-")
		if dirgateBuild.err != nil {
			return
		}
		_, here, _, _ := runtime.Caller(0)
		dirgateBuild.path = filepath.Join(dirgateBuild.dir, "dirgate")
		cmd := exec.Command("go", "build", "-o", dirgateBuild.path, "./cmd/dirgate")
		cmd.Dir = filepath.Join(filepath.Dir(here), "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			dirgateBuild.err = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if dirgateBuild.err != nil {
		t.Fatal(dirgateBuild.err)
	}
	return dirgateBuild.path
}

var (
	hashOnce                   sync.Once
	clusterServiceHash, rpHash string
)

// clusterHashes hashes the service account's and the client's secrets once
// (a hash takes a noticeable share of a core).
func clusterHashes(t testing.TB) (string, string) {
	hashOnce.Do(func() {
		var err error
		if clusterServiceHash, err = passwd.Hash(servicePW); err == nil {
			rpHash, err = passwd.Hash(clusterClientPW)
		}
		if err != nil {
			panic(err)
		}
	})
	return clusterServiceHash, rpHash
}

// waitFor polls f every 100 ms until it returns nil, failing the test with
// f's last error after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// clusterOptions vary a test cluster.
type clusterOptions struct {
	// privatePostgres starts a PostgreSQL instance for this cluster alone
	// (the test stops and restarts it); otherwise the cluster gets a
	// database of its own on the environment's PostgreSQL.
	privatePostgres bool
	// maxLag is cluster.max_lag; default 30s.
	maxLag time.Duration
	// users is the private slapd's seed size; default 2000.
	users int
}

// cluster is a test cluster: its upstream, database and replicas.
type cluster struct {
	t        *testing.T
	opts     clusterOptions
	dir      string
	upstream testenv.Env       // the private slapd's environment (DIRGATE_OL_*)
	gate     *gate             // the replicas' way to slapd
	pg       *testenv.Instance // the private PostgreSQL, nil when shared
	// dbURL is the cluster's database without the password (the replicas
	// read it from DIRGATE_IT_PG_PASSWORD); dbPassword is that password.
	dbURL, dbPassword string
	keyFile           string
	lb                *httptest.Server // the issuer: a load balancer over the replicas
	next              atomic.Int64     // the LB's round robin

	mu       sync.Mutex
	replicas []*replica
}

// newCluster starts the upstream and the database of a cluster; add starts
// its replicas.
func newCluster(t *testing.T, o clusterOptions) *cluster {
	t.Helper()
	if o.maxLag == 0 {
		o.maxLag = 30 * time.Second
	}
	if o.users == 0 {
		o.users = 2000
	}
	testenv.Load(t)
	c := &cluster{t: t, opts: o, dir: t.TempDir()}
	ol := testenv.StartInstance(t, "openldap.sh", "OL_DIR", "OL_PORT="+testenv.FreePort(t), "OL_LDAPS_PORT="+testenv.FreePort(t),
		"OL_USERS="+strconv.Itoa(o.users))
	c.upstream = ol.Env
	c.gate = newGate(t, net.JoinHostPort(c.upstream.Get(t, "DIRGATE_OL_HOST"), c.upstream.Get(t, "DIRGATE_OL_LDAPS_PORT")))

	var admin string
	if o.privatePostgres {
		c.pg = testenv.StartInstance(t, "postgres.sh", "PG_DIR", "PG_PORT="+testenv.FreePort(t))
		admin = c.pg.Env.Get(t, "DIRGATE_PG_URL")
	} else {
		admin = testenv.PostgresURL(t)
	}
	c.dbURL, c.dbPassword = newDatabase(t, admin)

	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	c.keyFile = filepath.Join(c.dir, "cluster.key")
	if err := os.WriteFile(c.keyFile, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.lb = httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		up := c.running()
		if len(up) == 0 {
			r.SetURL(&url.URL{Scheme: "http", Host: "127.0.0.1:1"})
			return
		}
		r.SetURL(&url.URL{Scheme: "http", Host: up[int(c.next.Add(1))%len(up)].webAddr})
		r.Out.Host = r.In.Host // the issuer's host, as behind a real balancer
	}})
	t.Cleanup(c.lb.Close)
	return c
}

// newDatabase creates a database for one test on the PostgreSQL of url (its
// role may create databases) and drops it when the test ends. It returns
// the database's URL without the password, and the password.
func newDatabase(t *testing.T, adminURL string) (string, string) {
	t.Helper()
	ctx := context.WithoutCancel(t.Context())
	name := "dirgate_cluster_" + strings.ToLower(rand.Text()[:10])
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, adminURL)
		if err != nil {
			return // a private instance is already gone with its database
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(adminURL)
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := u.User.Password()
	u.User = url.User(u.User.Username())
	u.Path = "/" + name
	return u.String(), pw
}

// db connects to the cluster's database, for the test's own queries.
func (c *cluster) db(t testing.TB) *pgx.Conn {
	t.Helper()
	u, _ := url.Parse(c.dbURL)
	u.User = url.UserPassword(u.User.Username(), c.dbPassword)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatalf("connect to the cluster's database: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// running returns the replicas whose process runs and is not stopped.
func (c *cluster) running() []*replica {
	c.mu.Lock()
	defer c.mu.Unlock()
	var up []*replica
	for _, r := range c.replicas {
		if r.alive() && !r.paused.Load() {
			up = append(up, r)
		}
	}
	return up
}

// replica is one `dirgate serve` process of a test cluster.
type replica struct {
	c                            *cluster
	name                         string
	ldapAddr, webAddr, adminAddr string
	cfgPath, logPath             string
	cmd                          *exec.Cmd
	done                         chan struct{}
	paused                       atomic.Bool
}

// add starts the next replica (r1, r2, ...). It returns once the process
// answers on its admin listener; it has not necessarily synced.
func (c *cluster) add(t *testing.T) *replica {
	t.Helper()
	c.mu.Lock()
	name := fmt.Sprintf("r%d", len(c.replicas)+1)
	c.mu.Unlock()
	dir := filepath.Join(c.dir, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	r := &replica{c: c, name: name, cfgPath: filepath.Join(dir, "dirgate.yaml"), logPath: filepath.Join(dir, "dirgate.log"),
		ldapAddr: "127.0.0.1:" + testenv.FreePort(t), webAddr: "127.0.0.1:" + testenv.FreePort(t), adminAddr: "127.0.0.1:" + testenv.FreePort(t)}
	svcHash, clientHash := clusterHashes(t)
	up := c.upstream
	y := fmt.Sprintf(`cache: {dir: %s}
ldap: {listen: %s, size_limit: 5000}
service_accounts:
  - dn: %s
    password_hash: %q
connectors:
  - name: %s
    type: openldap
    host: 127.0.0.1
    port: %s
    encryption: strict
    tls_mode: ldaps
    ca_file: %s
    bind_dn: %s
    bind_password_env: DIRGATE_IT_SYNC_PW
    root_dn: %s
    acknowledge_disabled_accounts: true
    page_size: 100
    timeout: 60s
    safety: {max_deletes: 100000, max_delete_percent: 100}
oidc:
  issuer: %s
  listen: %s
  clients:
    - id: %s
      secret_hash: %q
      redirect_uris: [%s]
admin:
  listen: %s
  token_env: DIRGATE_IT_ADMIN_TOKEN
cluster:
  postgres: %q
  postgres_password_env: DIRGATE_IT_PG_PASSWORD
  encryption_key_file: %s
  replica_name: %s
  advertise_admin: http://%s
  lease_ttl: %s
  max_lag: %s
  poll_interval: 1s
log: {level: debug}
`, filepath.Join(dir, "cache"), r.ldapAddr, serviceDN, svcHash, clusterConnector, c.gate.port(),
		up.Get(t, "DIRGATE_OL_CA"), up.Get(t, "DIRGATE_OL_SYNC_DN"), up.Get(t, "DIRGATE_OL_BASE"),
		c.lb.URL, r.webAddr, clusterClientID, clientHash, clusterRedirect,
		r.adminAddr, c.dbURL, c.keyFile, name, r.adminAddr, clusterLeaseTTL, c.opts.maxLag)
	if err := os.WriteFile(r.cfgPath, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(r.logPath)
	if err != nil {
		t.Fatal(err)
	}
	r.cmd = exec.Command(dirgateBinary(t), "serve", "--config", r.cfgPath)
	r.cmd.Env = append(os.Environ(), r.env()...)
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	if err := r.cmd.Start(); err != nil {
		logf.Close()
		t.Fatal(err)
	}
	r.done = make(chan struct{})
	go func() { _ = r.cmd.Wait(); logf.Close(); close(r.done) }()
	c.mu.Lock()
	c.replicas = append(c.replicas, r)
	c.mu.Unlock()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s (pid %d) log, end:\n%s", r.name, r.cmd.Process.Pid, r.logTail(60))
		}
		r.stop()
	})
	waitFor(t, 60*time.Second, r.name+" answers on its admin listener", func() error {
		if !r.alive() {
			return fmt.Errorf("%s exited: %v\n%s", r.name, r.cmd.ProcessState, r.logTail(30))
		}
		resp, err := http.Get("http://" + r.adminAddr + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
	return r
}

// env is what a replica (or a CLI run with its configuration) needs in its
// environment: the secrets its configuration names.
func (r *replica) env() []string {
	return []string{"DIRGATE_IT_SYNC_PW=" + r.c.upstream["DIRGATE_OL_SYNC_PW"], "DIRGATE_IT_PG_PASSWORD=" + r.c.dbPassword,
		"DIRGATE_IT_ADMIN_TOKEN=" + clusterAdminToken}
}

func (r *replica) alive() bool {
	select {
	case <-r.done:
		return false
	default:
		return true
	}
}

func (r *replica) signal(t testing.TB, s syscall.Signal) {
	t.Helper()
	if err := r.cmd.Process.Signal(s); err != nil {
		t.Fatalf("%s: signal %v: %v", r.name, s, err)
	}
}

// kill ends the replica with SIGKILL (no shutdown code runs) and waits.
func (r *replica) kill(t testing.TB) {
	t.Helper()
	r.signal(t, syscall.SIGKILL)
	<-r.done
}

// pause stops the replica with SIGSTOP: it holds its connections and
// does nothing, as a process stalled by the machine would.
func (r *replica) pause(t testing.TB) {
	t.Helper()
	r.paused.Store(true)
	r.signal(t, syscall.SIGSTOP)
}

// resume continues a paused replica.
func (r *replica) resume(t testing.TB) {
	t.Helper()
	r.signal(t, syscall.SIGCONT)
	r.paused.Store(false)
}

// stop shuts the replica down (SIGINT), killing it after 15 s.
func (r *replica) stop() {
	if !r.alive() {
		return
	}
	if r.paused.Load() {
		_ = r.cmd.Process.Signal(syscall.SIGCONT)
	}
	_ = r.cmd.Process.Signal(os.Interrupt)
	select {
	case <-r.done:
	case <-time.After(15 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

// logText is the replica's whole log so far.
func (r *replica) logText() string {
	b, _ := os.ReadFile(r.logPath)
	return string(b)
}

// logLines returns the lines of the replica's log that match re.
func (r *replica) logLines(re *regexp.Regexp) []string {
	var out []string
	for line := range strings.Lines(r.logText()) {
		if re.MatchString(line) {
			out = append(out, strings.TrimRight(line, "\n"))
		}
	}
	return out
}

func (r *replica) logTail(n int) string {
	lines := strings.Split(strings.TrimRight(r.logText(), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// dialLDAP connects to the replica's LDAP listener as the service account.
func (r *replica) dialLDAP() (*ldap.Conn, error) {
	conn, err := ldap.DialURL("ldap://"+r.ldapAddr, ldap.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}))
	if err != nil {
		return nil, err
	}
	conn.SetTimeout(30 * time.Second)
	if err := conn.Bind(serviceDN, servicePW); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// api calls the replica's admin API; body (if not nil) is sent as JSON.
func (r *replica) api(ctx context.Context, method, path string, body any) (int, []byte, error) {
	return adminCall(ctx, http.DefaultClient, r.adminAddr, method, path, body)
}

// adminCall calls the admin API at addr with the test's admin token; body
// (if not nil) is sent as JSON.
func adminCall(ctx context.Context, client *http.Client, addr, method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+clusterAdminToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

// metrics scrapes the replica's /metrics: each metric's value, summed over
// its label sets.
func (r *replica) metrics() (map[string]float64, error) {
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + r.adminAddr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics: %s", resp.Status)
	}
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name = name[:i]
		}
		f, err := strconv.ParseFloat(strings.Fields(val)[0], 64)
		if err != nil {
			continue
		}
		m[name] += f
	}
	return m, sc.Err()
}

// isLeader reads the replica's dirgate_cluster_leader gauge.
func (r *replica) isLeader() (bool, error) {
	m, err := r.metrics()
	if err != nil {
		return false, err
	}
	v, ok := m["dirgate_cluster_leader"]
	if !ok {
		return false, errors.New("no dirgate_cluster_leader metric")
	}
	return v == 1, nil
}

// leader waits until exactly one running replica says it leads, and
// returns it.
func (c *cluster) leader(t testing.TB, timeout time.Duration) *replica {
	t.Helper()
	var leader *replica
	waitFor(t, timeout, "one leader", func() error {
		var leaders []string
		leader = nil
		for _, r := range c.running() {
			ok, err := r.isLeader()
			if err != nil {
				return fmt.Errorf("%s: %w", r.name, err)
			}
			if ok {
				leaders = append(leaders, r.name)
				leader = r
			}
		}
		if len(leaders) != 1 {
			return fmt.Errorf("leaders: %v", leaders)
		}
		return nil
	})
	return leader
}

// upstreamConn connects to the private slapd as its administrator.
func (c *cluster) upstreamConn(t testing.TB) *ldap.Conn {
	t.Helper()
	conn, err := ldap.DialURL(c.upstream.Get(t, "DIRGATE_OL_URL"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.Bind(c.upstream.Get(t, "DIRGATE_OL_ADMIN_DN"), c.upstream.Get(t, "DIRGATE_OL_ADMIN_PW")); err != nil {
		t.Fatal(err)
	}
	return conn
}

// addUser creates uid=<uid>,ou=people in the private slapd with the seed's
// user password and mail <uid>@example.test.
func (c *cluster) addUser(t testing.TB, uid string) string {
	t.Helper()
	dn := "uid=" + uid + ",ou=people," + c.upstream.Get(t, "DIRGATE_OL_BASE")
	req := ldap.NewAddRequest(dn, nil)
	req.Attribute("objectClass", []string{"inetOrgPerson"})
	req.Attribute("cn", []string{"Cluster " + uid})
	req.Attribute("sn", []string{uid})
	req.Attribute("uid", []string{uid})
	req.Attribute("mail", []string{uid + "@example.test"})
	req.Attribute("userPassword", []string{c.upstream.Get(t, "DIRGATE_OL_USER_PW")})
	if err := c.upstreamConn(t).Add(req); err != nil {
		t.Fatalf("add %s to slapd: %v", dn, err)
	}
	return dn
}

// directoryQuery is what the replicas must answer exactly as slapd does:
// every user and group with the attributes that carry identity and
// membership.
var directoryQuery = struct {
	filter string
	attrs  []string
}{"(|(objectClass=inetOrgPerson)(objectClass=groupOfNames))", []string{"uid", "cn", "mail", "member", "entryUUID"}}

// upstreamDirectory reads directoryQuery from slapd.
func (c *cluster) upstreamDirectory(t testing.TB) result {
	t.Helper()
	conn, err := ldap.DialURL(c.upstream.Get(t, "DIRGATE_OL_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Bind(c.upstream.Get(t, "DIRGATE_OL_SYNC_DN"), c.upstream.Get(t, "DIRGATE_OL_SYNC_PW")); err != nil {
		t.Fatal(err)
	}
	entries, err := search(t, conn, c.upstream.Get(t, "DIRGATE_OL_BASE"), ldap.ScopeWholeSubtree, directoryQuery.filter, directoryQuery.attrs)
	if err != nil {
		t.Fatal(err)
	}
	return reduce(t, entries)
}

// directory reads directoryQuery from the replica.
func (r *replica) directory(t testing.TB) (result, error) {
	conn, err := r.dialLDAP()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	req := ldap.NewSearchRequest(r.c.upstream.Get(t, "DIRGATE_OL_BASE"), ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		directoryQuery.filter, directoryQuery.attrs, nil)
	res, err := conn.SearchWithPaging(req, 1000)
	if err != nil {
		return nil, err
	}
	got := reduce(t, res.Entries)
	if len(got) != len(res.Entries) {
		return nil, fmt.Errorf("%d entries under %d distinct DNs: some are doubled", len(res.Entries), len(got))
	}
	return got, nil
}

// waitSameAsUpstream waits until every running replica answers
// directoryQuery exactly as slapd does now.
func (c *cluster) waitSameAsUpstream(t testing.TB, timeout time.Duration) {
	t.Helper()
	want := c.upstreamDirectory(t)
	for _, r := range c.running() {
		waitFor(t, timeout, r.name+" serves what slapd holds", func() error {
			got, err := r.directory(t)
			if err != nil {
				return err
			}
			if d := want.diff(got); d != "" {
				return fmt.Errorf("slapd has %d entries, %s %d:\n%s", len(want), r.name, len(got), d)
			}
			return nil
		})
	}
}

// cli runs a dirgate command with the replica's configuration and
// environment and returns its output.
func (r *replica) cli(t testing.TB, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, dirgateBinary(t), append(args, "-c", r.cfgPath)...)
	cmd.Env = append(os.Environ(), r.env()...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
