package client

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/agent/wire"
	"github.com/dirgate/dirgate/authn"
	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/internal/ldapstub"
	"github.com/dirgate/dirgate/internal/testenv"
	"github.com/dirgate/dirgate/internal/testlog"
	dirsync "github.com/dirgate/dirgate/sync"
	"github.com/dirgate/dirgate/sync/ldapsource"
)

// proxy carries every HTTPS connection of this test binary whose host is
// not a loopback address (ProxyFromEnvironment never proxies those): the
// hub reached as hub.test, a name only the proxy resolves.
var proxy *connectProxy

func TestMain(m *testing.M) {
	var err error
	if proxy, err = startProxy(map[string]string{"hub.test": "127.0.0.1"}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Set before anything reads it: ProxyFromEnvironment reads the
	// environment once per process.
	os.Setenv("HTTPS_PROXY", "http://"+proxy.ln.Addr().String())
	for _, k := range []string{"https_proxy", "NO_PROXY", "no_proxy"} {
		os.Unsetenv(k)
	}
	os.Exit(m.Run())
}

// agentFile writes an agent.yaml for connector (its keys, indented by
// two) and loads it.
func agentFile(t *testing.T, hub, connector string) *config.AgentFile {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(path, []byte("hub: "+hub+"\npool_size: 4\nconnector:\n"+connector), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := config.LoadAgentFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// offlineConnector is a connector nothing listens for: tests of the
// channel alone.
const offlineConnector = "  name: corp\n  type: openldap\n  host: 127.0.0.1\n  port: 9\n  encryption: none\n  root_dn: dc=corp,dc=example\n"

// olConnector is the test environment's second slapd (50 users).
func olConnector(t *testing.T, e testenv.Env) string {
	t.Setenv("DIRGATE_TEST_AGENT_OL_PW", e.Get(t, "DIRGATE_OL2_SYNC_PW"))
	return fmt.Sprintf("  name: corp\n  type: openldap\n  host: %s\n  port: %s\n  encryption: none\n  root_dn: %s\n  bind_dn: %s\n  bind_password_env: DIRGATE_TEST_AGENT_OL_PW\n",
		e.Get(t, "DIRGATE_OL2_HOST"), e.Get(t, "DIRGATE_OL2_PORT"), e.Get(t, "DIRGATE_OL2_BASE"), e.Get(t, "DIRGATE_OL2_SYNC_DN"))
}

// enrolled enrolls an agent with hub and starts it; it returns the
// connection the hub got and the agent's log.
func enrolled(t *testing.T, hub *fakeHub, hubURL string, f *config.AgentFile) (*hubConn, *testlog.Buffer) {
	t.Helper()
	id, err := Enroll(context.Background(), EnrollOptions{Hub: hubURL, Token: "good", CASHA256: hub.ca.Fingerprint(),
		StateDir: f.StateDir, Name: "test-agent", Version: "test", Connector: f.Connector.Name})
	if err != nil {
		t.Fatalf("enroll: %v", err)
	}
	logs := &testlog.Buffer{}
	runAgent(t, f, id, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	c := hub.waitConn(t, 30*time.Second)
	if c.hello.AgentID != id.AgentID || c.hello.Connector != "corp" {
		t.Fatalf("hello = %+v", c.hello)
	}
	return c, logs
}

func TestEnroll(t *testing.T) {
	hub := newFakeHub(t, "corp")
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "https://" + dead.Addr().String()
	dead.Close()
	other := newFakeHub(t, "corp") // another CA: a hub impersonated

	first := func(token string) EnrollOptions {
		return EnrollOptions{Hub: hub.url, Token: token, CASHA256: hub.ca.Fingerprint(), StateDir: t.TempDir(), Name: "a", Connector: "corp"}
	}
	good := first("good")
	id, err := Enroll(context.Background(), good)
	if err != nil {
		t.Fatalf("enroll: %v", err)
	}
	st, err := os.Stat(filepath.Join(good.StateDir, keyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v", err, st.Mode())
	}
	loaded, err := LoadIdentity(good.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.AgentID != "agent-1" || loaded.Connector != "corp" || !loaded.CA.Equal(hub.ca.Cert) ||
		!loaded.Cert.Leaf.PublicKey.(*ecdsa.PublicKey).Equal(id.Cert.PrivateKey.(*ecdsa.PrivateKey).Public()) {
		t.Fatalf("stored identity differs: %+v", loaded)
	}

	for _, tc := range []struct {
		name string
		opts func(o *EnrollOptions)
		want error
		sent bool // the token reached the hub
	}{
		{"token reused", func(o *EnrollOptions) {}, ErrTokenUsed, true},
		{"token expired", func(o *EnrollOptions) { o.Token = "expired" }, ErrTokenExpired, true},
		{"token unknown", func(o *EnrollOptions) { o.Token = "nope" }, ErrTokenUnknown, true},
		{"wrong fingerprint", func(o *EnrollOptions) { o.CASHA256 = other.ca.Fingerprint() }, ErrFingerprint, false},
		{"fingerprint with colons and upper case", func(o *EnrollOptions) {
			o.Token = "nope"
			var b strings.Builder
			for i, r := range strings.ToUpper(hub.ca.Fingerprint()) {
				if i > 0 && i%2 == 0 {
					b.WriteByte(':')
				}
				b.WriteRune(r)
			}
			o.CASHA256 = b.String()
		}, ErrTokenUnknown, true},
		{"hub presenting another CA's chain", func(o *EnrollOptions) { o.Hub = other.url }, ErrFingerprint, false},
		{"hub unreachable", func(o *EnrollOptions) { o.Hub = deadURL }, ErrHubUnreachable, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := first("good")
			tc.opts(&o)
			hub.mu.Lock()
			before := hub.enrolls + other.enrolls
			hub.mu.Unlock()
			_, err := Enroll(context.Background(), o)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			hub.mu.Lock()
			sent := hub.enrolls+other.enrolls > before
			hub.mu.Unlock()
			if sent != tc.sent {
				t.Fatalf("token sent = %v, want %v", sent, tc.sent)
			}
			if _, err := os.Stat(filepath.Join(o.StateDir, keyFile)); !os.IsNotExist(err) {
				t.Fatalf("a failed enrollment left a key: %v", err)
			}
		})
	}

	t.Run("token for another connector", func(t *testing.T) {
		hub.mu.Lock()
		hub.tokens["other"] = ""
		hub.mu.Unlock()
		o := first("other")
		o.Connector = "elsewhere"
		if _, err := Enroll(context.Background(), o); !errors.Is(err, ErrTokenConnector) {
			t.Fatalf("err = %v, want %v", err, ErrTokenConnector)
		}
		// The token was not spent: the right agent still enrolls with it.
		if _, err := Enroll(context.Background(), first("other")); err != nil {
			t.Fatalf("enroll after a refusal for another connector: %v", err)
		}
	})
}

func TestReconnectAfterHubRestart(t *testing.T) {
	hub := newFakeHub(t, "corp")
	hub.heartbeat = 200 * time.Millisecond
	f := agentFile(t, hub.url, offlineConnector)
	c, _ := enrolled(t, hub, hub.url, f)
	// Heartbeats flow: the agent answers and sends pings (the fake hub
	// pongs), so a connection that stays up for several beats is live.
	time.Sleep(time.Second)
	select {
	case <-c.done:
		t.Fatal("the connection ended while the hub was up")
	default:
	}
	hub.restart(t)
	c2 := hub.waitConn(t, 30*time.Second)
	// The new connection serves requests.
	id := hub.send(t, c2, &wire.Request{Kind: wire.KindTest}, nil)
	if r := hub.result(t, id); r.Report == nil || r.Report.OK {
		t.Fatalf("test connection through the new connection: %+v", r)
	}
}

func TestProxy(t *testing.T) {
	hub := newFakeHub(t, "corp", "hub.test")
	_, port, _ := net.SplitHostPort(hub.srv.Listener.Addr().String())
	url := "https://hub.test:" + port
	f := agentFile(t, url, offlineConnector)
	// Enrollment and the connection both go through the proxy: nothing
	// else can resolve hub.test.
	c, _ := enrolled(t, hub, url, f)
	if !proxy.seen("hub.test") {
		t.Fatal("the proxy saw no CONNECT to hub.test")
	}
	id := hub.send(t, c, &wire.Request{Kind: wire.KindTest}, nil)
	if r := hub.result(t, id); r.Report == nil {
		t.Fatalf("result through the proxy: %+v", r)
	}
}

func TestCancel(t *testing.T) {
	// A directory that accepts connections and never answers: a read
	// waits until it is canceled (the connector's timeout is far).
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(silent.Addr().String())
	hub := newFakeHub(t, "corp")
	f := agentFile(t, hub.url, strings.Replace(offlineConnector, "port: 9", "port: "+port, 1)+"  timeout: 10m\n")
	c, _ := enrolled(t, hub, hub.url, f)

	start := time.Now()
	full := hub.send(t, c, &wire.Request{Kind: wire.KindFull}, nil)
	time.Sleep(200 * time.Millisecond)
	if err := c.w.Write(&wire.Message{Type: wire.TypeCancel, ID: full}); err != nil {
		t.Fatal(err)
	}
	// A check past its deadline is answered without waiting for the
	// directory either.
	check := hub.send(t, c, &wire.Request{Kind: wire.KindCheck, Deadline: time.Now().Add(300 * time.Millisecond),
		Check: &wire.CheckRequest{DN: "uid=a,dc=corp,dc=example", Password: "pw"}}, nil)
	rep := hub.replyOf(t, full)
	if rep.err != nil || rep.result == nil || rep.result.Error == nil || rep.result.Error.Kind != wire.ErrKindCanceled {
		t.Fatalf("canceled read: %+v (err %v)", rep.result, rep.err)
	}
	if r := hub.result(t, check); authn.ReasonOf(r.Error.Err("corp")) != authn.ReasonUnavailable {
		t.Fatalf("check past its deadline: %+v", r.Error)
	}
	if d := time.Since(start); d > time.Minute {
		t.Fatalf("cancel took %v", d)
	}
}

// hashes maps entries' IDs to their hashes, as the engine compares them.
func hashes(entries []*cache.Entry) map[string]uint64 {
	m := map[string]uint64{}
	for _, e := range entries {
		e.Normalize()
		m[e.ID] = e.Hash()
	}
	return m
}

func changeKeys(cs []dirsync.Change) map[string]uint64 {
	m := map[string]uint64{}
	for _, c := range cs {
		if c.Upsert != nil {
			c.Upsert.Normalize()
			m["upsert "+c.Upsert.ID] = c.Upsert.Hash()
		} else {
			m["delete "+c.DeleteID] = 0
		}
	}
	return m
}

func equalMaps(a, b map[string]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestReadsMatchDirect(t *testing.T) {
	e := testenv.Load(t)
	hub := newFakeHub(t, "corp")
	f := agentFile(t, hub.url, olConnector(t, e))
	c, _ := enrolled(t, hub, hub.url, f)
	direct, err := ldapsource.New(&f.Connector, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t)

	id := hub.send(t, c, &wire.Request{Kind: wire.KindFull}, nil)
	rep := hub.replyOf(t, id)
	if rep.err != nil || rep.result.Error != nil {
		t.Fatalf("full read through the agent: %v %+v", rep.err, rep.result.Error)
	}
	var want []*cache.Entry
	listing, err := direct.Full(ctx, func(e *cache.Entry) error { want = append(want, e); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.entries) < 50 || !equalMaps(hashes(rep.entries), hashes(want)) {
		t.Fatalf("full read: %d entries through the agent, %d direct, or they differ", len(rep.entries), len(want))
	}
	if rep.result.Listing == nil || len(rep.result.Listing.Cursor) == 0 || rep.result.Host == "" {
		t.Fatalf("listing: %+v", rep.result)
	}
	known := dirsync.Known(hashes(want))

	// A change in the directory, read incrementally from the agent's
	// cursor and directly from the same cursor.
	admin, err := ldap.DialURL(e.Get(t, "DIRGATE_OL2_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.Bind(e.Get(t, "DIRGATE_OL2_ADMIN_DN"), e.Get(t, "DIRGATE_OL2_ADMIN_PW")); err != nil {
		t.Fatal(err)
	}
	uid := fmt.Sprintf("agent%d", time.Now().UnixNano())
	dn := fmt.Sprintf("uid=%s,ou=people,%s", uid, e.Get(t, "DIRGATE_OL2_BASE"))
	add := ldap.NewAddRequest(dn, nil)
	add.Attribute("objectClass", []string{"inetOrgPerson"})
	add.Attribute("cn", []string{uid})
	add.Attribute("sn", []string{"Agent"})
	add.Attribute("mail", []string{uid + "@example.test"})
	if err := admin.Add(add); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Del(ldap.NewDelRequest(dn, nil)) })

	id = hub.send(t, c, &wire.Request{Kind: wire.KindChanges, Cursor: rep.result.Listing.Cursor, HasKnown: true}, known)
	inc := hub.replyOf(t, id)
	if inc.err != nil || inc.result.Error != nil {
		t.Fatalf("incremental read through the agent: %v %+v", inc.err, inc.result.Error)
	}
	var wantChanges []dirsync.Change
	if _, err := direct.Changes(ctx, listing.Cursor, known, func(c dirsync.Change) error { wantChanges = append(wantChanges, c); return nil }); err != nil {
		t.Fatal(err)
	}
	got := changeKeys(inc.changes)
	if !equalMaps(got, changeKeys(wantChanges)) || len(got) == 0 {
		t.Fatalf("changes through the agent %v, direct %v", got, changeKeys(wantChanges))
	}
	if inc.result.Changes == nil || len(inc.result.Changes.Cursor) == 0 {
		t.Fatalf("change set: %+v", inc.result)
	}
}

// adConnector is the test environment's Samba AD DC, whose seeded
// accounts are disabled, expired and must change their password.
func adConnector(t *testing.T, e testenv.Env) string {
	t.Setenv("DIRGATE_TEST_AGENT_AD_PW", e.Get(t, "DIRGATE_AD_SYNC_PW"))
	return fmt.Sprintf("  name: corp\n  type: ad\n  host: %s\n  port: %s\n  encryption: strict\n  ca_file: %s\n  root_dn: %q\n  bind_dn: %q\n  bind_password_env: DIRGATE_TEST_AGENT_AD_PW\n",
		e.Get(t, "DIRGATE_AD_HOST"), e.Get(t, "DIRGATE_AD_LDAPS_PORT"), e.Get(t, "DIRGATE_AD_CA"), e.Get(t, "DIRGATE_AD_BASE"), e.Get(t, "DIRGATE_AD_SYNC_DN"))
}

func TestChecksMatchDirect(t *testing.T) {
	e := testenv.Load(t)
	for _, dir := range []struct {
		name      string
		connector func(*testing.T, testenv.Env) string
		password  string
		cases     []struct {
			dn   string
			want authn.Reason
		}
	}{
		{"openldap", olConnector, e.Get(t, "DIRGATE_OL2_USER_PW"), []struct {
			dn   string
			want authn.Reason
		}{
			{"uid=user00001,ou=people," + e.Get(t, "DIRGATE_OL2_BASE"), 0},
			{"uid=nobody,ou=people," + e.Get(t, "DIRGATE_OL2_BASE"), authn.ReasonInvalidCredentials},
		}},
		{"ad", adConnector, e.Get(t, "DIRGATE_AD_USER_PW"), []struct {
			dn   string
			want authn.Reason
		}{
			{e.Get(t, "DIRGATE_AD_JDOE_DN"), 0},
			{e.Get(t, "DIRGATE_AD_DISABLED_DN"), authn.ReasonDisabled},
			{e.Get(t, "DIRGATE_AD_EXPIRED_DN"), authn.ReasonAccountExpired},
			{e.Get(t, "DIRGATE_AD_MUSTCHANGE_DN"), authn.ReasonMustChangePassword},
		}},
	} {
		t.Run(dir.name, func(t *testing.T) {
			hub := newFakeHub(t, "corp")
			f := agentFile(t, hub.url, dir.connector(t, e))
			c, logs := enrolled(t, hub, hub.url, f)
			direct, err := authn.NewLDAPChecker(&f.Connector, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer direct.Close()
			const wrong = "Wr0ng-Secret-4711"
			for _, tc := range dir.cases {
				for _, pw := range []string{dir.password, wrong} {
					// A wrong password is only ever that: directories tell
					// an account's state after a correct one.
					want := tc.want
					if pw == wrong {
						want = authn.ReasonInvalidCredentials
					}
					id := hub.send(t, c, &wire.Request{Kind: wire.KindCheck, Check: &wire.CheckRequest{DN: tc.dn, Password: pw}}, nil)
					r := hub.result(t, id)
					var got error
					if r.Error != nil {
						got = r.Error.Err("corp")
					}
					_, derr := direct.Check(ctxFor(t), tc.dn, pw)
					if authn.ReasonOf(got) != want || authn.ReasonOf(derr) != authn.ReasonOf(got) {
						t.Errorf("%s (right password %v): through the agent %v, direct %v, want %v", tc.dn, pw != wrong, got, derr, want)
					}
					if want == 0 && r.Host == "" {
						t.Errorf("%s: no host in the result", tc.dn)
					}
				}
			}
			// Every check was logged, and no password was.
			out := logs.String()
			if !strings.Contains(out, "password check") {
				t.Fatalf("the checks were not logged:\n%s", out)
			}
			for _, pw := range []string{dir.password, wrong} {
				if strings.Contains(out, pw) {
					t.Fatalf("the agent's log holds a password:\n%s", out)
				}
			}
		})
	}
}

func TestConcurrencyLimits(t *testing.T) {
	// A directory that holds every bind a while and counts how many it
	// holds at once: checks, and the service-account bind that starts a
	// sync read.
	var mu sync.Mutex
	var active, most int
	port := ldapstub.Serve(t, func(c net.Conn, id int64, op *ber.Packet) bool {
		if op.Tag != ldap.ApplicationBindRequest {
			return false
		}
		mu.Lock()
		active++
		most = max(most, active)
		mu.Unlock()
		time.Sleep(300 * time.Millisecond)
		mu.Lock()
		active--
		mu.Unlock()
		ldapstub.Write(c, id, ldapstub.Result(ldap.ApplicationBindResponse, ldap.LDAPResultInvalidCredentials, ""), nil)
		return true
	})
	connector := strings.Replace(offlineConnector, "port: 9", fmt.Sprintf("port: %d", port), 1) +
		"  bind_dn: cn=sync,dc=corp,dc=example\n  bind_password_env: DIRGATE_TEST_AGENT_STUB_PW\n"
	t.Setenv("DIRGATE_TEST_AGENT_STUB_PW", "x")
	for _, tc := range []struct {
		name     string
		req      func() *wire.Request
		n, limit int // requests sent at once; most binds allowed at once
		reply    bool
	}{
		{"checks in parallel up to pool_size", func() *wire.Request {
			return &wire.Request{Kind: wire.KindCheck, Check: &wire.CheckRequest{DN: "uid=a,dc=corp,dc=example", Password: "pw"}}
		}, 12, 4, false},
		{"one sync read at a time", func() *wire.Request { return &wire.Request{Kind: wire.KindFull} }, 3, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			most = 0
			mu.Unlock()
			hub := newFakeHub(t, "corp")
			c, _ := enrolled(t, hub, hub.url, agentFile(t, hub.url, connector)) // pool_size: 4
			var ids []uint64
			for range tc.n {
				ids = append(ids, hub.send(t, c, tc.req(), nil))
			}
			for _, id := range ids {
				if tc.reply {
					if rep := hub.replyOf(t, id); rep.result == nil || rep.result.Error == nil {
						t.Fatalf("read %d: %+v", id, rep)
					}
				} else if r := hub.result(t, id); r.Error == nil {
					t.Fatalf("check %d succeeded against a directory refusing every bind", id)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			// Parallel checks reach the limit unless the machine is very
			// slow; more than the limit at once is always a failure.
			if most > tc.limit || (tc.limit > 1 && most < 2) {
				t.Fatalf("at most %d binds at once, want %d", most, tc.limit)
			}
		})
	}
}

func TestConnectionPerReplica(t *testing.T) {
	r1 := newFakeHub(t, "corp")
	r2 := newReplica(t, r1.ca, "r2", "corp")
	// The configured URL is r1's; its Welcome names both replicas (r1
	// under its own URL again, which must not make a second connection).
	r1.peers = []string{r1.url, r2.url + "/"}
	r2.peers = r1.peers
	enrolled(t, r1, r1.url, agentFile(t, r1.url, offlineConnector))
	c2 := r2.waitConn(t, 30*time.Second)
	id := r2.send(t, c2, &wire.Request{Kind: wire.KindTest}, nil)
	if r := r2.result(t, id); r.Report == nil {
		t.Fatalf("request through the peer's connection: %+v", r)
	}
	select {
	case c := <-r1.connCh:
		t.Fatalf("a second connection to r1: %+v", c.hello)
	case c := <-r2.connCh:
		t.Fatalf("a second connection to r2: %+v", c.hello)
	case <-time.After(2 * time.Second):
	}
}

func TestConfiguredURLBehindLoadBalancer(t *testing.T) {
	r1 := newFakeHub(t, "corp")
	r2 := newReplica(t, r1.ca, "r2", "corp")
	lb := newReplica(t, r1.ca, "r1", "corp") // r1 again, reached through the balancer
	peers := []string{r1.url, r2.url}
	r1.peers, r2.peers, lb.peers = peers, peers, peers
	_, logs := enrolled(t, lb, lb.url, agentFile(t, lb.url, offlineConnector))
	r1.waitConn(t, 30*time.Second)
	r2.waitConn(t, 30*time.Second)

	// The hub cuts the balancer's connection when the agent reaches r1
	// under its own URL; the agent does not come back through the
	// balancer while the replicas are connected.
	lb.srv.CloseClientConnections()
	select {
	case c := <-lb.connCh:
		t.Fatalf("the agent reconnected through the balancer while both replicas were connected (%v):\n%s", c.hello, logs)
	case <-time.After(3 * time.Second):
	}
	// With every replica gone, the configured URL finds the hub again.
	for _, r := range []*fakeHub{r1, r2} {
		r.srv.CloseClientConnections()
		r.srv.Close()
	}
	lb.waitConn(t, 30*time.Second)
}

// TestCheckWithoutDN: a check that names no account is answered with an
// error, without a bind.
func TestCheckWithoutDN(t *testing.T) {
	hub := newFakeHub(t, "corp")
	c, _ := enrolled(t, hub, hub.url, agentFile(t, hub.url, offlineConnector))
	id := hub.send(t, c, &wire.Request{Kind: wire.KindCheck, Check: &wire.CheckRequest{Password: "pw"}}, nil)
	r := hub.result(t, id)
	if r.Error == nil || !strings.Contains(r.Error.Message, "names no account DN") {
		t.Fatalf("result %+v, want an error naming the missing DN", r.Error)
	}
}

// TestCheckFromPreviousRelease: a check as a hub of the previous release
// sends it (the account as an encoded entry, no DN) is checked as the DN
// of that entry.
func TestCheckFromPreviousRelease(t *testing.T) {
	hub := newFakeHub(t, "corp")
	c, logs := enrolled(t, hub, hub.url, agentFile(t, hub.url, offlineConnector))
	entry, err := cache.EncodeEntry(&cache.Entry{Connector: "corp", ID: "x", DN: "uid=old,dc=corp,dc=example", Kind: cache.KindUser})
	if err != nil {
		t.Fatal(err)
	}
	id := hub.send(t, c, &wire.Request{Kind: wire.KindCheck, Check: &wire.CheckRequest{Entry: entry, Password: "pw"}}, nil)
	r := hub.result(t, id)
	if r.Error == nil || authn.ReasonOf(r.Error.Err("corp")) != authn.ReasonUnavailable {
		t.Fatalf("result %+v, want the offline directory's unavailable", r.Error)
	}
	waitLog(t, logs, `dn="uid=old,dc=corp,dc=example"`)
}
