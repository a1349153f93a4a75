package client

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dirgate/dirgate/agent/pki"
	"github.com/dirgate/dirgate/agent/wire"
	"github.com/dirgate/dirgate/cache"
	dirsync "github.com/dirgate/dirgate/sync"
)

// fakeHub is a hub written for these tests: TLS on loopback with a
// certificate from a real agent CA, speaking agent/wire on the endpoints
// the agent uses. It records what arrives and lets a test send requests.
type fakeHub struct {
	t         *testing.T
	ca        *pki.CA
	connector string
	replica   string
	heartbeat time.Duration
	peers     []string // in the Welcome
	srv       *httptest.Server
	url       string

	mu      sync.Mutex
	tokens  map[string]string // token → "" (valid) or its refusal
	conns   []*hubConn
	connCh  chan *hubConn
	nextID  uint64
	results map[uint64]chan *wire.Message // check and test results
	replies map[uint64]chan reply
	known   map[uint64]dirsync.Known
	enrolls int // enrollment requests that arrived
	// cut ends every connection right after its welcome, as the hub does
	// to one of two agents with one identity.
	cut atomic.Bool
}

// reply is what arrived on /reply/{id}.
type reply struct {
	entries []*cache.Entry
	changes []dirsync.Change
	result  *wire.Result
	err     error
}

// hubConn is one agent connection to the fake hub.
type hubConn struct {
	hello *wire.Hello
	w     *wire.Writer
	done  chan struct{}
}

func newFakeHub(t *testing.T, connector string, hosts ...string) *fakeHub {
	t.Helper()
	ca, err := pki.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return newReplica(t, ca, "r1", connector, hosts...)
}

// newReplica starts a hub replica with the agent CA ca (replicas share
// it, as the cluster's do).
func newReplica(t *testing.T, ca *pki.CA, replica, connector string, hosts ...string) *fakeHub {
	t.Helper()
	h := &fakeHub{t: t, ca: ca, connector: connector, replica: replica, heartbeat: time.Second,
		tokens: map[string]string{"good": "", "used": "token_used", "expired": "token_expired"},
		connCh: make(chan *hubConn, 16), results: map[uint64]chan *wire.Message{}, replies: map[uint64]chan reply{},
		known: map[uint64]dirsync.Known{}}
	h.start(t, "127.0.0.1:0", append([]string{"127.0.0.1"}, hosts...))
	// Registered before any agent starts, so it runs after the agents
	// stopped (cleanups run last first): Close waits for active streams.
	t.Cleanup(func() {
		h.srv.CloseClientConnections()
		h.srv.Close()
	})
	return h
}

// start serves on addr (a fixed one after a restart).
func (h *fakeHub) start(t *testing.T, addr string, hosts []string) {
	t.Helper()
	cert, err := h.ca.ServerCertificate(hosts, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	for i := 0; ; i++ { // a restarted hub's port may take a moment to free
		if ln, err = net.Listen("tcp", addr); err == nil || i == 50 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /agent/v1/enroll", h.enroll)
	mux.HandleFunc("POST /agent/v1/connect", h.connect)
	mux.HandleFunc("POST /agent/v1/reply/{id}", h.reply)
	mux.HandleFunc("GET /agent/v1/known/{id}", h.knownStream)
	srv := httptest.NewUnstartedServer(mux)
	srv.Listener = ln
	srv.EnableHTTP2 = true
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: h.ca.Pool()}
	srv.StartTLS()
	h.srv = srv
	h.url = "https://" + ln.Addr().String()
}

// restart stops the hub (cutting every connection) and serves again on
// the same port.
func (h *fakeHub) restart(t *testing.T) {
	addr := h.srv.Listener.Addr().String()
	h.srv.CloseClientConnections()
	h.srv.Close()
	h.start(t, addr, []string{"127.0.0.1"})
}

func (h *fakeHub) enroll(w http.ResponseWriter, r *http.Request) {
	var req enrollRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	h.enrolls++
	refusal, ok := h.tokens[req.Token]
	if ok && refusal == "" && req.Connector != h.connector {
		refusal = "token_connector" // not spent
	}
	if ok && refusal == "" {
		h.tokens[req.Token] = "token_used"
	}
	h.mu.Unlock()
	if !ok {
		refusal = "token_unknown"
	}
	if refusal != "" {
		w.WriteHeader(http.StatusForbidden)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": refusal})
		return
	}
	_, certPEM, err := h.ca.SignAgent([]byte(req.CSR), pki.Agent{ID: "agent-1", Connector: h.connector}, time.Now())
	if err != nil {
		http.Error(w, `{"error":"bad_csr"}`, http.StatusBadRequest)
		return
	}
	_ = json.NewEncoder(w).Encode(enrollResponse{Certificate: string(certPEM), CA: string(h.ca.PEM), AgentID: "agent-1", Connector: h.connector})
}

// agentOf checks the client certificate, as the real hub does.
func (h *fakeHub) agentOf(r *http.Request) bool {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return false
	}
	_, err := h.ca.VerifyAgent(r.TLS.PeerCertificates[0], time.Now())
	return err == nil
}

func (h *fakeHub) connect(w http.ResponseWriter, r *http.Request) {
	if !h.agentOf(r) {
		http.Error(w, "client certificate required", http.StatusUnauthorized)
		return
	}
	rc := http.NewResponseController(w)
	if err := rc.EnableFullDuplex(); err != nil {
		h.t.Errorf("full duplex: %v", err)
		return
	}
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush()
	rd := wire.NewReader(r.Body)
	m, err := rd.Read()
	if err != nil || m.Type != wire.TypeHello {
		h.t.Errorf("first frame: %v %v", m, err)
		return
	}
	c := &hubConn{hello: m.Hello, w: wire.NewWriter(w), done: make(chan struct{})}
	defer close(c.done)
	if err := c.w.Write(&wire.Message{Type: wire.TypeWelcome, Welcome: &wire.Welcome{Replica: h.replica, Heartbeat: h.heartbeat, Peers: h.peers}}); err != nil {
		return
	}
	h.mu.Lock()
	h.conns = append(h.conns, c)
	h.mu.Unlock()
	h.connCh <- c
	if h.cut.Load() {
		return
	}
	for {
		m, err := rd.Read()
		if err != nil {
			return
		}
		switch m.Type {
		case wire.TypePing:
			_ = c.w.Write(&wire.Message{Type: wire.TypePong, ID: m.ID, Sent: m.Sent})
		case wire.TypeResult:
			h.mu.Lock()
			ch := h.results[m.ID]
			h.mu.Unlock()
			if ch != nil {
				ch <- m
			}
		}
	}
}

func (h *fakeHub) reply(w http.ResponseWriter, r *http.Request) {
	if !h.agentOf(r) {
		http.Error(w, "client certificate required", http.StatusUnauthorized)
		return
	}
	id, _ := strconv.ParseUint(r.PathValue("id"), 10, 64)
	h.mu.Lock()
	ch := h.replies[id]
	h.mu.Unlock()
	if ch == nil {
		http.Error(w, "no such request", http.StatusNotFound)
		return
	}
	var rep reply
	rep.result, rep.err = wire.ReadReply(wire.NewReader(r.Body), id, h.connector,
		func(e *cache.Entry) error { rep.entries = append(rep.entries, e); return nil },
		func(c dirsync.Change) error { rep.changes = append(rep.changes, c); return nil })
	ch <- rep
}

func (h *fakeHub) knownStream(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseUint(r.PathValue("id"), 10, 64)
	h.mu.Lock()
	known, ok := h.known[id]
	h.mu.Unlock()
	if !ok || !h.agentOf(r) {
		http.Error(w, "not yours", http.StatusForbidden)
		return
	}
	bw := wire.NewBatchWriter(wire.NewWriter(w), id)
	for k, v := range known {
		if err := bw.Known(k, v); err != nil {
			return
		}
	}
	_ = bw.Finish(&wire.Result{})
}

// waitConn returns the next agent connection.
func (h *fakeHub) waitConn(t *testing.T, within time.Duration) *hubConn {
	t.Helper()
	select {
	case c := <-h.connCh:
		return c
	case <-time.After(within):
		t.Fatalf("no agent connected within %v", within)
		return nil
	}
}

// send sends req on c and returns its id.
func (h *fakeHub) send(t *testing.T, c *hubConn, req *wire.Request, known dirsync.Known) uint64 {
	t.Helper()
	h.mu.Lock()
	h.nextID++
	id := h.nextID
	h.results[id] = make(chan *wire.Message, 1)
	h.replies[id] = make(chan reply, 1)
	if known != nil {
		h.known[id] = known
	}
	h.mu.Unlock()
	if req.Connector == "" {
		req.Connector = h.connector
	}
	if err := c.w.Write(&wire.Message{Type: wire.TypeRequest, ID: id, Request: req}); err != nil {
		t.Fatalf("send request: %v", err)
	}
	return id
}

// result waits for the result of request id on the connection.
func (h *fakeHub) result(t *testing.T, id uint64) *wire.Result {
	t.Helper()
	h.mu.Lock()
	ch := h.results[id]
	h.mu.Unlock()
	select {
	case m := <-ch:
		return m.Result
	case <-time.After(time.Minute):
		t.Fatalf("no result for request %d", id)
		return nil
	}
}

// replyOf waits for the reply stream of request id.
func (h *fakeHub) replyOf(t *testing.T, id uint64) reply {
	t.Helper()
	h.mu.Lock()
	ch := h.replies[id]
	h.mu.Unlock()
	select {
	case r := <-ch:
		return r
	case <-time.After(2 * time.Minute):
		t.Fatalf("no reply stream for request %d", id)
		return reply{}
	}
}

// connectProxy is an HTTP CONNECT proxy on loopback. It resolves the
// names in hosts itself (the agent cannot), so a connection to such a
// name proves the proxy carried it; it records every CONNECT target.
type connectProxy struct {
	ln      net.Listener
	hosts   map[string]string // name → address to dial
	mu      sync.Mutex
	targets []string
}

func startProxy(hosts map[string]string) (*connectProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &connectProxy{ln: ln, hosts: hosts}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p, nil
}

func (p *connectProxy) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil || req.Method != http.MethodConnect {
		fmt.Fprint(c, "HTTP/1.1 405 Method Not Allowed\r\n\r\n")
		return
	}
	p.mu.Lock()
	p.targets = append(p.targets, req.Host)
	p.mu.Unlock()
	host, port, _ := net.SplitHostPort(req.Host)
	if a, ok := p.hosts[host]; ok {
		host = a
	}
	up, err := net.Dial("tcp", net.JoinHostPort(host, port))
	if err != nil {
		fmt.Fprint(c, "HTTP/1.1 502 Bad Gateway\r\n\r\n")
		return
	}
	defer up.Close()
	fmt.Fprint(c, "HTTP/1.1 200 Connection established\r\n\r\n")
	go func() { _, _ = io.Copy(up, br); up.Close() }()
	_, _ = io.Copy(c, up)
}

func (p *connectProxy) seen(name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, t := range p.targets {
		if strings.HasPrefix(t, name+":") {
			return true
		}
	}
	return false
}

// ctxFor returns a context canceled when the test ends.
func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx
}
