package agentsource

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
	"net/http"
	"testing"
	"time"

	"github.com/dirgate/dirgate/agent/hub"
	"github.com/dirgate/dirgate/agent/pki"
	"github.com/dirgate/dirgate/agent/wire"
	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
	dirsync "github.com/dirgate/dirgate/sync"
	"github.com/dirgate/dirgate/sync/agentsource/agenttest"
)

// fakeAgent speaks the agent protocol to a real hub and answers every
// sync read with serve's reply: a test of what the hub's side does with
// replies a real agent sends only when things go wrong.
type fakeAgent struct {
	h     *agenttest.Hub
	http  *http.Client
	serve func(w *wire.BatchWriter, req *wire.Request) (finish bool)
}

// startFake enrolls a fake agent for connector and connects it.
func startFake(t *testing.T, h *agenttest.Hub, connector string, serve func(*wire.BatchWriter, *wire.Request) bool) {
	t.Helper()
	tok, err := h.CreateToken(t.Context(), connector, 0)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, err := pki.CSR(key, "fake")
	if err != nil {
		t.Fatal(err)
	}
	anon := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: h.CA.Pool()}, ForceAttemptHTTP2: true}}
	body, _ := json.Marshal(hub.EnrollRequest{Token: tok.Token, CSR: string(csr), Name: "fake", Version: "test"})
	resp, err := anon.Post(h.URL+"/agent/v1/enroll", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var er hub.EnrollResponse
	err = json.NewDecoder(resp.Body).Decode(&er)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("enroll: %d %v", resp.StatusCode, err)
	}
	cert, err := pki.ParseCertificate([]byte(er.Certificate))
	if err != nil {
		t.Fatal(err)
	}
	a := &fakeAgent{h: h, serve: serve, http: &http.Client{Transport: &http.Transport{ForceAttemptHTTP2: true,
		TLSClientConfig: &tls.Config{RootCAs: h.CA.Pool(), Certificates: []tls.Certificate{{Certificate: [][]byte{cert.Raw}, PrivateKey: key}}}}}}
	pr, pw := io.Pipe()
	w := wire.NewWriter(pw)
	go w.Write(&wire.Message{Type: wire.TypeHello, Hello: &wire.Hello{AgentID: er.AgentID, Connector: connector, Name: "fake", Version: "test"}})
	resp, err = a.http.Post(h.URL+"/agent/v1/connect", "application/octet-stream", pr)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("connect: %v %v", resp, err)
	}
	t.Cleanup(func() { pw.Close(); resp.Body.Close() })
	go func() {
		rd := wire.NewReader(resp.Body)
		for {
			m, err := rd.Read()
			if err != nil {
				return
			}
			switch m.Type {
			case wire.TypePing:
				w.Write(&wire.Message{Type: wire.TypePong, ID: m.ID, Sent: m.Sent})
			case wire.TypeRequest:
				go a.reply(m.ID, m.Request)
			}
		}
	}()
	for n, _ := h.Connected(connector); n == 0; n, _ = h.Connected(connector) {
		time.Sleep(5 * time.Millisecond)
	}
}

// reply streams serve's answer on /reply/{id}; a serve that does not
// finish cuts the stream, as a lost connection does.
func (a *fakeAgent) reply(id uint64, req *wire.Request) {
	pr, pw := io.Pipe()
	go func() {
		bw := wire.NewBatchWriter(wire.NewWriter(pw), id)
		if a.serve(bw, req) {
			pw.CloseWithError(bw.Finish(&wire.Result{Listing: &dirsync.Listing{Host: "dc1", Cursor: []byte("c1")}}))
			return
		}
		bw.Flush()
		pw.CloseWithError(errors.New("agent killed"))
	}()
	resp, err := a.http.Post(fmt.Sprintf("%s/agent/v1/reply/%d", a.h.URL, id), "application/octet-stream", pr)
	if err == nil {
		resp.Body.Close()
	}
}

func entry(i int) *cache.Entry {
	return &cache.Entry{Connector: "corp", ID: fmt.Sprint("id-", i), DN: fmt.Sprintf("cn=u%d,dc=corp", i), Kind: cache.KindUser,
		Addresses: []string{fmt.Sprintf("u%d@corp.example", i)}, Attrs: []cache.Attr{{Name: "cn", Values: []string{fmt.Sprint("u", i)}}}}
}

func newEngine(t *testing.T) (*cache.Store, *dirsync.Engine) {
	t.Helper()
	store, err := cache.Open(t.TempDir(), cache.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store, dirsync.New(store, store.States(), nil)
}

var corp = &config.Connector{Name: "corp", Type: "openldap", Via: config.ViaAgent, FullSyncInterval: config.Duration(time.Hour),
	Safety: config.Safety{MaxDeletes: 1000, MaxDeletePercent: 100}}

func count(t *testing.T, store *cache.Store) int {
	t.Helper()
	h := map[string]uint64{}
	if err := store.View(t.Context(), func(v *cache.View) error {
		var err error
		h, err = v.Hashes("corp")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return len(h)
}

// TestLostMidRunAppliesNothing: an agent whose stream is cut after some
// entries fails the run (unreachable, agent lost), and the cache keeps what
// the last committed run left; a full stream is applied whole.
func TestLostMidRunAppliesNothing(t *testing.T) {
	h := agenttest.NewHub(t)
	full := true
	startFake(t, h, "corp", func(bw *wire.BatchWriter, req *wire.Request) bool {
		n := 3
		if !full {
			n = 5
		}
		for i := range n {
			bw.Entry(entry(i))
		}
		return full
	})
	store, eng := newEngine(t)
	src, err := New(h.Hub, corp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Run(t.Context(), corp, src, dirsync.Options{Mode: dirsync.ModeFull}); err != nil {
		t.Fatalf("complete stream: %v", err)
	}
	if n := count(t, store); n != 3 {
		t.Fatalf("after a complete stream the cache holds %d entries, want 3", n)
	}
	full = false
	_, err = eng.Run(t.Context(), corp, src, dirsync.Options{Mode: dirsync.ModeFull})
	if !errors.Is(err, hub.ErrAgentLost) {
		t.Fatalf("cut stream: %v, want the agent lost", err)
	}
	if n := count(t, store); n != 3 {
		t.Fatalf("a cut stream left %d entries in the cache, want the 3 committed before", n)
	}
}

// TestCursorInvalidCrossesTyped: the agent's ErrCursorInvalid reaches the
// engine as dirsync.ErrCursorInvalid, which falls back to a full run.
func TestCursorInvalidCrossesTyped(t *testing.T) {
	h := agenttest.NewHub(t)
	var changes int
	startFake(t, h, "corp", func(bw *wire.BatchWriter, req *wire.Request) bool {
		if req.Kind == wire.KindChanges {
			changes++
			bw.Finish(&wire.Result{Error: wire.ToWire(fmt.Errorf("cookie of another server: %w", dirsync.ErrCursorInvalid))})
			return true
		}
		bw.Entry(entry(1))
		return true
	})
	src, err := New(h.Hub, corp)
	if err != nil {
		t.Fatal(err)
	}
	_, err = src.Changes(t.Context(), []byte("c1"), nil, func(dirsync.Change) error { return nil })
	if !errors.Is(err, dirsync.ErrCursorInvalid) {
		t.Fatalf("Changes = %v, want ErrCursorInvalid", err)
	}
	_, eng := newEngine(t)
	if _, err := eng.Run(t.Context(), corp, src, dirsync.Options{Mode: dirsync.ModeFull}); err != nil {
		t.Fatal(err)
	}
	res, err := eng.Run(t.Context(), corp, src, dirsync.Options{})
	if err != nil || res.Mode != dirsync.ModeFull || changes != 2 {
		t.Fatalf("auto run after an invalid cursor: %+v, %v (%d incremental reads); want a full run", res, err, changes)
	}
}

// TestNoAgent: with no agent connected a read fails as an unreachable
// directory.
func TestNoAgent(t *testing.T) {
	src, err := New(agenttest.NewHub(t).Hub, corp)
	if err != nil {
		t.Fatal(err)
	}
	_, err = src.Full(context.Background(), func(*cache.Entry) error { return nil })
	if !errors.Is(err, hub.ErrNoAgent) {
		t.Fatalf("Full = %v, want ErrNoAgent", err)
	}
}
