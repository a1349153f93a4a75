package admin

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// throttleCluster is a fakeCluster whose sign-in throttle may count on
// this replica only (ClusterThrottle).
type throttleCluster struct {
	*fakeCluster
	shared bool
	since  time.Time
}

func (c *throttleCluster) ThrottleShared() (bool, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.shared, c.since
}

// TestClusterThrottleShown: the API and the Cluster page tell where this
// replica counts failed sign-ins, in the cluster or (the database away) on
// this replica only since when, also when the cluster status cannot be
// read.
func TestClusterThrottleShown(t *testing.T) {
	c := &throttleCluster{fakeCluster: &fakeCluster{name: "dirgate-2"}, shared: true}
	_, ts := newTestServer(t, freshFake(t), Options{Cluster: c, MaxCacheAge: 100 * time.Hour})
	base := ts.URL
	api := func(wantCode int) throttleStatus {
		t.Helper()
		code, _, body := do(t, nil, "GET", base+"/api/v1/cluster", testToken, "")
		var v clusterAnswer
		if err := json.Unmarshal([]byte(body), &v); err != nil || code != wantCode || v.Throttle == nil {
			t.Fatalf("%d %s %v", code, body, err)
		}
		return *v.Throttle
	}
	if th := api(200); !th.Shared || !th.LocalSince.IsZero() {
		t.Errorf("throttle shared: %+v", th)
	}
	since := t0.Add(-3 * time.Minute)
	c.set(func(f *fakeCluster) { f.err = errors.New("connection refused") })
	c.mu.Lock()
	c.shared, c.since = false, since
	c.mu.Unlock()
	if th := api(503); th.Shared || !th.LocalSince.Equal(since) {
		t.Errorf("throttle local: %+v, want since %v", th, since)
	}
	cons := newConsole(t, base)
	cons.signIn(testToken)
	if _, _, page := cons.get("/cluster"); !strings.Contains(page, "This replica only</span> since") {
		t.Errorf("the Cluster page does not say the throttle counts on this replica only:\n%s", page)
	}
}
