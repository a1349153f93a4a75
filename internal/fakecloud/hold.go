package fakecloud

import (
	"net/http"
	"strings"
	"sync"
	"time"
)

// Hold is a client side gate for tests of what a source does while some
// of its requests are pending: requests whose path contains a given part
// wait until Release is called, or until a timeout passes (which TimedOut
// then reports). It lets a test show that a source overlaps work without
// measuring time.
type Hold struct {
	base    http.RoundTripper
	part    string
	timeout time.Duration

	once     sync.Once
	released chan struct{}
	mu       sync.Mutex
	timedOut bool
}

// NewHold returns a client sending through hc's transport with requests
// whose path contains part held, and the hold.
func NewHold(hc *http.Client, part string, timeout time.Duration) (*http.Client, *Hold) {
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	h := &Hold{base: base, part: part, timeout: timeout, released: make(chan struct{})}
	c := *hc
	c.Transport = h
	return &c, h
}

// Release lets every held request, and those to come, through.
func (h *Hold) Release() { h.once.Do(func() { close(h.released) }) }

// TimedOut reports whether a held request went through only because the
// timeout passed.
func (h *Hold) TimedOut() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.timedOut
}

// RoundTrip implements http.RoundTripper.
func (h *Hold) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.Contains(r.URL.Path, h.part) {
		select {
		case <-h.released:
		case <-time.After(h.timeout):
			h.mu.Lock()
			h.timedOut = true
			h.mu.Unlock()
			h.Release()
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	return h.base.RoundTrip(r)
}
