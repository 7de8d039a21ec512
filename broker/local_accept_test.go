package broker

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sngate/sngate/broker/packets"
)

// acceptRecorder is an Accept hand-over that holds each done until the
// test releases it, as the bridge holds it until its disk queue is synced.
type acceptRecorder struct {
	mu    sync.Mutex
	got   []Delivery
	dones []func(error)
	ch    chan struct{}
}

func newAcceptRecorder() *acceptRecorder { return &acceptRecorder{ch: make(chan struct{}, 100)} }

func (r *acceptRecorder) accept(d Delivery, done func(error)) {
	r.mu.Lock()
	r.got = append(r.got, d)
	r.dones = append(r.dones, done)
	r.mu.Unlock()
	r.ch <- struct{}{}
}

func (r *acceptRecorder) wait(t *testing.T, n int) ([]Delivery, []func(error)) {
	t.Helper()
	deadline := time.After(waitTime)
	for {
		r.mu.Lock()
		got, dones := append([]Delivery(nil), r.got...), slices.Clone(r.dones)
		r.mu.Unlock()
		if len(got) >= n {
			return got, dones
		}
		select {
		case <-r.ch:
		case <-deadline:
			t.Fatalf("accepted %d, want %d", len(got), n)
		}
	}
}

// TestLocalAcceptHoldsThePublishersAck: a QoS 1 PUBLISH is acknowledged
// only once the accepting client calls done(nil), whatever the window.
func TestLocalAcceptHoldsThePublishersAck(t *testing.T) {
	s, addr := startBroker(t, Config{MaxInflight: 2}, "")
	rec := newAcceptRecorder()
	lc, _, err := s.Connect(LocalConfig{ClientID: "bridge", CleanSession: true, Accept: rec.accept})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lc.Subscribe(bg(), Subscription{Filter: "up/#", QoS: 2}); err != nil {
		t.Fatal(err)
	}
	pub := connected(t, addr, "sensor", true)
	// More than the window of 2: an accepting client has no window.
	for i := uint16(1); i <= 5; i++ {
		pub.publish(&packets.PublishPacket{QoS: 1, Topic: []byte("up/t"), PacketID: i, Payload: []byte{byte(i)}})
	}
	got, dones := rec.wait(t, 5)
	for i, d := range got {
		if d.QoS != 1 || d.PacketID != 0 || d.Message.Payload[0] != byte(i+1) {
			t.Fatalf("delivery %d: %+v", i, d)
		}
	}
	pub.expectNothing(100 * time.Millisecond) // no PUBACK before done
	for _, done := range dones {
		done(nil)
	}
	for i := uint16(1); i <= 5; i++ {
		if ack := expect[*packets.PubackPacket](pub); ack.PacketID != i {
			t.Fatalf("PUBACK %d, want %d", ack.PacketID, i)
		}
	}

	// QoS 0 needs no done.
	pub.publish(&packets.PublishPacket{QoS: 0, Topic: []byte("up/t"), Payload: []byte("q0")})
	if got, _ := rec.wait(t, 6); got[5].QoS != 0 || string(got[5].Message.Payload) != "q0" {
		t.Fatalf("QoS 0 delivery %+v", got[5])
	}
}

// TestLocalAcceptFailureFailsThePublish: done(err) withholds the
// acknowledgement: a network publisher is closed unacknowledged and an
// in-process one gets the error.
func TestLocalAcceptFailureFailsThePublish(t *testing.T) {
	s, addr := startBroker(t, Config{}, "")
	rec := newAcceptRecorder()
	lc, _, err := s.Connect(LocalConfig{ClientID: "bridge", CleanSession: true, Accept: rec.accept})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lc.Subscribe(bg(), Subscription{Filter: "up/#", QoS: 1}); err != nil {
		t.Fatal(err)
	}
	pub := connected(t, addr, "sensor", true)
	pub.publish(&packets.PublishPacket{QoS: 1, Topic: []byte("up/t"), PacketID: 7, Payload: []byte("x")})
	_, dones := rec.wait(t, 1)
	dones[0](errors.New("disk full"))
	pub.expectClosed()

	sn, _, err := s.Connect(LocalConfig{ClientID: "sn-1", CleanSession: true})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- sn.Publish(bg(), Message{Topic: "up/u", QoS: 1, Payload: []byte("y")}) }()
	_, dones = rec.wait(t, 2)
	want := errors.New("queue refused")
	dones[1](want)
	if err := <-errc; !errors.Is(err, want) {
		t.Fatalf("Publish = %v, want %v", err, want)
	}

	if _, _, err := s.Connect(LocalConfig{ClientID: "p", Accept: rec.accept}); err == nil {
		t.Fatal("Accept with a persistent session was allowed")
	}
}

// TestLocalNoLocal: a NoLocal client does not get its own messages back;
// others do.
func TestLocalNoLocal(t *testing.T) {
	s, _ := startBroker(t, Config{}, "")
	self, other := newLocalInbox(), newLocalInbox()
	a, _, err := s.Connect(LocalConfig{ClientID: "bridge", CleanSession: true, NoLocal: true, OnMessage: self.deliver})
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := s.Connect(LocalConfig{ClientID: "app", CleanSession: true, OnMessage: other.deliver})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*LocalClient{a, b} {
		if _, err := c.Subscribe(bg(), Subscription{Filter: "cmd/#"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Publish(bg(), Message{Topic: "cmd/1", Payload: []byte("from bridge")}); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(bg(), Message{Topic: "cmd/2", Payload: []byte("from app")}); err != nil {
		t.Fatal(err)
	}
	if got := other.wait(t, 1); got[0].Message.Topic != "cmd/1" {
		t.Fatalf("app got %q first", got[0].Message.Topic)
	}
	if got := self.wait(t, 1); len(got) != 1 || got[0].Message.Topic != "cmd/2" {
		t.Fatalf("bridge got %d messages, first %q; want only cmd/2", len(got), got[0].Message.Topic)
	}
}
