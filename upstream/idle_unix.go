//go:build unix

package upstream

import (
	"crypto/tls"
	"errors"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// socketIdle peeks at c's socket without blocking: true when nothing is
// waiting to be read and the peer has not closed or reset it.
func socketIdle(c net.Conn) bool {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	idle := false
	err = rc.Read(func(fd uintptr) bool {
		var buf [1]byte
		_, _, err := unix.Recvfrom(int(fd), buf[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		// Nothing to read is the only healthy answer: 0 bytes is the end
		// of the stream, any byte is unexpected, any other error is fatal.
		idle = errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EWOULDBLOCK)
		return true // never wait for the socket to become readable
	})
	return err == nil && idle
}
