package integration

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/internal/testenv"
)

// hubToSiteDrops reads the hub firewall's counter of packets it dropped
// on their way to the site.
func (s *agentSite) hubToSiteDrops(t testing.TB) int {
	t.Helper()
	out := s.ns.Nft(t, testenv.Hub, "list", "counter", "inet", "dirgate_netns", "hub_to_site")
	m := regexp.MustCompile(`packets (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no packet count in %q", out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestAgentSeparationEnrollSync proves the network separation (the hub
// cannot reach the directory, the site reaches the hub), refuses a wrong
// token, a wrong CA fingerprint and a reused token, enrolls an agent with
// a token from the hub's CLI, and syncs through it: a full run, then an
// incremental run of an add, a change and a delete, each ending with the
// hub serving exactly what slapd holds. Binds and an OIDC sign-in go
// through the agent with their typed failures.
func TestAgentSeparationEnrollSync(t *testing.T) {
	s := newAgentSite(t, agentSiteOptions{})
	e := s.ns.Env
	slapdAddr := net.JoinHostPort(e.Get(t, "DIRGATE_OL_HOST"), e.Get(t, "DIRGATE_OL_PORT"))
	agentAddr := net.JoinHostPort(s.hubAddr(t), agentHubPort)

	dial := func(ns testenv.Namespace, addr string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		c, err := s.ns.DialContext(ctx, ns, "tcp", addr)
		if err == nil {
			c.Close()
		}
		return err
	}
	drops := s.hubToSiteDrops(t)
	if err := dial(testenv.Hub, slapdAddr); err == nil {
		t.Fatalf("the hub's namespace reached slapd at %s", slapdAddr)
	}
	if got := s.hubToSiteDrops(t); got <= drops {
		t.Fatalf("the hub's connection attempt to slapd was not dropped by its firewall (counter %d -> %d)", drops, got)
	}
	if err := dial(testenv.Site, slapdAddr); err != nil {
		t.Fatalf("slapd does not answer in the site (so the hub's failure proves nothing): %v", err)
	}
	if err := dial(testenv.Site, agentAddr); err != nil {
		t.Fatalf("the site cannot reach the hub's agent listener: %v", err)
	}

	a := s.newAgent(t, "a1", "")
	tok := s.token(t)
	for _, c := range []struct {
		name     string
		token    string
		ca       string
		wantText string
	}{
		{"unknown token", "dgt_" + strings.Repeat("x", 40), tok.CASHA256, "does not know this enrollment token"},
		{"wrong CA fingerprint", tok.Token, strings.Repeat("ab", 32), "was NOT sent"},
	} {
		bad := *tok
		bad.Token, bad.CASHA256 = c.token, c.ca
		out, err := a.enroll(t, &bad)
		if err == nil || !strings.Contains(out, c.wantText) {
			t.Fatalf("%s: enroll %v, want a refusal saying %q:\n%s", c.name, err, c.wantText, out)
		}
	}
	if out, err := a.enroll(t, tok); err != nil {
		t.Fatalf("enroll: %v\n%s", err, out)
	}
	b := s.newAgent(t, "b1", "")
	if out, err := b.enroll(t, tok); err == nil || !strings.Contains(out, "already used") {
		t.Fatalf("a reused token: enroll %v, want a refusal saying it was used:\n%s", err, out)
	}
	a.start(t)
	s.waitConnected(t, 30*time.Second, "a1")

	res := s.sync(t, "full")
	if r, _ := res["result"].(map[string]any); r["mode"] != "full" || r["added"] == 0.0 {
		t.Fatalf("full run through the agent: %v", res)
	}
	s.sameAsSlapd(t)

	// an add, a change and a delete, read incrementally through the agent
	base := e.Get(t, "DIRGATE_OL_BASE")
	admin := s.slapd(t, e.Get(t, "DIRGATE_OL_ADMIN_DN"), e.Get(t, "DIRGATE_OL_ADMIN_PW"))
	uid := uniqueUID("agentinc")
	add := ldap.NewAddRequest("uid="+uid+",ou=people,"+base, nil)
	add.Attribute("objectClass", []string{"inetOrgPerson"})
	add.Attribute("cn", []string{"Agent " + uid})
	add.Attribute("sn", []string{uid})
	add.Attribute("uid", []string{uid})
	add.Attribute("mail", []string{uid + "@example.test"})
	add.Attribute("userPassword", []string{e.Get(t, "DIRGATE_OL_USER_PW")})
	if err := admin.Add(add); err != nil {
		t.Fatal(err)
	}
	mod := ldap.NewModifyRequest("uid=user00002,ou=people,"+base, nil)
	mod.Replace("cn", []string{"Changed Through Agent"})
	if err := admin.Modify(mod); err != nil {
		t.Fatal(err)
	}
	if err := admin.Del(ldap.NewDelRequest("uid=user00003,ou=people,"+base, nil)); err != nil {
		t.Fatal(err)
	}
	res = s.sync(t, "incremental")
	r, _ := res["result"].(map[string]any)
	if r["mode"] != "incremental" || r["added"] != 1.0 || r["deleted"] != 1.0 {
		t.Fatalf("incremental run through the agent: %v", res)
	}
	s.sameAsSlapd(t)

	// binds through the agent: the hub cannot reach slapd, so every
	// verdict is the agent's
	pw := e.Get(t, "DIRGATE_OL_USER_PW")
	for _, c := range []struct {
		name, login, password string
		ok                    bool
	}{
		{"right password", "user00001@example.test", pw, true},
		{"new user", uid + "@example.test", pw, true},
		{"wrong password", "user00001@example.test", "wrong", false},
		{"disabled (ppolicy locked)", "user00050@example.test", pw, false},
		{"unknown", "nobody@example.test", pw, false},
	} {
		err := s.bindHub(t, c.login, c.password)
		if c.ok && err != nil {
			t.Errorf("%s: bind %s: %v", c.name, c.login, err)
		}
		if !c.ok && !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
			t.Errorf("%s: bind %s: %v, want invalid credentials", c.name, c.login, err)
		}
	}
	// a password changed in the directory is what the agent checks
	pwmod := ldap.NewModifyRequest("uid=user00004,ou=people,"+base, nil)
	pwmod.Replace("userPassword", []string{"Agent-Changed-1"})
	if err := admin.Modify(pwmod); err != nil {
		t.Fatal(err)
	}
	if err := s.bindHub(t, "user00004@example.test", "Agent-Changed-1"); err != nil {
		t.Errorf("bind with the password changed in slapd: %v", err)
	}
	if err := s.bindHub(t, "user00004@example.test", pw); !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
		t.Errorf("bind with the old password: %v, want invalid credentials", err)
	}

	rp := newAgentRP(t, s)
	rp.signIn(t, "user00001@example.test", pw)
	if st := rp.login(t, "user00001@example.test", "wrong"); st.code != "" || !strings.Contains(st.page, "not correct") {
		t.Fatalf("OIDC sign-in with a wrong password: %+v", st)
	}
}

// TestAgentTypedFailuresAD checks the AD verdicts through an agent next to
// a Samba AD DC in the site: wrong password, disabled, expired and
// must-change, each as a direct AD connector gives them.
func TestAgentTypedFailuresAD(t *testing.T) {
	s := newAgentSite(t, agentSiteOptions{samba: true})
	e := s.ns.Env
	a := s.newAgent(t, "ad1", "")
	a.mustEnroll(t)
	a.start(t)
	s.waitConnected(t, 30*time.Second, "ad1")
	s.sync(t, "full")

	pw := e.Get(t, "DIRGATE_AD_USER_PW")
	for _, b := range []struct {
		login, password, wantMsg string
		ok                       bool
	}{
		{"user00001@example.test", pw, "", true},
		{e.Get(t, "DIRGATE_AD_JDOE_UPN"), pw, "", true},
		{"user00001@example.test", "wrong", "invalid credentials", false},
		{e.Get(t, "DIRGATE_AD_MUSTCHANGE_UPN"), pw, "must be changed", false},
		{e.Get(t, "DIRGATE_AD_EXPIRED_UPN"), pw, "account has expired", false},
		{e.Get(t, "DIRGATE_AD_DISABLED_UPN"), pw, "invalid credentials", false},
	} {
		err := s.bindHub(t, b.login, b.password)
		if b.ok {
			if err != nil {
				t.Errorf("bind %q: %v", b.login, err)
			}
			continue
		}
		if !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) || !strings.Contains(err.Error(), b.wantMsg) {
			t.Errorf("bind %q: %v, want 49 with %q", b.login, err, b.wantMsg)
		}
	}

	// the same verdicts at the OIDC login form
	rp := newAgentRP(t, s)
	rp.signIn(t, e.Get(t, "DIRGATE_AD_JDOE_UPN"), pw)
	if st := rp.login(t, e.Get(t, "DIRGATE_AD_MUSTCHANGE_UPN"), pw); st.code != "" || !strings.Contains(st.page, "You must change your password") {
		t.Errorf("OIDC sign-in of the must-change account: %+v", st)
	}
}

// bindRecord is one bind of a stream: when it ran and how it ended.
type bindRecord struct {
	start, end time.Time
	err        error
}

// bindStream binds as login from workers goroutines, each on its own
// connection, until stop is closed.
func (s *agentSite) bindStream(t testing.TB, workers int, login, password string, stop <-chan struct{}) func() []bindRecord {
	var mu sync.Mutex
	var recs []bindRecord
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			c, err := s.dialHub(t)
			if err != nil {
				mu.Lock()
				recs = append(recs, bindRecord{time.Now(), time.Now(), err})
				mu.Unlock()
				return
			}
			defer c.Close()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := bindRecord{start: time.Now()}
				r.err = c.Bind(login, password)
				r.end = time.Now()
				mu.Lock()
				recs = append(recs, r)
				mu.Unlock()
			}
		})
	}
	return func() []bindRecord { wg.Wait(); return recs }
}

// TestAgentKillOneOfTwo runs a stream of binds over two agents and kills
// one with SIGKILL: only binds in flight at that instant may fail, with a
// clear error; every later one succeeds through the other agent.
func TestAgentKillOneOfTwo(t *testing.T) {
	s := newAgentSite(t, agentSiteOptions{})
	a1, a2 := s.newAgent(t, "a1", ""), s.newAgent(t, "a2", "")
	for _, a := range []*siteAgent{a1, a2} {
		a.mustEnroll(t)
		a.start(t)
	}
	s.waitConnected(t, 30*time.Second, "a1", "a2")
	s.sync(t, "full")

	const workers = 4
	stop := make(chan struct{})
	wait := s.bindStream(t, workers, "user00001@example.test", s.ns.Env.Get(t, "DIRGATE_OL_USER_PW"), stop)
	time.Sleep(2 * time.Second)
	killed := time.Now()
	a1.p.kill()
	time.Sleep(4 * time.Second)
	close(stop)
	recs := wait()

	// A bind is in flight at the kill when it started before the hub saw
	// the connection drop, which takes it a moment (the kernel's reset,
	// then the hub's reader): detectWindow bounds that moment, generously
	// for a loaded machine; a hub that never noticed would fail far more.
	const detectWindow = 2 * time.Second
	var before, after, failed int
	var lastFailure time.Time
	for _, r := range recs {
		if r.end.Before(killed) {
			before++
		} else if r.start.After(killed.Add(detectWindow)) {
			after++
		}
		if r.err == nil {
			continue
		}
		failed++
		lastFailure = r.end
		if r.start.After(killed.Add(detectWindow)) || r.end.Before(killed) {
			t.Errorf("a bind not in flight at the kill failed (%s..%s, kill at %s): %v",
				r.start.Format("15:04:05.000"), r.end.Format("15:04:05.000"), killed.Format("15:04:05.000"), r.err)
			continue
		}
		if !ldap.IsErrorWithCode(r.err, ldap.LDAPResultUnavailable) || !strings.Contains(r.err.Error(), "unavailable") {
			t.Errorf("a bind in flight at the kill failed without the clear unavailable answer: %v", r.err)
		}
	}
	t.Logf("binds: %d before the kill, %d after, %d failed (in flight, the last %v after the kill)",
		before, after, failed, lastFailure.Sub(killed).Round(time.Millisecond))
	if before == 0 || after == 0 {
		t.Fatalf("the stream did not run on both sides of the kill: %d before, %d after", before, after)
	}
	if failed > 2*workers {
		t.Fatalf("%d binds failed, more than the %d workers can have had in flight", failed, workers)
	}
	s.waitConnected(t, 10*time.Second, "a2")
}

// TestAgentRevokeWhileConnected revokes a connected agent with the CLI:
// its connection is cut at once, binds then find no agent, and the agent
// cannot connect again.
func TestAgentRevokeWhileConnected(t *testing.T) {
	s := newAgentSite(t, agentSiteOptions{})
	a := s.newAgent(t, "a1", "")
	a.mustEnroll(t)
	a.start(t)
	st := s.waitConnected(t, 30*time.Second, "a1")["a1"]
	s.sync(t, "full")
	pw := s.ns.Env.Get(t, "DIRGATE_OL_USER_PW")
	if err := s.bindHub(t, "user00001@example.test", pw); err != nil {
		t.Fatalf("bind before the revocation: %v", err)
	}
	if out, err := s.hubCLI(t, "agent", "revoke", st.ID); err != nil {
		t.Fatalf("agent revoke: %v\n%s", err, out)
	}
	revoked := time.Now()
	as, err := s.agents(t)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range as {
		if x.ID == st.ID && (x.Connected || x.Revoked.IsZero()) {
			t.Fatalf("right after the revocation the agent is %+v", x)
		}
	}
	if err := s.bindHub(t, "user00001@example.test", pw); err == nil {
		t.Fatal("a bind after the revocation succeeded: the revoked agent still answers")
	}
	// it keeps trying and is refused every time
	time.Sleep(3 * time.Second)
	if as, _ := s.agents(t); len(as) != 1 || as[0].Connected {
		t.Fatalf("%v after the revocation the agents are %+v", time.Since(revoked).Round(time.Second), as)
	}
	if !a.p.alive() {
		t.Logf("the agent exited after the revocation:\n%s", a.p.logTail(5))
	}
}

// TestAgentOtherAgentsCertificate gives an agent another agent's
// certificate (with its own key): the hub refuses it, and the owner stays
// connected.
func TestAgentOtherAgentsCertificate(t *testing.T) {
	s := newAgentSite(t, agentSiteOptions{})
	a1, a2 := s.newAgent(t, "a1", ""), s.newAgent(t, "a2", "")
	a1.mustEnroll(t)
	a2.mustEnroll(t)
	crt, err := os.ReadFile(filepath.Join(a1.dir, "state", "agent.crt"))
	if err != nil {
		t.Fatal(err)
	}
	own, err := os.ReadFile(filepath.Join(a2.dir, "state", "agent.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(a2.dir, "state", "agent.crt"), crt, 0o600); err != nil {
		t.Fatal(err)
	}
	a1.start(t)
	a2.start(t)
	s.waitConnected(t, 30*time.Second, "a1")
	time.Sleep(3 * time.Second)
	s.waitConnected(t, time.Second, "a1")
	if !strings.Contains(a2.p.log(), "certificate") {
		t.Errorf("the refused agent's log does not say why:\n%s", a2.p.logTail(10))
	}

	// with its own certificate back, the same agent connects
	a2.p.stop()
	if err := os.WriteFile(filepath.Join(a2.dir, "state", "agent.crt"), own, 0o600); err != nil {
		t.Fatal(err)
	}
	a2.start(t)
	s.waitConnected(t, 30*time.Second, "a1", "a2")
}

// TestAgentThroughProxy puts an HTTP CONNECT proxy in the site between the
// agent and the hub: the agent knows the hub by a name only the proxy
// resolves, so it enrolls and connects through the proxy or not at all.
func TestAgentThroughProxy(t *testing.T) {
	s := newAgentSite(t, agentSiteOptions{})
	ln, err := s.ns.Listen(testenv.Site, "tcp", net.JoinHostPort(s.ns.Addr(t, testenv.Site), "3128"))
	if err != nil {
		t.Fatal(err)
	}
	px := &nsProxy{s: s, hosts: map[string]string{agentHubName: s.hubAddr(t)}}
	go px.serve(ln)
	t.Cleanup(func() { ln.Close() })

	a := s.newAgent(t, "a1", "https://"+net.JoinHostPort(agentHubName, agentHubPort), "HTTPS_PROXY=http://"+ln.Addr().String())
	a.mustEnroll(t)
	a.start(t)
	s.waitConnected(t, 30*time.Second, "a1")
	s.sync(t, "full")
	s.sameAsSlapd(t)
	if err := s.bindHub(t, "user00001@example.test", s.ns.Env.Get(t, "DIRGATE_OL_USER_PW")); err != nil {
		t.Fatalf("bind through the agent behind the proxy: %v", err)
	}
	if n := px.connects(); n < 2 {
		t.Fatalf("the proxy saw %d CONNECTs, want the enrollment's and the agent's", n)
	}
}

// TestAgentHubRestart restarts the hub: the agent reconnects by itself,
// the cache served before the restart is served after it, and the next
// incremental run picks up what changed meanwhile.
func TestAgentHubRestart(t *testing.T) {
	s := newAgentSite(t, agentSiteOptions{})
	a := s.newAgent(t, "a1", "")
	a.mustEnroll(t)
	a.start(t)
	s.waitConnected(t, 30*time.Second, "a1")
	s.sync(t, "full")
	s.sameAsSlapd(t)

	s.hub.stop()
	e := s.ns.Env
	uid := uniqueUID("restart")
	add := ldap.NewAddRequest("uid="+uid+",ou=people,"+e.Get(t, "DIRGATE_OL_BASE"), nil)
	add.Attribute("objectClass", []string{"inetOrgPerson"})
	add.Attribute("cn", []string{"Restart " + uid})
	add.Attribute("sn", []string{uid})
	add.Attribute("uid", []string{uid})
	add.Attribute("mail", []string{uid + "@example.test"})
	add.Attribute("userPassword", []string{e.Get(t, "DIRGATE_OL_USER_PW")})
	if err := s.slapd(t, e.Get(t, "DIRGATE_OL_ADMIN_DN"), e.Get(t, "DIRGATE_OL_ADMIN_PW")).Add(add); err != nil {
		t.Fatal(err)
	}
	s.hubClient.CloseIdleConnections()
	s.startHub(t)
	s.waitConnected(t, 90*time.Second, "a1")
	if err := s.bindHub(t, "user00001@example.test", e.Get(t, "DIRGATE_OL_USER_PW")); err != nil {
		t.Fatalf("bind after the restart: %v", err)
	}
	res := s.sync(t, "incremental")
	if r, _ := res["result"].(map[string]any); r["added"] != 1.0 {
		t.Fatalf("the incremental run after the restart: %v", res)
	}
	s.sameAsSlapd(t)
	if !a.p.alive() {
		t.Fatal("the agent exited during the hub's restart")
	}
}

// nsProxy is an HTTP CONNECT proxy serving in the site: it resolves the
// names it knows and dials from the site.
type nsProxy struct {
	s     *agentSite
	hosts map[string]string
	mu    sync.Mutex
	n     int
}

func (p *nsProxy) connects() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

func (p *nsProxy) serve(ln net.Listener) {
	_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		host, port, err := net.SplitHostPort(r.Host)
		ip, ok := p.hosts[host]
		if err != nil || !ok {
			http.Error(w, "unknown host", http.StatusBadGateway)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		up, err := p.s.ns.DialContext(ctx, testenv.Site, "tcp", net.JoinHostPort(ip, port))
		cancel()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer up.Close()
		p.mu.Lock()
		p.n++
		p.mu.Unlock()
		down, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer down.Close()
		if _, err := down.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
			return
		}
		go func() {
			_, _ = io.Copy(up, brw.Reader)
			_ = up.(*net.TCPConn).CloseWrite()
		}()
		_, _ = io.Copy(down, up)
	}))
}
