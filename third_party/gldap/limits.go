// SPDX-License-Identifier: MIT

package gldap

// dirgate patch 16: this file is dirgate's; upstream gldap has no such file.

import (
	"net"
	"net/netip"
	"time"
)

// Limits bound what clients may hold of a server: connections, and how long
// a connection may wait or take to send.  Zero values mean no limit.  A
// running server takes new limits with SetLimits.
type Limits struct {
	// IdleTimeout closes a connection that has waited this long for its
	// next request (see WithIdleTimeout).
	IdleTimeout time.Duration
	// FirstRequestTimeout replaces IdleTimeout until a handler marks the
	// connection established (Request.MarkEstablished, e.g. on a
	// successful bind): a connection that has not started to send a
	// request this long after it was accepted (an LDAPS handshake
	// included), or after its last request was answered, is closed.  It
	// keeps connections that send nothing, or only requests that
	// establish nothing (an anonymous bind, an abandon), from holding
	// slots for a whole IdleTimeout.  A server whose handlers never call
	// MarkEstablished holds every connection to it.  It is capped by
	// IdleTimeout.
	FirstRequestTimeout time.Duration
	// MessageTimeout closes a connection that takes longer than this to
	// send one request once its first byte has arrived, so a client
	// dribbling a byte at a time cannot hold its slot (slowloris).
	MessageTimeout time.Duration
	// MaxConnections caps the open connections (see WithMaxConnections).
	MaxConnections int
	// MaxConnectionsPerAddress caps the open connections from one IP
	// address, so one client cannot take every slot.  IPv6 clients are
	// counted by /64, which one host commonly has to itself.  Connections
	// that have no IP address (e.g. Unix sockets) are not counted.
	MaxConnectionsPerAddress int
}

// RefuseReason says why a server closed a connection at once.
type RefuseReason string

// Reasons for refusing a connection.
const (
	// RefusedMaxConnections: Limits.MaxConnections connections were open.
	RefusedMaxConnections RefuseReason = "max_connections"
	// RefusedPerAddress: Limits.MaxConnectionsPerAddress connections from
	// the client's address were open.
	RefusedPerAddress RefuseReason = "per_address"
)

// OnRefuseHandler is told about every connection refused for a limit.
type OnRefuseHandler func(remote net.Addr, reason RefuseReason)

// WithLimits sets all of the server's limits at once; see Limits.
func WithLimits(l Limits) Option {
	return func(o interface{}) {
		if o, ok := o.(*configOptions); ok {
			o.withLimits = l
		}
	}
}

// WithOnRefuse calls h for every connection refused for a limit, e.g. to
// count them and log them at a rate the caller chooses, instead of the
// server logging each at warn level: clients decide how many there are.
func WithOnRefuse(h OnRefuseHandler) Option {
	return func(o interface{}) {
		if o, ok := o.(*configOptions); ok {
			o.withOnRefuse = h
		}
	}
}

// OnProtocolErrorHandler is told about every connection closed because the
// client sent something that is not a valid LDAP request; err says what.
// dirgate patch 18: OnProtocolErrorHandler and WithOnProtocolError.
type OnProtocolErrorHandler func(remote net.Addr, err error)

// WithOnProtocolError calls h for every connection closed for a protocol
// error (RFC 4511 section 4.1.1, after a Notice of Disconnection), e.g. to
// count them and log them at a rate the caller chooses, instead of the
// server logging each at info level: clients decide how many there are.
func WithOnProtocolError(h OnProtocolErrorHandler) Option {
	return func(o interface{}) {
		if o, ok := o.(*configOptions); ok {
			o.withOnProtocolError = h
		}
	}
}

// SetLimits replaces the limits of a running server; it is safe to call
// while the server serves.  Open connections get the new timeouts from
// their next wait on; connection caps apply to connections accepted from
// now on and close none that are open.
func (s *Server) SetLimits(l Limits) {
	s.limits.Store(&l)
}

// Limits returns the limits in force.
func (s *Server) Limits() Limits {
	return *s.limits.Load()
}

// addrKey is what connections from a is counted by: its IPv4 address
// (IPv4-mapped IPv6 included), or the network of its IPv6 /64, since a host
// commonly has a whole /64 to pick addresses from (dirgate's authn throttle
// groups IPv6 clients the same way).  Invalid when a has no IP address.
func addrKey(a net.Addr) netip.Addr {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.Addr{}
	}
	ip := ta.AddrPort().Addr().Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.Addr()
	}
	return ip
}
