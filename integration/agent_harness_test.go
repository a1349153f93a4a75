package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-ldap/ldap/v3"
	"golang.org/x/oauth2"

	"github.com/dirgate/dirgate/admin"
	"github.com/dirgate/dirgate/internal/testenv"
)

// The agent tests run real processes in the two network namespaces of
// scripts/testenv/netns.sh: `dirgate serve` (the hub) in "hub", a private
// slapd (or Samba AD DC) and `dirgate agent` in "site". Only the site may
// open connections to the hub; the test process reaches both namespaces
// through sockets it opens inside them.

// Addresses inside the hub's namespace: its loopback is the hub's alone.
const (
	agentHubLDAP  = "127.0.0.1:3890"
	agentHubWeb   = "127.0.0.1:8080"
	agentHubAdmin = "127.0.0.1:8090"
	agentHubPort  = "8444"
	agentConn     = "corp"
	// agentHubName is a name for the hub that only the test's proxy
	// resolves: an agent given it cannot reach the hub but through it.
	agentHubName = "hub.agent.test"
)

// agentSiteOptions vary an agent test's site.
type agentSiteOptions struct {
	samba bool // a Samba AD DC in the site, and the connector of type ad
	users int  // the slapd's seed size; default 200
}

// agentSite is one agent test's world: the namespaces, the hub and the
// agents.
type agentSite struct {
	t         *testing.T
	ns        *testenv.NetNS
	opts      agentSiteOptions
	dir       string
	hubCfg    string
	hub       *proc
	hubClient *http.Client // dials into the hub's namespace
}

// proc is a process of an agent test, started in one namespace.
type proc struct {
	name, logPath string
	cmd           *exec.Cmd
	done          chan struct{}
}

func startProc(t testing.TB, name, logPath string, cmd *exec.Cmd) *proc {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(p.done) }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s (pid %d) log, end:\n%s", name, cmd.Process.Pid, p.logTail(40))
		}
		p.stop()
	})
	return p
}

func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// kill ends the process with SIGKILL and waits for it.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop interrupts the process, killing it after 15 s.
func (p *proc) stop() {
	if !p.alive() {
		return
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.kill()
	}
}

func (p *proc) log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

func (p *proc) logTail(n int) string {
	lines := strings.Split(strings.TrimRight(p.log(), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// newAgentSite starts the namespaces (with their directory) and the hub.
func newAgentSite(t *testing.T, o agentSiteOptions) *agentSite {
	t.Helper()
	if o.users == 0 {
		o.users = 200
	}
	vars := []string{fmt.Sprintf("OL_USERS=%d", o.users)}
	if o.samba {
		vars = append(vars, "NS_SAMBA=1", "AD_USERS=20", "AD_BIG=30")
	}
	ns := testenv.StartNetNS(t, vars...)
	s := &agentSite{t: t, ns: ns, opts: o, dir: t.TempDir()}
	s.hubClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: ns.Dialer(testenv.Hub)}}
	t.Cleanup(s.hubClient.CloseIdleConnections)
	s.writeHubConfig(t)
	s.startHub(t)
	return s
}

func (s *agentSite) hubAddr(t testing.TB) string { return s.ns.Addr(t, testenv.Hub) }

// hubURL is the hub's agent listener as agents dial it.
func (s *agentSite) hubURL(t testing.TB) string {
	return "https://" + net.JoinHostPort(s.hubAddr(t), agentHubPort)
}

func (s *agentSite) writeHubConfig(t *testing.T) {
	t.Helper()
	svcHash, clientHash := clusterHashes(t)
	typ, base := "openldap", s.ns.Env.Get(t, "DIRGATE_OL_BASE")
	if s.opts.samba {
		typ, base = "ad", s.ns.Env.Get(t, "DIRGATE_AD_BASE")
	}
	y := fmt.Sprintf(`cache: {dir: %s}
ldap: {listen: %s, size_limit: 5000}
service_accounts:
  - dn: %s
    password_hash: %q
connectors:
  - name: %s
    type: %s
    via: agent
    root_dn: %q
    safety: {max_deletes: 100000, max_delete_percent: 100}
oidc:
  issuer: http://%s
  listen: %s
  clients:
    - id: %s
      secret_hash: %q
      redirect_uris: [%s]
admin:
  listen: %s
  token_env: DIRGATE_IT_ADMIN_TOKEN
agent:
  listen: %s
  ca_dir: %s
  server_names: [%s, %s]
  advertise: %s
auth: {bind_timeout: 5s}
log: {level: debug}
`, filepath.Join(s.dir, "hub-cache"), agentHubLDAP, serviceDN, svcHash, agentConn, typ, base,
		agentHubWeb, agentHubWeb, clusterClientID, clientHash, clusterRedirect, agentHubAdmin,
		net.JoinHostPort(s.hubAddr(t), agentHubPort), filepath.Join(s.dir, "agent-ca"), s.hubAddr(t), agentHubName, s.hubURL(t))
	s.hubCfg = filepath.Join(s.dir, "dirgate.yaml")
	if err := os.WriteFile(s.hubCfg, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
}

// startHub starts `dirgate serve` in the hub's namespace and waits until
// its admin listener answers.
func (s *agentSite) startHub(t *testing.T) {
	t.Helper()
	cmd := s.ns.Command(context.Background(), testenv.Hub, dirgateBinary(t), "serve", "--config", s.hubCfg)
	cmd.Env = append(os.Environ(), "DIRGATE_IT_ADMIN_TOKEN="+clusterAdminToken)
	s.hub = startProc(t, "hub", filepath.Join(s.dir, "hub.log"), cmd)
	waitFor(t, 60*time.Second, "the hub answers on its admin listener", func() error {
		if !s.hub.alive() {
			return fmt.Errorf("the hub exited: %v\n%s", s.hub.cmd.ProcessState, s.hub.logTail(30))
		}
		resp, err := s.hubClient.Get("http://" + agentHubAdmin + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
}

// api calls the hub's admin API.
func (s *agentSite) api(ctx context.Context, method, path string, body any) (int, []byte, error) {
	return adminCall(ctx, s.hubClient, agentHubAdmin, method, path, body)
}

// hubCLI runs a dirgate command with the hub's configuration, in the
// hub's namespace (the admin commands go through its admin API).
func (s *agentSite) hubCLI(t testing.TB, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := s.ns.Command(ctx, testenv.Hub, dirgateBinary(t), append(args, "-c", s.hubCfg)...)
	cmd.Env = append(os.Environ(), "DIRGATE_IT_ADMIN_TOKEN="+clusterAdminToken)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// token creates an enrollment token with `dirgate agent token create`.
func (s *agentSite) token(t testing.TB) *admin.EnrollToken {
	t.Helper()
	out, err := s.hubCLI(t, "agent", "token", "create", "--connector", agentConn, "--json")
	if err != nil {
		t.Fatalf("agent token create: %v\n%s", err, out)
	}
	var tok admin.EnrollToken
	if err := json.Unmarshal([]byte(out), &tok); err != nil || tok.Token == "" || tok.CASHA256 == "" {
		t.Fatalf("agent token create printed %q: %v", out, err)
	}
	return &tok
}

// siteAgent is one agent: its directory (agent.yaml, state) in the site.
type siteAgent struct {
	s         *agentSite
	name, dir string
	cfgPath   string
	env       []string // HTTPS_PROXY and such
	p         *proc
}

// newAgent writes an agent's agent.yaml (hub: the hub's address, or hub
// when given) for the site's directory.
func (s *agentSite) newAgent(t *testing.T, name, hub string, env ...string) *siteAgent {
	t.Helper()
	if hub == "" {
		hub = s.hubURL(t)
	}
	a := &siteAgent{s: s, name: name, dir: filepath.Join(s.dir, name), env: env}
	if err := os.MkdirAll(a.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	e := s.ns.Env
	var conn string
	if s.opts.samba {
		conn = fmt.Sprintf(`  type: ad
  host: %s
  port: %s
  encryption: strict
  ca_file: %s
  bind_dn: %q
  bind_password_env: DIRGATE_IT_SYNC_PW
  root_dn: %q
  page_size: 500
`, e.Get(t, "DIRGATE_AD_HOST"), e.Get(t, "DIRGATE_AD_LDAPS_PORT"), e.Get(t, "DIRGATE_AD_CA"), e.Get(t, "DIRGATE_AD_SYNC_DN"),
			e.Get(t, "DIRGATE_AD_BASE"))
		a.env = append(a.env, "DIRGATE_IT_SYNC_PW="+e.Get(t, "DIRGATE_AD_SYNC_PW"))
	} else {
		conn = fmt.Sprintf(`  type: openldap
  host: %s
  port: %s
  encryption: strict
  tls_mode: ldaps
  ca_file: %s
  bind_dn: %q
  bind_password_env: DIRGATE_IT_SYNC_PW
  root_dn: %q
  acknowledge_disabled_accounts: true
  page_size: 100
`, e.Get(t, "DIRGATE_OL_HOST"), e.Get(t, "DIRGATE_OL_LDAPS_PORT"), e.Get(t, "DIRGATE_OL_CA"), e.Get(t, "DIRGATE_OL_SYNC_DN"),
			e.Get(t, "DIRGATE_OL_BASE"))
		a.env = append(a.env, "DIRGATE_IT_SYNC_PW="+e.Get(t, "DIRGATE_OL_SYNC_PW"))
	}
	y := fmt.Sprintf("hub: %s\nstate_dir: %s\nname: %s\nlog: {level: info, format: text}\nconnector:\n  name: %s\n%s",
		hub, filepath.Join(a.dir, "state"), name, agentConn, conn)
	a.cfgPath = filepath.Join(a.dir, "agent.yaml")
	if err := os.WriteFile(a.cfgPath, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return a
}

// enroll runs `dirgate agent enroll` in the site with the token.
func (a *siteAgent) enroll(t testing.TB, tok *admin.EnrollToken) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := a.s.ns.Command(ctx, testenv.Site, dirgateBinary(t), "agent", "enroll", "-c", a.cfgPath, "--token", tok.Token, "--ca-sha256", tok.CASHA256)
	cmd.Env = append(os.Environ(), a.env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// mustEnroll enrolls the agent with a new token.
func (a *siteAgent) mustEnroll(t testing.TB) {
	t.Helper()
	if out, err := a.enroll(t, a.s.token(t)); err != nil {
		t.Fatalf("enroll %s: %v\n%s", a.name, err, out)
	}
}

// start runs `dirgate agent` in the site.
func (a *siteAgent) start(t testing.TB) {
	t.Helper()
	cmd := a.s.ns.Command(context.Background(), testenv.Site, dirgateBinary(t), "agent", "-c", a.cfgPath)
	cmd.Env = append(os.Environ(), a.env...)
	a.p = startProc(t, a.name, filepath.Join(a.dir, "agent.log"), cmd)
}

// agents lists the hub's agents through its admin API.
func (s *agentSite) agents(t testing.TB) ([]admin.AgentStatus, error) {
	status, out, err := s.api(context.Background(), http.MethodGet, "/api/v1/agents", nil)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("GET /api/v1/agents: %d %s", status, out)
	}
	var v struct{ Agents []admin.AgentStatus }
	if err := json.Unmarshal(out, &v); err != nil {
		return nil, err
	}
	return v.Agents, nil
}

// waitConnected waits until exactly the named agents are connected to the
// hub, and returns their statuses by name.
func (s *agentSite) waitConnected(t testing.TB, timeout time.Duration, names ...string) map[string]admin.AgentStatus {
	t.Helper()
	var got map[string]admin.AgentStatus
	waitFor(t, timeout, fmt.Sprintf("agents %v connected", names), func() error {
		as, err := s.agents(t)
		if err != nil {
			return err
		}
		got = map[string]admin.AgentStatus{}
		var connected []string
		for _, a := range as {
			if a.Connected {
				got[a.Name] = a
				connected = append(connected, a.Name)
			}
		}
		if len(connected) != len(names) {
			return fmt.Errorf("connected: %v", connected)
		}
		for _, n := range names {
			if _, ok := got[n]; !ok {
				return fmt.Errorf("connected: %v", connected)
			}
		}
		return nil
	})
	return got
}

// sync runs "Synchronize now" on the hub and fails the test unless the run
// succeeded; it returns the run's answer.
func (s *agentSite) sync(t testing.TB, mode string) map[string]any {
	t.Helper()
	status, res, err := s.trySync(mode)
	if err != nil || status != http.StatusOK {
		t.Fatalf("sync %s: %v %d %v", mode, err, status, res)
	}
	return res
}

func (s *agentSite) trySync(mode string) (int, map[string]any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	status, out, err := s.api(ctx, http.MethodPost, "/api/v1/connectors/"+agentConn+"/sync", map[string]any{"mode": mode})
	if err != nil {
		return 0, nil, err
	}
	var res map[string]any
	if err := json.Unmarshal(out, &res); err != nil {
		return status, nil, fmt.Errorf("sync answer %d: %s", status, out)
	}
	return status, res, nil
}

// dialHub opens an LDAP connection to the hub's LDAP listener.
func (s *agentSite) dialHub(t testing.TB) (*ldap.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := s.ns.DialContext(ctx, testenv.Hub, "tcp", agentHubLDAP)
	if err != nil {
		return nil, err
	}
	conn := ldap.NewConn(c, false)
	conn.Start()
	conn.SetTimeout(30 * time.Second)
	return conn, nil
}

// bindHub binds to the hub as login on a new connection.
func (s *agentSite) bindHub(t testing.TB, login, password string) error {
	c, err := s.dialHub(t)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Bind(login, password)
}

// hubDirectory reads directoryQuery from the hub as the service account.
func (s *agentSite) hubDirectory(t testing.TB, base string) (result, error) {
	c, err := s.dialHub(t)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.Bind(serviceDN, servicePW); err != nil {
		return nil, err
	}
	req := ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		directoryQuery.filter, directoryQuery.attrs, nil)
	res, err := c.SearchWithPaging(req, 1000)
	if err != nil {
		return nil, err
	}
	return reduce(t, res.Entries), nil
}

// slapd connects to the site's slapd (from inside the site) as dn.
func (s *agentSite) slapd(t testing.TB, dn, password string) *ldap.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e := s.ns.Env
	c, err := s.ns.DialContext(ctx, testenv.Site, "tcp", net.JoinHostPort(e.Get(t, "DIRGATE_OL_HOST"), e.Get(t, "DIRGATE_OL_PORT")))
	if err != nil {
		t.Fatalf("slapd from the site: %v", err)
	}
	conn := ldap.NewConn(c, false)
	conn.Start()
	t.Cleanup(func() { conn.Close() })
	if err := conn.Bind(dn, password); err != nil {
		t.Fatal(err)
	}
	return conn
}

// slapdDirectory reads directoryQuery from the site's slapd.
func (s *agentSite) slapdDirectory(t testing.TB) result {
	t.Helper()
	e := s.ns.Env
	c := s.slapd(t, e.Get(t, "DIRGATE_OL_SYNC_DN"), e.Get(t, "DIRGATE_OL_SYNC_PW"))
	entries, err := search(t, c, e.Get(t, "DIRGATE_OL_BASE"), ldap.ScopeWholeSubtree, directoryQuery.filter, directoryQuery.attrs)
	if err != nil {
		t.Fatal(err)
	}
	return reduce(t, entries)
}

// sameAsSlapd checks that the hub serves exactly what the site's slapd
// holds.
func (s *agentSite) sameAsSlapd(t testing.TB) {
	t.Helper()
	want := s.slapdDirectory(t)
	got, err := s.hubDirectory(t, s.ns.Env.Get(t, "DIRGATE_OL_BASE"))
	if err != nil {
		t.Fatalf("hub directory: %v", err)
	}
	if d := want.diff(got); d != "" {
		t.Fatalf("slapd has %d entries, the hub %d:\n%s", len(want), len(got), d)
	}
}

// agentRP is a relying party (go-oidc, x/oauth2) of the hub's OIDC
// provider, talking to it inside the hub's namespace.
type agentRP struct {
	s        *agentSite
	ctx      context.Context // carries the namespace's HTTP client to go-oidc and x/oauth2
	provider *gooidc.Provider
	conf     *oauth2.Config
}

func newAgentRP(t testing.TB, s *agentSite) *agentRP {
	t.Helper()
	ctx := gooidc.ClientContext(context.Background(), s.hubClient)
	ctx = context.WithValue(ctx, oauth2.HTTPClient, s.hubClient)
	p, err := gooidc.NewProvider(ctx, "http://"+agentHubWeb)
	if err != nil {
		t.Fatalf("OIDC discovery on the hub: %v", err)
	}
	return &agentRP{s: s, ctx: ctx, provider: p, conf: &oauth2.Config{ClientID: clusterClientID, ClientSecret: clusterClientPW,
		RedirectURL: clusterRedirect, Endpoint: p.Endpoint(), Scopes: []string{"openid", "email", "profile"}}}
}

// login runs the authorization request and the login form as a browser
// would (cookies, no redirects followed).
func (rp *agentRP) login(t testing.TB, user, password string) loginStatus {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &http.Client{Jar: jar, Timeout: 30 * time.Second, Transport: rp.s.hubClient.Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	const state = "agent-state"
	resp, err := b.Get(rp.conf.AuthCodeURL(state, oauth2.S256ChallengeOption(agentVerifier), gooidc.Nonce("n")))
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return loginStatus{status: resp.StatusCode, page: string(page)}
	}
	form := url.Values{"email": {user}, "password": {password}}
	for _, m := range hiddenField.FindAllStringSubmatch(string(page), -1) {
		form.Set(m[1], m[2])
	}
	resp, err = b.PostForm("http://"+agentHubWeb+"/login", form)
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil || loc.Query().Get("state") != state || loc.Query().Get("code") == "" {
		return loginStatus{status: resp.StatusCode, page: string(page) + resp.Header.Get("Location")}
	}
	return loginStatus{code: loc.Query().Get("code"), status: resp.StatusCode}
}

// agentVerifier is the PKCE verifier of the agent tests' sign-ins.
var agentVerifier = oauth2.GenerateVerifier()

// signIn signs user in, redeems the code and verifies the ID token.
func (rp *agentRP) signIn(t testing.TB, user, password string) {
	t.Helper()
	st := rp.login(t, user, password)
	if st.code == "" {
		t.Fatalf("OIDC sign-in of %s: status %d:\n%s", user, st.status, st.page)
	}
	tok, err := rp.conf.Exchange(rp.ctx, st.code, oauth2.VerifierOption(agentVerifier))
	if err != nil {
		t.Fatalf("code redemption: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := rp.provider.Verifier(&gooidc.Config{ClientID: clusterClientID}).Verify(rp.ctx, raw)
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	var c struct {
		Email string `json:"email"`
	}
	if err := idt.Claims(&c); err != nil || !strings.EqualFold(c.Email, user) {
		t.Fatalf("ID token of %s names %q (%v)", user, c.Email, err)
	}
}
