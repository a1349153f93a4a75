package hub

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/dirgate/dirgate/agent/pki"
	"github.com/dirgate/dirgate/agent/wire"
	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/internal/testlog"
	"github.com/dirgate/dirgate/metrics"
)

// clockHub is a hub without a listener whose clock the test moves.
type clockHub struct {
	h     *Hub
	store *cache.Store
	now   atomic.Int64 // Unix nanoseconds
	logs  testlog.Buffer
}

func newClockHub(t *testing.T) *clockHub {
	t.Helper()
	ca, store := newCAAndStore(t)
	var err error
	c := &clockHub{store: store}
	c.now.Store(time.Now().UnixNano())
	c.h, err = New(Config{CA: ca, Replica: "r1", Now: func() time.Time { return time.Unix(0, c.now.Load()) }},
		store, slog.New(slog.NewTextHandler(&c.logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *clockHub) advance(d time.Duration) time.Time {
	return time.Unix(0, c.now.Add(int64(d)))
}

// enroll enrolls an agent of connector and returns its ID and certificate.
func (c *clockHub) enroll(t *testing.T, connector string) (string, time.Time) {
	t.Helper()
	tok, err := c.h.CreateToken(t.Context(), connector, 0)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.CSR(newKey(t), "agent")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(EnrollRequest{Token: tok.Token, CSR: string(csr), Name: "n", Version: "v"})
	rec := httptest.NewRecorder()
	c.h.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/agent/v1/enroll", bytes.NewReader(body)))
	var er EnrollResponse
	if err := json.NewDecoder(rec.Body).Decode(&er); rec.Code != http.StatusOK || err != nil {
		t.Fatalf("enroll: %d %v", rec.Code, err)
	}
	cert, err := pki.ParseCertificate([]byte(er.Certificate))
	if err != nil {
		t.Fatal(err)
	}
	return er.AgentID, cert.NotAfter
}

// value reads a gauge's or a counter's value.
func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	if d.Gauge != nil {
		return d.Gauge.GetValue()
	}
	return d.Counter.GetValue()
}

// present reports whether vec has a series for connector and agent
// (deleting it: call it last).
func present(vec interface{ DeleteLabelValues(...string) bool }, connector, agent string) bool {
	return vec.DeleteLabelValues(connector, agent)
}

func TestCertExpiryKeptAndWarned(t *testing.T) {
	c := newClockHub(t)
	id, notAfter := c.enroll(t, "ad")
	a, err := c.store.Agent(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if !a.CertExpires.Equal(notAfter) || !CertExpiry(a).Equal(notAfter) {
		t.Fatalf("stored expiry %v, certificate's %v", a.CertExpires, notAfter)
	}
	const warning = "agent certificate expires in"
	steps := []struct {
		advance time.Duration
		warned  int // warnings logged so far
	}{
		{0, 0},
		{300 * 24 * time.Hour, 0}, // 65 days left
		{40 * 24 * time.Hour, 1},  // 25 days left: warned
		{time.Hour, 1},            // not again the same day
		{24 * time.Hour, 2},       // the next day
		{10 * time.Minute, 2},
	}
	for i, s := range steps {
		now := c.advance(s.advance)
		c.h.watchAgents(t.Context(), now)
		if got := value(t, metrics.AgentCertExpiry.WithLabelValues("ad", id)); got != float64(notAfter.Unix()) {
			t.Fatalf("step %d: expiry metric %v, want %d", i, got, notAfter.Unix())
		}
		if n := c.logs.Count(warning); n != s.warned || (n > 0 && c.logs.Count(id) < n) {
			t.Fatalf("step %d: %d warnings, want %d:\n%s", i, n, s.warned, c.logs.String())
		}
	}
	if err := c.h.Revoke(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	c.h.watchAgents(t.Context(), c.advance(time.Minute))
	if present(metrics.AgentCertExpiry, "ad", id) {
		t.Fatal("a revoked agent keeps its expiry series")
	}
}

func TestListenerCertRenewed(t *testing.T) {
	c := newClockHub(t)
	tc, err := c.h.TLSConfig([]string{"hub.example"})
	if err != nil {
		t.Fatal(err)
	}
	// served is the certificate a handshake without SNI is given.
	served := func() *x509.Certificate {
		t.Helper()
		if tc.GetConfigForClient == nil {
			t.Fatal("the listener's certificate is fixed: it would expire a year after the start")
		}
		cc, err := tc.GetConfigForClient(&tls.ClientHelloInfo{})
		if err != nil || len(cc.Certificates) != 1 {
			t.Fatalf("GetConfigForClient: %v", err)
		}
		return cc.Certificates[0].Leaf
	}
	first := served()
	c.advance(300 * 24 * time.Hour)
	if same := served(); !same.Equal(first) {
		t.Fatal("re-issued with months left")
	}
	now := c.advance(40 * 24 * time.Hour) // 25 days left
	renewed := served()
	if renewed.Equal(first) || renewed.NotAfter.Sub(now) < 300*24*time.Hour {
		t.Fatalf("not re-issued: expiry %v at %v", renewed.NotAfter, now)
	}
	if _, err := renewed.Verify(x509.VerifyOptions{Roots: c.h.cfg.CA.Pool(), CurrentTime: now, DNSName: "hub.example"}); err != nil {
		t.Fatalf("renewed certificate: %v", err)
	}
	if again := served(); !again.Equal(renewed) {
		t.Fatal("re-issued on every handshake")
	}
}

func TestCheckLatencyPerAgent(t *testing.T) {
	f := newFixture(t, time.Hour)
	fast, slow := f.newAgent(t, "ad"), f.newAgent(t, "ad")
	fast.connect(t, nil, answerChecks(0))
	slow.connect(t, nil, answerChecks(300*time.Millisecond))
	// The welcome comes before the hub registers the connection.
	waitFor(t, "both agents", func() bool { n, _ := f.h.Connected("ad"); return n == 2 })
	for range 6 {
		var wg sync.WaitGroup
		for range 2 { // one each: Do picks the agent with less in flight
			wg.Go(func() {
				call, err := f.h.Do(t.Context(), "ad", &wire.Request{Kind: wire.KindCheck, Check: &wire.CheckRequest{}})
				if err == nil {
					_, err = call.Wait(t.Context())
				}
				if err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	lat := map[string]time.Duration{}
	for _, st := range f.h.Agents() {
		lat[st.ID] = st.CheckLatency
		if st.CertExpires.IsZero() {
			t.Errorf("agent %s: no certificate expiry in its status", st.ID)
		}
	}
	if lat[fast.id] <= 0 || lat[slow.id] < 250*time.Millisecond || lat[slow.id] < 2*lat[fast.id] {
		t.Fatalf("check latency: fast %v, slow %v", lat[fast.id], lat[slow.id])
	}
	for _, a := range []*fakeAgent{fast, slow} {
		if !present(metrics.AgentCheckSeconds, "ad", a.id) {
			t.Fatalf("agent %s: no latency series of its own", a.id)
		}
	}
}

func TestGoneAgentSeriesDeleted(t *testing.T) {
	f := newFixture(t, time.Hour)
	a := f.newAgent(t, "ad")
	ac, _ := a.connect(t, nil, answerChecks(0))
	waitFor(t, "the agent", func() bool { n, _ := f.h.Connected("ad"); return n == 1 })
	ac.close()
	waitFor(t, "the agent to leave", func() bool { n, _ := f.h.Connected("ad"); return n == 0 })
	f.h.watchAgents(t.Context(), f.h.cfg.Now().Add(time.Hour))
	if value(t, metrics.AgentConnects.WithLabelValues("ad", a.id)) != 1 {
		t.Fatal("series deleted an hour after the agent left")
	}
	f.h.watchAgents(t.Context(), f.h.cfg.Now().Add(forgetAfter+time.Minute))
	if present(metrics.AgentConnected, "ad", a.id) || present(metrics.AgentConnects, "ad", a.id) {
		t.Fatal("the series of an agent gone for a day are kept")
	}
	if !present(metrics.AgentCertExpiry, "ad", a.id) {
		t.Fatal("an enrolled agent's certificate expiry was deleted")
	}
}
