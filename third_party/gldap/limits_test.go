// SPDX-License-Identifier: MIT

package gldap

import (
	"errors"
	"maps"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/hashicorp/go-hclog"
)

// The idle timeout in these tests is far longer than any test runs, so a
// connection closed within it was closed by the limit under test.
const longIdle = time.Minute

// establishingBind accepts every bind, but only a named one establishes
// the connection, as a server that serves anonymous sessions nothing would.
func establishingBind(w *ResponseWriter, r *Request) {
	if m, err := r.GetSimpleBindMessage(); err == nil && m.UserName != "" {
		r.MarkEstablished()
	}
	bindSuccess(w, r)
}

func anonymousBindOp() *ber.Packet {
	op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ApplicationBindRequest, nil, "Bind Request")
	op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 3, "Version"))
	op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", "User Name"))
	op.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, "", "Password"))
	return op
}

func abandonOp() *ber.Packet {
	return ber.NewInteger(ber.ClassApplication, ber.TypePrimitive, ApplicationAbandonRequest, 7, "Abandon Request")
}

// unestablished are what a client can send without establishing its
// connection (see establishingBind): nothing, one anonymous bind, one
// abandon (which gets no answer).
var unestablished = []struct {
	name string
	send func(*rawConn)
}{
	{"silent", func(*rawConn) {}},
	{"anonymous bind", func(c *rawConn) { c.send(1, anonymousBindOp()); c.mustRead() }},
	{"abandon", func(c *rawConn) { c.send(1, abandonOp()) }},
}

// TestFirstRequestTimeout: until a handler marks it established, a
// connection waits under the first-request timeout, not the idle timeout:
// one that sends nothing, or only requests that establish nothing, is
// closed after it; an established one may then wait longer than that.
func TestFirstRequestTimeout(t *testing.T) {
	const first = 300 * time.Millisecond
	mux := newTestMux(t)
	must(t, mux.Bind(establishingBind))
	_, addr := startServer(t, mux, WithLimits(Limits{IdleTimeout: longIdle, FirstRequestTimeout: first}))

	active := dialRaw(t, addr)
	active.bound(1)

	for _, tc := range unestablished {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, addr)
			tc.send(c)
			start := time.Now()
			c.expectClosed()
			if waited := time.Since(start); waited < first/2 {
				t.Fatalf("closed after %v, before the first-request timeout", waited)
			}
		})
	}

	time.Sleep(2 * first)
	active.bound(2)
}

// TestMessageTimeout: a client sending its request a byte at a time is cut
// off after the message timeout, though each byte comes well within the
// idle timeout; a large request sent at once still gets through.
func TestMessageTimeout(t *testing.T) {
	const msg = 300 * time.Millisecond
	mux := newTestMux(t)
	must(t, mux.Bind(bindSuccess))
	must(t, mux.Search(func(w *ResponseWriter, r *Request) {
		_ = w.Write(r.NewSearchDoneResponse(WithResponseCode(ResultSuccess)))
	}))
	_, addr := startServer(t, mux, WithLimits(Limits{IdleTimeout: longIdle, MessageTimeout: msg}))

	big := dialRaw(t, addr)
	big.send(1, searchOp(t, "dc="+string(make([]byte, 64<<10))))
	if _, _, code := resultOf(t, big.mustRead()); code != ResultSuccess {
		t.Fatalf("large search: code %d", code)
	}

	// About 40 bytes at a third of the timeout each: without the limit
	// the request completes after some 13 timeouts and is answered.
	slow := dialRaw(t, addr)
	for _, b := range message(1, simpleBindOp()) {
		if _, err := slow.Write([]byte{b}); err != nil {
			break // closed, as it should be
		}
		time.Sleep(msg / 3)
	}
	slow.expectClosed()
}

// refusals records what WithOnRefuse reports.
type refusals struct {
	mu  sync.Mutex
	got []RefuseReason
}

func (r *refusals) record(_ net.Addr, reason RefuseReason) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, reason)
}

func (r *refusals) reasons() []RefuseReason {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]RefuseReason(nil), r.got...)
}

// dialFrom connects to addr from the loopback address local.
func dialFrom(t *testing.T, local, addr string) *rawConn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", addr)
	must(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return &rawConn{t: t, Conn: c}
}

// bound asserts c is served: a bind succeeds.
func (c *rawConn) bound(id int64) {
	c.t.Helper()
	c.send(id, simpleBindOp())
	if _, _, code := resultOf(c.t, c.mustRead()); code != ResultSuccess {
		c.t.Fatalf("bind: code %d", code)
	}
}

// TestMaxConnectionsPerAddress: the N+1th connection from one address is
// refused while another address still connects, and a closed connection
// frees its address's slot.
func TestMaxConnectionsPerAddress(t *testing.T) {
	var refused refusals
	mux := newTestMux(t)
	must(t, mux.Bind(bindSuccess))
	s, addr := startServer(t, mux, WithLimits(Limits{MaxConnectionsPerAddress: 2}), WithOnRefuse(refused.record))

	first := dialFrom(t, "127.0.0.1", addr)
	first.bound(1)
	dialFrom(t, "127.0.0.1", addr).bound(1)
	dialFrom(t, "127.0.0.1", addr).expectClosed()
	if got := refused.reasons(); len(got) != 1 || got[0] != RefusedPerAddress {
		t.Fatalf("refusals %v, want one %s", got, RefusedPerAddress)
	}
	dialFrom(t, "127.0.0.2", addr).bound(1)

	must(t, first.Close())
	waitFor(t, 5*time.Second, func() bool {
		s.mu.RLock()
		defer s.mu.RUnlock()
		return s.perAddress[addrKey(first.LocalAddr())] == 1
	})
	dialFrom(t, "127.0.0.1", addr).bound(1)
}

// TestIdleConnectionsDoNotStarveClients: connections that never establish
// themselves fill every slot (two addresses' per-address shares) only until
// the first-request timeout; a real client then gets in.
func TestIdleConnectionsDoNotStarveClients(t *testing.T) {
	// Long enough for 20 connections to be opened, each after the last
	// one's request was answered, on a loaded machine.
	const first = 3 * time.Second
	for _, tc := range unestablished {
		t.Run(tc.name, func(t *testing.T) {
			var refused refusals
			mux := newTestMux(t)
			must(t, mux.Bind(establishingBind))
			_, addr := startServer(t, mux, WithLimits(Limits{
				IdleTimeout: longIdle, FirstRequestTimeout: first, MaxConnections: 20, MaxConnectionsPerAddress: 10,
			}), WithOnRefuse(refused.record))
			for _, from := range []string{"127.0.0.1", "127.0.0.3"} {
				for range 10 {
					tc.send(dialFrom(t, from, addr))
				}
			}
			// Accepted in order, so after the 20 hogs: refused if they hold
			// every slot.
			dialFrom(t, "127.0.0.2", addr).expectClosed()
			if got := refused.reasons(); len(got) != 1 || got[0] != RefusedMaxConnections {
				t.Fatalf("refusals %v, want one %s: the hogs do not hold every slot", got, RefusedMaxConnections)
			}
			waitFor(t, 30*time.Second, func() bool {
				c := dialFrom(t, "127.0.0.2", addr)
				c.send(1, simpleBindOp())
				p, err := c.read()
				return err == nil && p != nil
			})
		})
	}
}

// TestAddrKey: connections are counted by IPv4 address, IPv4-mapped IPv6
// as IPv4, and by the /64 of other IPv6 addresses, which one host commonly
// has to itself (as authn's throttle assumes).
func TestAddrKey(t *testing.T) {
	for _, tc := range []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 389}, "192.0.2.7"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.7"), Port: 389}, "192.0.2.7"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), Port: 389}, "2001:db8:1:2::"},
		{&net.TCPAddr{IP: net.ParseIP("::1"), Port: 389}, "::"},
		{&net.TCPAddr{IP: net.ParseIP("fe80::1"), Zone: "eth0", Port: 389}, "fe80::"},
		{&net.UnixAddr{Name: "/run/ldap.sock", Net: "unix"}, "invalid IP"},
	} {
		if got := addrKey(tc.addr).String(); got != tc.want {
			t.Errorf("addrKey(%v) = %s, want %s", tc.addr, got, tc.want)
		}
	}
}

// pipeConn is a net.Pipe end that claims to come from remote.
type pipeConn struct {
	net.Conn
	remote net.Addr
}

func (c pipeConn) RemoteAddr() net.Addr { return c.remote }

// TestMaxConnectionsPerAddressIPv6: the addresses of one IPv6 /64 share one
// per-address cap, and an IPv4 client counts the same whether it comes as
// IPv4 or IPv4-mapped IPv6.  The loopback has one IPv6 address only, so the
// connections are pipes that claim their addresses.
func TestMaxConnectionsPerAddressIPv6(t *testing.T) {
	var refused refusals
	s, err := NewServer(WithLogger(hclog.NewNullLogger()), WithLimits(Limits{MaxConnectionsPerAddress: 2}), WithOnRefuse(refused.record))
	must(t, err)
	t.Cleanup(func() { _ = s.Stop() })
	for _, ip := range []string{
		"2001:db8::1", "2001:db8::2:3", "2001:db8::4", // the third refused
		"2001:db8:0:1::1",                            // another /64
		"::ffff:192.0.2.1", "192.0.2.1", "192.0.2.1", // the third refused
	} {
		client, server := net.Pipe()
		t.Cleanup(func() { _ = client.Close() })
		s.serveConn(pipeConn{Conn: server, remote: &net.TCPAddr{IP: net.ParseIP(ip), Port: 50000}})
	}
	if got := refused.reasons(); len(got) != 2 || got[0] != RefusedPerAddress || got[1] != RefusedPerAddress {
		t.Errorf("refusals %v, want two %s", got, RefusedPerAddress)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	want := map[netip.Addr]int{
		netip.MustParseAddr("2001:db8::"):     2,
		netip.MustParseAddr("2001:db8:0:1::"): 1,
		netip.MustParseAddr("192.0.2.1"):      2,
	}
	if !maps.Equal(s.perAddress, want) {
		t.Errorf("open connections by address %v, want %v", s.perAddress, want)
	}
}

// TestOnProtocolError: a connection closed for a protocol error is
// reported to the handler, which then decides what is logged: the server
// logs nothing of it itself.
func TestOnProtocolError(t *testing.T) {
	type report struct {
		remote string
		err    error
	}
	var (
		mu  sync.Mutex
		got []report
	)
	logger, logs := bufferLogger(hclog.Info)
	_, addr := startServer(t, newTestMux(t), WithLogger(logger), WithOnProtocolError(func(remote net.Addr, err error) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, report{remote.String(), err})
	}))
	c := dialRaw(t, addr)
	c.sendBytes([]byte{0x04, 0x00}) // an OCTET STRING, not an LDAPMessage
	expectNotice(t, c.mustRead(), ResultProtocolError)
	c.expectClosed()

	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0].remote != c.LocalAddr().String() || !errors.Is(got[0].err, errProtocol) {
		t.Fatalf("reports %+v, want one protocol error from %s", got, c.LocalAddr())
	}
	if strings.Contains(logs.String(), "protocol error") {
		t.Errorf("the server logged the protocol error itself:\n%s", logs)
	}
}

// TestSetLimits: limits changed on a running server apply to new
// connections and to the next wait of open ones.
func TestSetLimits(t *testing.T) {
	var refused refusals
	mux := newTestMux(t)
	must(t, mux.Bind(bindSuccess))
	s, addr := startServer(t, mux, WithLimits(Limits{IdleTimeout: longIdle, MaxConnections: 1}), WithOnRefuse(refused.record))

	open := dialRaw(t, addr)
	open.bound(1)
	dialRaw(t, addr).expectClosed()
	if got := refused.reasons(); len(got) != 1 || got[0] != RefusedMaxConnections {
		t.Fatalf("refusals %v, want one %s", got, RefusedMaxConnections)
	}

	s.SetLimits(Limits{IdleTimeout: 300 * time.Millisecond, MaxConnections: 2})
	if got := s.Limits().MaxConnections; got != 2 {
		t.Fatalf("Limits().MaxConnections = %d", got)
	}
	dialRaw(t, addr).bound(1)
	// The open connection takes the shorter idle timeout with its next wait.
	open.bound(2)
	open.expectClosed()
}
