package cloudapi

import (
	"net/http"
	"time"

	"github.com/dirgate/dirgate/clock"
)

// Option adjusts how a cloud source reaches its API: tests give a fake's
// client (trusting its test CA) and a fake clock.
type Option func(*Options)

// Options are what a cloud source's requests go through: the HTTP client
// for its token and API requests, and the clock waited on for
// Retry-After, backoff and budgets and read for token expiry.
type Options struct {
	HTTP  *http.Client
	Clock clock.Clock
}

// WithHTTPClient sends the token and API requests through hc.
func WithHTTPClient(hc *http.Client) Option { return func(o *Options) { o.HTTP = hc } }

// WithClock sets the clock.
func WithClock(c clock.Clock) Option { return func(o *Options) { o.Clock = c } }

// MaxConnsPerHost is how many idle connections to its API a source's
// client keeps: one per request a source has in flight at once (Google's
// users listing beside its member listings), where the default two had
// the others reconnect, a TLS handshake each, for every request.
const MaxConnsPerHost = 8

// NewOptions applies opts over a client with the given timeout and the
// real clock.
func NewOptions(timeout time.Duration, opts ...Option) Options {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = MaxConnsPerHost
	o := Options{HTTP: &http.Client{Timeout: timeout, Transport: t}, Clock: clock.Real}
	for _, f := range opts {
		f(&o)
	}
	return o
}
