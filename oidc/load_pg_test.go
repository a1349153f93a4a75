package oidc

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dirgate/dirgate/authn"
	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/state"
	"github.com/dirgate/dirgate/state/pgstate"
	"github.com/dirgate/dirgate/state/pgstate/pgtest"
)

// stmtCounter counts the statements a pool's connections send (BEGIN and
// COMMIT included): the round trips to the database.
type stmtCounter struct {
	pool *pgxpool.Pool // the pool counted, for its server processes
	n    atomic.Int64
	mu   sync.Mutex
	log  []string // the statements, while logging
	on   bool
}

// TraceQueryStart implements pgx.QueryTracer.
func (c *stmtCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	c.mu.Lock()
	if c.on {
		c.log = append(c.log, strings.Join(strings.Fields(d.SQL), " "))
	}
	c.mu.Unlock()
	return ctx
}

// TraceQueryEnd implements pgx.QueryTracer.
func (c *stmtCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// record starts logging the statements afresh.
func (c *stmtCounter) record() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.log, c.on = nil, true
}

// statements returns the statements sent since record.
func (c *stmtCounter) statements() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.log)
}

// serverCPU returns the CPU time of each server process of c's pool (on
// this machine), by process ID.
func (c *stmtCounter) serverCPU(t testing.TB) map[int]time.Duration {
	t.Helper()
	out := map[int]time.Duration{}
	if c.pool == nil {
		return out
	}
	rows, err := c.pool.Query(context.Background(), `SELECT pid FROM pg_stat_activity WHERE application_name = current_setting('application_name')`)
	if err != nil {
		t.Fatal(err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Skipf("the database's processes are not on this machine: %v", err)
		}
		// Fields after the command (which is in parentheses): utime
		// and stime are the 12th and 13th, in clock ticks (100/s).
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		var u, s int64
		fmt.Sscan(f[11], &u)
		fmt.Sscan(f[12], &s)
		out[int(pid)] = time.Duration(u+s) * 10 * time.Millisecond
	}
	return out
}

// acquireWait is how long acquisitions of c's pool waited for a
// connection in all (the pool was exhausted).
func (c *stmtCounter) acquireWait() time.Duration {
	if c.pool == nil {
		return 0
	}
	return c.pool.Stat().EmptyAcquireWaitTime()
}

// processCPU is the user and system CPU time of this process.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadUsers is how many accounts the load fixture's directory holds.
const loadUsers = 500

// loadFixture serves a provider whose sign-ins go through authn (the
// throttle's reservation, counter reads and resets in the states' throttle
// store), with the states given, over a directory of loadUsers accounts.
// It returns the fixture and a function that adds the users to its cache.
func loadFixture(t testing.TB, states func(f *fixture) state.Stores) *fixture {
	t.Helper()
	f := newFixture(t)
	g, err := f.store.NewGeneration("bench")
	if err != nil {
		t.Fatal(err)
	}
	for i := range loadUsers {
		mail := fmt.Sprintf("user%05d@bench.test", i)
		if err := g.Put(&cache.Entry{ID: fmt.Sprintf("u%05d", i), DN: fmt.Sprintf("uid=user%05d,dc=bench", i), Kind: cache.KindUser,
			Addresses: []string{mail}, Attrs: []cache.Attr{{Name: "mail", Values: []string{mail}}}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Commit(t.Context(), nil, nil); err != nil {
		t.Fatal(err)
	}
	st := states(f)
	log := slog.New(slog.DiscardHandler)
	a, err := authn.New(&config.Config{Auth: config.Auth{Throttle: config.Throttle{AccountFailures: 5, AddressFailures: 20}}},
		f.store, st, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	// A local account per directory user: authn's pipeline without an
	// upstream, so that what is measured is the state stores.
	signIn := func(ctx context.Context, login, password, remote string) (*cache.Entry, error) {
		id := "u" + strings.TrimSuffix(strings.TrimPrefix(login, "user"), "@bench.test")
		acct := &authn.LocalAccount{Key: id, DN: login, Verify: func(p string) bool { return p == "pw" }}
		if _, err := a.Login(ctx, authn.Attempt{Login: login, Password: password, Remote: remote, Protocol: "oidc", Local: acct}); err != nil {
			return nil, err
		}
		var e *cache.Entry
		err := f.store.View(ctx, func(v *cache.View) error { var err error; e, err = v.Get("bench", id); return err })
		return e, err
	}
	f.p, err = New(f.p.cfg, f.store, st, signIn, log)
	if err != nil {
		t.Fatal(err)
	}
	f.live.Store(f.p)
	return f
}

// pgStates are the PostgreSQL stores on a private schema, as serve builds
// them (the throttle behind the fallback), on a pool whose statements c
// counts.
func pgStates(t testing.TB, c *stmtCounter) state.Stores {
	t.Helper()
	db := pgtest.New(t)
	cfg, err := pgxpool.ParseConfig(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = db.Schema
	cfg.ConnConfig.RuntimeParams["application_name"] = db.Schema
	cfg.ConnConfig.Tracer = c
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	c.pool = pool
	s, err := pgstate.New(pool, pgtest.Key)
	if err != nil {
		t.Fatal(err)
	}
	st := s.Stores()
	st.Throttle = state.NewFallback(st.Throttle, state.NewMemoryThrottle(1000), slog.New(slog.DiscardHandler))
	return st
}

// benchSignIn runs one whole sign-in as the cluster benchmark does
// (authorize, login form, code exchange) and returns the refresh token.
func (f *fixture) benchSignIn(c *http.Client, user string) (string, error) {
	q := url.Values{"client_id": {"wiki"}, "response_type": {"code"}, "scope": {"openid email"}, "redirect_uri": {rpRedirect}, "state": {"s"}}
	resp, err := c.Get(f.srv.URL + "/authorize?" + q.Encode())
	if err != nil {
		return "", err
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	form := url.Values{"email": {user}, "password": {"pw"}}
	for _, m := range hidden.FindAllStringSubmatch(string(page), -1) {
		form.Set(m[1], m[2])
	}
	resp, err = c.PostForm(f.srv.URL+"/login", form)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		return "", fmt.Errorf("login answered %d without a code", resp.StatusCode)
	}
	return f.benchToken(c, url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "redirect_uri": {rpRedirect}})
}

// benchToken posts a token request of the confidential client and returns
// the refresh token issued.
func (f *fixture) benchToken(c *http.Client, form url.Values) (string, error) {
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("wiki", secret)
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK || out.RefreshToken == "" {
		return "", fmt.Errorf("token endpoint %d: %v", resp.StatusCode, err)
	}
	return out.RefreshToken, nil
}

// benchUser is the login of directory user i of the load fixture.
func benchUser(i int) string { return fmt.Sprintf("user%05d@bench.test", i) }

// TestRoundTripsPerSignIn counts the statements one sign-in (authorize,
// login form, code exchange) and one refresh grant send to PostgreSQL:
// each is a round trip that a loaded database or machine can delay, so
// the budget is what the guarantees need.
func TestRoundTripsPerSignIn(t *testing.T) {
	c := &stmtCounter{}
	f := loadFixture(t, func(*fixture) state.Stores { return pgStates(t, c) })
	br := browser()
	// The first sign-in of an account is left out: it may create rows
	// the next ones find.
	if _, err := f.benchSignIn(br, benchUser(1)); err != nil {
		t.Fatal(err)
	}
	c.record()
	rt, err := f.benchSignIn(br, benchUser(1))
	if err != nil {
		t.Fatal(err)
	}
	signIn := c.statements()
	c.record()
	if _, err := f.benchToken(br, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}); err != nil {
		t.Fatal(err)
	}
	refresh := c.statements()
	for _, tc := range []struct {
		what   string
		stmts  []string
		budget int
	}{
		// authorize: store the request; login: take it, read the
		// client address's counter, reserve an attempt, release it,
		// store the code; exchange: redeem the code, store the refresh
		// token.
		{"sign-in", signIn, 8},
		// read the token, rotate it, store its successor.
		{"refresh grant", refresh, 3},
	} {
		t.Logf("%s: %d statements", tc.what, len(tc.stmts))
		if len(tc.stmts) > tc.budget {
			t.Errorf("a %s sends %d statements to the database, want at most %d:\n%s",
				tc.what, len(tc.stmts), tc.budget, strings.Join(tc.stmts, "\n"))
		}
	}
}

// TestStoreLoad measures sign-ins and refresh grants at concurrency 4 (the
// cluster benchmark's) with the PostgreSQL stores and the Badger ones side
// by side: ops/s, p50 and p99. It runs only when DIRGATE_OIDC_LOAD is a
// duration per measurement (e.g. 10s).
func TestStoreLoad(t *testing.T) {
	dur, err := time.ParseDuration(os.Getenv("DIRGATE_OIDC_LOAD"))
	if err != nil {
		t.Skip("DIRGATE_OIDC_LOAD (a duration per measurement) not set")
	}
	c := &stmtCounter{}
	for _, kind := range []string{"badger", "postgres"} {
		f := loadFixture(t, func(f *fixture) state.Stores {
			if kind == "badger" {
				return f.store.States()
			}
			return pgStates(t, c)
		})
		for _, refresh := range []bool{false, true} {
			before, srv0, cpu0, wait0 := c.n.Load(), c.serverCPU(t), processCPU(), c.acquireWait()
			r := f.load(t, 4, dur, refresh)
			cpu := processCPU() - cpu0
			var srv time.Duration
			wait := c.acquireWait() - wait0
			if kind == "postgres" {
				for pid, d := range c.serverCPU(t) {
					srv += d - srv0[pid]
				}
			}
			what := "sign-ins"
			if refresh {
				what = "refreshes"
			}
			perOp := 0.0
			if r.ops > 0 {
				perOp = float64(c.n.Load()-before) / float64(r.ops)
			}
			t.Logf("%-8s %-9s %5.0f ops/s  p50 %6.2fms  p99 %6.2fms  statements/op %4.1f  CPU/op: this process %4.2fms, database %4.2fms  pool wait/op %4.2fms",
				kind, what, float64(r.ops)/dur.Seconds(), ms(r.p50), ms(r.p99), perOp,
				ms(cpu)/float64(r.ops), ms(srv)/float64(r.ops), ms(wait)/float64(r.ops))
		}
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// loadResult is one measurement.
type loadResult struct {
	ops      int
	p50, p99 time.Duration
}

// load runs conc workers for dur, each signing in as random users (or
// refreshing its own grant), and returns the latencies.
func (f *fixture) load(t *testing.T, conc int, dur time.Duration, refresh bool) loadResult {
	t.Helper()
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	errs := make(chan error, conc)
	stop := time.Now().Add(dur)
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			br := browser()
			rnd := rand.New(rand.NewPCG(uint64(w), 7))
			rt, err := f.benchSignIn(br, benchUser(rnd.IntN(loadUsers)))
			if err != nil {
				errs <- err
				return
			}
			var mine []time.Duration
			for time.Now().Before(stop) {
				start := time.Now()
				if refresh {
					rt, err = f.benchToken(br, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
				} else {
					_, err = f.benchSignIn(br, benchUser(rnd.IntN(loadUsers)))
				}
				if err != nil {
					errs <- err
					return
				}
				mine = append(mine, time.Since(start))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	slices.Sort(lat)
	if len(lat) == 0 {
		t.Fatal("no operation completed")
	}
	at := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	return loadResult{ops: len(lat), p50: at(0.5), p99: at(0.99)}
}
