package gitserver

import (
	"io"
	"sync"
	"time"
)

// Each Write on an SSH channel is its own packet: encrypted, MACed and sent
// with a write(2). Commands print line by line, so `apps` or `logs` would
// send a packet per line. A coalescer gathers a command's output into a
// few packets while still streaming: what it holds goes out when it
// reaches coalesceSize, coalesceDelay after the first byte it holds (so
// `logs -f` lines still arrive at once to a person), and when the command
// ends.
const (
	coalesceSize  = 32 << 10 // x/crypto's largest channel packet payload
	coalesceDelay = 10 * time.Millisecond
)

type coalescer struct {
	w io.Writer

	mu    sync.Mutex
	buf   []byte
	timer *time.Timer // armed while buf holds bytes
	err   error       // the first failed write to w; later writes return it
}

func newCoalescer(w io.Writer) *coalescer { return &coalescer{w: w} }

func (c *coalescer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if len(c.buf)+len(p) > coalesceSize {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
		if len(p) >= coalesceSize {
			// Too big to gather: send it as it is.
			n, err := c.w.Write(p)
			c.err = err
			return n, err
		}
	}
	c.buf = append(c.buf, p...)
	if c.timer == nil {
		c.timer = time.AfterFunc(coalesceDelay, func() { _ = c.Flush() })
	}
	return len(p), nil
}

// Flush sends what the coalescer holds.
func (c *coalescer) Flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.flushLocked()
}

func (c *coalescer) flushLocked() error {
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	if c.err != nil || len(c.buf) == 0 {
		return c.err
	}
	_, c.err = c.w.Write(c.buf)
	c.buf = c.buf[:0]
	return c.err
}

// flushFirst is the other stream of a coalesced session: the coalescer's
// bytes go out before each write here, so an error printed after some
// output still reaches the terminal after it.
type flushFirst struct {
	io.ReadWriter
	before *coalescer
}

func (f flushFirst) Write(p []byte) (int, error) {
	_ = f.before.Flush() // its error is the output's, not this stream's
	return f.ReadWriter.Write(p)
}

// coalescedSession is a session whose output is coalesced.
type coalescedSession struct {
	session
	out *coalescer
}

func coalesce(sess session) *coalescedSession {
	return &coalescedSession{session: sess, out: newCoalescer(sess)}
}

func (c *coalescedSession) Write(p []byte) (int, error) { return c.out.Write(p) }

func (c *coalescedSession) Stderr() io.ReadWriter {
	return flushFirst{ReadWriter: c.session.Stderr(), before: c.out}
}
