package broker

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/sngate/sngate/broker/auth"
	"github.com/sngate/sngate/broker/packets"
)

// localInbox collects what an in-process client receives.
type localInbox struct {
	mu  sync.Mutex
	got []Delivery
	ch  chan struct{}
}

func newLocalInbox() *localInbox { return &localInbox{ch: make(chan struct{}, 1000)} }

func (in *localInbox) deliver(d Delivery) {
	in.mu.Lock()
	in.got = append(in.got, d)
	in.mu.Unlock()
	in.ch <- struct{}{}
}

func (in *localInbox) wait(t *testing.T, n int) []Delivery {
	t.Helper()
	deadline := time.After(waitTime)
	for {
		in.mu.Lock()
		got := append([]Delivery(nil), in.got...)
		in.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-in.ch:
		case <-deadline:
			t.Fatalf("got %d deliveries, want %d", len(got), n)
		}
	}
}

func bg() context.Context { return context.Background() }

func TestLocalClientAndNetworkClientMeet(t *testing.T) {
	s, addr := startBroker(t, Config{}, "")
	in := newLocalInbox()
	lc, present, err := s.Connect(LocalConfig{ClientID: "sn-sensor1", CleanSession: true, OnMessage: in.deliver})
	if err != nil || present {
		t.Fatalf("Connect = %v, present %v", err, present)
	}
	codes, err := lc.Subscribe(bg(), Subscription{Filter: "cmd/#", QoS: 1})
	if err != nil || len(codes) != 1 || codes[0] != 1 {
		t.Fatalf("Subscribe = %v, %v", codes, err)
	}

	// A network client publishes to the in-process one...
	net := connected(t, addr, "app", true)
	net.publish(&packets.PublishPacket{QoS: 1, Topic: []byte("cmd/valve"), PacketID: 1, Payload: []byte("open")})
	expect[*packets.PubackPacket](net)
	d := in.wait(t, 1)[0]
	if d.Message.Topic != "cmd/valve" || string(d.Message.Payload) != "open" || d.QoS != 1 || d.PacketID == 0 || d.Retain {
		t.Fatalf("delivery %+v", d)
	}
	lc.Ack(d.PacketID)

	// ...and the in-process one to the network client.
	net.subscribe(2, packets.Subscription{Filter: "sensors/+", QoS: 1})
	if err := lc.Publish(bg(), Message{Topic: "sensors/t1", Payload: []byte("21.5"), QoS: 1}); err != nil {
		t.Fatal(err)
	}
	got := expect[*packets.PublishPacket](net)
	if string(got.Topic) != "sensors/t1" || string(got.Payload) != "21.5" || got.QoS != 1 {
		t.Fatalf("PUBLISH %+v", got)
	}
	net.send(&packets.PubackPacket{PacketID: got.PacketID})
	lc.Disconnect(false)
	if err := lc.Publish(bg(), Message{Topic: "x"}); err != ErrClientClosed {
		t.Errorf("Publish after Disconnect = %v", err)
	}
}

func TestLocalClientWindowAndAck(t *testing.T) {
	s, _ := startBroker(t, Config{MaxInflight: 2}, "")
	in := newLocalInbox()
	lc, _, _ := s.Connect(LocalConfig{ClientID: "slow", CleanSession: true, OnMessage: in.deliver})
	lc.Subscribe(bg(), Subscription{Filter: "t", QoS: 2})
	pub, _, _ := s.Connect(LocalConfig{ClientID: "pub", CleanSession: true})
	for i := range 5 {
		if err := pub.Publish(bg(), Message{Topic: "t", Payload: []byte{byte('0' + i)}, QoS: 2}); err != nil {
			t.Fatal(err)
		}
	}
	got := in.wait(t, 2)
	time.Sleep(50 * time.Millisecond) // nothing beyond the window may follow
	if n := len(in.wait(t, 2)); n != 2 {
		t.Fatalf("%d deliveries with a window of 2", n)
	}
	for i := 0; i < 5; i++ {
		lc.Ack(got[i].PacketID)
		got = in.wait(t, min(i+3, 5))
	}
	for i, d := range got {
		if string(d.Message.Payload) != string(rune('0'+i)) || d.QoS != 2 {
			t.Errorf("delivery %d = %q at QoS %d", i, d.Message.Payload, d.QoS)
		}
	}
}

func TestLocalClientWill(t *testing.T) {
	s, _ := startBroker(t, Config{}, "")
	in := newLocalInbox()
	watcher, _, _ := s.Connect(LocalConfig{ClientID: "watcher", CleanSession: true, OnMessage: in.deliver})
	watcher.Subscribe(bg(), Subscription{Filter: "status/#"})
	will := &Message{Topic: "status/s1", Payload: []byte("lost")}

	quiet, _, _ := s.Connect(LocalConfig{ClientID: "s1", CleanSession: true, Will: will})
	quiet.Disconnect(false) // a clean DISCONNECT: no will
	lost, _, _ := s.Connect(LocalConfig{ClientID: "s1", CleanSession: true, Will: will})
	lost.Disconnect(true) // the gateway lost the sensor
	d := in.wait(t, 1)
	time.Sleep(20 * time.Millisecond)
	if len(in.wait(t, 1)) != 1 || string(d[0].Message.Payload) != "lost" {
		t.Fatalf("deliveries %+v, want the will once", d)
	}
}

func TestLocalClientPersistentSessionSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s, err := New(Config{SysInterval: -1}, Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	lc, _, _ := s.Connect(LocalConfig{ClientID: "bridge", CleanSession: false})
	if _, err := lc.Subscribe(bg(), Subscription{Filter: "up/#", QoS: 1}); err != nil {
		t.Fatal(err)
	}
	lc.Disconnect(false)
	pub, _, _ := s.Connect(LocalConfig{ClientID: "p", CleanSession: true})
	for i := range 3 {
		if err := pub.Publish(bg(), Message{Topic: "up/x", Payload: []byte{byte('a' + i)}, QoS: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Shutdown(bg()); err != nil {
		t.Fatal(err)
	}

	s2, err := New(Config{SysInterval: -1}, Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Shutdown(bg())
	in := newLocalInbox()
	lc2, present, _ := s2.Connect(LocalConfig{ClientID: "bridge", CleanSession: false, OnMessage: in.deliver})
	if !present {
		t.Fatal("session not present after restart")
	}
	got := in.wait(t, 3)
	for i, d := range got[:3] {
		if string(d.Message.Payload) != string(rune('a'+i)) {
			t.Errorf("message %d = %q", i, d.Message.Payload)
		}
		lc2.Ack(d.PacketID)
	}
}

func TestLocalClientACL(t *testing.T) {
	s, _ := startBroker(t, Config{Auth: auth.Config{ACL: []auth.Rule{
		{User: "gw", Topic: "sensors/#", Access: "readwrite"},
	}}}, "")
	in := newLocalInbox()
	lc, _, _ := s.Connect(LocalConfig{ClientID: "c", Username: "gw", CleanSession: true, OnMessage: in.deliver})
	codes, err := lc.Subscribe(bg(), Subscription{Filter: "sensors/#"}, Subscription{Filter: "secret/#"})
	if err != nil || codes[0] != 0 || codes[1] != 0x80 {
		t.Fatalf("codes %v, %v", codes, err)
	}
	before := s.Stats().ACLDenied
	if err := lc.Publish(bg(), Message{Topic: "secret/x", Payload: []byte("1")}); err != nil {
		t.Fatal(err)
	}
	if s.Stats().ACLDenied != before+1 {
		t.Error("denied publish not counted")
	}

	// A trusted client (the bridge) is not bound by the rules.
	trusted, _, _ := s.Connect(LocalConfig{ClientID: "bridge", Trusted: true, CleanSession: true, OnMessage: in.deliver})
	codes, err = trusted.Subscribe(bg(), Subscription{Filter: "secret/#"})
	if err != nil || codes[0] != 0 {
		t.Fatalf("trusted codes %v, %v", codes, err)
	}
	if err := trusted.Publish(bg(), Message{Topic: "secret/y", Payload: []byte("2")}); err != nil {
		t.Fatal(err)
	}
	if d := in.wait(t, 1)[0]; d.Message.Topic != "secret/y" {
		t.Fatalf("trusted client got %q", d.Message.Topic)
	}
	if s.Stats().ACLDenied != before+1 {
		t.Error("a trusted client's subscribe or publish was counted as denied")
	}
}

func TestLocalClientSetWill(t *testing.T) {
	s, _ := startBroker(t, Config{}, "")
	in := newLocalInbox()
	watcher, _, _ := s.Connect(LocalConfig{ClientID: "watcher", CleanSession: true, OnMessage: in.deliver})
	if _, err := watcher.Subscribe(bg(), Subscription{Filter: "status/#"}); err != nil {
		t.Fatal(err)
	}
	c, _, _ := s.Connect(LocalConfig{ClientID: "s1", CleanSession: true, Will: &Message{Topic: "status/old", Payload: []byte("x")}})
	c.SetWill(&Message{Topic: "status/new", Payload: []byte("lost")})
	c.Disconnect(true)
	// Disconnect routes the will before it returns: one will, the new one.
	got := in.wait(t, 1)
	if d := got[0]; d.Message.Topic != "status/new" || string(d.Message.Payload) != "lost" {
		t.Fatalf("will %q on %q, want the updated one", d.Message.Payload, d.Message.Topic)
	}
	if len(got) != 1 {
		t.Fatalf("%d wills published, want 1", len(got))
	}
}
