package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/state"
	dirsync "github.com/dirgate/dirgate/sync"
	"github.com/dirgate/dirgate/testconn"
)

const testToken = "s3cret-admin-token-0123456789"

// t0 is the fake "now" of the tests.
var t0 = time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)

// fakeBackend is an in-memory dirgate: statuses, scripted sync outcomes,
// and a real cache store for lookups, browsing and history.
type fakeBackend struct {
	store *cache.Store

	mu        sync.Mutex
	statuses  []dirsync.ConnectorStatus
	blocked   map[string]*dirsync.Result
	calls     []string // "name:dry_run=..,mode=..,force=..,trigger=.."
	statusErr error
}

// Status fills, as the scheduler does, the cache age (at t0) and the reason
// of a pending blocked plan.
func (f *fakeBackend) Status(context.Context) ([]dirsync.ConnectorStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.statusErr != nil {
		return nil, f.statusErr
	}
	out := slices.Clone(f.statuses)
	for i, st := range out {
		if !st.LastSuccess.IsZero() {
			out[i].CacheAge = t0.Sub(st.LastSuccess)
		}
		if res := f.blocked[st.Name]; res != nil {
			out[i].Blocked = res.Blocked
		}
	}
	return out, nil
}

func (f *fakeBackend) setStatus(name string, fn func(*dirsync.ConnectorStatus)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.statuses {
		if f.statuses[i].Name == name {
			fn(&f.statuses[i])
		}
	}
}

func (f *fakeBackend) record(name string, o dirsync.Options) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("%s:dry_run=%v,mode=%s,force=%v,trigger=%s", name, o.DryRun, o.Mode, o.Force, o.Trigger))
}

func (f *fakeBackend) syncCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// SyncNow scripts one behaviour per connector: corp syncs, busy is always
// running, risky is blocked until forced, broken fails.
func (f *fakeBackend) SyncNow(_ context.Context, name string, o dirsync.Options) (*dirsync.Result, error) {
	f.record(name, o)
	mode := o.Mode
	if mode == "" {
		mode = dirsync.ModeIncremental
	}
	run := cache.Run{Connector: name, Start: t0, End: t0.Add(1500 * time.Millisecond), Duration: 1500 * time.Millisecond,
		Trigger: o.Trigger, Mode: mode, DryRun: o.DryRun, Host: "ldap1.corp.test"}
	switch name {
	case "corp":
		run.Added, run.Updated, run.Deleted, run.Unchanged, run.Read = 2, 1, 0, 40, 43
		return &dirsync.Result{Run: run, Plan: dirsync.Plan{
			Adds:    []dirsync.PlanItem{{ID: "n1", DN: "uid=new1,ou=people,dc=corp,dc=test", Kind: cache.KindUser}, {ID: "n2", DN: "uid=new2,ou=people,dc=corp,dc=test", Kind: cache.KindUser}},
			Updates: []dirsync.PlanItem{{ID: "g1", DN: "cn=staff,ou=groups,dc=corp,dc=test", Kind: cache.KindGroup}},
		}}, nil
	case "busy":
		return nil, fmt.Errorf("sync busy: %w", dirsync.ErrRunning)
	case "broken":
		run.Error = "ldap1.corp.test:636: connection refused"
		return &dirsync.Result{Run: run}, errors.New(run.Error)
	case "risky":
		dels := []dirsync.PlanItem{
			{ID: "d1", DN: "uid=gone1,ou=people,dc=risky,dc=test", Kind: cache.KindUser},
			{ID: "d2", DN: "uid=gone2,ou=people,dc=risky,dc=test", Kind: cache.KindUser},
			{ID: "d3", DN: "cn=<b>old</b>,ou=groups,dc=risky,dc=test", Kind: cache.KindGroup},
		}
		run.Unchanged, run.Read, run.Deleted = 3, 3, len(dels)
		res := &dirsync.Result{Run: run, Plan: dirsync.Plan{Deletes: dels}}
		if o.Force || o.DryRun {
			if !o.DryRun {
				f.mu.Lock()
				delete(f.blocked, name)
				f.mu.Unlock()
			}
			return res, nil
		}
		res.Blocked = "3 deletions are 50.0% of 6 cached entries, above max_delete_percent 10"
		f.mu.Lock()
		f.blocked[name] = res
		f.mu.Unlock()
		return res, &dirsync.BlockedError{Connector: name, Reason: res.Blocked}
	}
	return nil, fmt.Errorf("%w: %s", ErrUnknownConnector, name)
}

func (f *fakeBackend) Blocked(name string) (*dirsync.Result, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.blocked[name]
	return r, ok
}

func (f *fakeBackend) TestConnection(_ context.Context, name string) (*testconn.Report, error) {
	if name == "broken" {
		return &testconn.Report{Connector: name, OK: false, Steps: []testconn.Step{
			{Host: "ldap1.corp.test:636", Name: "resolve", OK: true, Duration: 2 * time.Millisecond, Detail: "192.0.2.10"},
			{Host: "ldap1.corp.test:636", Name: "connect", OK: false, Duration: 3 * time.Second, Detail: "connection refused",
				Fix: "check that the directory listens on port 636 and that no firewall blocks it"},
			{Host: "ldap1.corp.test:636", Name: "bind", Skipped: true},
		}}, nil
	}
	return &testconn.Report{Connector: name, OK: true, Steps: []testconn.Step{
		{Host: "ldap1.corp.test:636", Name: "resolve", OK: true, Duration: 1 * time.Millisecond, Detail: "192.0.2.10"},
		{Host: "ldap1.corp.test:636", Name: "TLS handshake", OK: true, Duration: 12 * time.Millisecond, Detail: "TLS 1.3, certificate valid until 2026-01-01"},
		{Host: "ldap1.corp.test:636", Name: "bind", OK: true, Duration: 4 * time.Millisecond, Detail: "bound as cn=sync,dc=corp,dc=test"},
	}}, nil
}

func (f *fakeBackend) Runs(ctx context.Context, name string, limit int) ([]state.Run, error) {
	return f.store.States().Sync.Runs(ctx, name, limit)
}

func (f *fakeBackend) Store() *cache.Store { return f.store }

func user(id, dn string, disabled bool, addrs ...string) *cache.Entry {
	cn := strings.TrimPrefix(strings.SplitN(dn, ",", 2)[0], "uid=")
	return &cache.Entry{ID: id, DN: dn, Kind: cache.KindUser, Disabled: disabled, Addresses: addrs,
		Attrs: []cache.Attr{{Name: "cn", Values: []string{cn}}, {Name: "mail", Values: addrs[:min(1, len(addrs))]}}}
}

func group(id, dn string, members ...string) *cache.Entry {
	return &cache.Entry{ID: id, DN: dn, Kind: cache.KindGroup, Members: members,
		Attrs: []cache.Attr{{Name: "cn", Values: []string{strings.TrimPrefix(strings.SplitN(dn, ",", 2)[0], "cn=")}}}}
}

// commit writes entries as conn's served generation with a run record.
func commit(t testing.TB, s *cache.Store, conn string, run *cache.Run, es ...*cache.Entry) {
	t.Helper()
	gen, err := s.NewGeneration(conn)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if err := gen.Put(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := gen.Commit(context.Background(), nil, run); err != nil {
		t.Fatal(err)
	}
}

// newFake returns a backend with connectors corp (ok), risky (blocked
// plan pending), busy (running), broken (error, never synced) and a cache
// holding corp's and risky's entries.
func newFake(t testing.TB) *fakeBackend {
	t.Helper()
	s, err := cache.Open(t.TempDir(), cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	corpRun := &cache.Run{Connector: "corp", Start: t0.Add(-2 * time.Hour), End: t0.Add(-2*time.Hour + 2*time.Second),
		Duration: 2 * time.Second, Trigger: "schedule", Mode: "full", Added: 5, Read: 5, Host: "ldap1.corp.test"}
	alice := "uid=alice,ou=people,dc=corp,dc=test"
	bob := "uid=bob,ou=people,dc=corp,dc=test"
	commit(t, s, "corp", corpRun,
		user("u-alice", alice, false, "alice@corp.test", "a.liddell@corp.test"),
		user("u-bob", bob, false, "bob@corp.test", "shared@corp.test"),
		user("u-carol", "uid=carol,ou=people,dc=corp,dc=test", true, "carol@corp.test"),
		user("u-evil", `uid=<script>alert(1)</script>,ou=people,dc=corp,dc=test`, false, "evil@corp.test"),
		group("g-staff", "cn=staff,ou=groups,dc=corp,dc=test", alice, bob),
	)
	riskyRun := &cache.Run{Connector: "risky", Start: t0.Add(-30 * time.Hour), End: t0.Add(-30*time.Hour + time.Second),
		Duration: time.Second, Trigger: "schedule", Mode: "full", Added: 2, Read: 2}
	commit(t, s, "risky", riskyRun,
		user("r-bob", "uid=bob2,ou=people,dc=risky,dc=test", false, "shared@corp.test"),
		user("r-dave", "uid=dave,ou=people,dc=risky,dc=test", false, "dave@risky.test"),
	)
	if err := s.States().Sync.RecordRun(t.Context(), &state.Run{Connector: "risky", Start: t0.Add(-time.Hour), End: t0.Add(-time.Hour + time.Second),
		Trigger: "schedule", Mode: "full", Deleted: 3, Blocked: "3 deletions are 50.0% of 6 cached entries, above max_delete_percent 10"}); err != nil {
		t.Fatal(err)
	}
	corpLast := *corpRun
	f := &fakeBackend{store: s, blocked: map[string]*dirsync.Result{}}
	f.statuses = []dirsync.ConnectorStatus{
		{Name: "corp", Type: "openldap", Description: "Head office OpenLDAP", Host: "ldap1.corp.test", AlternateHost: "ldap2.corp.test",
			Schedule: "daily at 08:00, 13:00, 23:00 Europe/Berlin", NextRun: t0.Add(time.Hour), State: "ok",
			LastRun: &corpLast, LastSuccess: corpRun.End, Users: 4, Groups: 1},
		{Name: "risky", Type: "ad", Host: "dc1.risky.test", Schedule: "daily at 08:00, 13:00, 23:00 UTC", NextRun: t0.Add(20 * time.Hour),
			State: "blocked", LastRun: &cache.Run{Connector: "risky", Start: t0.Add(-time.Hour), Blocked: "too many deletions"},
			LastSuccess: riskyRun.End, Users: 2},
		{Name: "busy", Type: "domino", Host: "domino.corp.test", State: "running", Running: true, LastSuccess: t0.Add(-10 * time.Minute)},
		{Name: "broken", Type: "openldap", Host: "ldap9.corp.test", State: "error",
			LastRun: &cache.Run{Connector: "broken", Start: t0.Add(-5 * time.Minute), Error: "connection refused"}},
	}
	// risky has a pending blocked plan, as after a scheduled run.
	if _, err := f.SyncNow(context.Background(), "risky", dirsync.Options{Trigger: "schedule"}); err == nil {
		t.Fatal("risky should block")
	}
	f.calls = nil
	return f
}

func newTestServer(t testing.TB, f *fakeBackend, o Options) (*server, *httptest.Server) {
	t.Helper()
	if o.Token == "" {
		o.Token = testToken
	}
	s := newServer(f, o)
	s.now = func() time.Time { return t0 }
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts
}

func do(t *testing.T, c *http.Client, method, u, token, body string) (int, http.Header, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestAPIRequiresToken(t *testing.T) {
	s, ts := newTestServer(t, newFake(t), Options{})
	endpoints := [][2]string{
		{"GET", "/api/v1/connectors"},
		{"GET", "/api/v1/connectors/corp"},
		{"POST", "/api/v1/connectors/corp/sync"},
		{"POST", "/api/v1/connectors/corp/test"},
		{"GET", "/api/v1/connectors/corp/runs"},
		{"GET", "/api/v1/connectors/risky/blocked"},
		{"POST", "/api/v1/connectors/risky/blocked/apply"},
		{"GET", "/api/v1/lookup?email=alice@corp.test"},
		{"GET", "/api/v1/entries"},
		{"GET", "/api/v1/nothing-here"},
		{"GET", "/debug/pprof/"},
		{"GET", "/debug/pprof/heap"},
		{"GET", "/debug/pprof/profile?seconds=1"},
	}
	for _, ep := range endpoints {
		for _, tok := range []string{"", "wrong-token", testToken + "x", strings.ToUpper(testToken)} {
			t.Run(ep[0]+ep[1]+"/"+tok, func(t *testing.T) {
				s.limiter = newFailLimiter() // TestTokenThrottle covers it
				code, h, body := do(t, nil, ep[0], ts.URL+ep[1], tok, "")
				if code != http.StatusUnauthorized {
					t.Fatalf("status %d, want 401: %s", code, body)
				}
				if !strings.HasPrefix(h.Get("WWW-Authenticate"), `Bearer realm="dirgate admin"`) {
					t.Errorf("WWW-Authenticate = %q", h.Get("WWW-Authenticate"))
				}
			})
		}
	}
	// The scheme is case-insensitive; other schemes are refused.
	req, _ := http.NewRequest("GET", ts.URL+"/api/v1/connectors", nil)
	req.Header.Set("Authorization", "bearer "+testToken)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("lower-case scheme: %v %v", resp, err)
	}
	req.Header.Set("Authorization", "Basic "+testToken)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
		t.Fatalf("basic scheme: %v %v", resp, err)
	}
	// With the token, the profiles are served.
	if code, _, body := do(t, nil, "GET", ts.URL+"/debug/pprof/heap?debug=1", testToken, ""); code != 200 || !strings.Contains(body, "heap profile") {
		t.Fatalf("heap profile with the token: %d %.200s", code, body)
	}
}

func TestEmptyTokenLocksEverything(t *testing.T) {
	s := newServer(newFake(t), Options{})
	ts := httptest.NewServer(s)
	defer ts.Close()
	if code, _, _ := do(t, nil, "GET", ts.URL+"/api/v1/connectors", "", ""); code != 401 {
		t.Fatalf("status %d", code)
	}
	req, _ := http.NewRequest("GET", ts.URL+"/api/v1/connectors", nil)
	req.Header.Set("Authorization", "Bearer ")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 401 {
		t.Fatalf("empty bearer: %v %v", resp, err)
	}
}

func TestAPI(t *testing.T) {
	type check func(t *testing.T, f *fakeBackend, v map[string]any, raw string)
	tests := []struct {
		name         string
		method, path string
		body         string
		want         int
		check        check
	}{
		{"list", "GET", "/api/v1/connectors", "", 200, func(t *testing.T, _ *fakeBackend, v map[string]any, raw string) {
			cs := v["connectors"].([]any)
			if len(cs) != 4 {
				t.Fatalf("%d connectors", len(cs))
			}
			c := cs[0].(map[string]any)
			if c["name"] != "corp" || c["state"] != "ok" || c["users"].(float64) != 4 || c["alternate_host"] != "ldap2.corp.test" ||
				c["cache_age_seconds"].(float64) != 7198 || c["next_run"] != "2025-03-10T13:00:00Z" {
				t.Errorf("corp = %v", c)
			}
			if r := cs[1].(map[string]any); r["blocked"] == nil || !strings.Contains(r["blocked"].(string), "max_delete_percent") {
				t.Errorf("risky = %v", r)
			}
			if b := cs[3].(map[string]any); b["last_success"] != nil || b["cache_age_seconds"] != nil || b["next_run"] != nil {
				t.Errorf("broken = %v", b)
			}
		}},
		{"one", "GET", "/api/v1/connectors/corp", "", 200, func(t *testing.T, _ *fakeBackend, v map[string]any, _ string) {
			if v["name"] != "corp" || v["schedule"] != "daily at 08:00, 13:00, 23:00 Europe/Berlin" {
				t.Errorf("%v", v)
			}
			if lr := v["last_run"].(map[string]any); lr["trigger"] != "schedule" || lr["added"].(float64) != 5 {
				t.Errorf("last_run %v", lr)
			}
		}},
		{"unknown connector", "GET", "/api/v1/connectors/nope", "", 404, nil},
		{"sync", "POST", "/api/v1/connectors/corp/sync", "", 200, func(t *testing.T, f *fakeBackend, v map[string]any, _ string) {
			res := v["result"].(map[string]any)
			if v["status"] != "ok" || res["added"].(float64) != 2 || res["updated"].(float64) != 1 || res["mode"] != "incremental" {
				t.Errorf("%v", v)
			}
			plan := res["plan"].(map[string]any)
			if adds := plan["adds"].([]any); len(adds) != 2 || adds[0].(map[string]any)["kind"] != "user" {
				t.Errorf("plan %v", plan)
			}
			if got := f.syncCalls(); !slices.Equal(got, []string{"corp:dry_run=false,mode=,force=false,trigger=api"}) {
				t.Errorf("calls %v", got)
			}
		}},
		{"dry run full", "POST", "/api/v1/connectors/corp/sync", `{"dry_run":true,"mode":"full"}`, 200, func(t *testing.T, f *fakeBackend, v map[string]any, _ string) {
			if v["status"] != "dry_run" {
				t.Errorf("%v", v)
			}
			if got := f.syncCalls(); !slices.Equal(got, []string{"corp:dry_run=true,mode=full,force=false,trigger=api"}) {
				t.Errorf("calls %v", got)
			}
		}},
		{"bad mode", "POST", "/api/v1/connectors/corp/sync", `{"mode":"partial"}`, 400, nil},
		{"unknown field", "POST", "/api/v1/connectors/corp/sync", `{"dryrun":true}`, 400, func(t *testing.T, f *fakeBackend, _ map[string]any, _ string) {
			if len(f.syncCalls()) != 0 {
				t.Error("a bad request started a sync")
			}
		}},
		{"not JSON", "POST", "/api/v1/connectors/corp/sync", `dry_run=1`, 400, nil},
		{"sync unknown", "POST", "/api/v1/connectors/nope/sync", "", 404, nil},
		{"running", "POST", "/api/v1/connectors/busy/sync", "", 409, func(t *testing.T, _ *fakeBackend, v map[string]any, _ string) {
			if v["status"] != "running" || !strings.Contains(v["error"].(string), "already running") {
				t.Errorf("%v", v)
			}
		}},
		{"blocked", "POST", "/api/v1/connectors/risky/sync", "", 409, func(t *testing.T, _ *fakeBackend, v map[string]any, _ string) {
			dels := v["result"].(map[string]any)["plan"].(map[string]any)["deletes"].([]any)
			if v["status"] != "blocked" || !strings.Contains(v["blocked"].(string), "max_delete_percent") || len(dels) != 3 ||
				dels[0].(map[string]any)["dn"] != "uid=gone1,ou=people,dc=risky,dc=test" {
				t.Errorf("%v", v)
			}
		}},
		{"upstream fails", "POST", "/api/v1/connectors/broken/sync", "", 502, func(t *testing.T, _ *fakeBackend, v map[string]any, _ string) {
			if v["status"] != "failed" || !strings.Contains(v["error"].(string), "connection refused") {
				t.Errorf("%v", v)
			}
		}},
		{"test ok", "POST", "/api/v1/connectors/corp/test", "", 200, func(t *testing.T, _ *fakeBackend, v map[string]any, _ string) {
			steps := v["steps"].([]any)
			if v["ok"] != true || len(steps) != 3 || steps[1].(map[string]any)["duration_ms"].(float64) != 12 {
				t.Errorf("%v", v)
			}
		}},
		{"test fails", "POST", "/api/v1/connectors/broken/test", "", 200, func(t *testing.T, _ *fakeBackend, v map[string]any, _ string) {
			step := v["steps"].([]any)[1].(map[string]any)
			if v["ok"] != false || step["ok"] != false || !strings.Contains(step["fix"].(string), "firewall") {
				t.Errorf("%v", v)
			}
		}},
		{"runs", "GET", "/api/v1/connectors/risky/runs", "", 200, func(t *testing.T, _ *fakeBackend, v map[string]any, _ string) {
			runs := v["runs"].([]any)
			if len(runs) != 2 || runs[0].(map[string]any)["blocked"] == nil {
				t.Errorf("%v", v)
			}
		}},
		{"runs limit", "GET", "/api/v1/connectors/risky/runs?limit=1", "", 200, func(t *testing.T, _ *fakeBackend, v map[string]any, _ string) {
			if runs := v["runs"].([]any); len(runs) != 1 {
				t.Errorf("%v", v)
			}
		}},
		{"runs bad limit", "GET", "/api/v1/connectors/risky/runs?limit=-3", "", 400, nil},
		{"runs none", "GET", "/api/v1/connectors/busy/runs", "", 200, func(t *testing.T, _ *fakeBackend, _ map[string]any, raw string) {
			if !strings.Contains(raw, `"runs": []`) {
				t.Errorf("%s", raw)
			}
		}},
		{"blocked plan", "GET", "/api/v1/connectors/risky/blocked", "", 200, func(t *testing.T, _ *fakeBackend, v map[string]any, _ string) {
			if dels := v["result"].(map[string]any)["plan"].(map[string]any)["deletes"].([]any); len(dels) != 3 {
				t.Errorf("%v", v)
			}
		}},
		{"no blocked plan", "GET", "/api/v1/connectors/corp/blocked", "", 404, nil},
		{"apply", "POST", "/api/v1/connectors/risky/blocked/apply", "", 200, func(t *testing.T, f *fakeBackend, v map[string]any, _ string) {
			if v["status"] != "ok" || v["result"].(map[string]any)["deleted"].(float64) != 3 {
				t.Errorf("%v", v)
			}
			if got := f.syncCalls(); !slices.Equal(got, []string{"risky:dry_run=false,mode=incremental,force=true,trigger=api"}) {
				t.Errorf("calls %v", got)
			}
			if _, pending := f.Blocked("risky"); pending {
				t.Error("the plan is still pending")
			}
		}},
		{"apply nothing pending", "POST", "/api/v1/connectors/corp/blocked/apply", "", 404, func(t *testing.T, f *fakeBackend, _ map[string]any, _ string) {
			if len(f.syncCalls()) != 0 {
				t.Error("forced a sync without a reviewed plan")
			}
		}},
		{"lookup", "GET", "/api/v1/lookup?email=A.Liddell@Corp.Test", "", 200, func(t *testing.T, _ *fakeBackend, v map[string]any, _ string) {
			accts := v["accounts"].([]any)
			a := accts[0].(map[string]any)
			if v["ambiguous"] != false || len(accts) != 1 || a["dn"] != "uid=alice,ou=people,dc=corp,dc=test" || a["connector"] != "corp" ||
				a["kind"] != "user" || a["disabled"] != false || fmt.Sprint(a["addresses"]) != "[alice@corp.test a.liddell@corp.test]" ||
				fmt.Sprint(a["groups"]) != "[cn=staff,ou=groups,dc=corp,dc=test]" {
				t.Errorf("%v", v)
			}
		}},
		{"lookup disabled", "GET", "/api/v1/lookup?email=carol@corp.test", "", 200, func(t *testing.T, _ *fakeBackend, v map[string]any, _ string) {
			if a := v["accounts"].([]any)[0].(map[string]any); a["disabled"] != true || !strings.Contains(v["message"].(string), "disabled") {
				t.Errorf("%v", v)
			}
		}},
		{"lookup ambiguous", "GET", "/api/v1/lookup?email=shared@corp.test", "", 200, func(t *testing.T, _ *fakeBackend, v map[string]any, _ string) {
			if v["ambiguous"] != true || len(v["accounts"].([]any)) != 2 || !strings.Contains(v["message"].(string), "ambiguous") {
				t.Errorf("%v", v)
			}
		}},
		{"lookup none", "GET", "/api/v1/lookup?email=nobody@corp.test", "", 404, func(t *testing.T, _ *fakeBackend, v map[string]any, _ string) {
			if len(v["accounts"].([]any)) != 0 || !strings.Contains(v["message"].(string), "no cached account") {
				t.Errorf("%v", v)
			}
		}},
		{"lookup no address", "GET", "/api/v1/lookup", "", 400, nil},
		{"entries all", "GET", "/api/v1/entries", "", 200, func(t *testing.T, _ *fakeBackend, v map[string]any, _ string) {
			es := v["entries"].([]any)
			if v["total"].(float64) != 7 || len(es) != 7 || es[0].(map[string]any)["dn"] != "cn=staff,ou=groups,dc=corp,dc=test" {
				t.Errorf("%v", v)
			}
			if g := es[0].(map[string]any); g["members"].(float64) != 2 {
				t.Errorf("group %v", g)
			}
		}},
		{"entries users of corp", "GET", "/api/v1/entries?connector=corp&kind=user", "", 200, func(t *testing.T, _ *fakeBackend, v map[string]any, _ string) {
			if v["total"].(float64) != 4 {
				t.Errorf("%v", v)
			}
		}},
		{"entries search mail", "GET", "/api/v1/entries?q=LIDDELL", "", 200, func(t *testing.T, _ *fakeBackend, v map[string]any, _ string) {
			if es := v["entries"].([]any); v["total"].(float64) != 1 || es[0].(map[string]any)["id"] != "u-alice" {
				t.Errorf("%v", v)
			}
		}},
		{"entries groups", "GET", "/api/v1/entries?kind=group&q=staff", "", 200, func(t *testing.T, _ *fakeBackend, v map[string]any, _ string) {
			if v["total"].(float64) != 1 {
				t.Errorf("%v", v)
			}
		}},
		{"entries paged", "GET", "/api/v1/entries?kind=user&limit=2&offset=2", "", 200, func(t *testing.T, _ *fakeBackend, v map[string]any, _ string) {
			es := v["entries"].([]any)
			if v["total"].(float64) != 6 || len(es) != 2 || es[0].(map[string]any)["id"] != "u-bob" || es[1].(map[string]any)["id"] != "r-bob" {
				t.Errorf("%v", v)
			}
		}},
		{"entries past the end", "GET", "/api/v1/entries?offset=100", "", 200, func(t *testing.T, _ *fakeBackend, v map[string]any, _ string) {
			if v["total"].(float64) != 7 || len(v["entries"].([]any)) != 0 {
				t.Errorf("%v", v)
			}
		}},
		{"entries bad kind", "GET", "/api/v1/entries?kind=printer", "", 400, nil},
		{"entries bad limit", "GET", "/api/v1/entries?limit=x", "", 400, nil},
		{"wrong method", "DELETE", "/api/v1/connectors/corp", "", 405, nil},
		{"unknown endpoint", "GET", "/api/v1/whatever", "", 404, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			_, ts := newTestServer(t, f, Options{})
			code, h, body := do(t, nil, tc.method, ts.URL+tc.path, testToken, tc.body)
			if code != tc.want {
				t.Fatalf("status %d, want %d: %s", code, tc.want, body)
			}
			if tc.want != 405 && !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
				t.Errorf("Content-Type %q", h.Get("Content-Type"))
			}
			var v map[string]any
			if err := json.Unmarshal([]byte(body), &v); err != nil && tc.want != 405 {
				t.Fatalf("body is not a JSON object: %v: %s", err, body)
			}
			if tc.check != nil {
				tc.check(t, f, v, body)
			}
		})
	}
}

func TestSyncOutlivesTheRequest(t *testing.T) {
	f := newFake(t)
	s := newServer(f, Options{Token: testToken})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := httptest.NewRequest("POST", "/", nil).WithContext(ctx)
	if err := s.syncCtx(r).Err(); err != nil {
		t.Fatalf("a sync started by a request that went away is canceled: %v", err)
	}
}

func TestTokenThrottle(t *testing.T) {
	s, ts := newTestServer(t, newFake(t), Options{})
	for i := range maxTokenFailures {
		if code, _, _ := do(t, nil, "GET", ts.URL+"/api/v1/connectors", fmt.Sprintf("guess-%d", i), ""); code != 401 {
			t.Fatalf("attempt %d: %d", i, code)
		}
	}
	code, h, _ := do(t, nil, "GET", ts.URL+"/api/v1/connectors", testToken, "")
	if code != http.StatusTooManyRequests || h.Get("Retry-After") == "" {
		t.Fatalf("after %d failures: %d", maxTokenFailures, code)
	}
	// The lockout ends with the window.
	s.limiter.now = func() time.Time { return time.Now().Add(failWindow + time.Second) }
	if code, _, _ := do(t, nil, "GET", ts.URL+"/api/v1/connectors", testToken, ""); code != 200 {
		t.Fatalf("after the window: %d", code)
	}
}

func TestProbes(t *testing.T) {
	f := newFake(t)
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "dirgate_up 1\n") })
	_, ts := newTestServer(t, f, Options{Metrics: metrics})
	if code, _, body := do(t, nil, "GET", ts.URL+"/healthz", "", ""); code != 200 || body != "ok\n" {
		t.Errorf("healthz %d %q", code, body)
	}
	if code, _, body := do(t, nil, "GET", ts.URL+"/metrics", "", ""); code != 200 || body != "dirgate_up 1\n" {
		t.Errorf("metrics %d %q", code, body)
	}
	_, ts2 := newTestServer(t, f, Options{})
	if code, _, _ := do(t, nil, "GET", ts2.URL+"/metrics", "", ""); code != 404 {
		t.Errorf("metrics without a handler: %d", code)
	}
}

func TestReadyz(t *testing.T) {
	type conn struct {
		name        string
		lastSuccess time.Duration // before now; 0: never
		lastErr     string
	}
	tests := []struct {
		name     string
		maxAge   time.Duration
		conns    []conn
		want     int
		notReady map[string]string // connector -> reason fragment
	}{
		{"all fresh", 0, []conn{{"a", time.Hour, ""}, {"b", 25 * time.Hour, ""}}, 200, nil},
		{"default max age is 26h", 0, []conn{{"a", time.Hour, ""}, {"b", 26*time.Hour + time.Minute, "bind refused"}}, 503,
			map[string]string{"b": "last successful sync 26h1m0s ago (2025-03-09T09:59:00Z), older than max_cache_age 26h0m0s; last run failed: bind refused"}},
		{"configured max age", time.Hour, []conn{{"a", 59 * time.Minute, ""}, {"b", 61 * time.Minute, ""}}, 503,
			map[string]string{"b": "older than max_cache_age 1h0m0s"}},
		{"never synced", 0, []conn{{"a", time.Hour, ""}, {"new", 0, "connection refused"}}, 503,
			map[string]string{"new": "has never synced successfully; last run failed: connection refused"}},
		{"an error after a recent success is ready", 0, []conn{{"a", time.Hour, "timeout"}}, 200, nil},
		{"no connectors", 0, nil, 200, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			f.statuses = nil
			for _, c := range tc.conns {
				st := dirsync.ConnectorStatus{Name: c.name, State: "ok"}
				if c.lastSuccess > 0 {
					st.LastSuccess = t0.Add(-c.lastSuccess)
				}
				if c.lastErr != "" {
					st.State = "error"
					st.LastRun = &cache.Run{Connector: c.name, Error: c.lastErr}
				}
				f.statuses = append(f.statuses, st)
			}
			_, ts := newTestServer(t, f, Options{MaxCacheAge: tc.maxAge})
			code, _, body := do(t, nil, "GET", ts.URL+"/readyz", "", "")
			if code != tc.want {
				t.Fatalf("status %d, want %d: %s", code, tc.want, body)
			}
			var v struct {
				Status   string      `json:"status"`
				NotReady []readiness `json:"not_ready"`
			}
			if err := json.Unmarshal([]byte(body), &v); err != nil {
				t.Fatal(err)
			}
			if len(v.NotReady) != len(tc.notReady) {
				t.Fatalf("not ready: %+v", v.NotReady)
			}
			for _, nr := range v.NotReady {
				if want, ok := tc.notReady[nr.Connector]; !ok || !strings.Contains(nr.Reason, want) {
					t.Errorf("%s: %q, want %q", nr.Connector, nr.Reason, want)
				}
			}
		})
	}
	t.Run("status unavailable", func(t *testing.T) {
		// The open probe says why in general terms: the error may name a
		// database, its host and user.
		f := newFake(t)
		f.statusErr = errors.New("failed to connect to `user=dirgate database=dirgate`: db.internal:5432")
		_, ts := newTestServer(t, f, Options{})
		code, _, body := do(t, nil, "GET", ts.URL+"/readyz", "", "")
		if code != 503 || !strings.Contains(body, "could not be read") {
			t.Fatalf("%d %s", code, body)
		}
		for _, secret := range []string{"dirgate", "db.internal"} {
			if strings.Contains(body, secret) {
				t.Errorf("/readyz names %q: %s", secret, body)
			}
		}
	})
	t.Run("clock moves", func(t *testing.T) {
		f := newFake(t)
		s, ts := newTestServer(t, f, Options{MaxCacheAge: 40 * time.Hour})
		if code, _, body := do(t, nil, "GET", ts.URL+"/readyz", "", ""); code != 503 || !strings.Contains(body, `"broken"`) {
			t.Fatalf("%d %s", code, body)
		}
		f.setStatus("broken", func(st *dirsync.ConnectorStatus) { st.LastSuccess = t0 })
		if code, _, body := do(t, nil, "GET", ts.URL+"/readyz", "", ""); code != 200 {
			t.Fatalf("%d %s", code, body)
		}
		s.now = func() time.Time { return t0.Add(11 * time.Hour) } // risky's last success is now 41h old
		code, _, body := do(t, nil, "GET", ts.URL+"/readyz", "", "")
		if code != 503 || !strings.Contains(body, `"risky"`) || strings.Contains(body, `"corp"`) {
			t.Fatalf("%d %s", code, body)
		}
	})
}

// console is a browser-like client: a cookie jar, no automatic redirects.
type console struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newConsole(t *testing.T, base string) *console {
	jar, _ := cookiejar.New(nil)
	return &console{t: t, base: base, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

func (c *console) get(path string) (int, string, string) {
	c.t.Helper()
	resp, err := c.c.Get(c.base + path)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

func (c *console) post(path string, form url.Values) (int, string, string) {
	c.t.Helper()
	resp, err := c.c.PostForm(c.base+path, form)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF field in the page:\n%s", page)
	}
	return m[1]
}

// signIn signs the console in and returns the session's CSRF token.
func (c *console) signIn(token string) (int, string) {
	c.t.Helper()
	_, _, page := c.get("/login?next=/browse")
	code, loc, _ := c.post("/login", url.Values{"csrf": {csrfOf(c.t, page)}, "token": {token}, "next": {"/browse"}})
	if code != http.StatusSeeOther {
		return code, ""
	}
	if loc != "/browse" {
		c.t.Fatalf("signed in to %q", loc)
	}
	_, _, page = c.get("/")
	return code, csrfOf(c.t, page)
}

func TestConsoleSignIn(t *testing.T) {
	s, ts := newTestServer(t, newFake(t), Options{Version: "v1.2.3"})
	c := newConsole(t, ts.URL)
	for _, path := range []string{"/", "/connectors/corp", "/browse?q=a", "/lookup"} {
		code, loc, _ := c.get(path)
		if code != http.StatusSeeOther || loc != "/login?next="+url.QueryEscape(path) {
			t.Errorf("%s signed out: %d %q", path, code, loc)
		}
	}
	if code, _ := c.signIn("not the token"); code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", code)
	}
	// A sign-in form without its cookie-bound token is refused (login CSRF).
	if code, _, body := c.post("/login", url.Values{"token": {testToken}}); code != http.StatusForbidden || !strings.Contains(body, "expired") {
		t.Fatalf("sign-in without the form token: %d", code)
	}
	code, csrf := c.signIn(testToken)
	if code != http.StatusSeeOther {
		t.Fatalf("sign in: %d", code)
	}
	u, _ := url.Parse(ts.URL)
	var cookie *http.Cookie
	for _, ck := range c.c.Jar.Cookies(u) {
		if ck.Name == sessionCookie {
			cookie = ck
		}
	}
	if cookie == nil || len(cookie.Value) < 40 || strings.Contains(cookie.Value, testToken) {
		t.Fatalf("session cookie %v", cookie)
	}
	// The cookie's attributes, as set on the wire.
	other := newConsole(t, ts.URL)
	_, _, lp := other.get("/login")
	r, err := other.c.PostForm(ts.URL+"/login", url.Values{"csrf": {csrfOf(t, lp)}, "token": {testToken}})
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	setCookie := strings.Join(r.Header.Values("Set-Cookie"), "\n")
	if !strings.Contains(setCookie, sessionCookie+"=") || !strings.Contains(setCookie, "HttpOnly") || !strings.Contains(setCookie, "SameSite=Strict") {
		t.Fatalf("Set-Cookie: %s", setCookie)
	}
	code, _, body := c.get("/")
	if code != 200 || !strings.Contains(body, "v1.2.3") || !strings.Contains(body, "Directory synchronization") {
		t.Fatalf("list: %d", code)
	}
	// Sign out needs the CSRF token too, then the session is gone.
	if code, _, _ := c.post("/logout", url.Values{}); code != http.StatusForbidden {
		t.Fatalf("logout without CSRF: %d", code)
	}
	if code, loc, _ := c.post("/logout", url.Values{"csrf": {csrf}}); code != http.StatusSeeOther || loc != "/login?out=1" {
		t.Fatalf("logout: %d %s", code, loc)
	}
	if code, _, _ := c.get("/"); code != http.StatusSeeOther {
		t.Fatalf("after logout: %d", code)
	}
	if len(s.sessions.m) != 1 { // the second client's session only
		t.Errorf("%d sessions", len(s.sessions.m))
	}
}

func TestConsoleSessionExpires(t *testing.T) {
	s, ts := newTestServer(t, newFake(t), Options{})
	c := newConsole(t, ts.URL)
	_, csrf := c.signIn(testToken)
	now := t0
	s.sessions.now = func() time.Time { return now }
	now = now.Add(sessionIdle - time.Minute)
	if code, _, _ := c.get("/"); code != 200 {
		t.Fatalf("within the idle time: %d", code)
	}
	now = now.Add(sessionIdle + time.Minute)
	if code, _, _ := c.get("/"); code != http.StatusSeeOther {
		t.Fatalf("idle session still valid: %d", code)
	}
	if code, loc, _ := c.post("/connectors/corp/sync", url.Values{"csrf": {csrf}}); code != http.StatusSeeOther || loc != "/login?expired=1" {
		t.Fatalf("action with an expired session: %d %s", code, loc)
	}
}

func TestConsoleNextIsLocal(t *testing.T) {
	for in, want := range map[string]string{
		"/browse?q=x":          "/browse?q=x",
		"//evil.example/":      "/",
		"/\\evil.example":      "/",
		"https://evil.example": "/",
		"/\t/evil.example":     "/",
		"/\n/evil.example":     "/",
		"/connectors/corp":     "/connectors/corp",
		"":                     "/",
	} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestConsoleCSRF(t *testing.T) {
	f := newFake(t)
	_, ts := newTestServer(t, f, Options{})
	c := newConsole(t, ts.URL)
	_, csrf := c.signIn(testToken)
	other := newConsole(t, ts.URL)
	_, otherCSRF := other.signIn(testToken)
	for _, tc := range []struct{ path, csrf string }{
		{"/connectors/corp/sync", ""},
		{"/connectors/corp/sync", "forged"},
		{"/connectors/corp/sync", otherCSRF}, // another session's token
		{"/connectors/corp/test", ""},
		{"/connectors/risky/blocked/apply", csrf[:len(csrf)-1]},
	} {
		code, _, body := c.post(tc.path, url.Values{"csrf": {tc.csrf}})
		if code != http.StatusForbidden || !strings.Contains(body, "Nothing was done") {
			t.Errorf("%s with csrf %q: %d", tc.path, tc.csrf, code)
		}
	}
	if calls := f.syncCalls(); len(calls) != 0 {
		t.Fatalf("a refused form started syncs: %v", calls)
	}
	// A cross-site request is refused even with the token (Sec-Fetch-Site).
	req, _ := http.NewRequest("POST", ts.URL+"/connectors/corp/sync", strings.NewReader(url.Values{"csrf": {csrf}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := c.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || len(f.syncCalls()) != 0 {
		t.Fatalf("cross-site POST: %d", resp.StatusCode)
	}
	// The right token works.
	if code, loc, _ := c.post("/connectors/corp/sync", url.Values{"csrf": {csrf}, "from": {"list"}}); code != http.StatusSeeOther || loc != "/#result" {
		t.Fatalf("sync: %d %s", code, loc)
	}
	if calls := f.syncCalls(); !slices.Equal(calls, []string{"corp:dry_run=false,mode=,force=false,trigger=console"}) {
		t.Fatalf("calls %v", calls)
	}
}

func TestConsolePages(t *testing.T) {
	f := newFake(t)
	_, ts := newTestServer(t, f, Options{})
	c := newConsole(t, ts.URL)
	_, csrf := c.signIn(testToken)
	contains := func(what, body string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: missing %q", what, w)
			}
		}
	}
	code, _, body := c.get("/")
	if code != 200 {
		t.Fatalf("list %d", code)
	}
	contains("list", body, `href="/connectors/corp"`, "OpenLDAP", "ldap2.corp.test", `badge ok`, `badge blocked`, `badge running`,
		`badge error`, "plan waiting for review", "1 hour 59 minutes", "in 1 hour", "Synchronize now", `<th scope="col">Cache age</th>`)

	code, _, body = c.get("/connectors/corp")
	contains("detail", body, "Head office OpenLDAP", "daily at 08:00, 13:00, 23:00 Europe/Berlin", "Sync history", "schedule")
	if code != 200 || strings.Contains(body, "Blocked plan waiting") {
		t.Fatalf("detail %d", code)
	}
	if code, _, _ := c.get("/connectors/nope"); code != 404 {
		t.Errorf("unknown connector page: %d", code)
	}

	// Test connection: the report is shown once on the page redirected to.
	code, loc, _ := c.post("/connectors/broken/test", url.Values{"csrf": {csrf}})
	if code != http.StatusSeeOther || loc != "/connectors/broken#result" {
		t.Fatalf("test: %d %s", code, loc)
	}
	_, _, body = c.get("/connectors/broken")
	contains("test report", body, "Connection test of broken failed", "FAIL", "PASS", "SKIPPED", "3.0 s", "firewall", `role="alert"`)
	if _, _, body = c.get("/connectors/broken"); strings.Contains(body, "Connection test of") {
		t.Error("the report is shown twice")
	}

	// Dry run from the detail page.
	c.post("/connectors/corp/sync", url.Values{"csrf": {csrf}, "dry_run": {"1"}, "mode": {"full"}, "from": {"detail"}})
	_, _, body = c.get("/connectors/corp")
	contains("dry run", body, "Dry run of corp: nothing was changed", "uid=new1,ou=people,dc=corp,dc=test", "Additions (2)")
	if calls := f.syncCalls(); calls[len(calls)-1] != "corp:dry_run=true,mode=full,force=false,trigger=console" {
		t.Errorf("calls %v", calls)
	}
	// A running connector.
	c.post("/connectors/busy/sync", url.Values{"csrf": {csrf}, "from": {"list"}})
	_, _, body = c.get("/")
	contains("running", body, "busy is already synchronizing")

	// A failing upstream, and a run the safety rules block.
	c.post("/connectors/broken/sync", url.Values{"csrf": {csrf}, "from": {"detail"}})
	_, _, body = c.get("/connectors/broken")
	contains("failed", body, "Synchronization of broken failed", "connection refused", "Nothing was changed", `role="alert"`)
	c.post("/connectors/risky/sync", url.Values{"csrf": {csrf}, "from": {"list"}})
	_, _, body = c.get("/")
	contains("blocked run", body, "Synchronization of risky blocked by the safety rules", "max_delete_percent", `href="/connectors/risky"`)

	// The blocked plan, escaped, then the confirm page, then apply.
	_, _, body = c.get("/connectors/risky")
	contains("blocked", body, "Blocked plan waiting for review", "max_delete_percent", "uid=gone1,ou=people,dc=risky,dc=test",
		"cn=&lt;b&gt;old&lt;/b&gt;", "Deletions (3)", `action="/connectors/risky/blocked/confirm"`)
	if strings.Contains(body, "<b>old</b>") {
		t.Error("a DN is not escaped")
	}
	code, _, body = c.get("/connectors/risky/blocked/confirm")
	contains("confirm", body, "Apply the blocked plan of risky?", "deletes 3", `action="/connectors/risky/blocked/apply"`)
	if code != 200 || len(f.syncCalls()) != 4 {
		t.Fatalf("confirm: %d, calls %v", code, f.syncCalls())
	}
	code, loc, _ = c.post("/connectors/risky/blocked/apply", url.Values{"csrf": {csrf}})
	if code != http.StatusSeeOther || loc != "/connectors/risky#result" {
		t.Fatalf("apply: %d %s", code, loc)
	}
	_, _, body = c.get("/connectors/risky")
	contains("applied", body, "Blocked plan of risky applied")
	if strings.Contains(body, "Blocked plan waiting for review") {
		t.Error("the plan is still shown as pending")
	}
	if calls := f.syncCalls(); calls[len(calls)-1] != "risky:dry_run=false,mode=incremental,force=true,trigger=console" {
		t.Errorf("calls %v", calls)
	}
	if code, _, _ := c.get("/connectors/risky/blocked/confirm"); code != 404 {
		t.Errorf("confirm without a pending plan: %d", code)
	}

	// Lookup.
	_, _, body = c.get("/lookup?email=ALICE@corp.test")
	contains("lookup", body, "uid=alice,ou=people,dc=corp,dc=test", "a.liddell@corp.test", "cn=staff,ou=groups,dc=corp,dc=test", "Enabled", "belongs to one account")
	_, _, body = c.get("/lookup?email=shared@corp.test")
	contains("ambiguous", body, "is ambiguous: 2 accounts", "uid=bob2,ou=people,dc=risky,dc=test")
	_, _, body = c.get("/lookup?email=carol@corp.test")
	contains("disabled", body, "Disabled")
	_, _, body = c.get("/lookup?email=nobody@corp.test")
	contains("none", body, "no cached account holds nobody@corp.test")

	// Browse, escaped, with paging.
	_, _, body = c.get("/browse?kind=user&limit=2")
	contains("browse", body, "Entries 1–2 of 6", `id="next"`, "offset=2")
	if strings.Contains(body, `id="prev"`) {
		t.Error("a previous link on the first page")
	}
	_, _, body = c.get("/browse?q=script")
	contains("escaped", body, "uid=&lt;script&gt;alert(1)&lt;/script&gt;")
	if strings.Contains(body, "<script>alert") {
		t.Error("a DN is not escaped")
	}
	code, _, body = c.get("/browse?kind=printer")
	if code != 400 || !strings.Contains(body, "kind must be") {
		t.Errorf("bad kind: %d", code)
	}
	_, _, body = c.get("/browse?connector=corp&kind=group")
	contains("groups", body, "cn=staff,ou=groups,dc=corp,dc=test", "2 members")
}

func TestConsoleHeaders(t *testing.T) {
	_, ts := newTestServer(t, newFake(t), Options{})
	resp, err := http.Get(ts.URL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := resp.Header
	if h.Get("X-Frame-Options") != "DENY" || !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
		!strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") || h.Get("Cache-Control") != "no-store" {
		t.Fatalf("headers %v", h)
	}
	if code, _, _ := do(t, nil, "GET", ts.URL+"/no-such-page", "", ""); code != 404 {
		t.Errorf("unknown page: %d", code)
	}
}

func TestHumanDurations(t *testing.T) {
	for d, want := range map[time.Duration]string{
		30 * time.Second:             "30 seconds",
		time.Minute:                  "1 minute",
		2*time.Hour + 5*time.Minute:  "2 hours 5 minutes",
		26 * time.Hour:               "1 day 2 hours",
		9*24*time.Hour + 3*time.Hour: "9 days",
		0:                            "—",
	} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%v) = %q, want %q", d, got, want)
		}
	}
	if got := relTime(t0.Add(time.Hour), t0); got != "in 1 hour" {
		t.Errorf("relTime = %q", got)
	}
}
