package gateway

import (
	"context"
	"errors"
	"maps"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/mqttsn"
	"go.etcd.io/bbolt"
)

// site is a broker with a data directory and a gateway in front of it, on
// addresses that a restart keeps, so that clients carry on talking to it:
// the gateway's UDP address and, for MQTT clients of the broker, a TCP one.
type site struct {
	t        *testing.T
	dir      string
	udp, tcp string // tcp: "" without a TCP listener
	b        *broker.Server
	g        *Gateway
	rec      *recordingTransport
	done     chan error // the gateway's Serve
	served   chan error // the broker's Serve; nil without a TCP listener
}

// startSite starts a site on dir; tcp "" starts none, "127.0.0.1:0" one
// on a free port.
func startSite(t *testing.T, dir, udp, tcp string) *site {
	t.Helper()
	b, err := broker.New(broker.Config{SysInterval: -1}, broker.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(Config{ClientIDPrefix: "sn-", RetryInterval: 200 * time.Millisecond}, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := ListenUDP(context.Background(), UDPConfig{Address: udp})
	if err != nil {
		t.Fatal(err)
	}
	s := &site{t: t, dir: dir, udp: tr.LocalAddr().String(), b: b, g: g,
		rec: &recordingTransport{UDPTransport: tr}, done: make(chan error, 1)}
	if tcp != "" {
		ln, err := net.Listen("tcp", tcp)
		if err != nil {
			t.Fatal(err)
		}
		s.tcp, s.served = ln.Addr().String(), make(chan error, 1)
		go func() { s.served <- b.Serve(ln) }()
	}
	go func() { s.done <- g.Serve(s.rec) }()
	t.Cleanup(s.stop)
	return s
}

// stop shuts the gateway, then the broker, down; again is a no-op.
func (s *site) stop() {
	if s.g == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	defer cancel()
	if err := s.g.Shutdown(ctx); err != nil {
		s.t.Errorf("gateway Shutdown: %v", err)
	}
	if err := <-s.done; err != nil {
		s.t.Errorf("gateway Serve: %v", err)
	}
	if err := s.b.Shutdown(ctx); err != nil {
		s.t.Errorf("broker Shutdown: %v", err)
	}
	if s.served != nil {
		if err := <-s.served; !errors.Is(err, broker.ErrServerClosed) {
			s.t.Errorf("broker Serve: %v", err)
		}
	}
	s.g = nil
}

// restart stops the site and starts it again on the same directory and
// addresses.
func (s *site) restart() *site {
	s.stop()
	return startSite(s.t, s.dir, s.udp, s.tcp)
}

// recordingTransport notes the types of the messages the gateway receives
// and sends.
type recordingTransport struct {
	*UDPTransport
	mu       sync.Mutex
	received []mqttsn.MsgType
	sent     []mqttsn.MsgType
}

func (r *recordingTransport) Receive(buf []byte) (int, Addr, error) {
	n, from, err := r.UDPTransport.Receive(buf)
	if err == nil {
		if p, derr := mqttsn.Decode(buf[:n]); derr == nil {
			r.mu.Lock()
			r.received = append(r.received, p.Type())
			r.mu.Unlock()
		}
	}
	return n, from, err
}

func (r *recordingTransport) Send(to Addr, msg []byte) error {
	if p, err := mqttsn.Decode(msg); err == nil {
		r.mu.Lock()
		r.sent = append(r.sent, p.Type())
		r.mu.Unlock()
	}
	return r.UDPTransport.Send(to, msg)
}

// count counts the messages of type t sent (or received) by the gateway.
func (r *recordingTransport) count(sent bool, t mqttsn.MsgType) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	types := r.received
	if sent {
		types = r.sent
	}
	n := 0
	for _, x := range types {
		if x == t {
			n++
		}
	}
	return n
}

// storedRecords returns the client ids with a record in the gateway's bucket.
func storedRecords(t *testing.T, b *broker.Server) []string {
	t.Helper()
	var ids []string
	err := b.Storage().View(func(tx *bbolt.Tx) error {
		bk := tx.Bucket(bucketGatewaySessions)
		if bk == nil {
			return nil
		}
		return bk.ForEach(func(k, _ []byte) error { ids = append(ids, string(k)); return nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// waitRecords waits for the asynchronous writes to give want.
func waitRecords(t *testing.T, b *broker.Server, want ...string) {
	t.Helper()
	deadline := time.Now().Add(waitTime)
	for {
		got := storedRecords(t, b)
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stored records %q, want %q", got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSessionRecordRoundTrip(t *testing.T) {
	for _, r := range []sessionRecord{
		{topics: map[uint16]string{}},
		{asleep: true, sleepFor: 3600 * time.Second, next: 3, topics: map[uint16]string{1: "a/b", 3: "c", 0xFFFE: "ü/x"}},
	} {
		b := encodeSessionRecord(r)
		got, err := decodeSessionRecord(b)
		if err != nil {
			t.Fatalf("%+v: %v", r, err)
		}
		if got.asleep != r.asleep || got.sleepFor != r.sleepFor || got.next != r.next || !maps.Equal(got.topics, r.topics) {
			t.Fatalf("decoded %+v, want %+v", got, r)
		}
		// Every truncation and every flipped bit is refused.
		for i := range b {
			if _, err := decodeSessionRecord(b[:i]); err == nil {
				t.Fatalf("truncated to %d bytes: decoded", i)
			}
			c := slices.Clone(b)
			c[i] ^= 0x10
			if _, err := decodeSessionRecord(c); err == nil {
				t.Fatalf("bit flipped in byte %d: decoded", i)
			}
		}
	}
}

// A persistent client's registered topic id survives a restart of the
// gateway and the broker: it publishes on it without registering again.
func TestTopicIDsSurviveRestart(t *testing.T) {
	s := startSite(t, t.TempDir(), "127.0.0.1:0", "")
	col := brokerSubscriber(t, s.b, "a/#")
	c := snClient(t, s.udp, mqttsn.ClientConfig{ClientID: "p1", CleanSession: false})
	if err := c.Connect(bg()); err != nil {
		t.Fatal(err)
	}
	id, err := c.Register(bg(), "a/b")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(bg(), mqttsn.TopicName("a/b"), []byte("before"), 1, false); err != nil {
		t.Fatal(err)
	}
	col.wait(t, 1)
	waitRecords(t, s.b, "p1")

	s = s.restart()
	col = brokerSubscriber(t, s.b, "a/#")
	if err := c.Connect(bg()); err != nil { // same client, CleanSession=0
		t.Fatal(err)
	}
	if err := c.Publish(bg(), mqttsn.TopicName("a/b"), []byte("after"), 1, false); err != nil {
		t.Fatal(err)
	}
	if got := col.wait(t, 1); got[0] != "a/b after" {
		t.Fatalf("broker got %q", got)
	}
	if n := s.rec.count(false, mqttsn.TypeRegister); n != 0 {
		t.Fatalf("the client registered again (%d REGISTER) instead of using id %d", n, id)
	}
	if n := s.rec.count(false, mqttsn.TypePublish); n != 1 {
		t.Fatalf("%d PUBLISH received, want 1 (no PUBACK invalid topic id and resend)", n)
	}

	// A clean session starts over: the record goes, and the id is unknown.
	c.Close()
	clean := snClient(t, s.udp, mqttsn.ClientConfig{ClientID: "p1", CleanSession: true})
	if err := clean.Connect(bg()); err != nil {
		t.Fatal(err)
	}
	waitRecords(t, s.b)
}

// A persistent client that sleeps through a restart wakes with PINGREQ and
// collects what was published for it meanwhile, on the topic id it got
// before the restart.
func TestSleeperWakesAfterRestart(t *testing.T) {
	s := startSite(t, t.TempDir(), "127.0.0.1:0", "")
	col := newCollector()
	c := snClient(t, s.udp, mqttsn.ClientConfig{ClientID: "s1", CleanSession: false,
		OnMessage: func(m mqttsn.Message) { col.add(m.Topic + " " + string(m.Payload)) }})
	if err := c.Connect(bg()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Subscribe(bg(), mqttsn.TopicName("cmd/s1"), 1); err != nil { // an id in SUBACK
		t.Fatal(err)
	}
	if err := c.Sleep(bg(), time.Hour); err != nil {
		t.Fatal(err)
	}

	s = s.restart()
	pub, _, err := s.b.Connect(broker.LocalConfig{ClientID: "app", CleanSession: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"1", "2"} {
		if err := pub.Publish(bg(), broker.Message{Topic: "cmd/s1", Payload: []byte(m), QoS: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Wake(bg()); err != nil {
		t.Fatal(err)
	}
	if got := col.wait(t, 2); got[0] != "cmd/s1 1" || got[1] != "cmd/s1 2" {
		t.Fatalf("after waking: %q", got)
	}
	if n := s.rec.count(true, mqttsn.TypeRegister); n != 0 {
		t.Fatalf("the gateway registered the topic again (%d REGISTER) instead of using the old id", n)
	}
	if n := s.g.Stats().ClientsConnected; n != 1 {
		t.Fatalf("%d clients connected, want the woken sleeper", n)
	}

	// It sleeps on, and wakes again.
	if err := pub.Publish(bg(), broker.Message{Topic: "cmd/s1", Payload: []byte("3"), QoS: 1}); err != nil {
		t.Fatal(err)
	}
	if err := c.Wake(bg()); err != nil {
		t.Fatal(err)
	}
	if got := col.wait(t, 3); got[2] != "cmd/s1 3" {
		t.Fatalf("second wake: %q", got)
	}

	// Connecting makes it active: after another restart it is no sleeper.
	if err := c.Connect(bg()); err != nil {
		t.Fatal(err)
	}
	s = s.restart()
	if c := s.g.sleeperByID("s1"); c != nil {
		t.Fatal("an active client woken as a sleeper after a restart")
	}
}

// A persistent client that ends its session while asleep is no sleeper
// after a restart: its record no longer says asleep.
func TestSleeperThatDisconnectsIsNoSleeperAfterRestart(t *testing.T) {
	s := startSite(t, t.TempDir(), "127.0.0.1:0", "")
	c := snClient(t, s.udp, mqttsn.ClientConfig{ClientID: "s2", CleanSession: false})
	if err := c.Connect(bg()); err != nil {
		t.Fatal(err)
	}
	if err := c.Sleep(bg(), time.Hour); err != nil {
		t.Fatal(err)
	}
	waitRecords(t, s.b, "s2") // asleep
	if err := c.Disconnect(bg()); err != nil {
		t.Fatal(err)
	}
	// The record is submitted before the session ends in the count.
	deadline := time.Now().Add(waitTime)
	for s.g.Stats().ClientsConnected != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the DISCONNECT did not end the session")
		}
		time.Sleep(5 * time.Millisecond)
	}
	s = s.restart()
	if c := s.g.sleeperByID("s2"); c != nil {
		t.Fatal("a client that disconnected while asleep woken as a sleeper after a restart")
	}
}
