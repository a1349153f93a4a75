package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// The cloud measures (Entra ID, Google Workspace) serve a generated
// directory from a test fake in this process, on loopback over plain HTTP
// (which the URL overrides allow for loopback only), and run dirgate and
// a reference reader, this program with a flag, as processes of their
// own against it.
const (
	cloudListen = "127.0.0.1:3894"
	// cloudChanges is the size of the measured change round.
	cloudChanges = 100
	cloudSvcDN   = "cn=bench,ou=services,dc=dirgate"
	cloudSvcPW   = "bench-pw"
)

// fakeTB lets a test fake run outside a test: it collects the servers'
// cleanups and turns a fatal fixture error into a panic. The fakes use no
// other method of testing.TB.
type fakeTB struct {
	testing.TB
	mu       sync.Mutex
	cleanups []func()
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}

func (f *fakeTB) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

// close runs the cleanups, last registered first.
func (f *fakeTB) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

// cloudBench is one cloud measure's dirgate configuration, with the fake's
// request counter and the reference reader that pages through the same
// fake.
type cloudBench struct {
	binary, work, cfgPath, serveCfgPath, cacheDir string
	// connector is the connector's name in the configuration.
	connector string
	// requests counts the requests the fake has answered.
	requests func() int
	// reference is the arguments that make this program the reference
	// reader.
	reference []string
}

// newCloudBench writes a configuration into a fresh work directory: the
// LDAP listener, a service account for the searches, the admin API (for
// profiles) and the connector whose YAML connector returns (it may write
// files into work first). The syncs log at info, for the sources' run
// lines; the server at warn, as info has a line per bind. close removes
// the directory.
func newCloudBench(binary, name string, connector func(work string) (string, error)) (*cloudBench, error) {
	work, err := os.MkdirTemp("", "dirgate-bench-"+name+"-")
	if err != nil {
		return nil, err
	}
	b := &cloudBench{binary: binary, work: work, connector: name,
		cfgPath: filepath.Join(work, "dirgate.yaml"), serveCfgPath: filepath.Join(work, "serve.yaml"), cacheDir: filepath.Join(work, "cache")}
	svcHash, err := hashOf(binary, cloudSvcPW)
	if err != nil {
		b.close()
		return nil, fmt.Errorf("hash-password: %w", err)
	}
	conn, err := connector(work)
	if err != nil {
		b.close()
		return nil, err
	}
	cfg := fmt.Sprintf(`cache: {dir: %s}
ldap: {listen: %q, size_limit: 1000000, max_page_size: 5000}
service_accounts: [{dn: %q, password_hash: %q}]
connectors:
%s
admin: {listen: %q, token_env: DIRGATE_BENCH_ADMIN_TOKEN}
`, b.cacheDir, cloudListen, cloudSvcDN, svcHash, conn, adminAddr)
	os.Setenv("DIRGATE_BENCH_ADMIN_TOKEN", adminToken)
	for path, level := range map[string]string{b.cfgPath: "info", b.serveCfgPath: "warn"} {
		if err := os.WriteFile(path, []byte(cfg+"log: {level: "+level+"}\n"), 0o600); err != nil {
			b.close()
			return nil, err
		}
	}
	return b, nil
}

func (b *cloudBench) close() { os.RemoveAll(b.work) }

// syncRun is one `dirgate sync` run.
type syncRun struct {
	wall     time.Duration
	requests int    // made to the fake
	out, log string // the result line; the log (stderr)
}

// sync runs `dirgate sync` once, with flags, and counts the fake's
// requests it made.
func (b *cloudBench) sync(flags ...string) (syncRun, error) {
	before := b.requests()
	d, out, log, err := timed(exec.Command(b.binary, append([]string{"sync", "-c", b.cfgPath}, flags...)...))
	if err != nil {
		return syncRun{}, fmt.Errorf("dirgate sync (%s): %w", b.connector, err)
	}
	return syncRun{wall: d, requests: b.requests() - before, out: out, log: log}, nil
}

// fullSyncs is the full-sync measure.
type fullSyncs struct {
	rounds    int
	sync, ref time.Duration // medians
	// ratio is the median of the rounds' own ratios: each sync is timed
	// beside the reference read right after it, under the same load,
	// which the ratio of the two medians would not keep.
	ratio  float64
	last   syncRun
	refOut string
}

// minCloudRounds is the fewest rounds of the cloud full-sync measures: a
// round's two reads vary by a fifth or more on a shared machine.
const minCloudRounds = 5

// fullSyncs times rounds (at least minCloudRounds) full syncs into a fresh
// cache, each followed by a run of the reference reader.
func (b *cloudBench) fullSyncs(rounds int) (fullSyncs, error) {
	self, err := os.Executable()
	if err != nil {
		return fullSyncs{}, err
	}
	f := fullSyncs{rounds: max(rounds, minCloudRounds)}
	var syncTimes, refTimes []time.Duration
	var ratios []float64
	for range f.rounds {
		os.RemoveAll(b.cacheDir)
		if f.last, err = b.sync(); err != nil {
			return f, err
		}
		syncTimes = append(syncTimes, f.last.wall)
		d, out, _, err := timed(exec.Command(self, b.reference...))
		if err != nil {
			return f, fmt.Errorf("%s reference read: %w", b.connector, err)
		}
		refTimes, f.refOut = append(refTimes, d), out
		ratios = append(ratios, float64(f.last.wall)/float64(d))
	}
	f.sync, f.ref = median(syncTimes), median(refTimes)
	slices.Sort(ratios)
	f.ratio = ratios[len(ratios)/2]
	return f, nil
}

// dryRun notes where a full sync's time goes: a dry run into a fresh
// cache reads, maps and plans the same listing but writes nothing. The
// dry run leaves no generation, so the cache is filled again after it.
func (b *cloudBench) dryRun(rep *report, label string, full fullSyncs) error {
	os.RemoveAll(b.cacheDir)
	dry, err := b.sync("--dry-run")
	if err != nil {
		return err
	}
	plan, _, _ := strings.Cut(dry.out, "\n")
	rep.notes = append(rep.notes, fmt.Sprintf("%s full sync without the cache writes (`dirgate sync --dry-run` into a fresh cache: reads, maps and plans): %s, against %s with them (`%s`)",
		label, dry.wall.Round(time.Millisecond), full.sync.Round(time.Millisecond), plan))
	_, err = b.sync()
	return err
}

// row is the measure's figures for the report: the medians, and the
// median of the rounds' ratios.
func (f fullSyncs) row() (sync, ref, ratio string) {
	return f.sync.Round(time.Millisecond).String(), f.ref.Round(time.Millisecond).String(), fmt.Sprintf("%.2f×", f.ratio)
}

// serve starts `dirgate serve` on the synced cache, searches base for
// users by address in domain for a moment and adds the server's RSS; with
// -pprof it also profiles a full sync run by the server (taking about
// syncTime).
func (b *cloudBench) serve(rep *report, label string, users int, syncTime time.Duration, base, domain string) error {
	srv := exec.Command(b.binary, "serve", "-c", b.serveCfgPath)
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		return err
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	if err := waitLDAP(cloudListen); err != nil {
		return err
	}
	t := target{url: "ldap://" + cloudListen, dn: cloudSvcDN, pw: cloudSvcPW, base: base}
	if _, err := load(t, 8, 2*time.Second, users, cloudSearchOp(domain)); err != nil {
		return fmt.Errorf("%s warm-up: %w", b.connector, err)
	}
	early := rssOf(srv.Process.Pid)
	settled, err := settledRSS(srv.Process.Pid, func() error {
		_, err := load(t, 2, 2*time.Second, users, cloudSearchOp(domain))
		return err
	})
	if err != nil {
		return fmt.Errorf("%s searches: %w", b.connector, err)
	}
	rep.add(fmt.Sprintf("RSS serving %d %s users: settled (2 s after start, while the cache compacts the tables the sync wrote)", users, label),
		fmt.Sprintf("%.0f MiB (%.0f MiB)", float64(settled)/(1<<20), float64(early)/(1<<20)), "", "", "≤ 250 MiB")
	if profileDir != "" {
		saveProfile(b.connector+"-heap", "/debug/pprof/heap")
		return b.profileSync(syncTime)
	}
	return nil
}

// settledRSS returns the RSS of process pid once it has stopped falling
// for two samples in a row (the storage engine compacts the tables a sync
// wrote for some seconds after the server opens them, with buffers it
// then frees), running between samples, for at most 30 s.
func settledRSS(pid int, between func() error) (int64, error) {
	const noise = 2 << 20
	rss, flat := rssOf(pid), 0
	for range 15 {
		if err := between(); err != nil {
			return 0, err
		}
		now := rssOf(pid)
		if rss-now < noise {
			flat++
		} else {
			flat = 0
		}
		rss = now
		if flat == 2 {
			break
		}
	}
	return rss, nil
}

// profileSync saves a CPU profile of a full sync run by the server (the
// engine and source `dirgate sync` runs), expected to take about d.
func (b *cloudBench) profileSync(d time.Duration) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		saveProfile(b.connector+"-sync", fmt.Sprintf("/debug/pprof/profile?seconds=%d", int(d.Seconds())+2))
	}()
	defer func() { <-done }()
	req, err := http.NewRequest("POST", "http://"+adminAddr+"/api/v1/connectors/"+b.connector+"/sync", strings.NewReader(`{"mode":"full"}`))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s sync for the profile: %w", b.connector, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s sync for the profile: %s: %s", b.connector, resp.Status, body)
	}
	return nil
}

// timed runs cmd and returns its wall time, its trimmed output and its
// standard error.
func timed(cmd *exec.Cmd) (time.Duration, string, string, error) {
	var stderr strings.Builder
	cmd.Stderr = &stderr
	t0 := time.Now()
	out, err := cmd.Output()
	d := time.Since(t0)
	if err != nil {
		return d, "", "", fmt.Errorf("%v\n%s%s", err, out, stderr.String())
	}
	return d, strings.TrimSpace(string(out)), stderr.String(), nil
}

// logAttr returns attribute key of the first JSON log line with message
// msg in log, "?" if there is none.
func logAttr(log, msg, key string) string {
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == msg {
			if v, ok := line[key]; ok {
				return fmt.Sprint(v)
			}
		}
	}
	return "?"
}

// cloudSearchOp searches a generated user by address: the fakes' Generate
// names them user%06d in their primary domain.
func cloudSearchOp(domain string) op {
	return func(c *ldap.Conn, t target, rnd *rand.Rand, users int) error {
		mail := fmt.Sprintf("user%06d@%s", rnd.IntN(users), domain)
		res, err := c.Search(ldap.NewSearchRequest(t.base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
			"(mail="+mail+")", []string{"cn", "mail", "uid"}, nil))
		if err != nil {
			return err
		}
		if len(res.Entries) != 1 {
			return fmt.Errorf("%s: %d entries", mail, len(res.Entries))
		}
		return nil
	}
}

// getJSON is the reference readers' request: a GET with a bearer token,
// its JSON answer decoded into v.
func getJSON(link, token string, v any) error {
	req, err := http.NewRequest("GET", link, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s: %s", resp.Status, body)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
