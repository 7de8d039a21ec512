package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
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

// UDPTransport is the MQTT-SN transport over UDP (IPv4 and IPv6).
type UDPTransport struct {
	conn      *net.UDPConn
	broadcast netip.AddrPort // zero: none
	oob       []byte
}

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

// Receive reads one datagram. IPv4 peers on a dual-stack socket are named
// by their IPv4 address, so that a client has one Addr whichever socket
// family carries it.
func (t *UDPTransport) Receive(buf []byte) (int, Addr, error) {
	n, _, flags, from, err := t.conn.ReadMsgUDPAddrPort(buf, nil)
	if err != nil {
		return 0, "", err
	}
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	if flags&syscall.MSG_TRUNC != 0 {
		return 0, Addr(from.String()), ErrTooLong
	}
	return n, Addr(from.String()), nil
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
