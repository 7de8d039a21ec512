package broker

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/sngate/sngate/broker/packets"
)

// FuzzConnection sends arbitrary bytes after a valid CONNECT on one
// connection of a running broker, while a well-behaved subscriber and
// publisher share the broker. Whatever the bytes, the broker must not
// panic, and the well-behaved pair must still get its message through.
func FuzzConnection(f *testing.F) {
	seeds := [][]byte{
		(&packets.PublishPacket{QoS: 1, Topic: []byte("a/b"), PacketID: 1, Payload: []byte("x")}).Append(nil),
		(&packets.SubscribePacket{PacketID: 1, Filters: []packets.Subscription{{Filter: "#", QoS: 2}}}).Append(nil),
		(&packets.UnsubscribePacket{PacketID: 2, Filters: []string{"#"}}).Append(nil),
		packets.AppendAck(nil, packets.TypePubrel, 9),
		packets.AppendAck(nil, packets.TypePuback, 1),
		{0xC0, 0x00}, {0xE0, 0x00}, {0x10, 0x00}, {0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F},
		{0x32, 0x05, 0x00, 0x01, 'a', 0x00, 0x00},
		{0x82, 0x06, 0x00, 0x01, 0x00, 0x01, '#', 0x03},
		append((&packets.PublishPacket{QoS: 2, Topic: []byte("t"), PacketID: 3}).Append(nil),
			packets.AppendAck(nil, packets.TypePubrel, 3)...),
	}
	for _, s := range seeds {
		f.Add(s)
	}
	_, addr := startBroker(f, Config{MaxPacketSize: 4096}, "")
	sub := connected(f, addr, "well-behaved-sub", true)
	sub.subscribe(1, packets.Subscription{Filter: "ok", QoS: 1})
	pub := connected(f, addr, "well-behaved-pub", true)
	var pid uint16
	f.Fuzz(func(t *testing.T, data []byte) {
		sub.t, pub.t = t, t // the harness reports through the running test
		nc, err := net.DialTimeout("tcp", addr, waitTime)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(waitTime))
		connect := (&packets.ConnectPacket{ProtocolName: "MQTT", ProtocolLevel: 4, ClientID: "fuzz", CleanSession: true, KeepAlive: 60}).Append(nil)
		if _, err := nc.Write(append(connect, data...)); err != nil {
			return // closed already: fine
		}
		// Read until the broker closes or goes quiet; either is fine.
		_ = nc.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		_, _ = io.Copy(io.Discard, nc)

		pid++
		if pid == 0 {
			pid = 1
		}
		pub.publish(&packets.PublishPacket{QoS: 1, Topic: []byte("ok"), PacketID: pid, Payload: []byte("still here")})
		if ack := expect[*packets.PubackPacket](pub); ack.PacketID != pid {
			t.Fatalf("PUBACK %d, want %d", ack.PacketID, pid)
		}
		got := expect[*packets.PublishPacket](sub)
		if string(got.Payload) != "still here" {
			t.Fatalf("well-behaved subscriber got %q", got.Payload)
		}
		sub.send(&packets.PubackPacket{PacketID: got.PacketID})
	})
}
