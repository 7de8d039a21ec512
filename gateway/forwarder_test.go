package gateway

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/broker/brokertest"
	"github.com/sngate/sngate/mqttsn"
)

// runGateway is startGateway for any testing.TB, with a logger.
func runGateway(tb testing.TB, cfg Config, log *slog.Logger) (*Gateway, *broker.Server, *net.UDPAddr) {
	tb.Helper()
	b, _ := brokertest.NewServer(tb, broker.Config{}, broker.Options{})
	if cfg.RetryInterval == 0 {
		cfg.RetryInterval = 200 * time.Millisecond
	}
	g, err := New(cfg, b, log)
	if err != nil {
		tb.Fatal(err)
	}
	tr, err := ListenUDP(context.Background(), UDPConfig{Address: "127.0.0.1:0"})
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Serve(tr) }()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTime)
		defer cancel()
		if err := g.Shutdown(ctx); err != nil {
			tb.Errorf("Shutdown: %v", err)
		}
		if err := <-done; err != nil {
			tb.Errorf("Serve: %v", err)
		}
	})
	return g, b, net.UDPAddrFromAddrPort(tr.LocalAddr())
}

// rawPeer is a UDP socket speaking to the gateway byte by byte: a
// forwarder, or a misbehaving client.
type rawPeer struct {
	tb   testing.TB
	conn *net.UDPConn
	gw   *net.UDPAddr
}

func newRawPeer(tb testing.TB, gw *net.UDPAddr) *rawPeer {
	tb.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return &rawPeer{tb: tb, conn: conn, gw: gw}
}

func (r *rawPeer) write(b []byte) {
	if _, err := r.conn.WriteToUDP(b, r.gw); err != nil {
		r.tb.Fatal(err)
	}
}

func (r *rawPeer) send(p mqttsn.Packet) {
	r.tb.Helper()
	b, err := mqttsn.Marshal(p)
	if err != nil {
		r.tb.Fatal(err)
	}
	r.write(b)
}

// forward sends p as the node's, encapsulated.
func (r *rawPeer) forward(node []byte, p mqttsn.Packet) {
	r.tb.Helper()
	r.send(&mqttsn.Encapsulated{NodeID: node, Message: p})
}

// recv reads and decodes the next datagram from the gateway.
func (r *rawPeer) recv() mqttsn.Packet {
	r.tb.Helper()
	buf := make([]byte, mqttsn.MaxMessageLen)
	_ = r.conn.SetReadDeadline(time.Now().Add(waitTime))
	n, err := r.conn.Read(buf)
	if err != nil {
		r.tb.Fatalf("nothing from the gateway: %v", err)
	}
	p, err := mqttsn.Decode(buf[:n])
	if err != nil {
		r.tb.Fatalf("undecodable datagram from the gateway % X: %v", buf[:n], err)
	}
	return p
}

// recvFor reads the next datagram, which must be encapsulated for node,
// and returns the inner message.
func (r *rawPeer) recvFor(node []byte) mqttsn.Packet {
	r.tb.Helper()
	p := r.recv()
	e, ok := p.(*mqttsn.Encapsulated)
	if !ok {
		r.tb.Fatalf("got %T %+v, want it encapsulated for node % X", p, p, node)
	}
	if !bytes.Equal(e.NodeID, node) || e.Radius != 0 {
		r.tb.Fatalf("encapsulated for node % X radius %d, want node % X radius 0", e.NodeID, e.Radius, node)
	}
	return e.Message
}

func TestForwarderEncapsulation(t *testing.T) {
	g, b, gw := runGateway(t, Config{}, nil)
	col := brokerSubscriber(t, b, "#")
	fwd := newRawPeer(t, gw)
	nodeA, nodeB := []byte{0x00, 0x0A}, []byte{0x00, 0x0B}

	for _, n := range []struct {
		node []byte
		id   string
	}{{nodeA, "node-a"}, {nodeB, "node-b"}} {
		fwd.forward(n.node, &mqttsn.Connect{CleanSession: true, KeepAlive: 60, ClientID: n.id})
		if ack, ok := fwd.recvFor(n.node).(*mqttsn.Connack); !ok || ack.ReturnCode != mqttsn.Accepted {
			t.Fatalf("%s: CONNECT answered with %+v", n.id, ack)
		}
	}
	// Both nodes register a topic: each gets id 1 from its own table, and
	// both publish with the same message id. Only the node id tells them
	// apart.
	for i, node := range [][]byte{nodeA, nodeB} {
		fwd.forward(node, &mqttsn.Register{MsgID: 1, TopicName: "fwd/" + string(rune('a'+i))})
		ra, ok := fwd.recvFor(node).(*mqttsn.Regack)
		if !ok || ra.ReturnCode != mqttsn.Accepted || ra.MsgID != 1 {
			t.Fatalf("node % X: REGISTER answered with %+v", node, ra)
		}
		fwd.forward(node, &mqttsn.Publish{QoS: mqttsn.QoS1, TopicID: ra.TopicID, MsgID: 7,
			Data: []byte{'A' + byte(i)}})
		pa, ok := fwd.recvFor(node).(*mqttsn.Puback)
		if !ok || pa.ReturnCode != mqttsn.Accepted || pa.MsgID != 7 || pa.TopicID != ra.TopicID {
			t.Fatalf("node % X: PUBLISH answered with %+v", node, pa)
		}
	}
	got := col.wait(t, 2)
	if got[0] != "fwd/a A" || got[1] != "fwd/b B" {
		t.Fatalf("broker got %q", got)
	}

	// Downstream: a message for node B goes to the forwarder wrapped for B.
	fwd.forward(nodeB, &mqttsn.Subscribe{QoS: mqttsn.QoS1, MsgID: 2, TopicName: "cmd/b"})
	sa, ok := fwd.recvFor(nodeB).(*mqttsn.Suback)
	if !ok || sa.ReturnCode != mqttsn.Accepted || sa.MsgID != 2 {
		t.Fatalf("SUBSCRIBE answered with %+v", sa)
	}
	app, _, err := b.Connect(broker.LocalConfig{ClientID: "app", CleanSession: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Publish(bg(), broker.Message{Topic: "cmd/b", Payload: []byte("go"), QoS: 1}); err != nil {
		t.Fatal(err)
	}
	pub, ok := fwd.recvFor(nodeB).(*mqttsn.Publish)
	if !ok || pub.TopicID != sa.TopicID || string(pub.Data) != "go" || pub.QoS != mqttsn.QoS1 {
		t.Fatalf("node B got %+v", pub)
	}
	fwd.forward(nodeB, &mqttsn.Puback{TopicID: pub.TopicID, MsgID: pub.MsgID, ReturnCode: mqttsn.Accepted})

	// The forwarder itself, unencapsulated, is not a client; nor is a node
	// that never connected. Each is told to connect, in its own form.
	fwd.send(&mqttsn.Pingreq{})
	if d, ok := fwd.recv().(*mqttsn.Disconnect); !ok {
		t.Fatalf("unencapsulated PINGREQ from the forwarder answered with %+v", d)
	}
	nodeC := []byte{0x00, 0x0C}
	fwd.forward(nodeC, &mqttsn.Pingreq{})
	if d, ok := fwd.recvFor(nodeC).(*mqttsn.Disconnect); !ok {
		t.Fatalf("PINGREQ from an unknown node answered with %+v", d)
	}
	// A node id may even be empty: still a node, not the forwarder.
	fwd.forward([]byte{}, &mqttsn.Connect{CleanSession: true, KeepAlive: 60, ClientID: "node-empty"})
	if ack, ok := fwd.recvFor([]byte{}).(*mqttsn.Connack); !ok || ack.ReturnCode != mqttsn.Accepted {
		t.Fatalf("empty node id: CONNECT answered with %+v", ack)
	}

	// Node A disconnects; node B is still there.
	fwd.forward(nodeA, &mqttsn.Disconnect{})
	if _, ok := fwd.recvFor(nodeA).(*mqttsn.Disconnect); !ok {
		t.Fatal("DISCONNECT not acknowledged")
	}
	fwd.forward(nodeB, &mqttsn.Pingreq{})
	if _, ok := fwd.recvFor(nodeB).(*mqttsn.Pingresp); !ok {
		t.Fatal("node B lost its session along with node A")
	}
	if s := g.Stats(); s.ClientsConnected != 2 || s.Malformed != 0 {
		t.Errorf("stats %+v, want node B and the empty node connected", s)
	}
}
