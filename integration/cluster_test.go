package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"golang.org/x/oauth2"

	"github.com/dirgate/dirgate/cluster/registry"
	"github.com/dirgate/dirgate/state"
)

// These tests run issue 17's cluster scenarios with real processes; see
// cluster_harness_test.go. Each starts its own cluster (slapd, database,
// replicas), so they run in any order and alone.

// startCluster starts n replicas and waits until one leads and every
// replica serves what slapd holds.
func startCluster(t *testing.T, o clusterOptions, n int) *cluster {
	t.Helper()
	c := newCluster(t, o)
	for range n {
		c.add(t)
	}
	c.leader(t, 60*time.Second)
	c.waitSameAsUpstream(t, 2*time.Minute)
	return c
}

// uniqueUID names a user the test adds to slapd.
func uniqueUID(prefix string) string {
	return fmt.Sprintf("%s%d", prefix, time.Now().UnixNano()%1e9)
}

// syncNow asks replica r for a sync ("Synchronize now" through its API)
// and returns the run's result as the API reports it.
func syncNow(ctx context.Context, r *replica, mode string) (int, map[string]any, error) {
	body := map[string]any{}
	if mode != "" {
		body["mode"] = mode
	}
	status, out, err := r.api(ctx, http.MethodPost, "/api/v1/connectors/"+clusterConnector+"/sync", body)
	if err != nil {
		return 0, nil, err
	}
	var res map[string]any
	if err := json.Unmarshal(out, &res); err != nil {
		return status, nil, fmt.Errorf("sync answer %d: %s", status, out)
	}
	return status, res, nil
}

// runs reads the connector's sync history from replica r, newest first.
func runs(t testing.TB, r *replica) []state.Run {
	t.Helper()
	status, out, err := r.api(context.Background(), http.MethodGet, "/api/v1/connectors/"+clusterConnector+"/runs?limit=20", nil)
	if err != nil || status != http.StatusOK {
		t.Fatalf("runs on %s: %v %d %s", r.name, err, status, out)
	}
	var v struct{ Runs []state.Run }
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatal(err)
	}
	return v.Runs
}

// midSync starts a full sync on the leader and returns once the gate holds
// it mid-read; the request's answer (an error, when the test kills the
// leader) arrives on the channel.
func midSync(t *testing.T, c *cluster, leader *replica) <-chan error {
	t.Helper()
	c.gate.arm(64 << 10)
	answered := make(chan error, 1)
	go func() {
		status, res, err := syncNow(context.Background(), leader, "full")
		if err == nil {
			err = fmt.Errorf("the sync answered %d: %v", status, res)
		}
		answered <- err
	}()
	select {
	case <-c.gate.stalledC:
	case err := <-answered:
		t.Fatalf("the sync ended before the gate held it: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("the leader's sync did not reach the gate within 60s")
	}
	return answered
}

// TestClusterLeaderKilledMidSync kills the leader with SIGKILL while a
// sync reads the upstream: a standby takes over within the lease time,
// the history shows the aborted run and its redo, and every replica ends
// with exactly slapd's entries (the redo's new user included, nothing
// doubled).
func TestClusterLeaderKilledMidSync(t *testing.T) {
	c := startCluster(t, clusterOptions{}, 3)
	leader := c.leader(t, 10*time.Second)
	uid := uniqueUID("killed")
	c.addUser(t, uid)

	midSync(t, c, leader)
	c.gate.disarm()
	killed := time.Now()
	leader.kill(t)
	next := c.leader(t, 6*clusterLeaseTTL)
	takeover := time.Since(killed)
	t.Logf("takeover: %s leads %v after %s was killed (lease %v)", next.name, takeover.Round(10*time.Millisecond), leader.name, clusterLeaseTTL)
	// The lease expires clusterLeaseTTL after its last renewal; a standby
	// polls for it. Generous for a loaded machine, but well short of what
	// a stuck election would take.
	if takeover > 3*clusterLeaseTTL {
		t.Errorf("takeover took %v, more than 3 lease times", takeover)
	}
	c.gate.release()

	c.waitSameAsUpstream(t, 90*time.Second)
	var aborted, redone *state.Run
	waitFor(t, 30*time.Second, "the history shows the aborted run and its redo", func() error {
		aborted, redone = nil, nil
		for _, r := range runs(t, next) {
			switch {
			case r.Start.Before(killed) && strings.Contains(strings.ToLower(r.Error), "abort"):
				aborted = &r
			case r.Start.After(killed) && r.Error == "" && !r.End.IsZero():
				redone = &r
			}
		}
		if aborted == nil || redone == nil {
			return fmt.Errorf("aborted %+v, redone %+v in %+v", aborted, redone, runs(t, next))
		}
		return nil
	})
	// The redo brought exactly what the killed run was reading: the new
	// user, nothing else added or deleted.
	if redone.Added != 1 || redone.Deleted != 0 {
		t.Errorf("the redo added %d and deleted %d entries, want the one new user: %+v", redone.Added, redone.Deleted, *redone)
	}
	t.Logf("aborted run: %+v; redo: %+v", *aborted, *redone)
}

// TestClusterPausedLeaderIsFenced stops the leader with SIGSTOP in the
// middle of a sync for longer than its lease, lets a standby take over and
// publish, then resumes it: it must not write (no change-log record of its
// epoch after the takeover), it says so in its log, and it follows as a
// standby.
func TestClusterPausedLeaderIsFenced(t *testing.T) {
	c := startCluster(t, clusterOptions{}, 3)
	old := c.leader(t, 10*time.Second)
	m, err := old.metrics()
	if err != nil {
		t.Fatal(err)
	}
	oldEpoch := int64(m["dirgate_cluster_epoch"])
	c.addUser(t, uniqueUID("paused"))

	midSync(t, c, old)
	old.pause(t)
	c.gate.disarm()
	next := c.leader(t, 6*clusterLeaseTTL)
	db := c.db(t)
	var headAtTakeover int64
	if err := db.QueryRow(context.Background(), "SELECT coalesce(max(seq), 0) FROM changelog").Scan(&headAtTakeover); err != nil {
		t.Fatal(err)
	}
	// The successor publishes while the old leader sleeps.
	c.addUser(t, uniqueUID("successor"))
	// It may be redoing the paused leader's request (409 meanwhile).
	waitFor(t, 60*time.Second, "a sync on the new leader "+next.name, func() error {
		if status, res, err := syncNow(context.Background(), next, "full"); err != nil || status != http.StatusOK {
			return fmt.Errorf("%d %v %v", status, res, err)
		}
		return nil
	})

	// The old leader wakes with its sync's data waiting and its lease gone.
	c.gate.release()
	old.resume(t)
	fenced := regexp.MustCompile(`(?i)fenc|lost the (sync )?lease|lost leadership|no longer (the )?lead`)
	waitFor(t, 30*time.Second, old.name+" steps down and says why", func() error {
		if ok, err := old.isLeader(); err != nil || ok {
			return fmt.Errorf("leader %v (%v)", ok, err)
		}
		if !fenced.MatchString(old.logText()) {
			return fmt.Errorf("its log does not say it was fenced or lost the lease")
		}
		return nil
	})
	t.Logf("%s's log after it resumed:\n%s", old.name, strings.Join(old.logLines(fenced), "\n"))
	c.waitSameAsUpstream(t, 60*time.Second)
	var late int
	if err := db.QueryRow(context.Background(), "SELECT count(*) FROM changelog WHERE epoch <= $1 AND seq > $2", oldEpoch, headAtTakeover).Scan(&late); err != nil {
		t.Fatal(err)
	}
	if late != 0 {
		t.Fatalf("%d change-log records of the fenced epoch %d after the takeover", late, oldEpoch)
	}
	if l := c.leader(t, 10*time.Second); l != next {
		t.Fatalf("leader %s, want %s to keep the lease", l.name, next.name)
	}
}

// TestClusterCodeAndRefreshRace redeems one authorization code, and then
// one refresh token, on two replicas at the same instant: exactly one
// wins; the second redemption of the code revokes what the first issued,
// and the reuse of the refresh token revokes its family.
func TestClusterCodeAndRefreshRace(t *testing.T) {
	c := startCluster(t, clusterOptions{}, 3)
	rp := newRP(t, c)
	pair := c.running()[:2]
	user, pw := "user00001@example.test", c.upstream.Get(t, "DIRGATE_OL_USER_PW")
	for round := range 3 {
		v := oauth2.GenerateVerifier()
		st, err := rp.login(pair[0], user, pw, v)
		if err != nil || st.code == "" {
			t.Fatalf("sign-in: %v %d %s", err, st.status, st.page)
		}
		toks, errs := race(pair, func(r *replica) (*oauth2.Token, error) {
			return rp.at(r).Exchange(context.Background(), st.code, oauth2.VerifierOption(v))
		})
		w := oneWinner(t, fmt.Sprintf("round %d: the code", round), pair, errs)
		rp.verify(t, toks[w])
		// The code was presented twice: what it issued is revoked, on
		// every replica.
		for _, r := range pair {
			if _, err := rp.refresh(r, toks[w].RefreshToken); oauthError(err) != "invalid_grant" {
				t.Fatalf("round %d: the refresh token of a code redeemed twice still works on %s: %v", round, r.name, err)
			}
		}

		tok := rp.signIn(t, pair[1], user, pw)
		rts, errs := race(pair, func(r *replica) (*oauth2.Token, error) { return rp.refresh(r, tok.RefreshToken) })
		w = oneWinner(t, fmt.Sprintf("round %d: the refresh token", round), pair, errs)
		for _, r := range c.running() {
			if _, err := rp.refresh(r, rts[w].RefreshToken); oauthError(err) != "invalid_grant" {
				t.Fatalf("round %d: the token rotated by the winner still works on %s after the reuse: %v", round, r.name, err)
			}
		}
	}
}

// TestClusterDeletedUserRefused deletes a user in slapd, asks a standby to
// synchronize now (the leader runs it) and measures how long until every
// replica refuses the user's bind and refresh token and no longer finds
// the entry.
func TestClusterDeletedUserRefused(t *testing.T) {
	c := newCluster(t, clusterOptions{})
	uid := uniqueUID("leaver")
	dn := c.addUser(t, uid)
	for range 3 {
		c.add(t)
	}
	leader := c.leader(t, 60*time.Second)
	c.waitSameAsUpstream(t, 2*time.Minute)
	rp := newRP(t, c)
	login, pw := uid+"@example.test", c.upstream.Get(t, "DIRGATE_OL_USER_PW")
	replicas := c.running()
	// Each replica's poller rotates its own token; the map is only read
	// concurrently.
	refresh := map[*replica]*string{}
	for _, r := range replicas {
		rt := rp.signIn(t, r, login, pw).RefreshToken
		refresh[r] = &rt
		if err := bindAs(r, dn, pw); err != nil {
			t.Fatalf("bind on %s before the deletion: %v", r.name, err)
		}
	}
	var standby *replica
	for _, r := range replicas {
		if r != leader {
			standby = r
			break
		}
	}

	if err := c.upstreamConn(t).Del(ldap.NewDelRequest(dn, nil)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	status, res, err := syncNow(context.Background(), standby, "")
	if err != nil || status != http.StatusOK {
		t.Fatalf("synchronize now on the standby %s: %d %v %v", standby.name, status, res, err)
	}
	synced := time.Since(start)
	if run, _ := res["result"].(map[string]any); run["deleted"] != float64(1) {
		t.Fatalf("the run the standby asked for deleted nothing: %v", res)
	}
	// Each check on each replica polls on its own, so a slow answer of one
	// (a refused bind waits out its failure delay) does not delay another.
	checks := []struct {
		what    string
		refused func(r *replica) bool
	}{
		{"bind", func(r *replica) bool { return bindAs(r, dn, pw) != nil }},
		{"refresh", func(r *replica) bool {
			nt, err := rp.refresh(r, *refresh[r])
			if err == nil {
				*refresh[r] = nt.RefreshToken
			}
			return oauthError(err) == "invalid_grant"
		}},
		{"search", func(r *replica) bool {
			n, err := r.count("(uid=" + uid + ")")
			return err == nil && n == 0
		}},
	}
	got, errs := race(replicas, func(r *replica) ([]time.Duration, error) {
		after := make([]time.Duration, len(checks))
		var wg sync.WaitGroup
		for i, c := range checks {
			wg.Go(func() {
				for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
					if c.refused(r) {
						after[i] = time.Since(start)
						return
					}
				}
			})
		}
		wg.Wait()
		for i, c := range checks {
			if after[i] == 0 {
				return after, fmt.Errorf("%s still accepted 60s after the sync", c.what)
			}
		}
		return after, nil
	})
	worst := make([]time.Duration, len(checks))
	for i, r := range replicas {
		if errs[i] != nil {
			t.Errorf("%s: %v", r.name, errs[i])
		}
		var line []string
		for j, c := range checks {
			line = append(line, fmt.Sprintf("%s refused after %v", c.what, got[i][j].Round(time.Millisecond)))
			worst[j] = max(worst[j], got[i][j])
		}
		t.Logf("%s (leader %v): %s", r.name, r == leader, strings.Join(line, ", "))
	}
	t.Logf("deleted user refused on every replica after the standby's Synchronize now (which answered in %v): bind %v, refresh %v, search %v",
		synced.Round(time.Millisecond), worst[0].Round(time.Millisecond), worst[1].Round(time.Millisecond), worst[2].Round(time.Millisecond))
}

// bindAs binds to replica r as dn.
func bindAs(r *replica, dn, pw string) error {
	conn, err := ldap.DialURL("ldap://" + r.ldapAddr)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Bind(dn, pw)
}

// count returns how many entries replica r finds for filter.
func (r *replica) count(filter string) (int, error) {
	conn, err := r.dialLDAP()
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	res, err := conn.Search(ldap.NewSearchRequest(r.c.upstream["DIRGATE_OL_BASE"], ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		filter, []string{"1.1"}, nil))
	if err != nil {
		return 0, err
	}
	return len(res.Entries), nil
}

// TestClusterPostgresOutage stops the cluster's PostgreSQL: every replica
// keeps answering LDAP binds and searches from its cache, OIDC fails
// closed with a clear error, /readyz reports the lag once max_lag passed;
// when PostgreSQL is back, everything recovers without a restart.
func TestClusterPostgresOutage(t *testing.T) {
	const maxLag = 10 * time.Second
	c := startCluster(t, clusterOptions{privatePostgres: true, maxLag: maxLag}, 3)
	rp := newRP(t, c)
	user, pw := "user00001@example.test", c.upstream.Get(t, "DIRGATE_OL_USER_PW")
	userDN := "uid=user00001,ou=people," + c.upstream.Get(t, "DIRGATE_OL_BASE")
	replicas := c.running()
	tok := rp.signIn(t, replicas[0], user, pw)
	want := c.upstreamDirectory(t)

	c.pg.Run(t, "halt")
	down := time.Now()
	// Every replica stays ready while its lag is below max_lag, the
	// leader stepping down included: readiness is judged on the replica's
	// own cache and lag, not on reading the database. The lag counts from
	// the last head read, which may precede the halt by a poll interval and
	// the halt's own time: the check keeps a margin.
	for until := maxLag - 3*time.Second; time.Since(down) < until; time.Sleep(250 * time.Millisecond) {
		for _, r := range replicas {
			sent := time.Since(down)
			if rd := readyz(r); rd.status != http.StatusOK && sent < until {
				t.Fatalf("%s: /readyz %v into the PostgreSQL outage (max_lag %v): %d %s", r.name, sent.Round(time.Millisecond), maxLag, rd.status, rd.body)
			}
		}
	}
	for _, r := range replicas {
		got, err := r.directory(t)
		if err != nil {
			t.Fatalf("%s: search while PostgreSQL is down: %v", r.name, err)
		}
		if d := want.diff(got); d != "" {
			t.Fatalf("%s serves other entries while PostgreSQL is down:\n%s", r.name, d)
		}
		if err := bindAs(r, userDN, pw); err != nil {
			t.Fatalf("%s: user bind while PostgreSQL is down: %v", r.name, err)
		}
		if _, err := rp.refresh(r, tok.RefreshToken); !closedError(err) {
			t.Fatalf("%s: refresh while PostgreSQL is down must fail closed with temporarily_unavailable or 503, got %v", r.name, err)
		}
		st, err := rp.login(r, user, pw, oauth2.GenerateVerifier())
		if err != nil || st.code != "" || st.status < 500 {
			t.Fatalf("%s: sign-in while PostgreSQL is down must fail closed with a 5xx page, got %v %+v", r.name, err, st)
		}
	}
	for _, r := range replicas {
		waitFor(t, maxLag+30*time.Second, r.name+" /readyz reports the lag", func() error {
			rd := readyz(r)
			if rd.status != http.StatusServiceUnavailable || rd.Cluster == nil || rd.Cluster.Ready || rd.Cluster.Lag < maxLag.Seconds() {
				return fmt.Errorf("/readyz %d %s", rd.status, rd.body)
			}
			return nil
		})
	}
	t.Logf("every replica's /readyz reported the lag %v after PostgreSQL stopped (max_lag %v): %s", time.Since(down).Round(time.Millisecond), maxLag, readyz(replicas[0]).body)

	c.pg.Run(t, "resume")
	for _, r := range replicas {
		waitFor(t, 60*time.Second, r.name+" recovers", func() error {
			if rd := readyz(r); rd.status != http.StatusOK {
				return fmt.Errorf("/readyz %d %s", rd.status, rd.body)
			}
			return nil
		})
		if !r.alive() {
			t.Fatalf("%s exited", r.name)
		}
	}
	// The refresh token survived the outage (the refusals did not consume
	// it), sign-ins work on every replica, and syncs publish again.
	if _, err := rp.refresh(replicas[1], tok.RefreshToken); err != nil {
		t.Fatalf("refresh after the outage: %v", err)
	}
	for _, r := range replicas {
		rp.signIn(t, r, user, pw)
	}
	leader := c.leader(t, 30*time.Second)
	c.addUser(t, uniqueUID("after-outage"))
	if status, res, err := syncNow(context.Background(), leader, ""); err != nil || status != http.StatusOK {
		t.Fatalf("sync after the outage: %d %v %v", status, res, err)
	}
	c.waitSameAsUpstream(t, 60*time.Second)
}

// closedError: the token endpoint refused for want of its store, saying so.
func closedError(err error) bool {
	code := oauthError(err)
	return code == "temporarily_unavailable" || code == "HTTP 503"
}

// readiness is a replica's /readyz answer.
type readiness struct {
	status  int
	body    string
	Cluster *struct {
		Ready bool    `json:"ready"`
		Lag   float64 `json:"lag_seconds"`
	} `json:"cluster"`
}

func readyz(r *replica) readiness {
	resp, err := http.Get("http://" + r.adminAddr + "/readyz")
	if err != nil {
		return readiness{body: err.Error()}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	rd := readiness{status: resp.StatusCode, body: string(b)}
	if err := json.Unmarshal(b, &rd); err != nil {
		rd.body += " (" + err.Error() + ")"
	}
	return rd
}

// TestClusterNewReplicaAndStatus starts a fourth replica after the others
// synced and published more: it loads the snapshot and serves the same
// data; `dirgate cluster status` lists the four, the leader and the lag.
func TestClusterNewReplicaAndStatus(t *testing.T) {
	c := startCluster(t, clusterOptions{}, 3)
	leader := c.leader(t, 10*time.Second)
	c.addUser(t, uniqueUID("before-r4"))
	if status, res, err := syncNow(context.Background(), leader, ""); err != nil || status != http.StatusOK {
		t.Fatalf("sync: %d %v %v", status, res, err)
	}
	r4 := c.add(t)
	c.waitSameAsUpstream(t, 90*time.Second)
	m, err := r4.metrics()
	if err != nil {
		t.Fatal(err)
	}
	if m["dirgate_changelog_snapshot_loads_total"] < 1 {
		t.Errorf("%s did not load a snapshot: dirgate_changelog_snapshot_loads_total %v", r4.name, m["dirgate_changelog_snapshot_loads_total"])
	}

	var st registry.Status
	waitFor(t, 30*time.Second, "cluster status lists every replica at the head", func() error {
		out, err := r4.cli(t, "cluster", "status", "--json")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		st = registry.Status{}
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		if st.LeaderName() != leader.name {
			return fmt.Errorf("leader %q, want %s: %s", st.LeaderName(), leader.name, out)
		}
		names := map[string]bool{}
		for _, r := range st.Replicas {
			names[r.Name] = true
			if r.Gone || r.Position != st.Head || r.Lag != 0 {
				return fmt.Errorf("replica %s is gone, behind or lagging (head %d): %s", r.Name, st.Head, out)
			}
		}
		for _, r := range c.running() {
			if !names[r.name] {
				return fmt.Errorf("%s is not listed: %s", r.name, out)
			}
		}
		return nil
	})
	if st.Lease == nil || !st.Lease.Valid || st.Head == 0 {
		t.Fatalf("status without a valid lease or a head: %+v", st)
	}
	out, err := r4.cli(t, "cluster", "status")
	if err != nil || !strings.Contains(out, leader.name) || !strings.Contains(out, r4.name) {
		t.Fatalf("cluster status (text): %v\n%s", err, out)
	}
	t.Logf("cluster status:\n%s", out)
}
