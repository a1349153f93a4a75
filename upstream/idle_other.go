//go:build !unix

package upstream

import "net"

// socketIdle cannot peek here; a connection the server closed fails on
// its next bind instead.
func socketIdle(net.Conn) bool { return true }
