package readbuf

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
)

// chunkConn is a net.Conn whose reads return at most the next chunk, and
// counts them.
type chunkConn struct {
	net.Conn
	chunks [][]byte
	err    error // after the last chunk, returned with it
	reads  int
}

func (c *chunkConn) Read(p []byte) (int, error) {
	c.reads++
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	c.chunks[0] = c.chunks[0][n:]
	if len(c.chunks[0]) == 0 {
		c.chunks = c.chunks[1:]
		if len(c.chunks) == 0 && c.err != nil {
			return n, c.err
		}
	}
	return n, nil
}

func TestVersionLineIsOneRead(t *testing.T) {
	banner := "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"
	packet := bytes.Repeat([]byte{7}, 3000)
	under := &chunkConn{chunks: [][]byte{append([]byte(banner), packet[:100]...), packet[100:]}}
	c := New(under)

	var line []byte
	var b [1]byte
	for len(line) == 0 || line[len(line)-1] != '\n' {
		if _, err := io.ReadFull(c, b[:]); err != nil {
			t.Fatalf("reading the banner: %v", err)
		}
		line = append(line, b[0])
	}
	if string(line) != banner {
		t.Fatalf("banner = %q, want %q", line, banner)
	}
	if under.reads != 1 {
		t.Fatalf("the %d-byte banner took %d reads of the connection, want 1", len(banner), under.reads)
	}

	// The rest of the first read comes out first, then large reads pass
	// through: order and content are kept.
	rest := make([]byte, 4096)
	got, err := io.ReadFull(c, rest[:len(packet)])
	if err != nil || !bytes.Equal(rest[:got], packet) {
		t.Fatalf("after the banner: %d bytes, err %v; want the %d-byte packet", got, err, len(packet))
	}
	if under.reads != 2 {
		t.Fatalf("reads = %d, want 2 (the buffered remainder, then one large read)", under.reads)
	}
	if n, err := c.Read(rest); n != 0 || err != io.EOF {
		t.Fatalf("at the end: %d, %v; want 0, EOF", n, err)
	}
}

func TestErrorAfterBufferedBytes(t *testing.T) {
	boom := errors.New("connection reset")
	c := New(&chunkConn{chunks: [][]byte{[]byte("ab")}, err: boom})
	var b [1]byte
	for _, want := range "ab" {
		if n, err := c.Read(b[:]); n != 1 || err != nil || b[0] != byte(want) {
			t.Fatalf("Read = %d %q %v, want 1 %q nil", n, b[:n], err, want)
		}
	}
	if n, err := c.Read(b[:]); n != 0 || err != boom {
		t.Fatalf("after the bytes: %d, %v; want 0, %v", n, err, boom)
	}
	if n, err := c.Read(nil); n != 0 || err != nil {
		t.Fatalf("empty read: %d, %v", n, err)
	}
}
