package gateway

import (
	"testing"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/mqttsn"
)

func TestForwarderEncapsulation(t *testing.T) {
	g, b, gw := startGateway(t, Config{})
	col := brokerSubscriber(t, b, "#")
	fwd := dialRaw(t, gw)
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
