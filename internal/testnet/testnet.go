// Package testnet runs throw-away servers for tests.
package testnet

import (
	"net"
	"testing"
)

// Serve accepts connections on ln until the test ends, handing each to
// handle on a goroutine of its own, and returns ln's port.
func Serve(t testing.TB, ln net.Listener, handle func(net.Conn)) int {
	t.Helper()
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}
