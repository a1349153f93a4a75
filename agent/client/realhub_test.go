package client

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dirgate/dirgate/agent/hub"
	"github.com/dirgate/dirgate/agent/pki"
	"github.com/dirgate/dirgate/agent/wire"
	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/internal/testenv"
	"github.com/dirgate/dirgate/internal/testlog"
)

// TestWithRealHub runs the agent against the hub of agent/hub, as
// `dirgate serve` runs it: enrollment with a token of its own, a test
// connection, a password check and (with the test environment) a full
// read, then revocation.
func TestWithRealHub(t *testing.T) {
	h, _, url := startRealHub(t, nil)
	connector, live := offlineConnector, false
	if os.Getenv("DIRGATE_TESTENV") != "" {
		connector, live = olConnector(t, testenv.Load(t)), true
	}
	f := agentFile(t, url, connector)
	id, tok := enrollWith(t, h, url, f)
	if _, err := Enroll(t.Context(), EnrollOptions{Hub: url, Token: tok.Token, CASHA256: tok.CASHA256, StateDir: t.TempDir(), Name: "b", Connector: "corp"}); !errors.Is(err, ErrTokenUsed) {
		t.Fatalf("second enrollment with one token: %v, want %v", err, ErrTokenUsed)
	}

	logs := &testlog.Buffer{}
	runAgent(t, f, id, slog.New(slog.NewTextHandler(logs, nil)))
	waitFor(t, "the agent to connect", func() bool { n, _ := h.Connected("corp"); return n == 1 })

	call, err := h.Do(t.Context(), "corp", &wire.Request{Kind: wire.KindTest})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := call.Wait(t.Context()); err != nil || res.Report == nil || res.Report.OK != live {
		t.Fatalf("test connection: %+v, %v", res, err)
	}
	check, err := h.Do(t.Context(), "corp", &wire.Request{Kind: wire.KindCheck,
		Check: &wire.CheckRequest{DN: "uid=user00001,ou=people,dc=example,dc=test", Password: "Wr0ng-Secret-4711"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := check.Wait(t.Context()); err == nil {
		t.Fatal("a wrong password passed")
	}
	if live {
		read, err := h.Do(t.Context(), "corp", &wire.Request{Kind: wire.KindFull})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		res, err := read.Stream(t.Context(), func(*cache.Entry) error { n++; return nil }, nil)
		if err != nil || n < 50 || len(res.Listing.Cursor) == 0 {
			t.Fatalf("full read through the hub: %d entries, %+v, %v", n, res, err)
		}
	}

	// Revoked: cut at once, and refused when it comes back.
	if err := h.Revoke(t.Context(), id.AgentID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the agent to be refused", func() bool {
		return strings.Contains(logs.String(), "the hub refused this agent (HTTP 403")
	})
	if n, _ := h.Connected("corp"); n != 0 {
		t.Fatalf("%d agents connected after the revocation", n)
	}
}

// waitFor polls cond for up to a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startRealHub serves a hub of agent/hub, as `dirgate serve` runs it, on
// loopback, and returns it, its store and its URL. now, when not nil, is
// the hub's clock.
func startRealHub(t *testing.T, now func() time.Time) (*hub.Hub, *cache.Store, string) {
	t.Helper()
	ca, err := pki.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	store, err := cache.Open(t.TempDir(), cache.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	h, err := hub.New(hub.Config{CA: ca, Replica: "r1", Heartbeat: 500 * time.Millisecond, Recheck: 200 * time.Millisecond, Now: now}, store, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := h.Server([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hubCtx, stopHub := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { _ = srv.ServeTLS(ln, "", ""); close(served) }()
	go func() { _ = h.Run(hubCtx) }()
	t.Cleanup(func() {
		stopHub()
		_ = srv.Close()
		<-served
	})
	return h, store, "https://" + ln.Addr().String()
}

// enrollWith enrolls the agent of f with the real hub h at url, with a
// token of its own, and returns its identity and the spent token.
func enrollWith(t *testing.T, h *hub.Hub, url string, f *config.AgentFile) (*Identity, hub.Token) {
	t.Helper()
	tok, err := h.CreateToken(t.Context(), f.Connector.Name, 0)
	if err != nil {
		t.Fatal(err)
	}
	id, err := Enroll(t.Context(), EnrollOptions{Hub: url, Token: tok.Token, CASHA256: tok.CASHA256, StateDir: f.StateDir,
		Name: "a", Connector: f.Connector.Name})
	if err != nil {
		t.Fatalf("enroll: %v", err)
	}
	return id, tok
}
