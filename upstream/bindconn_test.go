package upstream

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/internal/ldapstub"
	"github.com/dirgate/dirgate/internal/testpki"
)

// answer writes an LDAPResult of op type tag under message id.
func answer(c net.Conn, id int64, tag ber.Tag, code uint16, diag string) {
	ldapstub.Write(c, id, ldapstub.Result(tag, code, diag), nil)
}

// passwords answers binds: "right" succeeds, anything else is
// invalidCredentials with an AD-style diagnostic.
func passwords(c net.Conn, id int64, op *ber.Packet) bool {
	if op.Tag != ldap.ApplicationBindRequest || len(op.Children) != 3 || op.Children[0].Value.(int64) != 3 {
		return false
	}
	if op.Children[1].Value.(string) == "cn=alice" && op.Children[2].Data.String() == "right" {
		answer(c, id, ldap.ApplicationBindResponse, 0, "")
	} else {
		answer(c, id, ldap.ApplicationBindResponse, ldap.LDAPResultInvalidCredentials, "AcceptSecurityContext error, data 52e, v4563")
	}
	return true
}

func TestBindConn(t *testing.T) {
	cases := []struct {
		name    string
		server  ldapstub.Handler
		ctx     func() (context.Context, context.CancelFunc)
		check   func(t *testing.T, err error)
		broken  bool
		timeout time.Duration // of the bind; 200ms when zero
	}{
		{name: "accepted", server: passwords, check: func(t *testing.T, err error) {
			if err != nil {
				t.Fatal(err)
			}
		}},
		{name: "refused with the server's diagnostic", server: func(c net.Conn, id int64, op *ber.Packet) bool {
			answer(c, id, ldap.ApplicationBindResponse, ldap.LDAPResultInvalidCredentials, "data 775")
			return true
		}, check: func(t *testing.T, err error) {
			var le *ldap.Error
			if !errors.As(err, &le) || le.ResultCode != ldap.LDAPResultInvalidCredentials || !strings.Contains(err.Error(), "data 775") {
				t.Fatalf("got %v", err)
			}
		}},
		{name: "hang-up before the answer", broken: true, server: func(net.Conn, int64, *ber.Packet) bool { return false },
			check: func(t *testing.T, err error) {
				if !errors.Is(err, io.EOF) || !ldap.IsErrorWithCode(err, ldap.ErrorNetwork) {
					t.Fatalf("got %v", err)
				}
			}},
		{name: "notice of disconnection", broken: true, server: func(c net.Conn, id int64, op *ber.Packet) bool {
			n := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationExtendedResponse, nil, "")
			n.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, ldap.LDAPResultUnavailable, ""))
			n.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", ""))
			n.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "shutting down", ""))
			n.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 10, oidNoticeOfDisconnection, ""))
			ldapstub.Write(c, 0, n, nil)
			return false
		}, check: func(t *testing.T, err error) {
			if !ldap.IsErrorWithCode(err, ldap.ErrorNetwork) || !strings.Contains(err.Error(), "notice of disconnection") || !strings.Contains(err.Error(), "shutting down") {
				t.Fatalf("got %v", err)
			}
		}},
		{name: "message 0 that is no notice", broken: true, server: func(c net.Conn, id int64, op *ber.Packet) bool {
			answer(c, 0, ldap.ApplicationBindResponse, 0, "")
			return true
		}, check: func(t *testing.T, err error) {
			if !ldap.IsErrorWithCode(err, ldap.ErrorNetwork) || !strings.Contains(err.Error(), "unexpected answer") {
				t.Fatalf("got %v", err)
			}
		}},
		{name: "answer to another message", broken: true, server: func(c net.Conn, id int64, op *ber.Packet) bool {
			answer(c, id+1, ldap.ApplicationBindResponse, 0, "")
			return true
		}, check: func(t *testing.T, err error) {
			if err == nil || !ldap.IsErrorWithCode(err, ldap.ErrorNetwork) {
				t.Fatalf("got %v", err)
			}
		}},
		{name: "no answer within the timeout", broken: true, server: func(net.Conn, int64, *ber.Packet) bool {
			time.Sleep(time.Second)
			return false
		}, check: func(t *testing.T, err error) {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("got %v", err)
			}
		}},
		{name: "cancelled", broken: true, timeout: 5 * time.Second, server: func(net.Conn, int64, *ber.Packet) bool {
			time.Sleep(time.Second)
			return false
		}, ctx: func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(50*time.Millisecond, cancel)
			return ctx, cancel
		}, check: func(t *testing.T, err error) {
			if !ldap.IsErrorWithCode(err, ldap.ErrorNetwork) {
				t.Fatalf("got %v", err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tg := &Target{Name: "t", Hosts: []string{"127.0.0.1"}, Port: ldapstub.Serve(t, c.server), Encryption: EncryptionNone, Timeout: 2 * time.Second}
			bc, host, err := tg.DialBind(context.Background())
			if err != nil || host != "127.0.0.1" {
				t.Fatalf("dial: %q %v", host, err)
			}
			defer bc.Close()
			ctx, cancel := context.Background(), context.CancelFunc(func() {})
			if c.ctx != nil {
				ctx, cancel = c.ctx()
			}
			defer cancel()
			timeout := c.timeout
			if timeout == 0 {
				timeout = 200 * time.Millisecond
			}
			start := time.Now()
			c.check(t, bc.Bind(ctx, timeout, "cn=alice", "right"))
			if time.Since(start) > 900*time.Millisecond {
				t.Fatalf("Bind took %v", time.Since(start))
			}
			if bc.Broken() != c.broken {
				t.Fatalf("Broken() = %v, want %v", bc.Broken(), c.broken)
			}
		})
	}
}

// TestBindConnReuse checks that one connection carries binds in turn,
// right and wrong, with increasing message IDs.
func TestBindConnReuse(t *testing.T) {
	var (
		mu  sync.Mutex
		ids []int64
	)
	port := ldapstub.Serve(t, func(c net.Conn, id int64, op *ber.Packet) bool {
		mu.Lock()
		ids = append(ids, id)
		mu.Unlock()
		return passwords(c, id, op)
	})
	tg := &Target{Name: "t", Hosts: []string{"127.0.0.1"}, Port: port, Encryption: EncryptionNone, Timeout: time.Second}
	bc, _, err := tg.DialBind(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer bc.Close()
	for i, pw := range []string{"right", "wrong", "right", "Right", "right"} {
		err := bc.Bind(context.Background(), time.Second, "cn=alice", pw)
		if (pw == "right") != (err == nil) || (err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials)) {
			t.Fatalf("bind %d (%q): %v", i, pw, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if bc.Broken() || len(ids) != 5 || ids[0] != 1 || ids[4] != 5 {
		t.Fatalf("broken %v, message IDs %v", bc.Broken(), ids)
	}
}

// TestStartTLS checks the StartTLS exchange before a bind, and a server
// that refuses it.
func TestStartTLS(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cert := ca.Issue(t, key, "127.0.0.1", time.Now().Add(time.Hour))
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)

	offered := ldapstub.Serve(t, func(c net.Conn, id int64, op *ber.Packet) bool {
		if op.Tag != ldap.ApplicationExtendedRequest || op.Children[0].Data.String() != oidStartTLS {
			return false
		}
		answer(c, id, ldap.ApplicationExtendedResponse, 0, "")
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
		if tc.Handshake() != nil {
			return false
		}
		ldapstub.ServeConn(tc, passwords)
		return false
	})
	tg := &Target{Name: "t", Hosts: []string{"127.0.0.1"}, Port: offered, Encryption: EncryptionStrict, TLSMode: TLSModeStartTLS, RootCAs: pool, Timeout: 2 * time.Second}
	bc, _, err := tg.DialBind(context.Background())
	if err != nil {
		t.Fatalf("StartTLS: %v", err)
	}
	defer bc.Close()
	if err := bc.Bind(context.Background(), time.Second, "cn=alice", "right"); err != nil {
		t.Fatalf("bind after StartTLS: %v", err)
	}
	// The go-ldap connection of the sync engine goes the same way.
	lc, _, err := tg.Dial(context.Background())
	if err != nil {
		t.Fatalf("Dial with StartTLS: %v", err)
	}
	if _, ok := lc.TLSConnectionState(); !ok {
		t.Fatal("go-ldap connection does not know it is TLS")
	}
	if err := lc.Bind("cn=alice", "right"); err != nil {
		t.Fatalf("go-ldap bind after StartTLS: %v", err)
	}
	lc.Close()

	refused := ldapstub.Serve(t, func(c net.Conn, id int64, op *ber.Packet) bool {
		answer(c, id, ldap.ApplicationExtendedResponse, ldap.LDAPResultProtocolError, "unsupported extended operation")
		return true
	})
	tg.Port = refused
	_, _, err = tg.DialBind(context.Background())
	var de *DialError
	if !errors.As(err, &de) || de.Step != StepStartTLS || !ldap.IsErrorWithCode(err, ldap.LDAPResultProtocolError) {
		t.Fatalf("refused StartTLS: %v", err)
	}
}

// An answer cut short after its first bytes breaks the connection.
func TestBindConnCutShort(t *testing.T) {
	port := ldapstub.Serve(t, func(c net.Conn, id int64, _ *ber.Packet) bool {
		full := envelope(id, ldapstub.Result(ldap.ApplicationBindResponse, ldap.LDAPResultInvalidCredentials, "")).Bytes()
		_, _ = c.Write(full[:len(full)/2])
		return false
	})
	tg := &Target{Name: "t", Hosts: []string{"127.0.0.1"}, Port: port, Encryption: EncryptionNone, Timeout: time.Second}
	bc, _, err := tg.DialBind(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer bc.Close()
	err = bc.Bind(context.Background(), time.Second, "cn=alice", "wrong")
	if !errors.Is(err, io.ErrUnexpectedEOF) || !ldap.IsErrorWithCode(err, ldap.ErrorNetwork) || !bc.Broken() {
		t.Fatalf("got %v, broken %v", err, bc.Broken())
	}
}

// FuzzBindAnswer feeds arbitrary answers to a bind: never a panic, and
// only a well-formed answer to the bind leaves the connection usable.
func FuzzBindAnswer(f *testing.F) {
	ok := envelope(1, ldapstub.Result(ldap.ApplicationBindResponse, 0, "")).Bytes()
	f.Add(ok)
	f.Add(envelope(1, ldapstub.Result(ldap.ApplicationBindResponse, ldap.LDAPResultInvalidCredentials, "data 52e")).Bytes())
	f.Add(envelope(0, ldapstub.Result(ldap.ApplicationExtendedResponse, ldap.LDAPResultUnavailable, "bye")).Bytes())
	f.Add(ok[:len(ok)-1])
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ber.DecodePacketErr(data)
		if err != nil {
			return
		}
		b := &BindConn{msgID: 1}
		err = b.answer(p, ldap.ApplicationBindResponse)
		if !b.Broken() && err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
			var le *ldap.Error
			if !errors.As(err, &le) || le.ResultCode == ldap.ErrorNetwork {
				t.Fatalf("usable after %v", err)
			}
		}
	})
}

// Alive tells an idle connection the server closed, or wrote to, from a
// healthy one, without blocking; an empty password is refused without a
// request.
func TestBindConnAlive(t *testing.T) {
	var binds sync.WaitGroup
	hangUp, notice := make(chan struct{}), make(chan struct{})
	port := ldapstub.Serve(t, func(c net.Conn, id int64, op *ber.Packet) bool {
		passwords(c, id, op)
		binds.Done()
		switch op.Children[2].Data.String() {
		case "then hang up":
			<-hangUp
			return false
		case "then notice":
			<-notice
			n := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationExtendedResponse, nil, "")
			n.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, ldap.LDAPResultUnavailable, ""))
			ldapstub.Write(c, 0, n, nil)
		}
		return true
	})
	tg := &Target{Name: "t", Hosts: []string{"127.0.0.1"}, Port: port, Encryption: EncryptionNone, Timeout: time.Second}
	dial := func(pw string) *BindConn {
		bc, _, err := tg.DialBind(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		binds.Add(1)
		if err := bc.Bind(context.Background(), time.Second, "cn=alice", pw); !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
			t.Fatalf("bind: %v", err)
		}
		binds.Wait()
		return bc
	}
	healthy := dial("wrong")
	defer healthy.Close()
	if !healthy.Alive() {
		t.Fatal("a healthy idle connection is not alive")
	}
	if err := healthy.Bind(context.Background(), time.Second, "cn=alice", ""); !ldap.IsErrorWithCode(err, ldap.ErrorEmptyPassword) || healthy.Broken() {
		t.Fatalf("empty password: %v", err)
	}
	closed, noticed := dial("then hang up"), dial("then notice")
	defer closed.Close()
	defer noticed.Close()
	close(hangUp)
	close(notice)
	deadline := time.Now().Add(2 * time.Second)
	for (closed.Alive() || noticed.Alive()) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if closed.Alive() || noticed.Alive() || !closed.Broken() || !noticed.Broken() {
		t.Fatalf("alive after the server closed it: %v, after a notice: %v", closed.Alive(), noticed.Alive())
	}
}
