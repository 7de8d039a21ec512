package gateway

import "errors"

// Addr is a transport's opaque peer address, comparable so that it can key
// the client table. Each transport defines its own encoding (UDP: the
// textual host:port of the peer).
type Addr string

// Transport carries whole MQTT-SN messages between the gateway and its
// peers. One goroutine calls Receive; Send may be called from any.
type Transport interface {
	// Receive reads the next message into buf and returns its length and
	// sender. A message longer than buf is dropped by the transport and
	// reported as ErrTooLong, so the caller can count it and go on.
	Receive(buf []byte) (int, Addr, error)
	// Send sends one message to a peer. msg is the caller's again once
	// Send returns: the gateway reuses its buffer.
	Send(to Addr, msg []byte) error
	// Broadcast sends one message to every peer that listens (ADVERTISE),
	// where the transport can; ErrNoBroadcast otherwise.
	Broadcast(msg []byte) error
	// Close makes a blocked Receive return net.ErrClosed.
	Close() error
	// String names the transport in logs, e.g. "udp [::]:1884".
	String() string
}

// Paced is implemented by transports whose medium bounds what each peer can
// send: a serial line at its baud rate. The gateway does not rate-limit
// them (packets_per_second is for networks, where one address can flood),
// since on a line the limit would only cut a sensor below what the wire
// carries.
type Paced interface {
	Paced() bool
}

// Transport errors.
var (
	ErrTooLong     = errors.New("gateway: message longer than the receive buffer")
	ErrNoBroadcast = errors.New("gateway: transport cannot broadcast")
)
