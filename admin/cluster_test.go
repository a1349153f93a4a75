package admin

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dirgate/dirgate/cluster/registry"
	dirsync "github.com/dirgate/dirgate/sync"
)

// fakeCluster is a replica's view of a cluster of three: dirgate-1 leads,
// dirgate-2 (this one, unless changed) lags, dirgate-3 is gone.
type fakeCluster struct {
	mu     sync.Mutex
	name   string
	leader bool
	lag    time.Duration
	err    error
}

func (c *fakeCluster) Replica() string { return c.name }

func (c *fakeCluster) Leader() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leader
}

func (c *fakeCluster) Lag() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lag
}

func (c *fakeCluster) set(fn func(*fakeCluster)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fn(c)
}

func (c *fakeCluster) Status(context.Context) (*registry.Status, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return nil, c.err
	}
	return &registry.Status{
		Now: t0, Lease: &registry.Lease{Holder: "h1", Epoch: 42, Expires: t0.Add(10 * time.Second), Valid: true},
		Head: 120, HeadAt: t0.Add(-time.Second), GoneAfter: 30 * time.Second,
		Replicas: []registry.Replica{
			{Name: "dirgate-1", Holder: "h1", AdminURL: "https://10.0.0.1:8443", Version: "v9", Started: t0.Add(-time.Hour), Seen: t0.Add(-2 * time.Second),
				Position: 120, PositionAt: t0.Add(-time.Second), Leader: true},
			{Name: "dirgate-2", Holder: "h2", Version: "v9", Started: t0.Add(-time.Hour), Seen: t0.Add(-3 * time.Second),
				Position: 100, PositionAt: t0.Add(-46 * time.Second), Behind: 20, Lag: 45 * time.Second},
			{Name: "dirgate-3", Holder: "h3", Version: "v8", Started: t0.Add(-48 * time.Hour), Seen: t0.Add(-10 * time.Minute),
				Position: 90, Behind: 30, Lag: 2 * time.Minute, Gone: true},
		},
	}, nil
}

// freshFake is newFake with every connector's cache fresh, so /readyz
// judges the lag alone.
func freshFake(t *testing.T) *fakeBackend {
	f := newFake(t)
	f.setStatus("broken", func(st *dirsync.ConnectorStatus) { st.LastSuccess = t0 })
	return f
}

func newClusterServer(t *testing.T, c *fakeCluster, maxLag time.Duration) string {
	t.Helper()
	_, ts := newTestServer(t, freshFake(t), Options{Cluster: c, MaxLag: maxLag, MaxCacheAge: 100 * time.Hour})
	return ts.URL
}

func TestReadyzLag(t *testing.T) {
	tests := []struct {
		name   string
		lag    time.Duration
		maxLag time.Duration
		want   int
		reason string
	}{
		{"within the default 30s", 29 * time.Second, 0, 200, ""},
		{"beyond the default", 31 * time.Second, 0, 503, "31s behind the cluster's change log, more than cluster.max_lag 30s"},
		{"configured", 2 * time.Minute, 5 * time.Minute, 200, ""},
		{"beyond the configured", 6 * time.Minute, 5 * time.Minute, 503, "more than cluster.max_lag 5m0s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &fakeCluster{name: "dirgate-2", lag: tc.lag}
			code, _, body := do(t, nil, "GET", newClusterServer(t, c, tc.maxLag)+"/readyz", "", "")
			if code != tc.want {
				t.Fatalf("status %d, want %d: %s", code, tc.want, body)
			}
			var v struct {
				Cluster clusterReadiness `json:"cluster"`
			}
			if err := json.Unmarshal([]byte(body), &v); err != nil {
				t.Fatal(err)
			}
			if v.Cluster.Role != "standby" || v.Cluster.Replica != "dirgate-2" || v.Cluster.Ready != (tc.want == 200) ||
				!strings.Contains(v.Cluster.Reason, tc.reason) || (tc.reason == "") != (v.Cluster.Reason == "") {
				t.Errorf("cluster verdict %+v", v.Cluster)
			}
		})
	}
	t.Run("single instance has no cluster verdict", func(t *testing.T) {
		_, ts := newTestServer(t, freshFake(t), Options{MaxCacheAge: 100 * time.Hour})
		if code, _, body := do(t, nil, "GET", ts.URL+"/readyz", "", ""); code != 200 || strings.Contains(body, `"cluster"`) {
			t.Errorf("%d %s", code, body)
		}
	})
	t.Run("stale cache fails a replica within its lag", func(t *testing.T) {
		_, ts := newTestServer(t, newFake(t), Options{Cluster: &fakeCluster{name: "x"}})
		if code, _, body := do(t, nil, "GET", ts.URL+"/readyz", "", ""); code != 503 || !strings.Contains(body, "max_cache_age") {
			t.Errorf("%d %s", code, body)
		}
	})
}

func TestAPICluster(t *testing.T) {
	c := &fakeCluster{name: "dirgate-1", leader: true}
	base := newClusterServer(t, c, 0)
	if code, _, _ := do(t, nil, "GET", base+"/api/v1/cluster", "", ""); code != 401 {
		t.Errorf("without the token: %d", code)
	}
	code, _, body := do(t, nil, "GET", base+"/api/v1/cluster", testToken, "")
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	var v clusterAnswer
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatal(err)
	}
	if v.Role != "leader" || v.Replica != "dirgate-1" || !v.Ready || v.Cluster == nil || v.Cluster.Lease.Epoch != 42 ||
		len(v.Cluster.Replicas) != 3 || !v.Cluster.Replicas[2].Gone || v.Cluster.Replicas[1].Lag != 45*time.Second {
		t.Errorf("answer %+v", v)
	}
	if code, _, _ := do(t, nil, "POST", base+"/api/v1/cluster", testToken, ""); code != 405 {
		t.Errorf("POST: %d", code)
	}
	c.set(func(c *fakeCluster) { c.err = errors.New("connection refused") })
	if code, _, body := do(t, nil, "GET", base+"/api/v1/cluster", testToken, ""); code != 503 || !strings.Contains(body, "connection refused") {
		t.Errorf("PostgreSQL down: %d %s", code, body)
	}

	_, ts := newTestServer(t, newFake(t), Options{})
	if code, _, body := do(t, nil, "GET", ts.URL+"/api/v1/cluster", testToken, ""); code != 404 || !strings.Contains(body, "cluster mode is off") {
		t.Errorf("single instance: %d %s", code, body)
	}
}

func TestConsoleClusterPage(t *testing.T) {
	c := &fakeCluster{name: "dirgate-2", lag: 45 * time.Second}
	cons := newConsole(t, newClusterServer(t, c, 0))
	cons.signIn(testToken)
	code, _, page := cons.get("/cluster")
	if code != 200 {
		t.Fatalf("%d %s", code, page)
	}
	for _, want := range []string{"Standby replica", `href="/cluster" aria-current="page"`, "<strong>dirgate-1</strong> leads, epoch 42",
		"Not ready", "Gone", "Lagging", "(this one)", `href="https://10.0.0.1:8443"`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	c.set(func(c *fakeCluster) { c.err = errors.New("connection refused"); c.leader = true })
	if _, _, page = cons.get("/cluster"); !strings.Contains(page, "PostgreSQL could not be read:</strong> connection refused") ||
		!strings.Contains(page, "Leader replica") {
		t.Errorf("page with PostgreSQL down:\n%s", page)
	}

	_, ts := newTestServer(t, newFake(t), Options{})
	single := newConsole(t, ts.URL)
	single.signIn(testToken)
	if _, _, page := single.get("/"); strings.Contains(page, `href="/cluster"`) || strings.Contains(page, "replica") {
		t.Error("a single instance's console offers the Cluster page")
	}
	if code, _, _ := single.get("/cluster"); code != 404 {
		t.Errorf("single instance /cluster: %d", code)
	}
}

func TestClusterConsoleInBrowser(t *testing.T) {
	ctx := browser(t)
	c := &fakeCluster{name: "dirgate-2", lag: 45 * time.Second}
	base := newClusterServer(t, c, 0)
	t.Cleanup(func() {
		if t.Failed() {
			saveScreenshot(t, ctx, "cluster-failure")
		}
	})
	var self, replicas string
	err := chromedp.Run(ctx,
		chromedp.Navigate(base+"/cluster"),
		chromedp.WaitVisible(`#token`, chromedp.ByQuery),
		chromedp.SendKeys(`#token`, testToken, chromedp.ByQuery),
		chromedp.Click(`#signin`, chromedp.ByQuery),
		waitText(`h1`, "Cluster"),
		waitText(`#role`, "Standby replica"),
		chromedp.Text(`#self`, &self, chromedp.ByQuery),
		chromedp.Text(`#replicas`, &replicas, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"dirgate-2", "Standby", "Not ready", "45.0 s", "limit 30 seconds"} {
		if !strings.Contains(self, want) {
			t.Errorf("this replica: missing %q in %q", want, self)
		}
	}
	for _, want := range []string{"dirgate-1", "Leader", "dirgate-3", "Gone", "Lagging", "45 seconds", "(this one)", "Replicas (3)"} {
		if !strings.Contains(replicas, want) {
			t.Errorf("replicas: missing %q in %q", want, replicas)
		}
	}
	c.set(func(c *fakeCluster) { c.leader, c.lag = true, 0 })
	if err := chromedp.Run(ctx, chromedp.Click(`a[href="/cluster"]`, chromedp.ByQuery), waitText(`#role`, "Leader replica"), waitText(`#self`, "Ready")); err != nil {
		t.Fatal(err)
	}
}
