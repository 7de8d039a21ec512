package broker

import (
	"testing"

	"github.com/sngate/sngate/broker/packets"
)

func TestPublishSubscribeQoS1(t *testing.T) {
	_, addr := startBroker(t, Config{}, "")
	sub := connected(t, addr, "sub", true)
	if ack := sub.subscribe(1, packets.Subscription{Filter: "a/+", QoS: 1}); len(ack.ReturnCodes) != 1 || ack.ReturnCodes[0] != 1 {
		t.Fatalf("SUBACK %+v", ack)
	}
	pub := connected(t, addr, "pub", true)
	pub.publish(&packets.PublishPacket{QoS: 1, Topic: []byte("a/b"), PacketID: 7, Payload: []byte("hi")})
	if ack := expect[*packets.PubackPacket](pub); ack.PacketID != 7 {
		t.Fatalf("PUBACK %+v", ack)
	}
	got := expect[*packets.PublishPacket](sub)
	if string(got.Topic) != "a/b" || string(got.Payload) != "hi" || got.QoS != 1 || got.Retain || got.PacketID == 0 {
		t.Fatalf("delivered %+v", got)
	}
	sub.send(&packets.PubackPacket{PacketID: got.PacketID})
}
