package broker

import (
	"context"
	"testing"

	"github.com/sngate/sngate/broker/packets"
	"github.com/sngate/sngate/broker/persist"
	"github.com/sngate/sngate/internal/storage"
)

// TestRestartKeepsEachDeliverysRetainFlag: a stored delivery keeps the
// retain flag it goes out with: 1 for a retained message sent because of a
// new subscription (MQTT-3.3.1-8), 0 for a live one, whatever the publisher
// set (MQTT-3.3.1-9), also when it is sent only after a restart.
func TestRestartKeepsEachDeliverysRetainFlag(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{MaxInflight: 1, SysInterval: -1}
	s, err := New(cfg, Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _ := s.Connect(LocalConfig{ClientID: "pub", CleanSession: true})
	for _, topic := range []string{"r/1", "r/2"} {
		if err := pub.Publish(bg(), Message{Topic: topic, Payload: []byte(topic), QoS: 1, Retain: true}); err != nil {
			t.Fatal(err)
		}
	}
	// The subscriber gets r/1 at once; r/2 waits behind the window of one.
	held := make(chan Delivery, 10)
	sub, _, _ := s.Connect(LocalConfig{ClientID: "sub", OnMessage: func(d Delivery) { held <- d }})
	if _, err := sub.Subscribe(bg(), Subscription{Filter: "r/#", QoS: 1}); err != nil {
		t.Fatal(err)
	}
	sub.Disconnect(false)
	// A live message published retained, to the now offline session.
	if err := pub.Publish(bg(), Message{Topic: "r/3", Payload: []byte("r/3"), QoS: 1, Retain: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	_, addr := startBroker(t, cfg, dir)
	c := dial(t, addr)
	if ack := c.connect(&packets.ConnectPacket{ClientID: "sub", KeepAlive: 60}); !ack.SessionPresent {
		t.Fatal("session not present")
	}
	want := map[string]bool{"r/1": true, "r/2": true, "r/3": false}
	for range 3 {
		p := expect[*packets.PublishPacket](c)
		if r, ok := want[string(p.Topic)]; !ok || p.Retain != r {
			t.Errorf("%s delivered with retain %v, want %v", p.Topic, p.Retain, r)
		}
		delete(want, string(p.Topic))
		c.send(&packets.PubackPacket{PacketID: p.PacketID})
	}
}

// TestQueuedDeliveriesAreStoredWithTheirPacketIDs: a delivery queued for a
// persistent session is stored with the packet id it will be sent with, so
// sending it later writes nothing, and a crash right after the send cannot
// make a QoS 2 message come again under a new id (delivered twice).
func TestQueuedDeliveriesAreStoredWithTheirPacketIDs(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{MaxInflight: 1, SysInterval: -1}
	s, err := New(cfg, Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	sub, _, _ := s.Connect(LocalConfig{ClientID: "sub"})
	if _, err := sub.Subscribe(bg(), Subscription{Filter: "q", QoS: 2}); err != nil {
		t.Fatal(err)
	}
	sub.Disconnect(false)
	pub, _, _ := s.Connect(LocalConfig{ClientID: "pub", CleanSession: true})
	for i := range 3 {
		if err := pub.Publish(bg(), Message{Topic: "q", Payload: []byte{byte('0' + i)}, QoS: 2}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	st, err := persist.Open(dir, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	state, err := st.Load()
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]uint16{}
	for _, ss := range state.Sessions {
		for _, q := range ss.Queue {
			if q.PacketID == 0 {
				t.Errorf("queued %q stored without a packet id", q.Msg.Payload)
			}
			stored[string(q.Msg.Payload)] = q.PacketID
		}
	}
	if len(stored) != 3 {
		t.Fatalf("stored %v, want 3 deliveries", stored)
	}

	// After the restart each goes out with its stored id.
	_, addr := startBroker(t, cfg, dir)
	c := dial(t, addr)
	c.connect(&packets.ConnectPacket{ClientID: "sub", KeepAlive: 60})
	for range 3 {
		p := expect[*packets.PublishPacket](c)
		if want := stored[string(p.Payload)]; p.PacketID != want {
			t.Errorf("%q sent with id %d, stored with %d", p.Payload, p.PacketID, want)
		}
		c.send(&packets.PubrecPacket{PacketID: p.PacketID})
		expect[*packets.PubrelPacket](c)
		c.send(&packets.PubcompPacket{PacketID: p.PacketID})
	}
}
