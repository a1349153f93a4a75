package main

import (
	"bytes"
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
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/demodir"
	"github.com/dirgate/dirgate/passwd"
)

func execute(ctx context.Context, args ...string) (string, error) {
	var out bytes.Buffer
	cmd := rootCmd()
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	err := cmd.ExecuteContext(ctx)
	return out.String(), err
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestConfigErrorStartsNothing: a broken configuration fails before any
// listener opens.
func TestConfigErrorStartsNothing(t *testing.T) {
	addr := freePort(t)
	dir := t.TempDir()
	cases := map[string]string{
		"typo": fmt.Sprintf("ldap: {listen: %q}\nconectors: []\n", addr),
		"tls cert missing": fmt.Sprintf("ldap: {listen: %q, tls: {cert_file: nope.pem, key_file: nope.key}}\n"+
			"connectors: [{name: a, type: openldap, host: h, encryption: none, root_dn: dc=x}]\n", addr),
		"bad encryption": fmt.Sprintf("ldap: {listen: %q}\nconnectors: [{name: a, type: openldap, host: h, encryption: strct, root_dn: dc=x}]\n", addr),
	}
	for name, y := range cases {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".yaml")
			if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := execute(ctx, "serve", "-c", p)
			if err == nil || !strings.Contains(err.Error(), filepath.Base(p)+":") {
				t.Fatalf("want a file:line error, got %v", err)
			}
			if c, err := net.Dial("tcp", addr); err == nil {
				c.Close()
				t.Fatal("a listener was opened despite the config error")
			}
		})
	}
}

// TestCacheInUseStartsNothing: the cache directory held by another process
// is reported, and no listener is left open.
func TestCacheInUseStartsNothing(t *testing.T) {
	up, err := demodir.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Stop()
	addr, dir := freePort(t), t.TempDir()
	t.Setenv("DEMO_PW", demodir.SyncPassword)
	y := fmt.Sprintf("cache: {dir: %s}\nldap: {listen: %q}\nconnectors: [{name: demo, type: openldap, host: 127.0.0.1, port: %d, "+
		"encryption: none, bind_dn: %q, bind_password_env: DEMO_PW, root_dn: %q}]\nlog: {level: error}\n",
		filepath.Join(dir, "cache"), addr, up.Port(), demodir.SyncDN, demodir.Base)
	p := filepath.Join(dir, "dirgate.yaml")
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := execute(ctx, "serve", "-c", p); done <- err }()
	waitFor(t, addr)

	// A second process on the same cache: refused before listening.
	out, err := execute(context.Background(), "sync", "-c", p)
	if err == nil || !strings.Contains(err.Error(), "another dirgate process") {
		t.Fatalf("second opener: %v\n%s", err, out)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}

	// Stopped: the CLI opens the cache itself. (The server's start-up run
	// may have been cancelled by the stop; this one completes the cache.)
	if out, err = execute(context.Background(), "sync", "-c", p); err != nil {
		t.Fatalf("sync after the server stopped: %v\n%s", err, out)
	}
	out, err = execute(context.Background(), "sync", "-c", p, "--dry-run")
	if err != nil || !strings.Contains(out, "0 added") || !strings.Contains(out, "dry run") {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
}

func waitFor(t *testing.T, addr string) {
	t.Helper()
	for range 100 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s", addr)
}

// captureLog sends the log of servers started from now on to a file,
// until the test ends; the function returned reads it.
func captureLog(t *testing.T) func() string {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	saved := stderr
	stderr = f
	t.Cleanup(func() { stderr = saved; f.Close() })
	return func() string {
		b, err := os.ReadFile(f.Name())
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
}

// moveDemo puts the demo (and the CLI's --demo) on free ports, so that a
// `make run` on the same machine does not get in the way.
func moveDemo(t *testing.T) {
	t.Helper()
	saved := demoAddrs
	demoAddrs.LDAP, demoAddrs.OIDC, demoAddrs.Admin = freePort(t), freePort(t), freePort(t)
	t.Cleanup(func() { demoAddrs = saved })
}

// startDemo runs `dirgate serve --demo` in a temporary working directory,
// waits until its start-up sync is done and returns what reads its log.
func startDemo(t *testing.T) func() string {
	t.Helper()
	t.Chdir(t.TempDir())
	moveDemo(t)
	log := captureLog(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := execute(ctx, "serve", "--demo"); done <- err }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve --demo: %v", err)
		}
	})
	waitReady(t, demoAddrs.Admin)
	return log
}

// waitReady waits until the admin listener at addr reports every
// connector synced.
func waitReady(t *testing.T, addr string) {
	t.Helper()
	waitFor(t, addr)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("never ready: %d %s", resp.StatusCode, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// bannerField reads one value of the demo's start-up banner.
func bannerField(t *testing.T, banner, pattern string) []string {
	t.Helper()
	m := regexp.MustCompile(`(?m)` + pattern).FindStringSubmatch(banner)
	if m == nil {
		t.Fatalf("the banner has no %s:\n%s", pattern, banner)
	}
	return m[1:]
}

// TestDemoBanner runs `dirgate serve --demo` and follows its start-up
// banner (which the README repeats): printed once, and every URL, account
// and token in it works.
func TestDemoBanner(t *testing.T) {
	log := startDemo(t)()
	if n := strings.Count(log, "dirgate demo ("); n != 1 {
		t.Fatalf("the banner is printed %d times:\n%s", n, log)
	}
	banner := log[strings.Index(log, "dirgate demo ("):]
	ldapURL := bannerField(t, banner, `^  LDAP +(ldap://\S+)`)[0]
	sample := bannerField(t, banner, `^  try +(ldapsearch .*)$`)[0]
	svc := bannerField(t, banner, `^  service +(\S+)  password (\S+)$`)
	user := bannerField(t, banner, `^  user +(\S+)  password (\S+)$`)
	oidc := bannerField(t, banner, `^  OIDC +issuer (\S+)  discovery (\S+)$`)
	app := bannerField(t, banner, `^  demo app +(\S+)`)[0]
	console := bannerField(t, banner, `^  console +(\S+)  admin token (\S+)$`)

	c, err := ldap.DialURL(ldapURL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err = c.Bind(svc[0], svc[1]); err != nil {
		t.Fatalf("the banner's service account: %v", err)
	}
	res, err := c.Search(ldap.NewSearchRequest(demodir.Base, ldap.ScopeWholeSubtree, 0, 0, 0, false,
		"(mail="+user[0]+")", []string{"cn", "mail", "memberOf"}, nil))
	if err != nil || len(res.Entries) != 1 || len(res.Entries[0].GetAttributeValues("memberOf")) != 2 {
		t.Fatalf("demo search: %v %+v", err, res)
	}
	if err := c.Bind(user[0], user[1]); err != nil {
		t.Fatalf("the banner's user over LDAP: %v", err)
	}

	var disc struct{ Issuer string }
	resp, err := http.Get(oidc[1])
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&disc)
	resp.Body.Close()
	if err != nil || disc.Issuer != oidc[0] {
		t.Fatalf("discovery at %s: %v, issuer %q, want %q", oidc[1], err, disc.Issuer, oidc[0])
	}
	// The banner's user signs in to the demo application through the
	// provider's login page, as a browser would (cookies, redirects).
	jar, _ := cookiejar.New(nil)
	web := &http.Client{Jar: jar}
	if resp, err = web.Get(app + "start"); err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	form := url.Values{"email": {user[0]}, "password": {user[1]}}
	for _, m := range regexp.MustCompile(`name="(request|csrf)" value="([^"]+)"`).FindAllStringSubmatch(string(page), -1) {
		form.Set(m[1], m[2])
	}
	if resp, err = web.PostForm(oidc[0]+"/login", form); err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), user[0]) || !strings.Contains(string(page), "leads") {
		t.Fatalf("demo sign-in ended with %d:\n%s", resp.StatusCode, page)
	}
	// The console, with the banner's token.
	req, _ := http.NewRequest("GET", console[0]+"api/v1/connectors", nil)
	req.Header.Set("Authorization", "Bearer "+console[1])
	if r, err := http.DefaultClient.Do(req); err != nil || r.StatusCode != 200 {
		t.Fatalf("demo admin API: %v %v", err, r)
	}

	if _, err := exec.LookPath("ldapsearch"); err != nil {
		t.Skip("ldap-utils not installed")
	}
	out, err := exec.Command("sh", "-c", sample).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "memberOf: cn=leads,ou=groups,dc=demo,dc=dirgate") {
		t.Fatalf("%s: %v %s", sample, err, out)
	}
	out, err = exec.Command("ldapwhoami", "-x", "-H", ldapURL, "-D", user[0], "-w", user[1]).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "dn:uid=alice,ou=people,dc=demo,dc=dirgate" {
		t.Fatalf("ldapwhoami: %v %s", err, out)
	}
}

// TestDemoCLI: status, test-connection and sync work with --demo against
// a running demo, and say how to start one when none runs.
func TestDemoCLI(t *testing.T) {
	ctx := context.Background()
	t.Run("no demo running", func(t *testing.T) {
		moveDemo(t)
		for _, args := range [][]string{{"status"}, {"sync", "--dry-run"}, {"test-connection"}} {
			out, err := execute(ctx, append(args, "--demo")...)
			if err == nil || !strings.Contains(err.Error(), "serve --demo") {
				t.Errorf("%v --demo without a demo: %v\n%s", args, err, out)
			}
		}
	})
	startDemo(t)
	cases := []struct {
		args []string
		want []string
	}{
		// The demo directory: 5 users, 2 groups.
		{[]string{"status"}, []string{`(?m)^demo +openldap +ok .* 5 +2$`}},
		{[]string{"test-connection"}, []string{`connector demo`, `(?m)^PASS .* bind `, `(?m)^OK: `}},
		{[]string{"sync", "--dry-run"}, []string{`demo: \w+ sync read 7 .* 0 added, 0 updated, 0 deleted, 7 unchanged \(dry run, nothing applied\)`}},
		{[]string{"sync", "demo", "--full"}, []string{`demo: full sync read 7 .* 7 unchanged \(no changes\)`}},
	}
	for _, c := range cases {
		out, err := execute(ctx, append(c.args, "--demo")...)
		// A run the scheduler starts (the demo's missed-run check) may be
		// in progress when status asks: wait for it rather than race it.
		for deadline := time.Now().Add(10 * time.Second); err == nil && c.args[0] == "status" &&
			regexp.MustCompile(`(?m)^demo +openldap +running`).MatchString(out) && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
			out, err = execute(ctx, append(c.args, "--demo")...)
		}
		if err != nil {
			t.Errorf("%v --demo: %v\n%s", c.args, err, out)
			continue
		}
		for _, w := range c.want {
			if !regexp.MustCompile(w).MatchString(out) {
				t.Errorf("%v --demo: no %s in\n%s", c.args, w, out)
			}
		}
	}
	if out, err := execute(ctx, "status", "--demo", "-c", "dirgate.yaml"); err == nil {
		t.Errorf("--demo with --config: accepted\n%s", out)
	}
}

// TestSIGHUPReload: a changed configuration applies on SIGHUP without
// closing open LDAP connections; an invalid one changes nothing.
func TestSIGHUPReload(t *testing.T) {
	up, err := demodir.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Stop()
	addr, dir := freePort(t), t.TempDir()
	t.Setenv("DEMO_PW", demodir.SyncPassword)
	hashA, _ := passwd.Hash("pw-a-0123")
	hashB, _ := passwd.Hash("pw-b-0123")
	write := func(accounts string) string {
		y := fmt.Sprintf("cache: {dir: %s}\nldap: {listen: %q}\nservice_accounts: [%s]\nconnectors: [{name: demo, type: openldap, host: 127.0.0.1, port: %d, "+
			"encryption: none, bind_dn: %q, bind_password_env: DEMO_PW, root_dn: %q}]\nlog: {level: error}\n"+
			"auth: {throttle: {account_failures: 2, base_delay: 1ms}}\n",
			filepath.Join(dir, "cache"), addr, accounts, up.Port(), demodir.SyncDN, demodir.Base)
		p := filepath.Join(dir, "dirgate.yaml")
		if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := write(fmt.Sprintf("{dn: \"cn=a,dc=svc\", password_hash: %q}", hashA))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := execute(ctx, "serve", "-c", p); done <- err }()
	defer func() { cancel(); <-done }()
	waitFor(t, addr)
	held, err := ldap.DialURL("ldap://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if err := held.Bind("cn=a,dc=svc", "pw-a-0123"); err != nil {
		t.Fatal(err)
	}
	if err := tryBind(addr, "cn=b,dc=svc", "pw-b-0123"); err == nil {
		t.Fatal("account b works before the reload")
	}
	// Lock account a for this address; the lockout must outlive the reload.
	for range 2 {
		if err := tryBind(addr, "cn=a,dc=svc", "wrong"); err == nil {
			t.Fatal("a wrong password was accepted")
		}
	}
	if err := tryBind(addr, "cn=a,dc=svc", "pw-a-0123"); err == nil {
		t.Fatal("account a is not locked after two failures")
	}
	write(fmt.Sprintf("{dn: \"cn=a,dc=svc\", password_hash: %q}, {dn: \"cn=b,dc=svc\", password_hash: %q}", hashA, hashB))
	_ = syscall.Kill(os.Getpid(), syscall.SIGHUP)
	deadline := time.Now().Add(5 * time.Second)
	for tryBind(addr, "cn=b,dc=svc", "pw-b-0123") != nil {
		if time.Now().After(deadline) {
			t.Fatal("account b does not work after SIGHUP")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := tryBind(addr, "cn=a,dc=svc", "pw-a-0123"); err == nil {
		t.Fatal("the reload lifted account a's lockout")
	}
	// The connection opened before the reload still works.
	if _, err := held.WhoAmI(nil); err != nil {
		t.Fatalf("connection dropped by the reload: %v", err)
	}
	// A broken file is refused; the running configuration stays.
	if err := os.WriteFile(p, []byte("ldap: {listen: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = syscall.Kill(os.Getpid(), syscall.SIGHUP)
	time.Sleep(300 * time.Millisecond)
	if err := tryBind(addr, "cn=b,dc=svc", "pw-b-0123"); err != nil {
		t.Fatalf("an invalid file changed the running configuration: %v", err)
	}
}

func tryBind(addr, dnStr, pw string) error {
	c, err := ldap.DialURL("ldap://" + addr)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Bind(dnStr, pw)
}

// TestOperations: a server with an admin listener answers health, readiness
// and metrics, and the CLI's status and sync go through its API while it
// holds the cache. Its admin token never appears in its log, even at debug
// level: only the demo prints credentials.
func TestOperations(t *testing.T) {
	up, err := demodir.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Stop()
	ldapAddr, adminAddr, dir := freePort(t), freePort(t), t.TempDir()
	t.Setenv("DEMO_PW", demodir.SyncPassword)
	const token = "test-admin-token-0123456789"
	t.Setenv("DIRGATE_TEST_ADMIN_TOKEN", token)
	log := captureLog(t)
	y := fmt.Sprintf("cache: {dir: %s}\nldap: {listen: %q}\nschedule: {time_zone: Europe/Berlin}\n"+
		"admin: {listen: %q, token_env: DIRGATE_TEST_ADMIN_TOKEN}\n"+
		"connectors: [{name: demo, type: openldap, host: 127.0.0.1, port: %d, encryption: none, bind_dn: %q, bind_password_env: DEMO_PW, root_dn: %q}]\nlog: {level: debug}\n",
		filepath.Join(dir, "cache"), ldapAddr, adminAddr, up.Port(), demodir.SyncDN, demodir.Base)
	p := filepath.Join(dir, "dirgate.yaml")
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := execute(ctx, "serve", "-c", p); done <- err }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	defer stop()
	// Ready once the start-up (missed) run has synced the connector.
	waitReady(t, adminAddr)
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + adminAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("healthz %d", code)
	}
	// The registry is process-wide: other tests in this binary sync too.
	if _, body := get("/metrics"); !regexp.MustCompile(`dirgate_sync_runs_total\{connector="demo",mode="full",result="ok"\} [1-9]`).MatchString(body) ||
		!strings.Contains(body, `dirgate_cache_entries{connector="demo",kind="user"} 5`) {
		t.Fatalf("metrics lack the sync:\n%s", body)
	}
	if code, _ := get("/api/v1/connectors"); code != http.StatusUnauthorized {
		t.Fatalf("API without a token: %d", code)
	}
	out, err := execute(context.Background(), "status", "-c", p)
	if err != nil || !strings.Contains(out, "demo") || !strings.Contains(out, " ok ") || !strings.Contains(out, "missed") {
		t.Fatalf("status through the API: %v\n%s", err, out)
	}
	out, err = execute(context.Background(), "sync", "-c", p, "--dry-run")
	if err != nil || !strings.Contains(out, "dry run") {
		t.Fatalf("sync through the API: %v\n%s", err, out)
	}
	for _, tok := range []string{token, "wrong-token-0123456789"} {
		req, _ := http.NewRequest("GET", "http://"+adminAddr+"/api/v1/connectors", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	stop()
	if l := log(); !strings.Contains(l, "admin listening") || strings.Contains(l, token) || strings.Contains(l, "dirgate demo (") {
		t.Fatalf("the log shows the admin token or the demo banner, or is not the server's:\n%s", l)
	}
}
