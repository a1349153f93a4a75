package admin

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/chromedp"
)

// fakeAgents is a hub with three agents of corp and risky: ag-1 connected
// to this replica, ag-2 not, ag-3 revoked.
type fakeAgents struct {
	mu      sync.Mutex
	agents  []AgentStatus
	tokens  []string // "connector/ttl" of every token made
	revokes []string
}

func newFakeAgents() *fakeAgents {
	return &fakeAgents{agents: []AgentStatus{
		{ID: "ag-3", Connector: "corp", Name: "old", Fingerprint: "cc", Enrolled: t0.Add(-72 * time.Hour), Revoked: t0.Add(-time.Hour)},
		{ID: "ag-2", Connector: "risky", Name: "branch", Fingerprint: "bb", Enrolled: t0.Add(-48 * time.Hour),
			CertExpires: t0.Add(10 * 24 * time.Hour), CertExpiring: true},
		{ID: "ag-1", Connector: "corp", Name: "dc-site", Fingerprint: "aa", Enrolled: t0.Add(-24 * time.Hour),
			Connected: true, Version: "v9", Hostname: "agent1.corp.test", Address: "192.0.2.7:50122",
			ConnectedSince: t0.Add(-time.Hour), LastHeartbeat: t0.Add(-3 * time.Second), RTTSeconds: 0.0042,
			InFlight: 2, ChecksPerSec: 12.5, Reconnects: 3, CertExpires: t0.Add(340 * 24 * time.Hour), CheckLatencySeconds: 0.0173,
			Replicas: []string{"dirgate-1", "dirgate-2"}},
	}}
}

func (f *fakeAgents) Connectors() []string { return []string{"risky", "corp"} }

func (f *fakeAgents) List(context.Context) ([]AgentStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.agents), nil
}

func (f *fakeAgents) CreateToken(_ context.Context, connector string, ttl time.Duration) (*EnrollToken, error) {
	switch {
	case connector == "busy":
		return nil, fmt.Errorf("%w: %q", ErrNotViaAgent, connector)
	case !slices.Contains(f.Connectors(), connector):
		return nil, fmt.Errorf("%w: %q", ErrUnknownConnector, connector)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens = append(f.tokens, connector+"/"+ttl.String())
	tok := fmt.Sprintf("TOKEN%dXYZ", len(f.tokens))
	const hub, fp = "https://hub.corp.test:8444", "0123456789abcdef"
	return &EnrollToken{Token: tok, Connector: connector, Expires: t0.Add(cmp.Or(ttl, time.Hour)), CASHA256: fp,
		Hub: hub, Command: EnrollCommand(hub, tok, fp)}, nil
}

func (f *fakeAgents) Revoke(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.revokes = append(f.revokes, id)
	for i := range f.agents {
		if a := &f.agents[i]; a.ID == id {
			if a.Revoked.IsZero() {
				a.Revoked, a.Connected = t0, false
			}
			return nil
		}
	}
	return fmt.Errorf("%w: %q", ErrUnknownAgent, id)
}

func (f *fakeAgents) calls() (tokens, revokes []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.tokens), slices.Clone(f.revokes)
}

func TestAPIAgents(t *testing.T) {
	fa := newFakeAgents()
	_, ts := newTestServer(t, newFake(t), Options{Agents: fa})
	_, off := newTestServer(t, newFake(t), Options{})
	tests := []struct {
		name         string
		base         string
		method, path string
		token, body  string
		status       int
		want         string // in the body
	}{
		{"list needs the token", ts.URL, "GET", "/api/v1/agents", "", "", 401, "admin token"},
		{"tokens need the token", ts.URL, "POST", "/api/v1/agents/tokens", "", `{"connector":"corp"}`, 401, "admin token"},
		{"revoke needs the token", ts.URL, "POST", "/api/v1/agents/ag-1/revoke", "", "", 401, "admin token"},
		{"list without agents", off.URL, "GET", "/api/v1/agents", testToken, "", 404, agentsOff},
		{"token without agents", off.URL, "POST", "/api/v1/agents/tokens", testToken, `{"connector":"corp"}`, 404, agentsOff},
		{"revoke without agents", off.URL, "POST", "/api/v1/agents/ag-1/revoke", testToken, "", 404, agentsOff},
		{"token for no connector", ts.URL, "POST", "/api/v1/agents/tokens", testToken, `{}`, 400, "name the connector"},
		{"token for an unknown connector", ts.URL, "POST", "/api/v1/agents/tokens", testToken, `{"connector":"nope"}`, 404, "no such connector"},
		{"token for a direct connector", ts.URL, "POST", "/api/v1/agents/tokens", testToken, `{"connector":"busy"}`, 400, "via: agent"},
		{"token too short", ts.URL, "POST", "/api/v1/agents/tokens", testToken, `{"connector":"corp","ttl":"5s"}`, 400, "from 1m0s to 7 days"},
		{"token too long", ts.URL, "POST", "/api/v1/agents/tokens", testToken, `{"connector":"corp","ttl":"200h"}`, 400, "from 1m0s to 7 days"},
		{"token ttl not a duration", ts.URL, "POST", "/api/v1/agents/tokens", testToken, `{"connector":"corp","ttl":"1 hour"}`, 400, "such as 1h"},
		{"token unknown field", ts.URL, "POST", "/api/v1/agents/tokens", testToken, `{"connector":"corp","lifetime":"1h"}`, 400, "unknown field"},
		{"token without a body", ts.URL, "POST", "/api/v1/agents/tokens", testToken, "", 400, "body must be JSON"},
		{"revoke unknown", ts.URL, "POST", "/api/v1/agents/ag-none/revoke", testToken, "", 404, "no such agent"},
		{"revoke by GET", ts.URL, "GET", "/api/v1/agents/ag-1/revoke", testToken, "", 405, "use POST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, body := do(t, nil, tt.method, tt.base+tt.path, tt.token, tt.body)
			if code != tt.status || !strings.Contains(body, tt.want) {
				t.Fatalf("%d %s, want %d with %q", code, body, tt.status, tt.want)
			}
		})
	}
	if tokens, revokes := fa.calls(); len(tokens) != 0 || !slices.Equal(revokes, []string{"ag-none"}) {
		t.Fatalf("refused requests reached the hub: tokens %v, revokes %v", tokens, revokes)
	}

	code, _, body := do(t, nil, "GET", ts.URL+"/api/v1/agents", testToken, "")
	var list agentsAnswer
	if err := json.Unmarshal([]byte(body), &list); code != 200 || err != nil {
		t.Fatalf("list: %d %v %s", code, err, body)
	}
	var order []string
	for _, a := range list.Agents {
		order = append(order, a.ID)
	}
	if !slices.Equal(order, []string{"ag-1", "ag-3", "ag-2"}) { // by connector, then name
		t.Errorf("order %v", order)
	}
	for _, want := range []string{`"revoked": "2025-03-10T11:00:00Z"`, `"rtt_seconds": 0.0042`, `"in_flight": 2`, `"checks_per_second": 12.5`, `"reconnects": 3`,
		`"cert_expires": "2025-03-20T12:00:00Z"`, `"cert_expiring": true`, `"check_latency_seconds": 0.0173`} {
		if !strings.Contains(body, want) {
			t.Errorf("list lacks %s:\n%s", want, body)
		}
	}
	if strings.Count(body, `"revoked"`) != 1 || strings.Count(body, `"connected_since"`) != 1 {
		t.Errorf("zero times are not left out:\n%s", body)
	}

	code, _, body = do(t, nil, "POST", ts.URL+"/api/v1/agents/tokens", testToken, `{"connector":"corp","ttl":"30m"}`)
	var tok EnrollToken
	if err := json.Unmarshal([]byte(body), &tok); code != http.StatusCreated || err != nil || tok.Token != "TOKEN1XYZ" ||
		!tok.Expires.Equal(t0.Add(30*time.Minute)) || tok.Command != "dirgate agent enroll --hub https://hub.corp.test:8444 --token TOKEN1XYZ --ca-sha256 0123456789abcdef" {
		t.Fatalf("token: %d %v %s", code, err, body)
	}
	if code, _, body = do(t, nil, "POST", ts.URL+"/api/v1/agents/ag-1/revoke", testToken, ""); code != 200 || !strings.Contains(body, `"status": "revoked"`) {
		t.Fatalf("revoke: %d %s", code, body)
	}
	// Revoking again is no error.
	if code, _, _ = do(t, nil, "POST", ts.URL+"/api/v1/agents/ag-1/revoke", testToken, ""); code != 200 {
		t.Fatalf("second revoke: %d", code)
	}
	if tokens, revokes := fa.calls(); !slices.Equal(tokens, []string{"corp/30m0s"}) || !slices.Equal(revokes, []string{"ag-none", "ag-1", "ag-1"}) {
		t.Fatalf("tokens %v, revokes %v", tokens, revokes)
	}
}

// TestClientAgents: the agents, a token and a revocation come back from
// the API's client as the hub gave them, and refusals as errors.
func TestClientAgents(t *testing.T) {
	fa := newFakeAgents()
	// One agent with every field set, so that the round trip covers them.
	full := fa.agents[2]
	full.ID, full.Revoked, full.CertExpiring = "ag-0", t0.Add(-time.Minute), true
	requireAllSet(t, full)
	fa.agents = append(fa.agents, full)
	s := newServer(newFake(t), Options{Token: testToken, Agents: fa})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	base, _ := url.Parse(ts.URL)
	c := NewClient(base, testToken, ts.Client())
	ctx := context.Background()

	got, err := c.Agents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := s.listAgents(ctx)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("agents:\n got %+v\nwant %+v", got, want)
	}
	tok, err := c.CreateEnrollToken(ctx, "risky", 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	requireAllSet(t, *tok)
	if tok.Connector != "risky" || !tok.Expires.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("token %+v", tok)
	}
	if _, err := c.CreateEnrollToken(ctx, "nope", 0); err == nil || !strings.Contains(err.Error(), `no such connector: "nope" (admin API 404)`) {
		t.Errorf("token for an unknown connector: %v", err)
	}
	if err := c.RevokeAgent(ctx, "ag-2"); err != nil {
		t.Fatal(err)
	}
	if err := c.RevokeAgent(ctx, "ag/none"); err == nil || !strings.Contains(err.Error(), `no such agent: "ag/none"`) {
		t.Errorf("revoke unknown: %v", err)
	}
	if tokens, revokes := fa.calls(); !slices.Equal(tokens, []string{"risky/2h0m0s"}) || !slices.Equal(revokes, []string{"ag-2", "ag/none"}) {
		t.Errorf("tokens %v, revokes %v", tokens, revokes)
	}
	off := NewClient(base, "wrong-token-0123456789", ts.Client())
	if _, err := off.Agents(ctx); err == nil || !strings.Contains(err.Error(), "refused the token") {
		t.Errorf("wrong token: %v", err)
	}
}

func TestConsoleAgents(t *testing.T) {
	_, off := newTestServer(t, newFake(t), Options{})
	c := newConsole(t, off.URL)
	c.signIn(testToken)
	if code, _, body := c.get("/agents"); code != 404 || !strings.Contains(body, "no agent listener") || strings.Contains(body, `href="/agents"`) {
		t.Fatalf("agents page without agents: %d\n%s", code, body)
	}
	if _, _, body := c.get("/"); strings.Contains(body, `href="/agents"`) {
		t.Fatal("the navigation offers Agents without an agent listener")
	}

	fa := newFakeAgents()
	_, ts := newTestServer(t, newFake(t), Options{Agents: fa})
	c = newConsole(t, ts.URL)
	_, csrf := c.signIn(testToken)
	other := newConsole(t, ts.URL)
	_, otherCSRF := other.signIn(testToken)
	code, _, body := c.get("/agents")
	if code != 200 {
		t.Fatalf("agents page: %d", code)
	}
	for _, want := range []string{`href="/agents" aria-current="page"`, "dc-site", "agent1.corp.test", "192.0.2.7:50122", "4 ms", "12.5",
		"Revoked", "Not connected", `id="revoke-ag-1"`, "17 ms", `id="cert-expiring-ag-2"`, "Certificate expires",
		`<div class="small muted" id="replicas-ag-1">on dirgate-1, dirgate-2</div>`, `<option value="corp">corp</option><option value="risky">`} {
		if !strings.Contains(body, want) {
			t.Errorf("agents page lacks %q", want)
		}
	}
	if strings.Contains(body, `id="revoke-ag-3"`) {
		t.Error("a revoked agent offers Revoke")
	}
	if strings.Contains(body, `id="cert-expiring-ag-1"`) {
		t.Error("a certificate with 340 days left is flagged")
	}

	// Forms without this session's CSRF token do nothing.
	for _, path := range []string{"/agents/tokens", "/agents/ag-1/revoke"} {
		for _, tok := range []string{"", "forged", otherCSRF} {
			if code, _, body := c.post(path, url.Values{"csrf": {tok}, "connector": {"corp"}}); code != 403 || !strings.Contains(body, "Nothing was done") {
				t.Errorf("%s with csrf %q: %d", path, tok, code)
			}
		}
	}
	if tokens, revokes := fa.calls(); len(tokens)+len(revokes) != 0 {
		t.Fatalf("refused forms reached the hub: %v %v", tokens, revokes)
	}

	// The token is shown on the page the form leads to, and never again.
	code, loc, _ := c.post("/agents/tokens", url.Values{"csrf": {csrf}, "connector": {"risky"}, "ttl": {"45m"}})
	if code != http.StatusSeeOther || loc != "/agents#result" {
		t.Fatalf("create token: %d %s", code, loc)
	}
	_, _, body = c.get("/agents")
	for _, want := range []string{"Enrollment token for risky", "TOKEN1XYZ", "shown only this once", "0123456789abcdef",
		"dirgate agent enroll --hub https://hub.corp.test:8444 --token TOKEN1XYZ --ca-sha256 0123456789abcdef", "in 45 minutes"} {
		if !strings.Contains(body, want) {
			t.Errorf("token page lacks %q", want)
		}
	}
	if _, _, body = c.get("/agents"); strings.Contains(body, "TOKEN1XYZ") {
		t.Error("the token is shown a second time")
	}
	c.post("/agents/tokens", url.Values{"csrf": {csrf}, "connector": {"risky"}, "ttl": {"forever"}})
	if _, _, body = c.get("/agents"); !strings.Contains(body, "No token was created: ttl &#34;forever&#34;") {
		t.Errorf("a bad lifetime is not explained:\n%s", body)
	}

	// Revoking asks first, then revokes.
	_, _, body = c.get("/agents?revoke=ag-1")
	if !strings.Contains(body, "Revoke agent dc-site (ag-1) of corp?") || !strings.Contains(body, `action="/agents/ag-1/revoke"`) {
		t.Fatalf("no confirmation:\n%s", body)
	}
	if _, _, body = c.get("/agents?revoke=ag-9"); !strings.Contains(body, "No agent ag-9 is enrolled.") {
		t.Error("confirming an unknown agent")
	}
	if code, loc, _ = c.post("/agents/ag-1/revoke", url.Values{"csrf": {csrf}}); code != http.StatusSeeOther || loc != "/agents#result" {
		t.Fatalf("revoke: %d %s", code, loc)
	}
	if _, _, body = c.get("/agents"); !strings.Contains(body, "Agent ag-1 is revoked") || strings.Contains(body, `id="revoke-ag-1"`) {
		t.Errorf("after revoking:\n%s", body)
	}
	c.post("/agents/ag-9/revoke", url.Values{"csrf": {csrf}})
	if _, _, body = c.get("/agents"); !strings.Contains(body, "Agent ag-9 was not revoked: no such agent") {
		t.Error("a failed revocation is not shown")
	}
	if tokens, revokes := fa.calls(); !slices.Equal(tokens, []string{"risky/45m0s"}) || !slices.Equal(revokes, []string{"ag-1", "ag-9"}) {
		t.Fatalf("tokens %v, revokes %v", tokens, revokes)
	}
}

func TestParseTTL(t *testing.T) {
	for in, want := range map[string]time.Duration{"": 0, " 1h ": time.Hour, "1m": time.Minute, "168h": MaxTokenTTL} {
		if got, err := parseTTL(in); got != want || err != nil {
			t.Errorf("parseTTL(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"59s", "168h1s", "-1h", "1d", "1"} {
		if _, err := parseTTL(in); err == nil {
			t.Errorf("parseTTL(%q) accepted", in)
		}
	}
}

// TestAgentsConsoleInBrowser: an administrator creates an enrollment
// token, sees it once with the command line, and revokes an agent.
func TestAgentsConsoleInBrowser(t *testing.T) {
	ctx := browser(t)
	fa := newFakeAgents()
	_, ts := newTestServer(t, newFake(t), Options{Agents: fa})
	t.Cleanup(func() {
		if t.Failed() {
			saveScreenshot(t, ctx, "agents-failure")
		}
	})
	// DIRGATE_SCREENSHOTS_ALL=1 saves the page with a token, to review the layout.
	shot := chromedp.ActionFunc(func(ctx context.Context) error {
		if os.Getenv("DIRGATE_SCREENSHOTS_ALL") == "1" {
			saveScreenshot(t, ctx, "agents")
		}
		return nil
	})
	var table, result, command, after string
	var tokens []*cdp.Node
	err := chromedp.Run(ctx,
		chromedp.Navigate(ts.URL+"/"),
		chromedp.WaitVisible(`#token`, chromedp.ByQuery),
		chromedp.SendKeys(`#token`, testToken, chromedp.ByQuery),
		chromedp.Click(`#signin`, chromedp.ByQuery),
		waitText(`#connectors`, "corp"),
		chromedp.Click(`a[href="/agents"]`, chromedp.ByQuery),
		waitText(`h1`, "Sync agents"),
		chromedp.Text(`#agents`, &table, chromedp.ByQuery),
		chromedp.SetValue(`#token-connector`, "risky", chromedp.ByQuery),
		chromedp.SendKeys(`#token-ttl`, "2h", chromedp.ByQuery),
		chromedp.Click(`#create-token`, chromedp.ByQuery),
		waitText(`#result`, "Enrollment token for risky"),
		chromedp.Text(`#result`, &result, chromedp.ByQuery),
		chromedp.Text(`#enroll-command`, &command, chromedp.ByQuery),
		shot,
		chromedp.Reload(),
		waitText(`h1`, "Sync agents"),
		chromedp.Nodes(`#enroll-token`, &tokens, chromedp.ByQuery, chromedp.AtLeast(0)),
		chromedp.Click(`#revoke-ag-1`, chromedp.ByQuery),
		waitText(`#confirm`, "Revoke agent dc-site (ag-1) of corp?"),
		chromedp.Click(`#confirm-revoke`, chromedp.ByQuery),
		waitText(`#result`, "Agent ag-1 is revoked"),
		chromedp.Text(`#agent-ag-1`, &after, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Enrolled agents (3)", "dc-site", "Connected", "agent1.corp.test", "Revoked", "Not connected", "12.5"} {
		if !strings.Contains(table, want) {
			t.Errorf("agents table: missing %q in %q", want, table)
		}
	}
	for _, want := range []string{"TOKEN1XYZ", "shown only this once", "in 2 hours", "0123456789abcdef"} {
		if !strings.Contains(result, want) {
			t.Errorf("token: missing %q in %q", want, result)
		}
	}
	if command != "dirgate agent enroll --hub https://hub.corp.test:8444 --token TOKEN1XYZ --ca-sha256 0123456789abcdef" {
		t.Errorf("command line %q", command)
	}
	if len(tokens) != 0 {
		t.Error("the token is still shown after a reload")
	}
	if !strings.Contains(after, "Revoked") || strings.Contains(after, "Revoke…") {
		t.Errorf("revoked agent's row: %q", after)
	}
	if tokens, revokes := fa.calls(); !slices.Equal(tokens, []string{"risky/2h0m0s"}) || !slices.Equal(revokes, []string{"ag-1"}) {
		t.Errorf("tokens %v, revokes %v", tokens, revokes)
	}
}
