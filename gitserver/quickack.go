package gitserver

import (
	"net"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// quickAckConn keeps the kernel from delaying its ACKs of what the client
// sends during the handshake. OpenSSH's client leaves Nagle on for a
// non-interactive session, so it holds a small packet until its previous
// one is acknowledged. Twice in the handshake it sends two packets in a
// row to which the server has nothing to answer in between: its KEXINIT
// and then its key-exchange init, and NEWKEYS and then the service
// request. Linux delays that ACK by 40 ms. So every `ssh conductor …`
// took 40 or 80 ms longer than its work (a median of 58 ms instead of
// 15 ms here; bench/ssh.sh client). TCP_QUICKACK is not sticky, so it is
// set again after each read until the client has authenticated. After
// that, each request gets an answer that carries the ACK.
type quickAckConn struct {
	*net.TCPConn
	reads atomic.Int32
	done  atomic.Bool
}

// quickAckReads bounds the re-arming when nothing ends the handshake phase
// (no handshake timeout configured).
const quickAckReads = 128

// newQuickAckConn wraps a TCP connection; anything else gets nil.
func newQuickAckConn(c net.Conn) *quickAckConn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	q := &quickAckConn{TCPConn: tc}
	q.quickAck()
	return q
}

func (c *quickAckConn) Read(p []byte) (int, error) {
	n, err := c.TCPConn.Read(p)
	if !c.done.Load() && c.reads.Add(1) <= quickAckReads {
		c.quickAck()
	}
	return n, err
}

// authenticated ends the re-arming.
func (c *quickAckConn) authenticated() { c.done.Store(true) }

func (c *quickAckConn) quickAck() {
	raw, err := c.SyscallConn()
	if err != nil {
		return
	}
	_ = raw.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1)
	})
}
