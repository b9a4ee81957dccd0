package gitserver

import (
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/hasadna/conductor"
)

// preauthLimiter counts connections that have not authenticated yet,
// overall and per source (an IPv4 address, or an IPv6 /64, what one host
// usually has). Anyone on the network can open them, and each holds a
// socket, a goroutine and buffers until the handshake timeout: the caps
// bound what a flood can hold. A connection over a cap is refused at once
// (refuse), before any key exchange.
type preauthLimiter struct {
	max, maxPerSource int

	mu        sync.Mutex
	total     int
	perSource map[netip.Prefix]int

	log refusalLog
}

func newPreauthLimiter(max, maxPerSource int) *preauthLimiter {
	return &preauthLimiter{max: max, maxPerSource: maxPerSource, perSource: map[netip.Prefix]int{}}
}

// source is what the per-source cap counts addr as.
func source(addr net.Addr) netip.Prefix {
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return netip.Prefix{} // not TCP/IP (tests): one source
	}
	ip := ap.Addr().Unmap()
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}

// acquire counts a new connection from addr, or fails with EINVALID when a
// cap is reached. release, called when the connection authenticates or
// closes, uncounts it; calling it again does nothing.
func (l *preauthLimiter) acquire(addr net.Addr) (release func(), err error) {
	if l == nil || (l.max <= 0 && l.maxPerSource <= 0) {
		return func() {}, nil
	}
	src := source(addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.maxPerSource > 0 && l.perSource[src] >= l.maxPerSource {
		return nil, conductor.Errorf(conductor.EINVALID, "too many unauthenticated connections from your address (limit %d): try again later", l.maxPerSource)
	}
	if l.max > 0 && l.total >= l.max {
		return nil, conductor.Errorf(conductor.EINVALID, "too many unauthenticated connections on this server (limit %d): try again later", l.max)
	}
	l.total++
	l.perSource[src]++
	return sync.OnceFunc(func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.total--
		if l.perSource[src]--; l.perSource[src] <= 0 {
			delete(l.perSource, src)
		}
	}), nil
}

// refuse tells a client over a cap why, in the few bytes an SSH client
// reads before any key exchange: the server's version line, then a
// cleartext SSH_MSG_DISCONNECT (allowed before the first key exchange, RFC
// 4253 §6), which OpenSSH prints as "Received disconnect from …: <why>"
// and Go's client returns as its error. It then reads what the client sent
// (its version, its first key exchange packet) until the client hangs up,
// for at most refuseLinger: closing a socket with unread data resets the
// connection, and a client that sees the reset first loses the reason.
// The caller closes conn.
func refuse(conn net.Conn, version string, why string) {
	_ = conn.SetDeadline(time.Now().Add(refuseLinger))
	msg := append([]byte(version+"\r\n"), disconnectPacket(why)...)
	if _, err := conn.Write(msg); err != nil {
		return
	}
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_, _ = io.CopyN(io.Discard, conn, 64<<10)
}

// refuseLinger bounds how long a refused connection is read from: a flood
// of refused connections holds each for at most that long.
const refuseLinger = 500 * time.Millisecond

// disconnectPacket is an unencrypted SSH binary packet holding
// SSH_MSG_DISCONNECT with reason SSH_DISCONNECT_TOO_MANY_CONNECTIONS.
func disconnectPacket(why string) []byte {
	const msgDisconnect, tooManyConnections = 1, 12
	payload := []byte{msgDisconnect}
	payload = binary.BigEndian.AppendUint32(payload, tooManyConnections)
	payload = binary.BigEndian.AppendUint32(payload, uint32(len(why)))
	payload = append(payload, why...)
	payload = binary.BigEndian.AppendUint32(payload, 0) // language tag
	// packet_length, padding_length, payload, padding: a multiple of 8
	// bytes in all, with at least 4 of padding.
	padding := 8 - (4+1+len(payload))%8
	if padding < 4 {
		padding += 8
	}
	p := binary.BigEndian.AppendUint32(nil, uint32(1+len(payload)+padding))
	p = append(p, byte(padding))
	p = append(p, payload...)
	return append(p, make([]byte, padding)...)
}

// refusalLog logs refusals without letting a flood flood the log: at most
// one line a second, with the number of refusals left out since the last.
type refusalLog struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (r *refusalLog) warn(msg string, attrs ...any) {
	r.mu.Lock()
	now := time.Now()
	if now.Sub(r.last) < time.Second {
		r.suppressed++
		r.mu.Unlock()
		return
	}
	n := r.suppressed
	r.last, r.suppressed = now, 0
	r.mu.Unlock()
	slog.Warn(msg, append(attrs, "more_refused_unlogged", n)...)
}
