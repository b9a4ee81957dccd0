package procnet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// diagSockets asks the kernel, over netlink's sock_diag, for the TCP
// sockets of family in state. The kernel filters by state itself: a busy
// host holds tens of thousands of connections in TIME_WAIT, which
// /proc/net/tcp lists one line each (30,000 lines take 50–80 ms to read
// and parse, docs/benchmarks.md), while the listening and established
// sockets asked for here are a few.
func diagSockets(family uint8, state uint8) ([]Socket, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, fmt.Errorf("sock_diag socket: %w", err)
	}
	defer unix.Close(fd)
	kernel := &unix.SockaddrNetlink{Family: unix.AF_NETLINK}
	if err := unix.Sendto(fd, diagRequest(family, state), 0, kernel); err != nil {
		return nil, fmt.Errorf("sock_diag request: %w", err)
	}
	var out []Socket
	buf := make([]byte, 64<<10)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return nil, fmt.Errorf("sock_diag answer: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return nil, fmt.Errorf("sock_diag answer: %w", err)
		}
		for _, m := range msgs {
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return out, nil
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if errno := -int32(binary.NativeEndian.Uint32(m.Data)); errno != 0 {
						return nil, fmt.Errorf("sock_diag: %w", unix.Errno(errno))
					}
				}
				return out, nil
			}
			s, ok := parseDiagMsg(m.Data)
			if !ok {
				return nil, errors.New("sock_diag: short answer")
			}
			out = append(out, s)
		}
	}
}

// diagRequest is a dump request (struct nlmsghdr, then struct
// inet_diag_req_v2) for the TCP sockets of family in state.
func diagRequest(family, state uint8) []byte {
	const hdr, req = unix.SizeofNlMsghdr, 56 // inet_diag_req_v2: 8 bytes, then inet_diag_sockid (48)
	b := make([]byte, hdr+req)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(b[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	ne.PutUint32(b[8:], 1) // sequence number
	b[hdr] = family
	b[hdr+1] = unix.IPPROTO_TCP
	ne.PutUint32(b[hdr+4:], 1<<state) // idiag_states
	return b
}

// parseDiagMsg reads a struct inet_diag_msg: the local port (big-endian, in
// the socket id at offset 4) and the inode (offset 68).
func parseDiagMsg(b []byte) (Socket, bool) {
	if len(b) < 72 {
		return Socket{}, false
	}
	return Socket{Port: int(binary.BigEndian.Uint16(b[4:6])), Inode: uint64(binary.NativeEndian.Uint32(b[68:72]))}, true
}
