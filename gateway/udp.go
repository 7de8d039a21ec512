package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// UDPConfig configures a UDP transport.
type UDPConfig struct {
	// Address to listen on. ":1884" listens on every interface, IPv4 and
	// IPv6 alike; "0.0.0.0:1884" or "[::]:1884" pick one family.
	Address string
	// Broadcast is where ADVERTISE goes, e.g. "255.255.255.255:1884" or a
	// multicast group such as "225.1.1.1:1883"; empty: no broadcasts.
	Broadcast string
	// ReadBuffer is the socket's receive buffer in bytes; 0 means
	// DefaultReadBuffer. The kernel's default (about 200 KiB) overflows
	// when a thousand sensors answer one fan-out at once, and every lost
	// answer costs a Tretry.
	ReadBuffer int
}

// DefaultReadBuffer is the receive buffer a UDP transport asks for.
const DefaultReadBuffer = 4 << 20

// UDPTransport is the MQTT-SN transport over UDP (IPv4 and IPv6). It
// reads up to batchSize datagrams per system call (recvmmsg on Linux) and
// hands them out one per Receive.
type UDPTransport struct {
	conn      *net.UDPConn
	broadcast netip.AddrPort // zero: none

	batch batchReader
	msgs  []ipv4.Message // ipv4.Message and ipv6.Message are one type
	next  int            // msgs[next:count] are read, not yet handed out
	count int
}

// batchReader is ipv4.PacketConn or ipv6.PacketConn.
type batchReader interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
}

// batchSize is how many datagrams one read may return.
const batchSize = 32

// ListenUDP opens a UDP transport.
func ListenUDP(ctx context.Context, cfg UDPConfig) (*UDPTransport, error) {
	t := &UDPTransport{}
	if cfg.Broadcast != "" {
		ap, err := resolveAddrPort(cfg.Broadcast)
		if err != nil {
			return nil, fmt.Errorf("udp broadcast address %q: %w", cfg.Broadcast, err)
		}
		t.broadcast = ap
	}
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_BROADCAST, 1)
		})
		return errors.Join(err, serr)
	}}
	pc, err := lc.ListenPacket(ctx, "udp", cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("listen udp %s: %w", cfg.Address, err)
	}
	t.conn = pc.(*net.UDPConn)
	if la := t.conn.LocalAddr().(*net.UDPAddr); la.IP.To4() != nil {
		t.batch = ipv4.NewPacketConn(t.conn)
	} else {
		t.batch = ipv6.NewPacketConn(t.conn)
	}
	t.msgs = make([]ipv4.Message, batchSize)
	for i := range t.msgs {
		t.msgs[i].Buffers = [][]byte{make([]byte, maxDatagram)}
	}
	size := cfg.ReadBuffer
	if size <= 0 {
		size = DefaultReadBuffer
	}
	t.setReadBuffer(size)
	return t, nil
}

func resolveAddrPort(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	ua, err := net.ResolveUDPAddr("udp", s)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return ua.AddrPort(), nil
}

// maxDatagram is the largest datagram a UDP transport reads: the largest
// MQTT-SN message. A longer one is reported as ErrTooLong.
const maxDatagram = 65535

// Receive hands out the next datagram, reading a new batch when the last
// is used up. IPv4 peers on a dual-stack socket are named by their IPv4
// address, so that a client has one Addr whichever socket family carries
// it.
func (t *UDPTransport) Receive(buf []byte) (int, Addr, error) {
	if t.next == t.count {
		n, err := t.batch.ReadBatch(t.msgs, 0)
		if err != nil {
			return 0, "", err
		}
		t.next, t.count = 0, n
	}
	m := &t.msgs[t.next]
	t.next++
	ua, _ := m.Addr.(*net.UDPAddr)
	var from netip.AddrPort
	if ua != nil {
		from = ua.AddrPort()
	}
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	if m.Flags&syscall.MSG_TRUNC != 0 || m.N > len(buf) {
		return 0, Addr(from.String()), ErrTooLong
	}
	return copy(buf, m.Buffers[0][:m.N]), Addr(from.String()), nil
}

// Send sends msg to the peer at to.
func (t *UDPTransport) Send(to Addr, msg []byte) error {
	ap, err := netip.ParseAddrPort(string(to))
	if err != nil {
		return fmt.Errorf("udp: bad peer address %q: %w", to, err)
	}
	if _, err := t.conn.WriteToUDPAddrPort(msg, ap); err != nil {
		return fmt.Errorf("udp: send to %s: %w", to, err)
	}
	return nil
}

// Broadcast sends msg to the configured broadcast address.
func (t *UDPTransport) Broadcast(msg []byte) error {
	if !t.broadcast.IsValid() {
		return ErrNoBroadcast
	}
	if _, err := t.conn.WriteToUDPAddrPort(msg, t.broadcast); err != nil {
		return fmt.Errorf("udp: broadcast to %s: %w", t.broadcast, err)
	}
	return nil
}

// Close closes the socket; a blocked Receive returns net.ErrClosed.
func (t *UDPTransport) Close() error { return t.conn.Close() }

// LocalAddr returns the address the transport listens on.
func (t *UDPTransport) LocalAddr() netip.AddrPort {
	return t.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

func (t *UDPTransport) String() string { return "udp " + t.conn.LocalAddr().String() }

// setReadBuffer sizes the receive buffer: beyond the system's rmem_max when
// running as root (SO_RCVBUFFORCE), else as far as rmem_max allows.
func (t *UDPTransport) setReadBuffer(size int) {
	if rc, err := t.conn.SyscallConn(); err == nil {
		var serr error
		_ = rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, size)
		})
		if serr == nil {
			return
		}
	}
	_ = t.conn.SetReadBuffer(size)
}
