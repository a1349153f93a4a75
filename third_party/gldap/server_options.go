// Copyright (c) Jim Lambert
// SPDX-License-Identifier: MIT

package gldap

import (
	"crypto/tls"
	"time"

	"github.com/hashicorp/go-hclog"
)

type configOptions struct {
	withTLSConfig            *tls.Config
	withLogger               hclog.Logger
	withSerialRequests       bool // dirgate patch 12
	withWriteTimeout         time.Duration
	withShutdownTimeout      time.Duration          // dirgate patch 6
	withLimits               Limits                 // dirgate patch 5, 7 and 16
	withOnRefuse             OnRefuseHandler        // dirgate patch 16
	withOnProtocolError      OnProtocolErrorHandler // dirgate patch 18
	withMaxPacketSize        int                    // dirgate patch 8
	withDisablePanicRecovery bool
	withOnClose              OnCloseHandler
}

// defaultShutdownTimeout bounds how long Stop waits for in-flight requests
// before it force-closes the remaining connections.
// dirgate patch 6
const defaultShutdownTimeout = 5 * time.Second

func configDefaults() configOptions {
	return configOptions{
		withShutdownTimeout: defaultShutdownTimeout, // dirgate patch 6
	}
}

// getConfigOpts gets the defaults and applies the opt overrides passed
// in.
func getConfigOpts(opt ...Option) configOptions {
	opts := configDefaults()
	applyOpts(&opts, opt...)
	return opts
}

// WithLogger provides the optional logger.
func WithLogger(l hclog.Logger) Option {
	return func(o interface{}) {
		if o, ok := o.(*configOptions); ok {
			o.withLogger = l
		}
	}
}

// WithTLSConfig provides an optional tls.Config
func WithTLSConfig(tc *tls.Config) Option {
	return func(o interface{}) {
		switch v := o.(type) {
		case *configOptions:
			v.withTLSConfig = tc
		}
	}
}

// WithIdleTimeout closes a connection once it has waited d for the client's
// next request.  The read deadline is re-armed before every request read, so a
// client that keeps sending requests is never cut off, and a connection with a
// request still being handled is not considered idle.  Zero (the default)
// disables the timeout.
// dirgate patch 5 (a field of Limits since patch 16).
func WithIdleTimeout(d time.Duration) Option {
	return func(o interface{}) {
		if o, ok := o.(*configOptions); ok {
			o.withLimits.IdleTimeout = d
		}
	}
}

// WithSerialRequests handles a connection's requests one after the other
// on the goroutine that reads them, instead of starting a goroutine per
// request: a request is then answered without waking another thread, and
// the next one is read when it is done. For servers whose handlers are
// quick; a client that pipelines requests gets its answers in order.
// dirgate patch 12
func WithSerialRequests() Option {
	return func(o interface{}) {
		if o, ok := o.(*configOptions); ok {
			o.withSerialRequests = true
		}
	}
}

// WithReadTimeout is an alias of WithIdleTimeout.  Upstream gldap set a single
// absolute read deadline when the connection was accepted, which cut off every
// long-lived connection, however busy, after d; it now has idle semantics.
// dirgate patch 5
func WithReadTimeout(d time.Duration) Option {
	return WithIdleTimeout(d)
}

// WithWriteTimeout bounds each write of buffered responses to the network: the
// write deadline is set to now+d before every flush.  A write that times out
// closes the connection, since a partially written response leaves the stream
// unusable.
// dirgate patch 5: per flush, not per connection.
func WithWriteTimeout(d time.Duration) Option {
	return func(o interface{}) {
		if o, ok := o.(*configOptions); ok {
			o.withWriteTimeout = d
		}
	}
}

// WithDisablePanicRecovery will disable recovery from panics which occur when
// handling a request.  This is helpful for debugging since you'll get the
// panic's callstack.
func WithDisablePanicRecovery() Option {
	return func(o interface{}) {
		if o, ok := o.(*configOptions); ok {
			o.withDisablePanicRecovery = true
		}
	}
}

// OnCloseHandler defines a function for a "on close" callback handler.  See:
// NewServer(...) and WithOnClose(...) option for more information
type OnCloseHandler func(connectionID int)

// WithOnClose defines a OnCloseHandler that the server will use as a callback
// every time a connection to the server is closed.   This allows callers to
// clean up resources for closed connections (using their ID to determine which
// one to clean up)
func WithOnClose(handler OnCloseHandler) Option {
	return func(o interface{}) {
		if o, ok := o.(*configOptions); ok {
			o.withOnClose = handler
		}
	}
}

// WithShutdownTimeout bounds how long Stop waits for in-flight requests to
// complete before it force-closes the remaining connections (default 5s).
// dirgate patch 6
func WithShutdownTimeout(d time.Duration) Option {
	return func(o interface{}) {
		if o, ok := o.(*configOptions); ok {
			o.withShutdownTimeout = d
		}
	}
}

// WithMaxConnections caps the number of concurrently open client connections.
// A connection accepted while n are open is closed at once (see WithOnRefuse)
// rather than left waiting in the accept queue, so clients fail fast instead
// of hanging.  Zero (the default) means no limit.
// dirgate patch 7 (a field of Limits since patch 16).
func WithMaxConnections(n int) Option {
	return func(o interface{}) {
		if o, ok := o.(*configOptions); ok {
			o.withLimits.MaxConnections = n
		}
	}
}

// WithMaxPacketSize caps the encoded size, in bytes, of a single LDAP message
// read from a client.  The limit is checked against the message's declared
// length before its body is read, per connection, without touching the global
// ber.MaxPacketLengthBytes.  A message over the limit is answered with a Notice
// of Disconnection (protocolError) and the connection is closed.  Zero (the
// default) means only ber.MaxPacketLengthBytes applies.
// dirgate patch 8
func WithMaxPacketSize(bytes int) Option {
	return func(o interface{}) {
		if o, ok := o.(*configOptions); ok {
			o.withMaxPacketSize = bytes
		}
	}
}
