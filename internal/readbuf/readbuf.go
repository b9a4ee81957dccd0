// Package readbuf answers small reads of a connection from a buffer.
//
// golang.org/x/crypto/ssh reads the other side's version line one byte at
// a time, straight from the connection (readVersion in its transport.go):
// OpenSSH's 41-byte banner costs 41 read(2) calls before the key exchange
// starts. After the version it reads through its own 4 KiB bufio.Reader,
// and reads that large pass straight through here once the buffer is
// empty.
package readbuf

import "net"

// Size is the buffer, and the smallest read that bypasses it. An SSH
// version line is at most 255 bytes.
const Size = 512

// Conn is a net.Conn whose reads smaller than Size are answered from a
// buffer filled by one read of up to Size bytes. Reads must come from one
// goroutine at a time, as they do in x/crypto/ssh.
type Conn struct {
	net.Conn
	buf  []byte
	r, w int
	err  error // from the read that filled buf; returned once buf is drained
}

// New wraps c.
func New(c net.Conn) *Conn { return &Conn{Conn: c} }

// Read returns buffered bytes first, then reads from the connection.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if c.r == c.w {
		if err := c.err; err != nil {
			c.err = nil
			return 0, err
		}
		if len(p) >= Size {
			return c.Conn.Read(p)
		}
		if c.buf == nil {
			c.buf = make([]byte, Size)
		}
		n, err := c.Conn.Read(c.buf)
		if n == 0 {
			return 0, err
		}
		c.r, c.w, c.err = 0, n, err
	}
	n := copy(p, c.buf[c.r:c.w])
	c.r += n
	return n, nil
}
