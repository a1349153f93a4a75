// SPDX-License-Identifier: MIT

package gldap

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// dirgate patch: with WithSerialRequests, pipelined requests on one
// connection are all answered, one at a time; without it they overlap.
func TestSerialRequests(t *testing.T) {
	for _, serial := range []bool{true, false} {
		var running, most atomic.Int32
		mux := newTestMux(t)
		must(t, mux.Search(func(w *ResponseWriter, r *Request) {
			n := running.Add(1)
			for {
				m := most.Load()
				if n <= m || most.CompareAndSwap(m, n) {
					break
				}
			}
			time.Sleep(20 * time.Millisecond)
			running.Add(-1)
			_ = w.Write(r.NewSearchDoneResponse(WithResponseCode(ResultSuccess)))
		}))
		var opts []Option
		if serial {
			opts = append(opts, WithSerialRequests())
		}
		_, addr := startServer(t, mux, opts...)
		c := dialLDAP(t, addr)
		var wg sync.WaitGroup
		errs := make(chan error, 5)
		for range 5 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := c.Search(ldap.NewSearchRequest("dc=y", ldap.ScopeWholeSubtree, 0, 0, 0, false, "(objectClass=*)", nil, nil))
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			must(t, err)
		}
		if got := most.Load(); serial && got != 1 || !serial && got < 2 {
			t.Errorf("serial=%v: %d handlers ran at once", serial, got)
		}
	}
}
