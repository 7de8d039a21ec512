package broker

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/sngate/sngate/broker/packets"
)

// waitTime bounds every wait in the broker tests.
const waitTime = 5 * time.Second

// startBroker runs a broker on a free loopback port. dataDir "" keeps
// nothing on disk.
func startBroker(t testing.TB, cfg Config, dataDir string) (*Server, string) {
	t.Helper()
	return startBrokerOpts(t, cfg, Options{DataDir: dataDir})
}

// startBrokerOpts is startBroker with all the Options. (Tests outside this
// package use brokertest.NewServer, which this package cannot import.)
func startBrokerOpts(t testing.TB, cfg Config, opts Options) (*Server, string) {
	t.Helper()
	if cfg.SysInterval == 0 {
		cfg.SysInterval = -1
	}
	s, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTime)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return s, ln.Addr().String()
}

// client is a bare MQTT 3.1.1 client for the tests: it sends and receives
// packets exactly as written, so that the tests can check the wire.
type client struct {
	t  testing.TB
	nc net.Conn
	r  *packets.Reader
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, waitTime)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &client{t: t, nc: nc, r: packets.NewReader(nc, 1<<24)}
}

func (c *client) send(p interface{ Append([]byte) []byte }) {
	c.t.Helper()
	c.raw(p.Append(nil))
}

func (c *client) raw(b []byte) {
	c.t.Helper()
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// recv returns the next packet, failing the test after waitTime.
func (c *client) recv() packets.Packet {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(waitTime))
	fh, body, err := c.r.ReadPacket()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	p, err := packets.Decode(fh, body)
	if err != nil {
		c.t.Fatalf("decode %v: %v", fh.Type, err)
	}
	return p
}

// expect receives the next packet and fails unless it is a T.
func expect[T packets.Packet](c *client) T {
	c.t.Helper()
	p := c.recv()
	v, ok := p.(T)
	if !ok {
		var want T
		c.t.Fatalf("got %T %+v, want %T", p, p, want)
	}
	return v
}

// expectClosed fails unless the broker closes the connection.
func (c *client) expectClosed() {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(waitTime))
	for {
		_, _, err := c.r.ReadPacket()
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.t.Fatal("connection still open")
		}
		if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !isReset(err) {
			c.t.Fatalf("read: %v, want the connection closed", err)
		}
		return
	}
}

func isReset(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe)
}

// expectNothing fails if a packet arrives within d.
func (c *client) expectNothing(d time.Duration) {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(d))
	fh, _, err := c.r.ReadPacket()
	if err == nil {
		c.t.Fatalf("unexpected %v", fh.Type)
	}
}

// connect sends CONNECT and returns the CONNACK.
func (c *client) connect(p *packets.ConnectPacket) *packets.ConnackPacket {
	c.t.Helper()
	if p.ProtocolName == "" {
		p.ProtocolName, p.ProtocolLevel = "MQTT", 4
	}
	c.send(p)
	return expect[*packets.ConnackPacket](c)
}

// connected dials and connects with a client id, failing unless accepted.
func connected(t testing.TB, addr, id string, clean bool) *client {
	t.Helper()
	c := dial(t, addr)
	if ack := c.connect(&packets.ConnectPacket{ClientID: id, CleanSession: clean, KeepAlive: 60}); ack.ReturnCode != 0 {
		t.Fatalf("CONNACK %d", ack.ReturnCode)
	}
	return c
}

func (c *client) subscribe(pid uint16, subs ...packets.Subscription) *packets.SubackPacket {
	c.t.Helper()
	c.send(&packets.SubscribePacket{PacketID: pid, Filters: subs})
	return expect[*packets.SubackPacket](c)
}

func (c *client) publish(p *packets.PublishPacket) {
	c.t.Helper()
	c.send(p)
}
