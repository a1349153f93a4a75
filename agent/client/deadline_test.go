package client

import (
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/agent/wire"
	"github.com/dirgate/dirgate/internal/ldapstub"
)

// A check's time limit is the time left when the hub sent it, not the
// hub's deadline read on the agent's clock: an agent whose clock is 20s
// ahead of the hub's saw every check of a 15s bind timeout as already
// late and never asked the directory.
func TestCheckDeadlineClockSkew(t *testing.T) {
	var binds atomic.Int32
	port := ldapstub.Serve(t, func(c net.Conn, id int64, op *ber.Packet) bool {
		if op.Tag != ldap.ApplicationBindRequest {
			return false
		}
		binds.Add(1)
		ldapstub.Write(c, id, ldapstub.Result(ldap.ApplicationBindResponse, ldap.LDAPResultSuccess, ""), nil)
		return true
	})
	connector := strings.Replace(offlineConnector, "port: 9", fmt.Sprintf("port: %d", port), 1)
	hub := newFakeHub(t, "corp")
	c, _ := enrolled(t, hub, hub.url, agentFile(t, hub.url, connector))
	for _, skew := range []time.Duration{0, 20 * time.Second, -20 * time.Second} {
		const timeout = 15 * time.Second
		before := binds.Load()
		// The hub's deadline as the skewed agent's clock reads it.
		id := hub.send(t, c, &wire.Request{Kind: wire.KindCheck, Deadline: time.Now().Add(timeout).Add(-skew), Timeout: timeout,
			Check: &wire.CheckRequest{DN: "uid=a,dc=corp,dc=example", Password: "right"}}, nil)
		if r := hub.result(t, id); r.Error != nil {
			t.Errorf("agent clock %v off the hub's: %v", skew, r.Error.Err("corp"))
		}
		if binds.Load() == before {
			t.Errorf("agent clock %v off the hub's: the directory was not asked", skew)
		}
	}
}
