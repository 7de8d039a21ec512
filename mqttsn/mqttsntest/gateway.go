// Package mqttsntest provides a scripted MQTT-SN gateway for tests, in the
// spirit of net/http/httptest: a real UDP socket on the loopback address that
// a test drives step by step, receiving what the client under test sends and
// answering (or not answering, to play a lost packet) as each flow of the
// specification needs.
package mqttsntest

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/sngate/sngate/mqttsn"
)

// DefaultTimeout bounds every wait of a Gateway.
const DefaultTimeout = 5 * time.Second

// Datagram is one message received by the fake gateway.
type Datagram struct {
	Packet mqttsn.Packet // nil when the bytes did not decode
	Raw    []byte
	Err    error // the decode error
	From   *net.UDPAddr
}

// Gateway is the gateway side of MQTT-SN flows, scripted by a test.
type Gateway struct {
	t       testing.TB
	conn    *net.UDPConn
	in      chan Datagram
	done    chan struct{}
	Timeout time.Duration

	mu   sync.Mutex
	peer *net.UDPAddr // where Reply sends: the sender of the last datagram
}

// NewGateway listens on a free loopback UDP port and closes it when the test
// ends.
func NewGateway(t testing.TB) *Gateway {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatalf("mqttsntest: listen: %v", err)
	}
	g := &Gateway{t: t, conn: conn, in: make(chan Datagram, 256), done: make(chan struct{}), Timeout: DefaultTimeout}
	go g.read()
	t.Cleanup(g.Close)
	return g
}

func (g *Gateway) read() {
	defer close(g.done)
	buf := make([]byte, mqttsn.MaxMessageLen)
	for {
		n, from, err := g.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		raw := append([]byte(nil), buf[:n]...)
		p, derr := mqttsn.Decode(raw)
		select {
		case g.in <- Datagram{Packet: p, Raw: raw, Err: derr, From: from}:
		default: // a test that stopped reading; drop rather than block
		}
	}
}

// Close stops the gateway.
func (g *Gateway) Close() {
	_ = g.conn.Close()
	<-g.done
}

// Addr returns the gateway's "host:port".
func (g *Gateway) Addr() string { return g.conn.LocalAddr().String() }

// Next waits for the next datagram. It may be called from any goroutine.
func (g *Gateway) Next(timeout time.Duration) (Datagram, error) {
	select {
	case d := <-g.in:
		g.mu.Lock()
		g.peer = d.From
		g.mu.Unlock()
		return d, nil
	case <-time.After(timeout):
		return Datagram{}, errors.New("mqttsntest: no message within " + timeout.String())
	}
}

// Receive waits for the next message and fails the test when none comes or
// it does not decode. Call it from the test goroutine.
func (g *Gateway) Receive() mqttsn.Packet {
	g.t.Helper()
	d, err := g.Next(g.Timeout)
	if err != nil {
		g.t.Fatal(err)
	}
	if d.Err != nil {
		g.t.Fatalf("mqttsntest: client sent % X: %v", d.Raw, d.Err)
	}
	return d.Packet
}

// Expect receives the next message and fails the test unless it is a T.
func Expect[T mqttsn.Packet](g *Gateway) T {
	g.t.Helper()
	p := g.Receive()
	v, ok := p.(T)
	if !ok {
		var want T
		g.t.Fatalf("mqttsntest: got %T %+v, want %T", p, p, want)
	}
	return v
}

// ExpectNothing fails the test if a message arrives within d.
func (g *Gateway) ExpectNothing(d time.Duration) {
	g.t.Helper()
	if got, err := g.Next(d); err == nil {
		g.t.Fatalf("mqttsntest: unexpected message %T %+v", got.Packet, got.Packet)
	}
}

// Reply sends p to the sender of the last message received.
func (g *Gateway) Reply(p mqttsn.Packet) {
	g.t.Helper()
	peer := g.Peer()
	if peer == nil {
		g.t.Fatal("mqttsntest: Reply before any message was received")
	}
	if err := g.SendTo(peer, p); err != nil {
		g.t.Fatal(err)
	}
}

// ReplyRaw sends raw bytes to the sender of the last message received.
func (g *Gateway) ReplyRaw(b []byte) {
	g.t.Helper()
	if _, err := g.conn.WriteToUDP(b, g.Peer()); err != nil {
		g.t.Fatal(err)
	}
}

// SendTo sends p to addr; it may be called from any goroutine.
func (g *Gateway) SendTo(addr net.Addr, p mqttsn.Packet) error {
	b, err := mqttsn.Marshal(p)
	if err != nil {
		return fmt.Errorf("mqttsntest: encode %T: %w", p, err)
	}
	_, err = g.conn.WriteTo(b, addr)
	return err
}

// Peer returns the sender of the last message received.
func (g *Gateway) Peer() *net.UDPAddr {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.peer
}

// AcceptConnect plays a connection without a will: it expects CONNECT and
// answers CONNACK accepted, returning the CONNECT.
func (g *Gateway) AcceptConnect() *mqttsn.Connect {
	g.t.Helper()
	c := Expect[*mqttsn.Connect](g)
	g.Reply(&mqttsn.Connack{ReturnCode: mqttsn.Accepted})
	return c
}
