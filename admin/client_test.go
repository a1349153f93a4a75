package admin

import (
	"context"
	"errors"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dirgate/dirgate/cache"
	dirsync "github.com/dirgate/dirgate/sync"
	"github.com/dirgate/dirgate/testconn"
)

// wireBackend serves fixed statuses and a fixed report, untouched.
type wireBackend struct {
	*fakeBackend
	statuses []dirsync.ConnectorStatus
	report   *testconn.Report
}

func (b *wireBackend) Status(context.Context) ([]dirsync.ConnectorStatus, error) {
	return b.statuses, nil
}

func (b *wireBackend) TestConnection(context.Context, string) (*testconn.Report, error) {
	return b.report, nil
}

// requireAllSet fails when a field of the struct v is zero: a field added
// to the type must be added to the fixture, so that the round trip covers it.
func requireAllSet(t *testing.T, v any) {
	t.Helper()
	rv := reflect.ValueOf(v)
	for i := range rv.NumField() {
		if rv.Field(i).IsZero() {
			t.Errorf("the fixture's %T leaves %s unset", v, rv.Type().Field(i).Name)
		}
	}
}

func newClient(t *testing.T, b Backend) *Client {
	t.Helper()
	s := newServer(b, Options{Token: testToken})
	s.now = func() time.Time { return t0 }
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	base, err := url.Parse(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	return NewClient(base, testToken, ts.Client())
}

// TestClientDecodesWhatTheServerEncodes: a status and a report with every
// field set come back from the API's client as the backend gave them.
func TestClientDecodesWhatTheServerEncodes(t *testing.T) {
	// At the wire's precision: whole seconds of cache age, microseconds of
	// step duration, instants in UTC.
	st := dirsync.ConnectorStatus{
		Name: "head office/eu", Type: "ad", Description: "Head office", Host: "dc1.corp.test", AlternateHost: "dc2.corp.test",
		Schedule: "daily at 08:00 UTC", Running: true, State: "running",
		LastRun: &cache.Run{Connector: "head office/eu", Start: t0.Add(-time.Hour), End: t0.Add(-time.Hour + time.Second),
			Trigger: "schedule", Mode: "incremental", DryRun: true, Added: 1, Updated: 2, Deleted: 3, Unchanged: 4, Read: 10,
			Method: "dirsync", DeletesPaused: 5, Host: "dc1.corp.test", Duration: time.Second, Error: "boom", Blocked: "too many"},
		Users: 7, Groups: 8, Blocked: "3 deletions are above max_delete_count 2",
		NextRun: t0.Add(20 * time.Hour), LastSuccess: t0.Add(-25 * time.Hour), CacheAge: 25 * time.Hour,
	}
	requireAllSet(t, st)
	requireAllSet(t, *st.LastRun)
	step := testconn.Step{Host: "dc2.corp.test:636", Name: testconn.StepBind, OK: true, Skipped: true,
		Duration: 12345 * time.Microsecond, Detail: "AD error 52e: wrong password", Fix: "check the bind password"}
	requireAllSet(t, step)
	rep := &testconn.Report{Connector: st.Name, OK: true, Steps: []testconn.Step{step, {Host: "dc1.corp.test:636", Name: testconn.StepDNS, Duration: 1001 * time.Microsecond}}}
	requireAllSet(t, *rep)

	c := newClient(t, &wireBackend{fakeBackend: newFake(t), statuses: []dirsync.ConnectorStatus{st}, report: rep})
	ctx := context.Background()
	got, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []dirsync.ConnectorStatus{st}; !reflect.DeepEqual(got, want) {
		t.Errorf("status:\n got %+v\nwant %+v", got, want)
	}
	gotRep, err := c.TestConnection(ctx, st.Name)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotRep, rep) {
		t.Errorf("report:\n got %+v\nwant %+v", gotRep, rep)
	}
}

// TestClientSync: results, blocked plans and failures of a sync come back
// from the API's client as the backend gave them.
func TestClientSync(t *testing.T) {
	f := newFake(t)
	c := newClient(t, f)
	ctx := context.Background()
	tests := []struct {
		name    string
		opts    dirsync.Options
		wantErr string // "" for success
		blocked bool
	}{
		{"corp", dirsync.Options{Mode: dirsync.ModeFull, DryRun: true}, "", false},
		{"risky", dirsync.Options{}, "max_delete_percent", true},
		{"broken", dirsync.Options{}, "sync broken: ldap1.corp.test:636: connection refused (admin API 502)", false},
		{"busy", dirsync.Options{}, "(admin API 409)", false},
		{"nosuch", dirsync.Options{}, `sync nosuch: no such connector: "nosuch" (admin API 404)`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.Sync(ctx, tc.name, tc.opts)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
			var b *dirsync.BlockedError
			if errors.As(err, &b) != tc.blocked {
				t.Errorf("blocked: %v, want %v", err, tc.blocked)
			}
			o := tc.opts
			o.Trigger = "api" // the server's trigger for API runs
			want, _ := (&fakeBackend{blocked: map[string]*dirsync.Result{}}).SyncNow(ctx, tc.name, o)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("result:\n got %+v\nwant %+v", got, want)
			}
		})
	}
	if calls := f.syncCalls(); len(calls) != 4 || calls[0] != "corp:dry_run=true,mode=full,force=false,trigger=api" {
		t.Errorf("the server ran %q", calls)
	}
}

// TestClientErrors: an unreachable server and a refused token are told
// apart.
func TestClientErrors(t *testing.T) {
	ts := httptest.NewServer(newServer(newFake(t), Options{Token: testToken}))
	base, _ := url.Parse(ts.URL)
	ctx := context.Background()
	if _, err := NewClient(base, "wrong-token-0123456789", ts.Client()).Status(ctx); err == nil || !strings.Contains(err.Error(), "refused the token") {
		t.Errorf("wrong token: %v", err)
	}
	ts.Close()
	if _, err := NewClient(base, testToken, nil).Status(ctx); !errors.Is(err, ErrNoServer) {
		t.Errorf("no server: %v", err)
	}
}
