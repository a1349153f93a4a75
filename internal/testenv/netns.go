package testenv

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Namespace names the two network namespaces of a NetNS.
type Namespace string

// The namespaces scripts/testenv/netns.sh creates: the site holds the
// directory and the sync agent, the hub holds dirgate serve; only the site
// may open connections to the hub.
const (
	Site Namespace = "site"
	Hub  Namespace = "hub"
)

// NetNS is a pair of network namespaces started by scripts/testenv/netns.sh
// for one test, with a private slapd (and optionally a Samba AD DC) in the
// site. The test process itself stays in its own namespace; it reaches the
// two through Dial and Listen, which open their sockets inside one of them,
// and starts processes there with Command.
type NetNS struct {
	// Env is the script's environment file: DIRGATE_NS_* (names and the
	// link's addresses) and the site slapd's DIRGATE_OL_* (and with Samba
	// the DIRGATE_AD_*).
	Env    Env
	prefix string
	vars   []string
}

// StartNetNS runs `netns.sh up` for the test with vars (NAME=value: NS_SAMBA,
// OL_USERS, ...) and `netns.sh down` when it ends. It skips like Load when
// there is no test environment, and also when the test does not run as
// root (network namespaces need it), unless upstreams are required.
func StartNetNS(t testing.TB, vars ...string) *NetNS {
	t.Helper()
	Load(t)
	if os.Geteuid() != 0 {
		if os.Getenv("DIRGATE_REQUIRE_UPSTREAMS") == "1" {
			t.Fatal("the sync-agent tests need root for network namespaces")
		}
		t.Skip("network namespaces need root")
	}
	// a per-run prefix: tests of several runs (and packages) may overlap
	prefix := "dgit-" + strings.ToLower(rand.Text()[:8])
	n := &NetNS{prefix: prefix, vars: append(vars, "NS_PREFIX="+prefix, fmt.Sprintf("NS_OWNER_PID=%d", os.Getpid()))}
	t.Cleanup(func() {
		if out, err := n.script("down").CombinedOutput(); err != nil {
			t.Errorf("netns.sh down: %v\n%s", err, out)
		}
	})
	if out, err := n.script("up").CombinedOutput(); err != nil {
		t.Fatalf("netns.sh up: %v\n%s", err, out)
	}
	n.Env = LoadFile(t, filepath.Join("/tmp", "dirgate-netns-"+prefix, "env"))
	return n
}

func (n *NetNS) script(args ...string) *exec.Cmd {
	c := exec.Command(scriptPath("netns.sh"), args...)
	c.Env = append(os.Environ(), n.vars...)
	return c
}

// scriptPath is the path of a script of scripts/testenv.
func scriptPath(name string) string {
	_, here, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(here), "..", "..", "scripts", "testenv", name)
}

// Name is the system name of one of the namespaces.
func (n *NetNS) Name(ns Namespace) string { return n.prefix + "-" + string(ns) }

// Addr is the namespace's address on the link between the two.
func (n *NetNS) Addr(t testing.TB, ns Namespace) string {
	t.Helper()
	return n.Env.Get(t, "DIRGATE_NS_"+strings.ToUpper(string(ns))+"_ADDR")
}

// Command prepares a process that runs inside the namespace (through
// `ip netns exec`, which execs: the process's pid is the command's own, so
// signals reach it directly); ctx kills it as in exec.CommandContext.
func (n *NetNS) Command(ctx context.Context, ns Namespace, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name(ns), name}, args...)...)
}

// Nft runs nft inside the namespace and returns its output (reading the
// firewall's counters, for instance).
func (n *NetNS) Nft(t testing.TB, ns Namespace, args ...string) string {
	t.Helper()
	out, err := n.Command(context.Background(), ns, "nft", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("nft %s in %s: %v\n%s", strings.Join(args, " "), ns, err, out)
	}
	return string(out)
}

// in runs f on an OS thread moved into the namespace. A socket belongs to
// the namespace of the thread that creates it, for its whole life, so what
// f dials or listens on stays in the namespace when the thread returns.
func (n *NetNS) in(ns Namespace, f func() error) error {
	target, err := os.Open(filepath.Join("/run/netns", n.Name(ns)))
	if err != nil {
		return fmt.Errorf("namespace %s: %w", ns, err)
	}
	defer target.Close()
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("setns %s: %w", ns, err)
	}
	ferr := f()
	// A thread that cannot return stays locked, so the runtime ends it
	// with the goroutine instead of running other code in the namespace.
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("setns back from %s: %w (%v)", ns, err, ferr)
	}
	runtime.UnlockOSThread()
	return ferr
}

// DialContext opens a connection from inside the namespace. addr must be
// an IP address and port: a name lookup could run on another thread.
func (n *NetNS) DialContext(ctx context.Context, ns Namespace, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := n.in(ns, func() error {
		var err error
		c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// Dialer returns DialContext bound to the namespace, in the shape
// http.Transport and the LDAP client take.
func (n *NetNS) Dialer(ns Namespace) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		return n.DialContext(ctx, ns, network, addr)
	}
}

// Listen opens a listener inside the namespace.
func (n *NetNS) Listen(ns Namespace, network, addr string) (net.Listener, error) {
	var ln net.Listener
	err := n.in(ns, func() error {
		var err error
		ln, err = net.Listen(network, addr)
		return err
	})
	return ln, err
}
