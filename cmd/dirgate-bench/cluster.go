package main

// Cluster mode (issue 17) measured next to the single instance that the
// other OpenLDAP measures use: three `dirgate serve` replicas on one
// PostgreSQL syncing from the same slapd, then a fourth joining.

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/jackc/pgx/v5"
)

// pgEnvFile is the environment file of the PostgreSQL instance that
// scripts/bench.sh starts for the cluster measure.
var pgEnvFile string

// clusterChanges is the size of the sync whose propagation is measured.
const clusterChanges = 100

// changePoll paces the reads of the replicas' LDAP answers while a change
// propagates: the resolution of the latencies.
const changePoll = 5 * time.Millisecond

// singleServer is the single instance (Badger, no cluster) the other
// measures started.
type singleServer struct {
	pid  int
	ldap target
	oidc string // its OIDC listener
}

// clusterRun is what the cluster measure needs from the OpenLDAP measures.
type clusterRun struct {
	setup    *ldapSetup
	binary   string
	work     string
	users    int
	dur      time.Duration
	rounds   int
	single   singleServer
	fullSync time.Duration // the single instance's `dirgate sync` of every user (wall)
	// fullSyncPeak is that sync's peak RSS.
	fullSyncPeak int64
}

// clusterBench adds the cluster rows. Replica r1 starts alone, so that it
// takes the lease and runs the first (missed) sync on its own; r2 and r3
// follow its change log; r4 joins later with an empty cache.
func clusterBench(rep *report, cr clusterRun) error {
	if pgEnvFile == "" {
		return errors.New("no -pg-env: scripts/bench.sh starts the PostgreSQL of the cluster measure")
	}
	ctx := context.Background()
	db, err := newBenchDatabase(ctx, pgEnvFile)
	if err != nil {
		return err
	}
	defer db.close(ctx)
	c := &cluster{clusterRun: cr, db: db, dir: filepath.Join(cr.work, "cluster")}
	defer c.stopAll()
	if err := c.prepare(); err != nil {
		return err
	}
	usersNote := fmt.Sprintf("%d users", cr.users)

	// 1. Three replicas; the leader's first full sync.
	r1, err := c.start()
	if err != nil {
		return err
	}
	if err := waitUntil(60*time.Second, "r1 leads", func() error { return r1.leads(true) }); err != nil {
		return r1.failed(err)
	}
	r2, err := c.start()
	if err != nil {
		return err
	}
	r3, err := c.start()
	if err != nil {
		return err
	}
	for _, r := range []*replica{r1, r2, r3} {
		if err := waitUntil(5*time.Minute, r.name+" ready", r.ready); err != nil {
			return r.failed(err)
		}
	}
	leaderSync, err := r1.firstRun()
	if err != nil {
		return err
	}
	rep.add("cluster: the leader's first full sync of "+usersNote+", publishing the Base record (its run record; the process's peak RSS) vs the single instance's `dirgate sync` (wall; peak RSS)",
		fmt.Sprintf("%s (%s)", leaderSync.Round(time.Millisecond), mib(peakRSSOf(r1.pid()))),
		fmt.Sprintf("%s (%s) single instance", cr.fullSync.Round(time.Millisecond), mib(cr.fullSyncPeak)), ratio(leaderSync, cr.fullSync), "")
	var baseSize int64
	var baseParts int
	if err := db.conn.QueryRow(ctx, `SELECT size, parts FROM changelog WHERE base ORDER BY seq DESC LIMIT 1`).Scan(&baseSize, &baseParts); err != nil {
		return fmt.Errorf("read the Base record's size: %w", err)
	}
	rep.notes = append(rep.notes, fmt.Sprintf("cluster: three `dirgate serve` replicas, one PostgreSQL 15 (`scripts/testenv/postgres.sh`, durability off) on loopback, "+
		"the same slapd as the single instance; the Base record of %s is %.1f MiB compressed in %d part(s)", usersNote, float64(baseSize)/(1<<20), baseParts))

	// 2. Propagation of a 100-change sync.
	standbyLat, leaderLat, syncWall, err := c.propagation(r1, []*replica{r2, r3})
	if err != nil {
		return err
	}
	rep.add(fmt.Sprintf("cluster: change-log propagation of a %d-change sync, leader's commit → entry in a standby's LDAP answers: p50 / p99 (%d entries × 2 standbys × %d syncs)",
		clusterChanges, clusterChanges, cr.rounds),
		percentiles(standbyLat), percentiles(leaderLat)+" in the leader's own answers", "", "")
	rep.notes = append(rep.notes, fmt.Sprintf("cluster propagation: the users' description changed in slapd, then \"Synchronize now\" on the leader's API "+
		"(answered in %s, median); the commit time is the change-log record's time (set by the leader's cache as it commits, before publishing); "+
		"each replica's LDAP answers are read every %s for the changed entries (resolution), so a sample is the first read that shows the entry minus that time",
		syncWall.Round(time.Millisecond), changePoll))

	// 3. A new replica loads the snapshot.
	t0 := time.Now()
	r4, err := c.start()
	if err != nil {
		return err
	}
	if err := waitUntil(5*time.Minute, "r4 ready", r4.ready); err != nil {
		return r4.failed(err)
	}
	snapshot := time.Since(t0)
	if n, err := r4.metric("dirgate_changelog_snapshot_loads_total"); err != nil || n < 1 {
		return r4.failed(fmt.Errorf("r4 became ready without a snapshot load (dirgate_changelog_snapshot_loads_total %v, %v)", n, err))
	}
	ready4, peak4 := rssOf(r4.pid()), peakRSSOf(r4.pid())
	rep.notes = append(rep.notes, fmt.Sprintf("cluster: RSS when the new replica became ready: leader %s (peak %s), standbys %s (peak %s) and %s (peak %s)",
		mib(rssOf(r1.pid())), mib(peakRSSOf(r1.pid())), mib(rssOf(r2.pid())), mib(peakRSSOf(r2.pid())), mib(rssOf(r3.pid())), mib(peakRSSOf(r3.pid()))))
	// Serving, with searches between the samples, until its RSS stops
	// falling: the load leaves memtables, freed buffers and the pages of
	// the tables it wrote resident for some seconds.
	t4 := r4.target(cr.single.ldap)
	settled4, err := settledRSS(r4.pid(), func() error {
		_, err := load(t4, 2, 2*time.Second, cr.users, searchOp)
		return err
	})
	if err != nil {
		return r4.failed(fmt.Errorf("searches on the new replica: %w", err))
	}
	rssSingle := rssOf(cr.single.pid)
	rep.notes = append(rep.notes, fmt.Sprintf("cluster: the new replica's settled RSS is %s of anonymous memory and %s of mapped files (the cache's tables)",
		mib(statusBytes(r4.pid(), "RssAnon:")), mib(statusBytes(r4.pid(), "RssFile:"))))
	r4.stop()
	rep.add("cluster: a new replica with an empty cache, start to /readyz passing and serving: snapshot of "+usersNote+" vs the leader's full sync",
		snapshot.Round(time.Millisecond).String(), leaderSync.Round(time.Millisecond).String()+" leader's full sync", ratio(snapshot, leaderSync), "")
	rep.add("RSS of that new replica serving the snapshot: settled, with searches (at ready; peak while loading) vs the single instance at that moment",
		fmt.Sprintf("%s (%s; %s)", mib(settled4), mib(ready4), mib(peak4)), mib(rssSingle)+" single instance",
		fmt.Sprintf("%.2f×", float64(settled4)/float64(max(rssSingle, 1))), "≤ 250 MiB")

	// 4. Searches on a standby vs the single instance.
	stTarget := r2.target(cr.single.ldap)
	if _, err := load(stTarget, 8, 2*time.Second, cr.users, searchOp); err != nil {
		return fmt.Errorf("warm-up of r2: %w", err)
	}
	var rres, sres []cpuResult
	for range cr.rounds {
		r, err := cpuLoad(stTarget, r2.pid(), 8, cr.dur, cr.users)
		if err != nil {
			return fmt.Errorf("search on r2: %w", err)
		}
		s, err := cpuLoad(cr.single.ldap, cr.single.pid, 8, cr.dur, cr.users)
		if err != nil {
			return fmt.Errorf("search on the single instance: %w", err)
		}
		rres, sres = append(rres, r), append(sres, s)
	}
	r, s := best(rres), best(sres)
	rep.add("search by mail, concurrency 8, on a standby of the three-replica cluster vs the single instance: ops/s (p50 / p99)",
		fmt.Sprintf("%.0f (%s / %s)", r.opsPerSec, r.p50, r.p99), fmt.Sprintf("%.0f (%s / %s) single instance", s.opsPerSec, s.p50, s.p99),
		fmt.Sprintf("%.2f×", r.opsPerSec/s.opsPerSec), "≈ 1.0×")
	rep.add("CPU per search (the server process's CPU time over the same round / searches)",
		r.cpuPerOp.Round(100*time.Nanosecond).String(), s.cpuPerOp.Round(100*time.Nanosecond).String()+" single instance", ratio(r.cpuPerOp, s.cpuPerOp), "≈ 1.0×")

	// 5. OIDC on a replica (state in PostgreSQL) vs the single instance (Badger).
	for _, refresh := range []bool{false, true} {
		var rres, sres []loadResult
		for range cr.rounds {
			r, err := oidcLoad(cr.setup.e, r2.addrs.oidc, cr.users, cr.dur, refresh)
			if err != nil {
				return r2.failed(fmt.Errorf("oidc on r2: %w", err))
			}
			s, err := oidcLoad(cr.setup.e, cr.single.oidc, cr.users, cr.dur, refresh)
			if err != nil {
				return fmt.Errorf("oidc on the single instance: %w", err)
			}
			rres, sres = append(rres, r), append(sres, s)
		}
		r, s := best(rres), best(sres)
		what := "OIDC sign-in round trips (authorize + login + token)"
		if refresh {
			what = "OIDC token endpoint (refresh grants)"
		}
		rep.add(what+", concurrency 4, on a replica (PostgreSQL) vs the single instance (Badger): per s (p50 / p99)",
			fmt.Sprintf("%.0f (%s / %s)", r.opsPerSec, r.p50, r.p99), fmt.Sprintf("%.0f (%s / %s) single instance", s.opsPerSec, s.p50, s.p99),
			fmt.Sprintf("%.2f×", r.opsPerSec/s.opsPerSec), "")
	}
	rss2, rssSingle := rssOf(r2.pid()), rssOf(cr.single.pid)
	rep.add("RSS of that standby after its search and OIDC rounds vs the single instance at that moment",
		mib(rss2), mib(rssSingle)+" single instance", fmt.Sprintf("%.2f×", float64(rss2)/float64(max(rssSingle, 1))), "≤ 250 MiB")
	return nil
}

func mib(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }

// percentiles formats the p50 and p99 of ds.
func percentiles(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	return fmt.Sprintf("%s / %s", s[len(s)/2].Round(time.Millisecond), s[len(s)*99/100].Round(time.Millisecond))
}

// benchDatabase is a database of this run's own on the bench's PostgreSQL,
// so that a run never starts from an earlier run's change log.
type benchDatabase struct {
	name          string
	adminURL      string // the instance's database of the dirgate role, to drop this one from
	url, password string // this database, the URL without the password
	conn          *pgx.Conn
}

func newBenchDatabase(ctx context.Context, envFile string) (*benchDatabase, error) {
	e, err := readEnv(envFile)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", envFile, err)
	}
	admin := e["DIRGATE_PG_URL"]
	if admin == "" {
		return nil, fmt.Errorf("%s has no DIRGATE_PG_URL", envFile)
	}
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	db := &benchDatabase{name: "dirgate_bench_" + strconv.FormatInt(time.Now().UnixNano(), 36), adminURL: admin}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+db.name); err != nil {
		return nil, fmt.Errorf("create database %s: %w", db.name, err)
	}
	u, err := url.Parse(admin)
	if err != nil {
		return nil, err
	}
	u.Path = "/" + db.name
	if db.conn, err = pgx.Connect(ctx, u.String()); err != nil {
		db.close(ctx)
		return nil, fmt.Errorf("connect to %s: %w", db.name, err)
	}
	db.password, _ = u.User.Password()
	u.User = url.User(u.User.Username())
	db.url = u.String()
	return db, nil
}

// close drops the database.
func (db *benchDatabase) close(ctx context.Context) {
	if db.conn != nil {
		db.conn.Close(ctx)
	}
	conn, err := pgx.Connect(ctx, db.adminURL)
	if err != nil {
		fmt.Fprintln(os.Stderr, "drop the cluster database:", err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE "+db.name+" WITH (FORCE)"); err != nil {
		fmt.Fprintln(os.Stderr, "drop the cluster database:", err)
	}
}

// cluster is the measure's replicas.
type cluster struct {
	clusterRun
	db       *benchDatabase
	dir      string
	keyFile  string
	replicas []*replica
}

// prepare writes the encryption key every replica shares and puts the
// database password where the configuration names it.
func (c *cluster) prepare() error {
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return err
	}
	c.keyFile = filepath.Join(c.dir, "cluster.key")
	if err := os.WriteFile(c.keyFile, []byte(hex.EncodeToString(randomBytes(32))+"\n"), 0o600); err != nil {
		return err
	}
	return os.Setenv("DIRGATE_BENCH_PG_PW", c.db.password)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = crand.Read(b) // never fails (crypto/rand)
	return b
}

// replica is one `dirgate serve` of the cluster.
type replica struct {
	name    string
	addrs   serverAddrs
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	users   int
	base    string
}

// start starts the next replica (r1, r2, ...) and returns once it answers
// on its admin listener.
func (c *cluster) start() (*replica, error) {
	name := fmt.Sprintf("r%d", len(c.replicas)+1)
	dir := filepath.Join(c.dir, name)
	var ports [3]string
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		ports[i] = "127.0.0.1:" + p
	}
	addrs := serverAddrs{cache: filepath.Join(dir, "cache"), ldap: ports[0], oidc: ports[1], admin: ports[2]}
	cfg := c.setup.config(addrs) + fmt.Sprintf(`cluster:
  postgres: %q
  postgres_password_env: DIRGATE_BENCH_PG_PW
  encryption_key_file: %s
  replica_name: %s
`, c.db.url, c.keyFile, name)
	r, err := startBenchProc(c.binary, dir, cfg, addrs.admin, "serve")
	if r == nil {
		return nil, err
	}
	r.addrs, r.users, r.base = addrs, c.users, c.setup.e["BASE"]
	c.replicas = append(c.replicas, r) // stopAll stops it, started or not
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (c *cluster) stopAll() {
	for _, r := range c.replicas {
		r.stop()
	}
}

func (r *replica) pid() int { return r.cmd.Process.Pid }

func (r *replica) alive() bool {
	select {
	case <-r.done:
		return false
	default:
		return true
	}
}

// stop shuts the replica down (SIGINT), killing it after 15 s.
func (r *replica) stop() {
	if !r.alive() {
		return
	}
	_ = r.cmd.Process.Signal(os.Interrupt)
	select {
	case <-r.done:
	case <-time.After(15 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

// failed adds the end of the replica's log to err.
func (r *replica) failed(err error) error {
	b, _ := os.ReadFile(r.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return fmt.Errorf("%s: %w\n%s log, end:\n%s", r.name, err, r.name, strings.Join(lines[max(0, len(lines)-30):], "\n"))
}

// admin calls the replica's admin listener with the bench's token.
func (r *replica) admin(method, path string) (int, []byte, error) {
	return r.adminBody(method, path, nil)
}

func (r *replica) adminBody(method, path string, body io.Reader) (int, []byte, error) {
	if !r.alive() {
		return 0, nil, fmt.Errorf("%s exited: %v", r.name, r.cmd.ProcessState)
	}
	req, err := http.NewRequest(method, "http://"+r.addrs.admin+path, body)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Timeout: 5 * time.Minute}).Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

// metric reads one unlabelled metric of the replica.
func (r *replica) metric(name string) (float64, error) {
	code, out, err := r.admin("GET", "/metrics")
	if err != nil {
		return 0, err
	}
	if code != http.StatusOK {
		return 0, fmt.Errorf("/metrics: %d", code)
	}
	for line := range strings.Lines(string(out)) {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("no metric %s", name)
}

// leads fails unless the replica's dirgate_cluster_leader is want.
func (r *replica) leads(want bool) error {
	v, err := r.metric("dirgate_cluster_leader")
	if err == nil && (v == 1) != want {
		err = fmt.Errorf("dirgate_cluster_leader %v", v)
	}
	return err
}

// ready fails unless /readyz passes and the replica answers a search for
// the seed's last user.
func (r *replica) ready() error {
	code, out, err := r.admin("GET", "/readyz")
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("/readyz %d: %s", code, out)
	}
	c, err := ldap.DialURL("ldap://" + r.addrs.ldap)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Bind(svcDN, svcPW); err != nil {
		return err
	}
	return searchMail(c, r.base, fmt.Sprintf("user%05d@example.test", r.users))
}

// target is t (the single instance's) aimed at this replica.
func (r *replica) target(t target) target {
	t.url, t.dn, t.pw = "ldap://"+r.addrs.ldap, svcDN, svcPW
	return t
}

// firstRun is the duration of the replica's oldest run in the sync history.
func (r *replica) firstRun() (time.Duration, error) {
	code, out, err := r.admin("GET", "/api/v1/connectors/bench/runs?limit=100")
	if err != nil || code != http.StatusOK {
		return 0, fmt.Errorf("%s runs: %d %s %v", r.name, code, out, err)
	}
	var v struct {
		Runs []struct {
			Start, End time.Time
			Mode       string
			Error      string
		}
	}
	if err := json.Unmarshal(out, &v); err != nil {
		return 0, fmt.Errorf("%s runs: %w", r.name, err)
	}
	if len(v.Runs) == 0 {
		return 0, fmt.Errorf("%s: no run in the history", r.name)
	}
	first := v.Runs[len(v.Runs)-1]
	if first.Mode != "full" || first.Error != "" || first.End.IsZero() {
		return 0, fmt.Errorf("%s: the first run is not a successful full sync: %s", r.name, out)
	}
	return first.End.Sub(first.Start), nil
}

// propagation changes clusterChanges users in slapd and has the leader
// sync them, once per round, and returns the latencies from the change
// log's record time to each change's first sighting in the standbys' and in
// the leader's own LDAP answers, and the median wall time of the sync
// requests.
func (c *cluster) propagation(leader *replica, standbys []*replica) (standby, own []time.Duration, syncWall time.Duration, err error) {
	ctx := context.Background()
	mails := make([]string, 0, clusterChanges)
	for _, u := range changedUsers(clusterChanges) {
		mails = append(mails, fmt.Sprintf("user%05d@example.test", u))
	}
	var walls []time.Duration
	for round := range c.rounds {
		var head int64
		if err := c.db.conn.QueryRow(ctx, `SELECT seq FROM changelog_head`).Scan(&head); err != nil {
			return nil, nil, 0, fmt.Errorf("read the change log's head: %w", err)
		}
		desc := fmt.Sprintf("bench cluster change %d %s", round, time.Now().Format(time.RFC3339Nano))
		if err := changeUsers(c.setup.e, clusterChanges, desc); err != nil {
			return nil, nil, 0, err
		}
		watchers := append([]*replica{leader}, standbys...)
		seen := make([]chan sightings, len(watchers))
		for i, r := range watchers {
			conn, err := ldap.DialURL("ldap://" + r.addrs.ldap)
			if err == nil {
				if err = conn.Bind(svcDN, svcPW); err != nil {
					conn.Close()
				}
			}
			if err != nil {
				return nil, nil, 0, fmt.Errorf("%s: %w", r.name, err)
			}
			seen[i] = make(chan sightings, 1)
			go func() {
				defer conn.Close()
				seen[i] <- watch(conn, r.base, mails, desc, time.Now().Add(2*time.Minute))
			}()
		}
		t0 := time.Now()
		code, out, err := leader.adminBody("POST", "/api/v1/connectors/bench/sync", strings.NewReader(`{}`))
		if err != nil || code != http.StatusOK {
			return nil, nil, 0, leader.failed(fmt.Errorf("synchronize now: %d %s %v", code, out, err))
		}
		walls = append(walls, time.Since(t0))
		var at time.Time
		var records int
		if err := c.db.conn.QueryRow(ctx, `SELECT min(at), count(*) FROM changelog WHERE seq > $1`, head).Scan(&at, &records); err != nil {
			return nil, nil, 0, fmt.Errorf("read the sync's change-log records: %w", err)
		}
		if records == 0 {
			return nil, nil, 0, fmt.Errorf("the sync published no change-log record: %s", out)
		}
		for i, r := range watchers {
			s := <-seen[i]
			if s.err != nil {
				return nil, nil, 0, r.failed(s.err)
			}
			for _, t := range s.at {
				if i == 0 {
					own = append(own, t.Sub(at))
				} else {
					standby = append(standby, t.Sub(at))
				}
			}
		}
	}
	return standby, own, median(walls), nil
}

// sightings are the times each change was first seen.
type sightings struct {
	at  map[string]time.Time // by mail
	err error
}

// watch reads the entries of mails through conn until each has the
// description desc, or until deadline.
func watch(conn *ldap.Conn, base string, mails []string, desc string, deadline time.Time) sightings {
	var f strings.Builder
	f.WriteString("(&(|")
	for _, m := range mails {
		f.WriteString("(mail=" + ldap.EscapeFilter(m) + ")")
	}
	f.WriteString(")(description=" + ldap.EscapeFilter(desc) + "))")
	req := ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, f.String(), []string{"mail"}, nil)
	s := sightings{at: map[string]time.Time{}}
	for len(s.at) < len(mails) {
		if time.Now().After(deadline) {
			s.err = fmt.Errorf("%d of %d changes seen by the deadline", len(s.at), len(mails))
			return s
		}
		res, err := conn.Search(req)
		now := time.Now()
		if err != nil {
			s.err = err
			return s
		}
		for _, e := range res.Entries {
			if m := e.GetAttributeValue("mail"); s.at[m].IsZero() {
				s.at[m] = now
			}
		}
		time.Sleep(changePoll)
	}
	return s
}

// cpuResult is a load round with the server's CPU time per operation.
type cpuResult struct {
	loadResult
	cpuPerOp time.Duration
}

// cpuLoad runs searches on conc connections opened and bound before the
// round (their binds would count in the CPU time) and reads the server
// process's CPU time around it.
func cpuLoad(t target, pid, conc int, dur time.Duration, users int) (cpuResult, error) {
	conns := make([]*ldap.Conn, 0, conc)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range conc {
		c, err := ldap.DialURL(t.url)
		if err != nil {
			return cpuResult{}, err
		}
		conns = append(conns, c)
		if err := c.Bind(t.dn, t.pw); err != nil {
			return cpuResult{}, err
		}
	}
	cpu0, err := cpuTime(pid)
	if err != nil {
		return cpuResult{}, err
	}
	res, err := measure(conc, dur, func(w int) (func() error, func(), error) {
		rnd := rand.New(rand.NewPCG(uint64(w), 43))
		return func() error { return searchOp(conns[w], t, rnd, users) }, func() {}, nil
	})
	if err != nil {
		return cpuResult{}, err
	}
	cpu1, err := cpuTime(pid)
	if err != nil {
		return cpuResult{}, err
	}
	ops := res.opsPerSec * dur.Seconds()
	return cpuResult{loadResult: res, cpuPerOp: time.Duration(float64(cpu1-cpu0) / ops)}, nil
}

// clockTick is the unit of the CPU times in /proc/PID/stat (USER_HZ, 100 on
// every Linux architecture Go supports).
const clockTick = 10 * time.Millisecond

// cpuTime is the user and system CPU time the process has used, all its
// threads together.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command name, which is in parentheses and may
	// hold spaces: state is the first, utime the 12th, stime the 13th.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	_, p, err := net.SplitHostPort(l.Addr().String())
	return p, err
}

// waitUntil polls f every 50 ms until it returns nil, or fails with f's
// last error after timeout.
func waitUntil(timeout time.Duration, what string, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %v: %w", what, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
