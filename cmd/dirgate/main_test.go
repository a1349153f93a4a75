package main

import (
	"bytes"
	"context"
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

	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/demodir"
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

// TestDemoREADMELines runs `dirgate serve --demo` and the README's client
// lines against it.
func TestDemoREADMELines(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, a := range []string{"127.0.0.1:3890", "127.0.0.1:8080", "127.0.0.1:8081"} {
		if c, err := net.Dial("tcp", a); err == nil {
			c.Close()
			t.Skipf("%s is in use (a `make run` is serving?)", a)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := execute(ctx, "serve", "--demo"); done <- err }()
	defer func() { cancel(); <-done }()
	waitFor(t, "127.0.0.1:3890")

	c, err := ldap.DialURL("ldap://127.0.0.1:3890")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The startup sync runs in the background; wait for it.
	var res *ldap.SearchResult
	for range 100 {
		if err = c.Bind("cn=app,ou=services,dc=demo,dc=dirgate", "app-pw"); err != nil {
			t.Fatal(err)
		}
		res, err = c.Search(ldap.NewSearchRequest("dc=demo,dc=dirgate", ldap.ScopeWholeSubtree, 0, 0, 0, false,
			"(mail=alice@demo.dirgate)", []string{"cn", "mail", "memberOf"}, nil))
		if err == nil && len(res.Entries) == 1 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil || len(res.Entries) != 1 || len(res.Entries[0].GetAttributeValues("memberOf")) != 2 {
		t.Fatalf("demo search: %v %+v", err, res)
	}
	// The README's sign-in: the demo application at /demo/ through the
	// provider's login page, as a browser would (cookies, redirects).
	jar, _ := cookiejar.New(nil)
	web := &http.Client{Jar: jar}
	resp, err := web.Get("http://127.0.0.1:8080/demo/start")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	form := url.Values{"email": {"alice@demo.dirgate"}, "password": {"alice-pw"}}
	for _, m := range regexp.MustCompile(`name="(request|csrf)" value="([^"]+)"`).FindAllStringSubmatch(string(page), -1) {
		form.Set(m[1], m[2])
	}
	resp, err = web.PostForm("http://127.0.0.1:8080/login", form)
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "alice@demo.dirgate") || !strings.Contains(string(page), "leads") {
		t.Fatalf("demo sign-in ended with %d:\n%s", resp.StatusCode, page)
	}
	// The demo's admin API, with the README's token.
	req, _ := http.NewRequest("GET", "http://127.0.0.1:8081/api/v1/connectors", nil)
	req.Header.Set("Authorization", "Bearer "+demoAdminToken)
	if r, err := http.DefaultClient.Do(req); err != nil || r.StatusCode != 200 {
		t.Fatalf("demo admin API: %v", err)
	}
	if _, err := exec.LookPath("ldapwhoami"); err != nil {
		t.Skip("ldap-utils not installed")
	}
	out, err := exec.Command("ldapwhoami", "-x", "-H", "ldap://127.0.0.1:3890", "-D", "alice@demo.dirgate", "-w", "alice-pw").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "dn:uid=alice,ou=people,dc=demo,dc=dirgate" {
		t.Fatalf("ldapwhoami: %v %s", err, out)
	}
	out, err = exec.Command("ldapsearch", "-x", "-H", "ldap://127.0.0.1:3890", "-D", "cn=app,ou=services,dc=demo,dc=dirgate",
		"-w", "app-pw", "-b", "dc=demo,dc=dirgate", "(mail=alice@demo.dirgate)", "cn", "mail", "memberOf").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "memberOf: cn=leads,ou=groups,dc=demo,dc=dirgate") {
		t.Fatalf("ldapsearch: %v %s", err, out)
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
	hashA, _ := config.HashPassword("pw-a-0123")
	hashB, _ := config.HashPassword("pw-b-0123")
	write := func(accounts string) string {
		y := fmt.Sprintf("cache: {dir: %s}\nldap: {listen: %q}\nservice_accounts: [%s]\nconnectors: [{name: demo, type: openldap, host: 127.0.0.1, port: %d, "+
			"encryption: none, bind_dn: %q, bind_password_env: DEMO_PW, root_dn: %q}]\nlog: {level: error}\n",
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
	write(fmt.Sprintf("{dn: \"cn=a,dc=svc\", password_hash: %q}, {dn: \"cn=b,dc=svc\", password_hash: %q}", hashA, hashB))
	_ = syscall.Kill(os.Getpid(), syscall.SIGHUP)
	deadline := time.Now().Add(5 * time.Second)
	for tryBind(addr, "cn=b,dc=svc", "pw-b-0123") != nil {
		if time.Now().After(deadline) {
			t.Fatal("account b does not work after SIGHUP")
		}
		time.Sleep(50 * time.Millisecond)
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
// holds the cache.
func TestOperations(t *testing.T) {
	up, err := demodir.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Stop()
	ldapAddr, adminAddr, dir := freePort(t), freePort(t), t.TempDir()
	t.Setenv("DEMO_PW", demodir.SyncPassword)
	t.Setenv("DIRGATE_TEST_ADMIN_TOKEN", "test-admin-token-0123456789")
	y := fmt.Sprintf("cache: {dir: %s}\nldap: {listen: %q}\nschedule: {time_zone: Europe/Berlin}\n"+
		"admin: {listen: %q, token_env: DIRGATE_TEST_ADMIN_TOKEN}\n"+
		"connectors: [{name: demo, type: openldap, host: 127.0.0.1, port: %d, encryption: none, bind_dn: %q, bind_password_env: DEMO_PW, root_dn: %q}]\nlog: {level: error}\n",
		filepath.Join(dir, "cache"), ldapAddr, adminAddr, up.Port(), demodir.SyncDN, demodir.Base)
	p := filepath.Join(dir, "dirgate.yaml")
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := execute(ctx, "serve", "-c", p); done <- err }()
	defer func() { cancel(); <-done }()
	waitFor(t, adminAddr)
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
	// Ready once the start-up (missed) run has synced the connector.
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := get("/readyz")
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never ready: %d %s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
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
}
