// Command dirgate-bench measures dirgate side by side with the OpenLDAP
// slapd it syncs from, in one run, and writes the table to BENCHMARKS.md.
// scripts/bench.sh starts the slapd and builds the binaries; run it through
// `make bench`.
//
// Every figure is a ratio taken on the same machine in the same run, with
// the two servers measured in alternating rounds, because the machines are
// shared and noisy.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-ldap/ldap/v3"
)

func main() {
	envFile := flag.String("env", "/tmp/dirgate-bench/env", "environment file written by scripts/testenv/openldap.sh")
	binary := flag.String("dirgate", "bin/dirgate", "dirgate binary")
	out := flag.String("out", "BENCHMARKS.md", "report file")
	dur := flag.Duration("duration", 3*time.Second, "length of each measurement round")
	rounds := flag.Int("rounds", 3, "alternating rounds per measurement")
	flag.StringVar(&rawreadBin, "rawread", "bin/rawread", "the reference readers built from cmd/dirgate-bench/rawread: this path with -stock (stock go-ldap) and -patched (dirgate's BER decoder) appended")
	flag.StringVar(&only, "only", "", "comma-separated measures to run (sync, search, bind, oidc, cluster, agent, entra, google); default all. Without sync, one untimed sync fills the cache for search, bind, oidc and cluster")
	flag.StringVar(&pgEnvFile, "pg-env", "", "environment file written by scripts/testenv/postgres.sh: the PostgreSQL of the cluster measure")
	cloudN := flag.Int("cloud-users", 100000, "users of the fake Entra tenant and Google customer (groups: a hundredth)")
	entraReadMode := flag.Bool("entra-read", false, "internal: be the Entra reference reader; arguments: Graph URL, token URL, client ID, client secret")
	googleReadMode := flag.Bool("google-read", false, "internal: be the Google reference reader; arguments: Directory API URL, service account key file, admin")
	flag.StringVar(&profileDir, "pprof", "", "write a CPU profile of dirgate's first round of each load measure into this directory")
	relayTo := flag.String("relay", "", "internal: relay TCP connections byte for byte to this address, from a loopback port printed on stdout (the bind measure runs itself with it)")
	flag.Parse()
	if *relayTo != "" {
		// relay returns only when it fails.
		fmt.Fprintln(os.Stderr, "dirgate-bench relay:", relay(*relayTo))
		os.Exit(1)
	}
	if *entraReadMode {
		if flag.NArg() != 4 {
			fmt.Fprintln(os.Stderr, "dirgate-bench -entra-read: want Graph URL, token URL, client ID, client secret")
			os.Exit(2)
		}
		if err := entraRead(flag.Arg(0), flag.Arg(1), flag.Arg(2), flag.Arg(3)); err != nil {
			fmt.Fprintln(os.Stderr, "dirgate-bench -entra-read:", err)
			os.Exit(1)
		}
		return
	}
	if *googleReadMode {
		if flag.NArg() != 3 {
			fmt.Fprintln(os.Stderr, "dirgate-bench -google-read: want Directory API URL, key file, admin")
			os.Exit(2)
		}
		if err := googleRead(flag.Arg(0), flag.Arg(1), flag.Arg(2)); err != nil {
			fmt.Fprintln(os.Stderr, "dirgate-bench -google-read:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*envFile, *binary, *out, *dur, *rounds, *cloudN); err != nil {
		fmt.Fprintln(os.Stderr, "dirgate-bench:", err)
		os.Exit(1)
	}
}

type env map[string]string

func readEnv(path string) (env, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	e := env{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l, ok := strings.CutPrefix(sc.Text(), "export "); ok {
			if k, v, ok := strings.Cut(l, "="); ok {
				e[strings.TrimPrefix(k, "DIRGATE_OL_")] = strings.Trim(v, "'")
			}
		}
	}
	return e, sc.Err()
}

type report struct {
	rows  [][]string
	notes []string
}

func (r *report) add(cells ...string) {
	r.rows = append(r.rows, cells)
	fmt.Println(strings.Join(cells, " | "))
}

func run(envFile, binary, outFile string, dur time.Duration, rounds, cloudN int) error {
	rep := &report{}
	rep.add("measure", "dirgate", "slapd / reference", "ratio", "target")
	users := 0
	if wanted("sync") || wanted("search") || wanted("bind") || wanted("oidc") || wanted("cluster") || wanted("agent") {
		var err error
		if users, err = runLDAP(rep, envFile, binary, dur, rounds); err != nil {
			return err
		}
	}
	if wanted("entra") {
		if err := entraBench(rep, binary, cloudN, rounds); err != nil {
			return err
		}
	}
	if wanted("google") {
		if err := googleBench(rep, binary, cloudN, rounds); err != nil {
			return err
		}
	}
	if only != "" {
		for _, n := range rep.notes {
			fmt.Println("- " + n)
		}
		fmt.Println("partial run (-only): " + outFile + " not written")
		return nil
	}
	return writeReport(outFile, rep, users, dur, rounds)
}

// runLDAP adds the rows of the OpenLDAP measures and returns the number of
// users of the seed.
func runLDAP(rep *report, envFile, binary string, dur time.Duration, rounds int) (int, error) {
	e, err := readEnv(envFile)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", envFile, err)
	}
	users, _ := strconv.Atoi(e["USERS"])
	work, err := os.MkdirTemp("", "dirgate-bench-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(work)
	cfgPath := filepath.Join(work, "dirgate.yaml")
	setup, err := newLDAPSetup(e, binary)
	if err != nil {
		return 0, err
	}
	listen := "127.0.0.1:3899"
	cfg := setup.config(serverAddrs{cache: filepath.Join(work, "cache"), ldap: listen, oidc: oidcAddr, admin: adminAddr})
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return 0, err
	}
	os.Setenv("DIRGATE_BENCH_SYNC_PW", e["SYNC_PW"])
	os.Setenv("DIRGATE_BENCH_ADMIN_TOKEN", adminToken)

	// 1. Full sync vs a raw paged read of the same entries.
	var syncTimes, rawTimes, stockTimes []time.Duration
	var syncPeak int64 // the first `dirgate sync`'s peak RSS
	syncRounds := rounds
	if !wanted("sync") {
		syncRounds = 1
	}
	for i := range syncRounds {
		if i > 0 {
			os.RemoveAll(filepath.Join(work, "cache"))
		}
		t0 := time.Now()
		var stderr strings.Builder
		syncCmd := exec.Command(binary, "sync", "-c", cfgPath)
		syncCmd.Stderr = &stderr // progress lines
		outb, err := syncCmd.Output()
		if err != nil {
			return 0, fmt.Errorf("dirgate sync: %v\n%s%s", err, outb, stderr.String())
		}
		syncTimes = append(syncTimes, time.Since(t0))
		if ru, ok := syncCmd.ProcessState.SysUsage().(*syscall.Rusage); ok && i == 0 {
			syncPeak = ru.Maxrss << 10 // KiB on Linux
		}
		if !wanted("sync") {
			break
		}
		readers := []struct {
			bin   string
			times *[]time.Duration
		}{{rawreadBin + "-stock", &stockTimes}, {rawreadBin + "-patched", &rawTimes}}
		n := 0
		for _, rd := range readers {
			t0 = time.Now()
			cmd := exec.Command(rd.bin, e["URL"], e["SYNC_DN"], e["SYNC_PW"], e["BASE"])
			cmd.Stderr = os.Stderr
			out, err := cmd.Output()
			*rd.times = append(*rd.times, time.Since(t0))
			got, _ := strconv.Atoi(strings.TrimSpace(string(out)))
			if err != nil || (n != 0 && got != n) {
				return 0, fmt.Errorf("%s: read %q entries: %v", rd.bin, out, err)
			}
			n = got
		}
		if i == 0 {
			rep.notes = append(rep.notes, fmt.Sprintf("full sync read %d entries (`dirgate sync` output: %s)", n, strings.TrimSpace(string(outb))))
		}
	}
	ms := median(syncTimes)
	if wanted("sync") {
		mr, mst := median(rawTimes), median(stockTimes)
		rep.add(fmt.Sprintf("full sync of %d users (wall, median of %d)", users, rounds), ms.Round(time.Millisecond).String(),
			mst.Round(time.Millisecond).String()+" raw paged read, stock go-ldap", ratio(ms, mst), "≤ 1.5×")
		rep.add("the same sync against the read with dirgate's BER decoder", ms.Round(time.Millisecond).String(),
			mr.Round(time.Millisecond).String()+" raw paged read, go-ldap + third_party/asn1-ber", ratio(ms, mr), "")
	}

	if wanted("sync") {
		// 1b. Incremental sync of 100 changes (syncrepl with the cursor the
		// last full run stored).
		if err := changeUsers(e, 100, "bench change "+time.Now().Format(time.RFC3339Nano)); err != nil {
			return 0, err
		}
		t0 := time.Now()
		incOut, err := exec.Command(binary, "sync", "-c", cfgPath).Output()
		if err != nil {
			return 0, fmt.Errorf("incremental sync: %v\n%s", err, incOut)
		}
		inc := time.Since(t0)
		rep.add("incremental sync of 100 changes (wall, whole CLI run)", inc.Round(time.Millisecond).String(),
			ms.Round(time.Millisecond).String()+" full sync", ratio(inc, ms), "< 1 s, reads ∝ changes")
		rep.notes = append(rep.notes, "incremental run: `"+strings.TrimSpace(string(incOut))+"`")
	}

	// Start the server for the online measurements.
	srv := exec.Command(binary, "serve", "-c", cfgPath)
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		return 0, err
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	if err := waitLDAP(listen); err != nil {
		return 0, err
	}
	dg := target{url: "ldap://" + listen, dn: svcDN, pw: svcPW, base: e["BASE"]}
	sl := target{url: e["URL"], dn: e["SYNC_DN"], pw: e["SYNC_PW"], base: e["BASE"]}
	// Warm-up, not measured: the server builds its in-memory index in the
	// background after start-up, and both servers fill their caches.
	for _, t := range []target{dg, sl} {
		if _, err := load(t, 8, 2*time.Second, users, searchOp); err != nil {
			return 0, fmt.Errorf("warm-up: %w", err)
		}
	}

	// 2. Equality search by mail, persistent connections.
	if wanted("search") {
		for _, conc := range []int{1, 8, 32} {
			var dres, sres []loadResult
			for i := range rounds {
				stop := profileRound(i, fmt.Sprintf("search-c%d", conc), dur)
				d, err := load(dg, conc, dur, users, searchOp)
				stop()
				if err != nil {
					return 0, fmt.Errorf("dirgate search: %w", err)
				}
				s, err := load(sl, conc, dur, users, searchOp)
				if err != nil {
					return 0, fmt.Errorf("slapd search: %w", err)
				}
				dres, sres = append(dres, d), append(sres, s)
			}
			d, s := best(dres), best(sres)
			rep.add(fmt.Sprintf("search by mail, concurrency %d: ops/s (p50 / p99)", conc),
				fmt.Sprintf("%.0f (%s / %s)", d.opsPerSec, d.p50, d.p99),
				fmt.Sprintf("%.0f (%s / %s)", s.opsPerSec, s.p50, s.p99),
				fmt.Sprintf("%.2f×", d.opsPerSec/s.opsPerSec), "≥ 1.0×")
		}
	}

	// 3. Bind by email through dirgate vs the same bind directly by DN:
	// first pure pass-through (the default), then with cached
	// authentication on (reloaded with SIGHUP, as an admin would).
	if wanted("bind") {
		// The floor for any proxy on this machine: the same binds by DN
		// through a process that only copies bytes to slapd and back.
		rl, stopRelay, err := startRelay(sl)
		if err != nil {
			return 0, err
		}
		row, err := bindRow(rl, bindDNOp(e["USER_PW"], e["BASE"]), sl, e, users, dur, rounds, "")
		stopRelay()
		if err != nil {
			return 0, err
		}
		rep.add(append([]string{"bind, concurrency 8, by DN through a TCP relay that only copies bytes (no LDAP work): p50 (ops/s)"}, row...)...)
		row, err = bindRow(dg, bindEmailOp(e["USER_PW"]), sl, e, users, dur, rounds, "bind")
		if err != nil {
			return 0, err
		}
		rep.add(append([]string{"bind, concurrency 8, pass-through (default): p50 (ops/s)"}, row...)...)
		if err := os.WriteFile(cfgPath, []byte(cfg+"auth: {cached_auth_timeout: 5m}\n"), 0o600); err != nil {
			return 0, err
		}
		if err := srv.Process.Signal(syscall.SIGHUP); err != nil {
			return 0, err
		}
		time.Sleep(time.Second)
		// The cache pays off when the same people sign in again, as with
		// an application that binds on every request: 1,000 active users.
		active := min(users, 1000)
		row, err = bindRow(dg, bindEmailOp(e["USER_PW"]), sl, e, active, dur, rounds, "bind-cached")
		if err != nil {
			return 0, err
		}
		rep.add(append([]string{fmt.Sprintf("bind, concurrency 8, `auth.cached_auth_timeout: 5m`, %d active users: p50 (ops/s)", active)}, row...)...)
	}

	// 3b. OIDC: whole sign-ins (authorize, login form, code exchange) and
	// refresh grants at the token endpoint, concurrency 4.
	if wanted("oidc") {
		logins, err := oidcLoad(e, oidcAddr, users, dur, false)
		if err != nil {
			return 0, fmt.Errorf("oidc logins: %w", err)
		}
		refreshes, err := oidcLoad(e, oidcAddr, users, dur, true)
		if err != nil {
			return 0, fmt.Errorf("oidc refresh: %w", err)
		}
		rep.add("OIDC sign-in round trips (authorize + login + token), concurrency 4: per s (p50)",
			fmt.Sprintf("%.0f (%s)", logins.opsPerSec, logins.p50), "", "", "")
		rep.add("OIDC token endpoint (refresh grants), concurrency 4: per s (p50)",
			fmt.Sprintf("%.0f (%s)", refreshes.opsPerSec, refreshes.p50), "", "", "")
	}

	// 4. Memory and disk.
	rss := rssOf(srv.Process.Pid)
	if profileDir != "" {
		saveProfile("heap", "/debug/pprof/heap")
	}
	size := dirSize(filepath.Join(work, "cache"))
	ldif, _ := strconv.ParseInt(e["LDIF_BYTES"], 10, 64)
	rep.add(fmt.Sprintf("RSS serving %d users", users), fmt.Sprintf("%.0f MiB", float64(rss)/(1<<20)), "", "", "≤ 250 MiB")
	rep.add("cache size on disk", fmt.Sprintf("%.1f MiB", float64(size)/(1<<20)),
		fmt.Sprintf("%.1f MiB LDIF", float64(ldif)/(1<<20)), fmt.Sprintf("%.2f×", float64(size)/float64(max(ldif, 1))), "≤ 2×")

	// 5. Cluster mode, last: its rounds would change the figures above.
	if wanted("cluster") {
		err := clusterBench(rep, clusterRun{setup: setup, binary: binary, work: work, users: users, dur: dur, rounds: rounds,
			single: singleServer{pid: srv.Process.Pid, ldap: dg, oidc: oidcAddr}, fullSync: ms, fullSyncPeak: syncPeak})
		if err != nil {
			return 0, fmt.Errorf("cluster: %w", err)
		}
	}
	if err := agentBench(rep, agentRun{setup: setup, binary: binary, work: work, users: users, dur: dur, rounds: rounds}); err != nil {
		return 0, fmt.Errorf("agent: %w", err)
	}
	return users, nil
}

const (
	adminAddr  = "127.0.0.1:3896"
	adminToken = "bench-admin-token"
)

// The service account dirgate's LDAP measures bind as.
const svcDN, svcPW = "cn=bench,ou=services,dc=dirgate", "bench-pw"

// ldapSetup is what every dirgate server of the OpenLDAP measures shares:
// the upstream slapd, the service account and the OIDC client.
type ldapSetup struct {
	e                   env
	svcHash, clientHash string
}

func newLDAPSetup(e env, binary string) (*ldapSetup, error) {
	svcHash, err := hashOf(binary, svcPW)
	if err != nil {
		return nil, fmt.Errorf("hash-password: %w", err)
	}
	clientHash, err := hashOf(binary, oidcSecret)
	if err != nil {
		return nil, fmt.Errorf("hash-password: %w", err)
	}
	return &ldapSetup{e: e, svcHash: svcHash, clientHash: clientHash}, nil
}

// serverAddrs are one dirgate server's cache directory and listeners.
type serverAddrs struct{ cache, ldap, oidc, admin string }

// config is the configuration of a dirgate server at a: one connector to
// the slapd, the OIDC client, the admin API with the bench's token.
func (s *ldapSetup) config(a serverAddrs) string {
	e := s.e
	return fmt.Sprintf(`cache: {dir: %s}
ldap: {listen: %q, size_limit: 1000000, max_page_size: 5000}
service_accounts: [{dn: %q, password_hash: %q}]
connectors:
  - name: bench
    type: openldap
    host: %s
    port: %s
    encryption: none
    bind_dn: %q
    bind_password_env: DIRGATE_BENCH_SYNC_PW
    root_dn: %q
    page_size: 1000
    timeout: 60s
oidc:
  issuer: http://%s
  listen: %s
  clients: [{id: bench, secret_hash: %q, redirect_uris: [%q]}]
log: {level: warn}
admin: {listen: %q, token_env: DIRGATE_BENCH_ADMIN_TOKEN}
`, a.cache, a.ldap, svcDN, s.svcHash, e["HOST"], e["PORT"], e["SYNC_DN"], e["BASE"],
		a.oidc, a.oidc, s.clientHash, oidcRedirect, a.admin)
}

// rawreadBin is the path prefix of the two reference readers.
var rawreadBin string

// only lists the measures to run; empty runs them all.
var only string

func wanted(measure string) bool {
	return only == "" || strings.Contains(","+only+",", ","+measure+",")
}

// profileDir is where -pprof writes profiles; empty means no profiling.
var profileDir string

// profileRound starts a CPU profile of the dirgate server for the first
// round of a measure when -pprof is set; the returned func waits for it.
func profileRound(round int, name string, dur time.Duration) (wait func()) {
	if profileDir == "" || round != 0 {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		secs := max(int(dur.Seconds())-1, 1)
		saveProfile(name, fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs))
	}()
	return func() { <-done }
}

// saveProfile fetches a profile from dirgate's admin port into profileDir.
func saveProfile(name, path string) {
	req, _ := http.NewRequest("GET", "http://"+adminAddr+path, nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pprof:", err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if err := os.WriteFile(filepath.Join(profileDir, name+".pprof"), body, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "pprof:", err)
	}
}

// bindRow measures binds made with viaOp through via (dirgate or the
// relay) against binds by DN made directly to slapd, in alternating rounds,
// and returns the table cells. A non-empty profile names the CPU profile
// of dirgate's first round.
func bindRow(via target, viaOp op, sl target, e env, users int, dur time.Duration, rounds int, profile string) ([]string, error) {
	var dres, sres []loadResult
	for i := range rounds {
		stop := func() {}
		if profile != "" {
			stop = profileRound(i, profile, dur)
		}
		d, err := load(via, 8, dur, users, viaOp)
		stop()
		if err != nil {
			return nil, fmt.Errorf("bind through %s: %w", via.url, err)
		}
		s, err := load(sl, 8, dur, users, bindDNOp(e["USER_PW"], e["BASE"]))
		if err != nil {
			return nil, fmt.Errorf("slapd bind: %w", err)
		}
		dres, sres = append(dres, d), append(sres, s)
	}
	d, s := best(dres), best(sres)
	return []string{fmt.Sprintf("%s (%.0f)", d.p50, d.opsPerSec), fmt.Sprintf("%s (%.0f) direct", s.p50, s.opsPerSec),
		ratio(d.p50, s.p50), "p50 ≤ 1.2×"}, nil
}

// startRelay runs this program as a separate relay process in front of t's
// server, as dirgate is a separate process, and returns a target that
// reaches t through it.
func startRelay(t target) (target, func(), error) {
	u, err := url.Parse(t.url)
	if err != nil {
		return target{}, nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return target{}, nil, err
	}
	cmd := exec.Command(self, "-relay", u.Host)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return target{}, nil, err
	}
	if err := cmd.Start(); err != nil {
		return target{}, nil, err
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	// The relay listens on a port of its own choosing and prints it, so
	// nothing else already on a fixed port can stand in for it.
	line, err := bufio.NewReader(out).ReadString('\n')
	addr := strings.TrimSpace(line)
	if err != nil || addr == "" {
		stop()
		return target{}, nil, fmt.Errorf("relay did not start: %v", err)
	}
	rt := t
	rt.url = "ldap://" + addr
	return rt, stop, nil
}

// relay copies bytes between each connection accepted on a loopback port,
// which it prints, and a new connection to to. io.Copy between TCP
// connections uses splice(2), so this is about the least work a proxy can
// do per message.
func relay(to string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			u, err := net.Dial("tcp", to)
			if err != nil {
				return
			}
			defer u.Close()
			go func() { _, _ = io.Copy(u, c); u.Close() }()
			_, _ = io.Copy(c, u)
		}()
	}
}

func ratio(a, b time.Duration) string { return fmt.Sprintf("%.2f×", float64(a)/float64(b)) }

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func waitLDAP(addr string) error {
	for range 200 {
		if c, err := ldap.DialURL("ldap://" + addr); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("dirgate did not listen on %s", addr)
}

type target struct{ url, dn, pw, base string }

type op func(c *ldap.Conn, t target, rnd *rand.Rand, users int) error

func searchOp(c *ldap.Conn, t target, rnd *rand.Rand, users int) error {
	return searchMail(c, t.base, fmt.Sprintf("user%05d@example.test", rnd.IntN(users)+1))
}

// searchMail looks the user with that mail up under base, which must find
// exactly one entry.
func searchMail(c *ldap.Conn, base, mail string) error {
	res, err := c.Search(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		"(mail="+mail+")", []string{"cn", "mail", "uid"}, nil))
	if err != nil {
		return err
	}
	if len(res.Entries) != 1 {
		return fmt.Errorf("%s: %d entries", mail, len(res.Entries))
	}
	return nil
}

// usable returns a random user number that is not locked (every 50th is).
func usable(rnd *rand.Rand, users int) int {
	for {
		if n := rnd.IntN(users) + 1; n%50 != 0 {
			return n
		}
	}
}

func bindEmailOp(pw string) op {
	return func(c *ldap.Conn, _ target, rnd *rand.Rand, users int) error {
		return c.Bind(fmt.Sprintf("user%05d@example.test", usable(rnd, users)), pw)
	}
}

func bindDNOp(pw, base string) op {
	return func(c *ldap.Conn, _ target, rnd *rand.Rand, users int) error {
		return c.Bind(fmt.Sprintf("uid=user%05d,ou=people,%s", usable(rnd, users), base), pw)
	}
}

type loadResult struct {
	opsPerSec float64
	p50, p99  time.Duration
}

// load runs op on conc persistent connections for dur.
func load(t target, conc int, dur time.Duration, users int, fn op) (loadResult, error) {
	return measure(conc, dur, func(w int) (func() error, func(), error) {
		c, err := ldap.DialURL(t.url)
		if err == nil {
			if err = c.Bind(t.dn, t.pw); err != nil {
				c.Close()
			}
		}
		if err != nil {
			return nil, nil, err
		}
		rnd := rand.New(rand.NewPCG(uint64(w), 42))
		return func() error { return fn(c, t, rnd, users) }, func() { c.Close() }, nil
	})
}

// measure runs conc workers for dur, each repeating the operation its
// setup returns, and summarises the latencies. The first error of any
// worker fails the measure.
func measure(conc int, dur time.Duration, setup func(w int) (op func() error, done func(), err error)) (loadResult, error) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		lats  []time.Duration
		first error
	)
	fail := func(err error) { mu.Lock(); first = err; mu.Unlock() }
	deadline := time.Now().Add(dur)
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			op, done, err := setup(w)
			if err != nil {
				fail(err)
				return
			}
			defer done()
			var local []time.Duration
			for time.Now().Before(deadline) {
				t0 := time.Now()
				if err := op(); err != nil {
					fail(err)
					return
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			lats = append(lats, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if first != nil {
		return loadResult{}, first
	}
	if len(lats) == 0 {
		return loadResult{}, fmt.Errorf("no operation completed")
	}
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	return loadResult{
		opsPerSec: float64(len(lats)) / dur.Seconds(),
		p50:       lats[len(lats)/2].Round(time.Microsecond),
		p99:       lats[len(lats)*99/100].Round(time.Microsecond),
	}, nil
}

// best keeps the round with the highest throughput: on a shared machine the
// slower rounds measure the neighbours, not the server.
func best[R interface{ throughput() float64 }](rs []R) R {
	b := rs[0]
	for _, r := range rs[1:] {
		if r.throughput() > b.throughput() {
			b = r
		}
	}
	return b
}

func (r loadResult) throughput() float64 { return r.opsPerSec }

func rssOf(pid int) int64 { return statusBytes(pid, "VmRSS:") }

// peakRSSOf is the process's peak resident set size.
func peakRSSOf(pid int) int64 { return statusBytes(pid, "VmHWM:") }

// statusBytes reads a size field of /proc/PID/status; 0 when unknown.
func statusBytes(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field); ok {
			kb, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// dirSize returns the disk space allocated to the files under dir. Badger
// preallocates its value log and memtable files sparsely, so their apparent
// size says little about the disk used.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return nil
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			n += st.Blocks * 512
		} else {
			n += fi.Size()
		}
		return nil
	})
	return n
}

func writeReport(path string, r *report, users int, dur time.Duration, rounds int) error {
	var b strings.Builder
	host, _ := os.Hostname()
	cpu := "unknown CPU"
	if info, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(info), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	_ = host
	fmt.Fprintf(&b, "# dirgate benchmarks\n\nWritten by `make bench` (`scripts/bench.sh` → `cmd/dirgate-bench`) on %s.\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "Machine: %d CPUs (%s), %s; %d users, %d groups seed from `scripts/testenv/openldap-seed.sh`; "+
		"rounds of %s, %d per measure, dirgate and slapd alternating; the better round of each is kept.\n"+
		"dirgate runs as its own process (`dirgate serve`), plain LDAP on loopback, against slapd 2.5 (back-mdb) serving the same data.\n\n",
		runtime.NumCPU(), cpu, runtime.Version(), users, users/100, dur, rounds)
	b.WriteString("| " + strings.Join(r.rows[0], " | ") + " |\n|" + strings.Repeat("---|", len(r.rows[0])) + "\n")
	for _, row := range r.rows[1:] {
		b.WriteString("| " + strings.Join(row, " | ") + " |\n")
	}
	for _, n := range r.notes {
		b.WriteString("\n- " + n)
	}
	b.WriteString("\n")
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

const (
	oidcAddr     = "127.0.0.1:3898"
	oidcSecret   = "bench-client-secret"
	oidcRedirect = "http://127.0.0.1:3897/cb"
)

func hashOf(binary, secret string) (string, error) {
	c := exec.Command(binary, "hash-password")
	c.Stdin = strings.NewReader(secret + "\n")
	out, err := c.Output()
	return strings.TrimSpace(string(out)), err
}

// changeUsers sets the description of the users changedUsers(n) to desc
// upstream, as the directory admin.
func changeUsers(e env, n int, desc string) error {
	c, err := ldap.DialURL(e["URL"])
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Bind(e["ADMIN_DN"], e["ADMIN_PW"]); err != nil {
		return err
	}
	for _, u := range changedUsers(n) {
		m := ldap.NewModifyRequest(fmt.Sprintf("uid=user%05d,ou=people,%s", u, e["BASE"]), nil)
		m.Replace("description", []string{desc})
		if err := c.Modify(m); err != nil {
			return err
		}
	}
	return nil
}

// changedUsers numbers the n users that changeUsers changes: every 7th.
func changedUsers(n int) []int {
	us := make([]int, n)
	for i := range us {
		us[i] = (i + 1) * 7
	}
	return us
}

var hiddenField = regexp.MustCompile(`name="(request|csrf)" value="([^"]+)"`)

// oidcSignIn runs one whole sign-in at the provider listening on addr and
// returns the token response.
func oidcSignIn(client *http.Client, addr, user, pw string) (map[string]any, error) {
	q := url.Values{"client_id": {"bench"}, "response_type": {"code"}, "scope": {"openid email"}, "redirect_uri": {oidcRedirect}, "state": {"s"}}
	resp, err := client.Get("http://" + addr + "/authorize?" + q.Encode())
	if err != nil {
		return nil, err
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	form := url.Values{"email": {user}, "password": {pw}}
	for _, m := range hiddenField.FindAllStringSubmatch(string(page), -1) {
		form.Set(m[1], m[2])
	}
	resp, err = client.PostForm("http://"+addr+"/login", form)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		return nil, fmt.Errorf("login answered %d without a code", resp.StatusCode)
	}
	return tokenRequest(client, addr, url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "redirect_uri": {oidcRedirect}})
}

func tokenRequest(client *http.Client, addr string, form url.Values) (map[string]any, error) {
	req, _ := http.NewRequest("POST", "http://"+addr+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("bench", oidcSecret)
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		return nil, fmt.Errorf("token endpoint %d: %v %v", resp.StatusCode, out, err)
	}
	return out, nil
}

// oidcLoad measures sign-ins at the provider listening on addr, or refresh
// grants when refresh is set.
func oidcLoad(e env, addr string, users int, dur time.Duration, refresh bool) (loadResult, error) {
	const conc = 4
	return measure(conc, dur, func(w int) (func() error, func(), error) {
		jar, _ := cookiejar.New(nil)
		client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		rnd := rand.New(rand.NewPCG(uint64(w), 7))
		signIn := func() (map[string]any, error) {
			return oidcSignIn(client, addr, fmt.Sprintf("user%05d@example.test", usable(rnd, users)), e["USER_PW"])
		}
		if !refresh {
			return func() error { _, err := signIn(); return err }, func() {}, nil
		}
		tok, err := signIn()
		if err != nil {
			return nil, nil, err
		}
		rt, _ := tok["refresh_token"].(string)
		return func() error {
			tok, err := tokenRequest(client, addr, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
			rt, _ = tok["refresh_token"].(string)
			return err
		}, func() {}, nil
	})
}
