//go:build interop

package interop

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHAProxyLDAPCheck load-balances dirgate with HAProxy's `option
// ldap-check` (an anonymous simple bind that must answer success): dirgate
// must be UP, as slapd is, while a server that does not answer goes DOWN,
// which shows the check ran (issue 13 item 1).
func TestHAProxyLDAPCheck(t *testing.T) {
	d, e := openLDAP(t)
	bin := tool(t, "haproxy")
	dir := t.TempDir()
	sock := filepath.Join(dir, "stats.sock")
	front := freeAddr(t)
	cfg := fmt.Sprintf(`global
  stats socket %s mode 600 level admin
defaults
  mode tcp
  timeout connect 2s
  timeout client 10s
  timeout server 10s
frontend ldap
  bind %s
  default_backend directory
backend directory
  option ldap-check
  default-server check inter 200ms fall 2 rise 2
  server dirgate %s
  server slapd %s:%s
  server nothing %s
`, sock, front, d.ldapAddr, e.Get(t, "DIRGATE_OL_HOST"), e.Get(t, "DIRGATE_OL_PORT"), freeAddr(t))
	cfgPath := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	cmd := exec.Command(bin, "-db", "-f", cfgPath)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })

	// The servers start UP; once the one that does not answer is DOWN,
	// every server has been checked at least twice (fall 2).
	var st map[string]serverStat
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("haproxy exited:\n%s", log.String())
		case <-time.After(200 * time.Millisecond):
		}
		var err error
		st, err = haproxyStats(sock)
		if err == nil && st["nothing"].status == "DOWN" && st["slapd"].status == "UP" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy checks did not settle in 30s (stats %v, err %v):\n%s", st, err, log.String())
		}
	}
	// A few more check intervals, so a failing dirgate would be DOWN too.
	time.Sleep(time.Second)
	st, err := haproxyStats(sock)
	if err != nil {
		t.Fatal(err)
	}
	if got := st["dirgate"]; got.status != "UP" || got.check != "L7OK" {
		t.Fatalf("HAProxy ldap-check marks dirgate %s (%s), want UP (L7OK); slapd is %v\n%s", got.status, got.check, st["slapd"], log.String())
	}
	if got := st["slapd"]; got.check != "L7OK" {
		t.Fatalf("slapd, the reference, is %v", got)
	}
	// Through the load balancer, an anonymous client reads the root DSE
	// from whichever server HAProxy picks.
	for range 2 {
		out, code := run(t, nil, tool(t, "ldapsearch"), anonymous(ldapTarget{url: "ldap://" + front}, "-LLL", "-s", "base", "-b", "", "namingContexts")...)
		if code != 0 || !strings.Contains(out, "namingContexts: "+e.Get(t, "DIRGATE_OL_BASE")) {
			t.Fatalf("root DSE through HAProxy: exit %d\n%s", code, out)
		}
	}
}

// serverStat is a backend server's state in HAProxy's `show stat`.
type serverStat struct{ status, check string }

// haproxyStats reads the backend servers' status and last check result
// from the stats socket.
func haproxyStats(sock string) (map[string]serverStat, error) {
	c, err := net.DialTimeout("unix", sock, 2*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("show stat\n")); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(c)
	var cols map[string]int
	out := map[string]serverStat{}
	for sc.Scan() {
		line := sc.Text()
		if h, ok := strings.CutPrefix(line, "# "); ok {
			cols = map[string]int{}
			for i, name := range strings.Split(h, ",") {
				cols[name] = i
			}
			continue
		}
		f := strings.Split(line, ",")
		if cols == nil || len(f) <= max(cols["status"], cols["check_status"]) || f[cols["pxname"]] != "directory" {
			continue
		}
		out[f[cols["svname"]]] = serverStat{status: f[cols["status"]], check: f[cols["check_status"]]}
	}
	return out, sc.Err()
}
