//go:build interop

package interop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/internal/testenv"
	"github.com/dirgate/dirgate/passwd"
)

// The service account and OIDC client every dirgate of the suite has.
const (
	serviceDN = "cn=app,ou=services,dc=dirgate"
	servicePW = "app-secret"
	clientID  = "rp"
	clientPW  = "rp-secret"
)

// tmpRoot holds the binary and the instances' files; removed by TestMain.
var tmpRoot string

func TestMain(m *testing.M) {
	var err error
	if tmpRoot, err = os.MkdirTemp("", "dirgate-interop-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	code := m.Run()
	for _, g := range []*shared{&olGate, &adGate} {
		if g.d == nil {
			continue
		}
		g.d.stop()
		// The race detector reports into the log and lets the server run on.
		if b, _ := os.ReadFile(g.d.logPath); bytes.Contains(b, []byte("WARNING: DATA RACE")) {
			fmt.Fprintf(os.Stderr, "FAIL: the race detector reported in dirgate:\n%s\n", b)
			code = 1
		}
	}
	os.RemoveAll(tmpRoot)
	os.Exit(code)
}

// tool returns the path of an external client program; see missing.
func tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missing(t, name)
	}
	return p
}

// missing skips the test for lack of a client, or fails it when the
// upstreams are required (`make test`).
func missing(t testing.TB, what string) {
	t.Helper()
	if os.Getenv("DIRGATE_REQUIRE_UPSTREAMS") == "1" {
		t.Fatalf("%s is not installed: run scripts/testenv/install.sh interop", what)
	}
	t.Skipf("%s is not installed (scripts/testenv/install.sh interop)", what)
}

var build struct {
	once sync.Once
	path string
	err  error
}

// binary builds cmd/dirgate once, with the race detector, so the real
// clients' traffic is also a race test of the server. DIRGATE_INTEROP_BIN
// names a binary to test instead (a release build, say).
func binary(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		if build.path = os.Getenv("DIRGATE_INTEROP_BIN"); build.path != "" {
			return
		}
		_, here, _, _ := runtime.Caller(0)
		build.path = filepath.Join(tmpRoot, "dirgate")
		cmd := exec.Command("go", "build", "-race", "-o", build.path, "./cmd/dirgate")
		cmd.Dir = filepath.Join(filepath.Dir(here), "..", "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.path
}

// freeAddr returns a loopback address nothing listens on right now.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func hash(t testing.TB, pw string) string {
	t.Helper()
	h, err := passwd.Hash(pw)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// dirgate is one `dirgate serve` process.
type dirgate struct {
	ldapAddr, issuer string
	cmd              *exec.Cmd
	logPath          string
	done             chan struct{}
}

// ldapURL is the plain LDAP listener's URL.
func (d *dirgate) ldapURL() string { return "ldap://" + d.ldapAddr }

// redirectURI is where the OIDC client is sent back to; nothing listens
// there, the relying party reads the redirect.
const (
	redirectURI   = "http://127.0.0.1/rp/callback"
	postLogoutURI = "http://127.0.0.1/rp/signed-out"
)

// startDirgate writes a configuration with connector (a YAML list item,
// indented by two spaces) and starts `dirgate serve` on free loopback
// ports, with env added to its environment. It returns once the cache
// answers for readyFilter.
func startDirgate(t testing.TB, name, connector, readyFilter, base string, env ...string) (*dirgate, error) {
	dir := filepath.Join(tmpRoot, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	d := &dirgate{ldapAddr: freeAddr(t), logPath: filepath.Join(dir, "dirgate.log"), done: make(chan struct{})}
	web := freeAddr(t)
	d.issuer = "http://" + web
	y := fmt.Sprintf(`cache: {dir: %s}
ldap:
  listen: %s
  size_limit: 5000
service_accounts:
  - dn: %s
    password_hash: %q
connectors:
%s
oidc:
  issuer: %s
  listen: %s
  clients:
    - id: %s
      secret_hash: %q
      redirect_uris: [%s]
      post_logout_redirect_uris: [%s]
log: {level: debug}
`, filepath.Join(dir, "cache"), d.ldapAddr, serviceDN, hash(t, servicePW), connector, d.issuer, web, clientID, hash(t, clientPW), redirectURI, postLogoutURI)
	cfgPath := filepath.Join(dir, "dirgate.yaml")
	if err := os.WriteFile(cfgPath, []byte(y), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.Create(d.logPath)
	if err != nil {
		return nil, err
	}
	d.cmd = exec.Command(binary(t), "serve", "--config", cfgPath)
	d.cmd.Env = append(os.Environ(), env...)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	go func() { _ = d.cmd.Wait(); logf.Close(); close(d.done) }()
	if err := d.waitReady(readyFilter, base); err != nil {
		d.stop()
		return nil, fmt.Errorf("%s: %w\n%s", name, err, d.logTail())
	}
	return d, nil
}

// waitReady waits until the first sync has filled the cache: a search for
// filter as the service account finds an entry.
func (d *dirgate) waitReady(filter, base string) error {
	deadline := time.Now().Add(3 * time.Minute)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-d.done:
			return fmt.Errorf("dirgate exited: %v", d.cmd.ProcessState)
		case <-time.After(200 * time.Millisecond):
		}
		last = func() error {
			c, err := ldap.DialURL(d.ldapURL())
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.Bind(serviceDN, servicePW); err != nil {
				return err
			}
			res, err := c.Search(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 1, 0, false, filter, []string{"1.1"}, nil))
			if err != nil {
				return err
			}
			if len(res.Entries) == 0 {
				return errors.New("not synced yet")
			}
			return nil
		}()
		if last == nil {
			return nil
		}
	}
	return fmt.Errorf("not ready after 3 minutes: %v", last)
}

func (d *dirgate) stop() {
	if d.cmd.Process == nil {
		return
	}
	_ = d.cmd.Process.Signal(os.Interrupt)
	select {
	case <-d.done:
	case <-time.After(15 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
	}
}

// logTail is the end of the process's log, for failure messages.
func (d *dirgate) logTail() string {
	b, _ := os.ReadFile(d.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return "dirgate log (end):\n" + strings.Join(lines, "\n")
}

// shared is a dirgate started once and used by several tests.
type shared struct {
	once sync.Once
	d    *dirgate
	err  error
}

var olGate, adGate shared

func (s *shared) get(t *testing.T, start func() (*dirgate, error)) *dirgate {
	t.Helper()
	s.once.Do(func() {
		// start may end the first test (t.Fatal) before it returns: the
		// tests after it must fail too, not find a nil dirgate.
		s.err = errors.New("dirgate did not start: see the first test that used it")
		s.d, s.err = start()
	})
	if s.err != nil {
		t.Fatal(s.err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(s.d.logTail())
		}
	})
	return s.d
}

// openLDAP is the suite's dirgate in front of the test slapd, synced.
func openLDAP(t *testing.T) (*dirgate, testenv.Env) {
	t.Helper()
	e := testenv.Load(t)
	return olGate.get(t, func() (*dirgate, error) {
		conn := fmt.Sprintf(`  - name: corp
    type: openldap
    host: %s
    port: %s
    encryption: strict
    tls_mode: ldaps
    ca_file: %s
    bind_dn: %s
    bind_password_env: DIRGATE_INTEROP_OL_PW
    root_dn: %s
    acknowledge_disabled_accounts: true
    safety: {max_deletes: 100000, max_delete_percent: 100}`,
			e.Get(t, "DIRGATE_OL_HOST"), e.Get(t, "DIRGATE_OL_LDAPS_PORT"), e.Get(t, "DIRGATE_OL_CA"),
			e.Get(t, "DIRGATE_OL_SYNC_DN"), e.Get(t, "DIRGATE_OL_BASE"))
		return startDirgate(t, "openldap", conn, "(uid=user00001)", e.Get(t, "DIRGATE_OL_BASE"),
			"DIRGATE_INTEROP_OL_PW="+e.Get(t, "DIRGATE_OL_SYNC_PW"))
	}), e
}

// sambaAD is the suite's dirgate in front of the Samba AD DC, synced.
func sambaAD(t *testing.T) (*dirgate, testenv.Env) {
	t.Helper()
	e := testenv.Load(t)
	if _, ok := e["DIRGATE_AD_URL"]; !ok {
		t.Skip("no Samba AD DC in the test environment (DIRGATE_SKIP_SAMBA=1)")
	}
	return adGate.get(t, func() (*dirgate, error) {
		conn := fmt.Sprintf(`  - name: ad
    type: ad
    host: %s
    port: %s
    encryption: strict
    ca_file: %s
    bind_dn: %q
    bind_password_env: DIRGATE_INTEROP_AD_PW
    root_dn: %q
    page_size: 500
    safety: {max_deletes: 100000, max_delete_percent: 100}`,
			e.Get(t, "DIRGATE_AD_HOST"), e.Get(t, "DIRGATE_AD_LDAPS_PORT"), e.Get(t, "DIRGATE_AD_CA"),
			e.Get(t, "DIRGATE_AD_SYNC_DN"), e.Get(t, "DIRGATE_AD_BASE"))
		return startDirgate(t, "samba", conn, "(sAMAccountName=user00001)", e.Get(t, "DIRGATE_AD_BASE"),
			"DIRGATE_INTEROP_AD_PW="+e.Get(t, "DIRGATE_AD_SYNC_PW"))
	}), e
}

// run runs a client program with a deadline and returns its combined
// output and exit code; a program that cannot start fails the test.
func run(t testing.TB, stdin []byte, name string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	// The OpenLDAP tools must not read the machine's ldap.conf or ~/.ldaprc.
	cmd.Env = append(os.Environ(), "LDAPNOINIT=1")
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &exit) && ctx.Err() == nil:
		return string(out), exit.ExitCode()
	default:
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		return "", -1
	}
}
