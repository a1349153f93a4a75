package authn

import (
	"context"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/upstream"
)

// Idle connections older than these are closed instead of reused: servers
// drop idle LDAP connections (AD after 900 s by default), and a connection
// opened on the alternate host during a failover should not outlive the
// primary's recovery for long.
const (
	maxIdleTime = 2 * time.Minute
	maxConnAge  = 10 * time.Minute
)

// dialFunc connects to a connector's upstream, failing over from the
// primary to the alternate host.
type dialFunc func(ctx context.Context, t *upstream.Target) (*upstream.BindConn, string, error)

func dialTarget(ctx context.Context, t *upstream.Target) (*upstream.BindConn, string, error) {
	return t.DialBind(ctx)
}

// pool keeps up to size idle connections to one connector's upstream for
// password checks. A connection is only ever used by one check at a time,
// and a bind re-authenticates it, so a connection that last carried Bob's
// successful bind serves Alice's check next. Connections that saw a network
// error, a timeout, or an answer other than success or invalidCredentials
// are closed, never returned.
type pool struct {
	target *upstream.Target
	size   int
	dial   dialFunc
	now    func() time.Time

	mu     sync.Mutex
	idle   []*pooledConn // the most recently returned last
	closed bool
}

type pooledConn struct {
	conn      *upstream.BindConn
	host      string
	created   time.Time
	idleSince time.Time
}

// get returns an idle connection, or dials a new one. Its error, when
// dialing failed on every host, matches upstream.ErrUnreachable.
func (p *pool) get(ctx context.Context) (*pooledConn, error) {
	for {
		p.mu.Lock()
		if len(p.idle) == 0 {
			p.mu.Unlock()
			break
		}
		pc := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		now := p.now()
		p.mu.Unlock()
		// Kept too long, or closed by the server while idle (Alive peeks
		// at the socket, outside the lock).
		if now.Sub(pc.idleSince) > maxIdleTime || now.Sub(pc.created) > maxConnAge || !pc.conn.Alive() {
			pc.conn.Close()
			continue
		}
		return pc, nil
	}
	conn, host, err := p.dial(ctx, p.target)
	if err != nil {
		return nil, err
	}
	return &pooledConn{conn: conn, host: host, created: p.now()}, nil
}

// put returns a connection after a bind that left it usable, or closes it
// when the pool is full or closed.
func (p *pool) put(pc *pooledConn) {
	p.mu.Lock()
	if p.closed || len(p.idle) >= p.size || pc.conn.Broken() {
		p.mu.Unlock()
		pc.conn.Close()
		return
	}
	pc.idleSince = p.now()
	p.idle = append(p.idle, pc)
	p.mu.Unlock()
}

// close closes every idle connection, and makes later puts close theirs.
func (p *pool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.mu.Unlock()
	for _, pc := range idle {
		pc.conn.Close()
	}
}

func (p *pool) idleCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

// check verifies password with a bind as userDN and returns the host that
// answered. It never binds twice: a wrong password costs exactly one failed
// bind upstream, and a failure after the request was sent may follow a
// bind the server counted. Connections the server closed while idle are
// dropped before use (get); a fresh dial fails over from the primary to the
// alternate host.
func (p *pool) check(ctx context.Context, userDN, password string) (string, error) {
	pc, err := p.get(ctx)
	if err != nil {
		return "", &Error{Reason: ReasonUnavailable, Connector: p.target.Name, Err: err}
	}
	err = pc.conn.Bind(ctx, p.target.Timeout, userDN, password)
	if err == nil || ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
		p.put(pc)
	} else {
		pc.conn.Close()
	}
	if err == nil {
		return pc.host, nil
	}
	return pc.host, classify(p.target.Name, err)
}
