package hub

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dirgate/dirgate/agent/pki"
	"github.com/dirgate/dirgate/agent/wire"
	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/state"
	dirsync "github.com/dirgate/dirgate/sync"
	"github.com/dirgate/dirgate/upstream"
)

type fixture struct {
	h     *Hub
	store *cache.Store
	ca    *pki.CA
	url   string
	skew  atomic.Int64 // added to the hub's clock
}

func newFixture(t *testing.T, recheck time.Duration) *fixture {
	t.Helper()
	ca, store := newCAAndStore(t)
	var err error
	f := &fixture{store: store, ca: ca}
	f.h, err = New(Config{CA: ca, Replica: "r1", Heartbeat: 200 * time.Millisecond, Recheck: recheck,
		Now: func() time.Time { return time.Now().Add(time.Duration(f.skew.Load())) }}, store, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(f.h.Handler())
	srv.EnableHTTP2 = true
	if srv.TLS, err = f.h.TLSConfig([]string{"127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	srv.StartTLS()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.h.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; srv.Close() })
	f.url = srv.URL
	return f
}

// client returns an HTTP/2 client trusting the agent CA, presenting cert
// when given.
func (f *fixture) client(cert *tls.Certificate) *http.Client {
	tc := &tls.Config{RootCAs: f.ca.Pool(), MinVersion: tls.VersionTLS13}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true}}
}

func (f *fixture) token(t *testing.T, connector string) string {
	t.Helper()
	tok, err := f.h.CreateToken(t.Context(), connector, 0)
	if err != nil || tok.CASHA256 != f.ca.Fingerprint() {
		t.Fatalf("CreateToken = %+v, %v", tok, err)
	}
	return tok.Token
}

// fakeAgent is an enrolled agent speaking the wire protocol.
type fakeAgent struct {
	id        string
	connector string
	cert      tls.Certificate
	f         *fixture
	// cl, when set, carries the agent's connection (a client of its own
	// otherwise).
	cl *http.Client
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// enroll posts an enrollment and returns the status and the error code or
// the enrolled agent.
func (f *fixture) enroll(t *testing.T, req EnrollRequest, key *ecdsa.PrivateKey) (int, string, *fakeAgent) {
	t.Helper()
	if req.CSR == "" {
		csr, err := pki.CSR(key, "agent")
		if err != nil {
			t.Fatal(err)
		}
		req.CSR = string(csr)
	}
	body, _ := json.Marshal(req)
	resp, err := f.client(nil).Post(f.url+"/agent/v1/enroll", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e ErrorBody
		json.NewDecoder(resp.Body).Decode(&e)
		return resp.StatusCode, e.Error, nil
	}
	var er EnrollResponse
	if err := json.NewDecoder(resp.Body).Decode(&er); err != nil {
		t.Fatal(err)
	}
	cert, err := pki.ParseCertificate([]byte(er.Certificate))
	if err != nil {
		t.Fatal(err)
	}
	if er.CA != string(f.ca.PEM) {
		t.Fatal("enrollment returned another CA")
	}
	return resp.StatusCode, "", &fakeAgent{id: er.AgentID, connector: er.Connector,
		cert: tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}, f: f}
}

func (f *fixture) newAgent(t *testing.T, connector string) *fakeAgent {
	t.Helper()
	status, code, a := f.enroll(t, EnrollRequest{Token: f.token(t, connector), Name: "n", Version: "v"}, newKey(t))
	if a == nil {
		t.Fatalf("enroll: %d %s", status, code)
	}
	return a
}

// agentConn is a fake agent's connection; serve answers its requests.
type agentConn struct {
	a       *fakeAgent
	w       *wire.Writer
	pw      *io.PipeWriter
	body    io.ReadCloser
	ended   chan struct{}
	mu      sync.Mutex
	got     []uint64 // request IDs received
	cancels []uint64
}

type serveFunc func(ac *agentConn, id uint64, req *wire.Request)

// connect opens the agent's connection with hello (nil: its own), and
// returns it once welcomed, or the HTTP status of the refusal.
func (a *fakeAgent) connect(t *testing.T, hello *wire.Hello, serve serveFunc) (*agentConn, int) {
	t.Helper()
	if hello == nil {
		hello = &wire.Hello{AgentID: a.id, Connector: a.connector, Name: "n", Version: "v1"}
	}
	pr, pw := io.Pipe()
	ac := &agentConn{a: a, w: wire.NewWriter(pw), pw: pw, ended: make(chan struct{})}
	go ac.w.Write(&wire.Message{Type: wire.TypeHello, Hello: hello})
	req, _ := http.NewRequest(http.MethodPost, a.f.url+"/agent/v1/connect", pr)
	cl := a.cl
	if cl == nil {
		cl = a.f.client(&a.cert)
	}
	resp, err := cl.Do(req)
	if err != nil {
		pw.Close()
		return nil, 0
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		pw.Close()
		return nil, resp.StatusCode
	}
	ac.body = resp.Body
	rd := wire.NewReader(resp.Body)
	m, err := rd.Read()
	if err != nil || m.Type != wire.TypeWelcome || m.Welcome.Replica != "r1" {
		t.Fatalf("welcome: %+v %v", m, err)
	}
	go func() {
		defer close(ac.ended)
		for {
			m, err := rd.Read()
			if err != nil {
				return
			}
			switch m.Type {
			case wire.TypePing:
				ac.w.Write(&wire.Message{Type: wire.TypePong, ID: m.ID, Sent: m.Sent})
			case wire.TypeCancel:
				ac.mu.Lock()
				ac.cancels = append(ac.cancels, m.ID)
				ac.mu.Unlock()
			case wire.TypeRequest:
				ac.mu.Lock()
				ac.got = append(ac.got, m.ID)
				ac.mu.Unlock()
				go serve(ac, m.ID, m.Request)
			}
		}
	}()
	t.Cleanup(ac.close)
	return ac, http.StatusOK
}

// close drops the connection, as a killed agent's does.
func (ac *agentConn) close() {
	ac.pw.CloseWithError(errors.New("agent killed"))
	ac.body.Close()
}

func (ac *agentConn) requests() []uint64 {
	ac.mu.Lock()
	defer ac.mu.Unlock()
	return append([]uint64(nil), ac.got...)
}

func (ac *agentConn) result(id uint64, res *wire.Result) {
	ac.w.Write(&wire.Message{Type: wire.TypeResult, ID: id, Result: res})
}

// answerChecks answers every check with the agent's ID as host, after
// delay.
func answerChecks(delay time.Duration) serveFunc {
	return func(ac *agentConn, id uint64, req *wire.Request) {
		time.Sleep(delay)
		ac.result(id, &wire.Result{Host: ac.a.id})
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestEnroll(t *testing.T) {
	f := newFixture(t, time.Hour)
	used := f.token(t, "ad")
	if _, _, a := f.enroll(t, EnrollRequest{Token: used}, newKey(t)); a == nil || a.connector != "ad" {
		t.Fatalf("first enrollment: %+v", a)
	}
	expired := f.token(t, "ad")
	reusable := f.token(t, "ad")
	tests := []struct {
		name   string
		req    EnrollRequest
		skew   time.Duration
		status int
		code   string
	}{
		{"reused token", EnrollRequest{Token: used}, 0, 403, CodeTokenUsed},
		{"unknown token", EnrollRequest{Token: "nope"}, 0, 403, CodeTokenUnknown},
		{"expired token", EnrollRequest{Token: expired}, 2 * time.Hour, 403, CodeTokenExpired},
		{"wrong connector", EnrollRequest{Token: reusable, Connector: "ldap"}, 0, 403, CodeTokenConnector},
		{"bad CSR", EnrollRequest{Token: reusable, CSR: "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"}, 0, 400, CodeBadCSR},
		{"no token", EnrollRequest{}, 0, 400, CodeBadRequest},
		// Neither failure above spent the token.
		{"good", EnrollRequest{Token: reusable, Connector: "ad"}, 0, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.skew.Store(int64(tt.skew))
			defer f.skew.Store(0)
			status, code, _ := f.enroll(t, tt.req, newKey(t))
			if status != tt.status || code != tt.code {
				t.Fatalf("got %d %q, want %d %q", status, code, tt.status, tt.code)
			}
		})
	}
	agents, err := f.store.Agents(t.Context())
	if err != nil || len(agents) != 2 {
		t.Fatalf("enrolled agents: %d, %v; want 2", len(agents), err)
	}
}

func TestConnectRefused(t *testing.T) {
	f := newFixture(t, time.Hour)
	a, b := f.newAgent(t, "ad"), f.newAgent(t, "ad")
	revoked := f.newAgent(t, "ad")
	if err := f.h.Revoke(t.Context(), revoked.id); err != nil {
		t.Fatal(err)
	}
	// A certificate the CA signed for a's ID but another key: not the
	// certificate a enrolled with.
	key := newKey(t)
	csr, _ := pki.CSR(key, "x")
	forged, _, err := f.ca.SignAgent(csr, pki.Agent{ID: a.id, Connector: "ad"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	twin := &fakeAgent{id: a.id, connector: "ad", f: f, cert: tls.Certificate{Certificate: [][]byte{forged.Raw}, PrivateKey: key, Leaf: forged}}
	unknownCert, _, _ := f.ca.SignAgent(csr, pki.Agent{ID: "ag-unknown", Connector: "ad"}, time.Now())
	unknown := &fakeAgent{id: "ag-unknown", connector: "ad", f: f, cert: tls.Certificate{Certificate: [][]byte{unknownCert.Raw}, PrivateKey: key}}
	tests := []struct {
		name  string
		agent *fakeAgent
		hello *wire.Hello
	}{
		{"revoked", revoked, nil},
		{"not enrolled", unknown, nil},
		{"another certificate for the ID", twin, nil},
		{"hello as another agent", b, &wire.Hello{AgentID: a.id, Connector: "ad"}},
		{"hello for another connector", a, &wire.Hello{AgentID: a.id, Connector: "ldap"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if ac, status := tt.agent.connect(t, tt.hello, answerChecks(0)); ac != nil || status != http.StatusForbidden {
				t.Fatalf("status %d, want 403", status)
			}
		})
	}
	// Without a client certificate.
	resp, err := f.client(nil).Post(f.url+"/agent/v1/connect", "application/octet-stream", nil)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("connect without a certificate: %v %v", resp, err)
	}
	resp.Body.Close()
	if n, _ := f.h.Connected("ad"); n != 0 {
		t.Fatalf("%d agents connected", n)
	}
	if ac, status := a.connect(t, nil, answerChecks(0)); ac == nil {
		t.Fatalf("the genuine agent was refused: %d", status)
	}
}

// streamFull answers a full read with entries on the reply stream, after
// fetching known when the request has it.
func streamFull(entries []*cache.Entry, gotKnown chan<- dirsync.Known) serveFunc {
	return func(ac *agentConn, id uint64, req *wire.Request) {
		cl := ac.a.f.client(&ac.a.cert)
		if req.HasKnown {
			resp, err := cl.Get(fmt.Sprintf("%s/agent/v1/known/%d", ac.a.f.url, id))
			if err == nil {
				k, _ := wire.ReadKnown(wire.NewReader(resp.Body), id)
				resp.Body.Close()
				gotKnown <- k
			}
		}
		var buf bytes.Buffer
		bw := wire.NewBatchWriter(wire.NewWriter(&buf), id)
		for _, e := range entries {
			bw.Entry(e)
		}
		bw.Finish(&wire.Result{Listing: &dirsync.Listing{Host: "dc1"}})
		resp, err := cl.Post(fmt.Sprintf("%s/agent/v1/reply/%d", ac.a.f.url, id), "application/octet-stream", &buf)
		if err == nil {
			resp.Body.Close()
		}
	}
}

func TestReplyOnlyFromItsAgent(t *testing.T) {
	f := newFixture(t, time.Hour)
	a, other := f.newAgent(t, "ad"), f.newAgent(t, "ad")
	release := make(chan struct{})
	in := []*cache.Entry{{Connector: "ad", ID: "u1", DN: "cn=u1", Kind: cache.KindUser}, {Connector: "ad", ID: "u2", DN: "cn=u2", Kind: cache.KindUser}}
	gotKnown := make(chan dirsync.Known, 1)
	full := streamFull(in, gotKnown)
	if ac, _ := a.connect(t, nil, func(ac *agentConn, id uint64, req *wire.Request) { <-release; full(ac, id, req) }); ac == nil {
		t.Fatal("connect")
	}
	call, err := f.h.DoWithKnown(t.Context(), "ad", &wire.Request{Kind: wire.KindChanges}, dirsync.Known{"u1": 7})
	if err != nil || call.Agent != a.id {
		t.Fatalf("Do: %+v %v", call, err)
	}
	// The other agent (enrolled, valid certificate, not connected) may
	// neither read the known set nor post the reply.
	cl := f.client(&other.cert)
	for _, req := range []func() (*http.Response, error){
		func() (*http.Response, error) { return cl.Get(fmt.Sprintf("%s/agent/v1/known/%d", f.url, call.ID)) },
		func() (*http.Response, error) {
			return cl.Post(fmt.Sprintf("%s/agent/v1/reply/%d", f.url, call.ID), "application/octet-stream", bytes.NewReader(nil))
		},
	} {
		resp, err := req()
		if err != nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("another agent's stream: %v %v, want 403", resp, err)
		}
		resp.Body.Close()
	}
	close(release)
	var got []dirsync.Change
	res, err := call.Stream(t.Context(), nil, func(c dirsync.Change) error { got = append(got, c); return nil })
	// A changes request answered with entries: refused, not applied.
	if err == nil || !errors.Is(err, wire.ErrMalformed) || len(got) != 0 {
		t.Fatalf("entries for a changes request: %+v %v", res, err)
	}
	if k := <-gotKnown; k["u1"] != 7 || len(k) != 1 {
		t.Fatalf("known = %v", k)
	}
	call, err = f.h.Do(t.Context(), "ad", &wire.Request{Kind: wire.KindFull})
	if err != nil {
		t.Fatal(err)
	}
	var entries []*cache.Entry
	res, err = call.Stream(t.Context(), func(e *cache.Entry) error { entries = append(entries, e); return nil }, nil)
	if err != nil || res.Listing.Host != "dc1" || len(entries) != 2 || entries[1].ID != "u2" {
		t.Fatalf("full read: %+v %v, %d entries", res, err, len(entries))
	}
}

func TestDoSharesAndFailsOver(t *testing.T) {
	f := newFixture(t, time.Hour)
	if _, err := f.h.Do(t.Context(), "ad", &wire.Request{Kind: wire.KindCheck, Check: &wire.CheckRequest{}}); !errors.Is(err, ErrNoAgent) || !errors.Is(err, upstream.ErrUnreachable) {
		t.Fatalf("Do without an agent: %v", err)
	}
	a, b := f.newAgent(t, "ad"), f.newAgent(t, "ad")
	acA, _ := a.connect(t, nil, answerChecks(20*time.Millisecond))
	acB, _ := b.connect(t, nil, answerChecks(20*time.Millisecond))
	check := func() (string, error) {
		call, err := f.h.Do(t.Context(), "ad", &wire.Request{Kind: wire.KindCheck, Check: &wire.CheckRequest{Password: "pw"}})
		if err != nil {
			return "", err
		}
		res, err := call.Wait(t.Context())
		if err != nil {
			return "", err
		}
		if res.Host != call.Agent {
			return "", fmt.Errorf("answered by %s, sent to %s", res.Host, call.Agent)
		}
		return res.Host, nil
	}
	counts := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			host, err := check()
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			counts[host]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if counts[a.id] < 5 || counts[b.id] < 5 {
		t.Fatalf("load not shared: %v", counts)
	}
	st := f.h.Agents()
	if len(st) != 2 || st[0].Connector != "ad" || st[0].ConnectedSince.IsZero() {
		t.Fatalf("Agents() = %+v", st)
	}

	// Kill a: what it had in flight fails as lost; everything after goes
	// to b; no request reaches both.
	acA.close()
	waitFor(t, "a to be dropped", func() bool { n, _ := f.h.Connected("ad"); return n == 1 })
	for range 10 {
		if host, err := check(); err != nil || host != b.id {
			t.Fatalf("after a left: %s %v", host, err)
		}
	}
	seen := map[uint64]bool{}
	for _, id := range append(acA.requests(), acB.requests()...) {
		if seen[id] {
			t.Fatalf("request %d was sent to both agents", id)
		}
		seen[id] = true
	}
}

func TestInFlightLost(t *testing.T) {
	f := newFixture(t, time.Hour)
	a := f.newAgent(t, "ad")
	ac, _ := a.connect(t, nil, func(*agentConn, uint64, *wire.Request) {}) // never answers
	call, err := f.h.Do(t.Context(), "ad", &wire.Request{Kind: wire.KindCheck, Check: &wire.CheckRequest{}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the request to arrive", func() bool { return len(ac.requests()) == 1 })
	ac.close()
	if _, err := call.Wait(t.Context()); !errors.Is(err, ErrAgentLost) || !errors.Is(err, upstream.ErrUnreachable) {
		t.Fatalf("Wait after the agent left: %v", err)
	}
}

func TestDeadlineCancels(t *testing.T) {
	f := newFixture(t, time.Hour)
	a := f.newAgent(t, "ad")
	ac, _ := a.connect(t, nil, func(*agentConn, uint64, *wire.Request) {})
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	call, err := f.h.Do(ctx, "ad", &wire.Request{Kind: wire.KindCheck, Check: &wire.CheckRequest{}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = call.Wait(ctx)
	var ue *UnreachableError
	if !errors.Is(err, ErrDeadline) || !errors.Is(err, upstream.ErrUnreachable) || !errors.As(err, &ue) || ue.Agent != a.id {
		t.Fatalf("Wait past the deadline: %v", err)
	}
	waitFor(t, "the cancel frame", func() bool {
		ac.mu.Lock()
		defer ac.mu.Unlock()
		return len(ac.cancels) == 1 && ac.cancels[0] == call.ID
	})
	if st := f.h.Agents(); len(st) != 1 || st[0].InFlight != 0 {
		t.Fatalf("after the deadline: %+v", st)
	}
}

func TestRevokeCuts(t *testing.T) {
	f := newFixture(t, 100*time.Millisecond)
	a, b := f.newAgent(t, "ad"), f.newAgent(t, "ad")
	acA, _ := a.connect(t, nil, answerChecks(0))
	acB, _ := b.connect(t, nil, answerChecks(0))
	tests := []struct {
		name   string
		ac     *agentConn
		revoke func(id string) error
	}{
		{"through the hub", acA, func(id string) error { return f.h.Revoke(t.Context(), id) }},
		// As another replica does: only the store changes.
		{"in the store", acB, func(id string) error { return f.store.RevokeAgent(t.Context(), id, time.Now()) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.revoke(tt.ac.a.id); err != nil {
				t.Fatal(err)
			}
			select {
			case <-tt.ac.ended:
			case <-time.After(10 * time.Second):
				t.Fatal("the revoked agent is still connected")
			}
			if ac, status := tt.ac.a.connect(t, nil, answerChecks(0)); ac != nil || status != http.StatusForbidden {
				t.Fatalf("the revoked agent reconnected: %d", status)
			}
		})
	}
	if n, since := f.h.Connected("ad"); n != 0 || since.IsZero() {
		t.Fatalf("Connected = %d, %v", n, since)
	}
	if got, err := f.store.Agent(t.Context(), a.id); err != nil || got.Revoked.IsZero() {
		t.Fatalf("stored agent: %+v %v", got, err)
	}
	if err := f.h.Revoke(t.Context(), "ag-none"); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("Revoke(unknown) = %v", err)
	}
}

// newCAAndStore returns a new agent CA and an in-memory store for a
// test's hub.
func newCAAndStore(t *testing.T) (*pki.CA, *cache.Store) {
	t.Helper()
	ca, err := pki.LoadOrCreate(filepath.Join(t.TempDir(), "ca"))
	if err != nil {
		t.Fatal(err)
	}
	store, err := cache.Open(t.TempDir(), cache.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return ca, store
}
