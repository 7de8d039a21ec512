package mqttsn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
)

// Transport carries whole MQTT-SN messages between a client and one gateway:
// each Write sends one message and each Read returns one. A connected UDP
// socket (*net.UDPConn from DialUDP) is a Transport; serial framings provide
// the same shape. Close must make a blocked Read return.
type Transport interface {
	Read(b []byte) (int, error)
	Write(b []byte) (int, error)
	Close() error
}

// DialUDP returns a Transport to the gateway at addr ("host:port").
func DialUDP(ctx context.Context, addr string) (Transport, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial gateway %s: %w", addr, err)
	}
	return conn, nil
}

// ListenDiscovery opens a UDP socket for gateway discovery at laddr (for
// example ":0" to hear only answers, or ":1884" to hear a gateway's
// ADVERTISE broadcasts too). The socket may send broadcasts and shares its
// port with other sockets, such as a gateway on the same host.
func ListenDiscovery(ctx context.Context, laddr string) (net.PacketConn, error) {
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = errors.Join(
				syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_BROADCAST, 1),
				syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1),
			)
		})
		return errors.Join(err, serr)
	}}
	pc, err := lc.ListenPacket(ctx, "udp", laddr)
	if err != nil {
		return nil, fmt.Errorf("listen for gateways on %s: %w", laddr, err)
	}
	return pc, nil
}
