package broker

import (
	"context"
	"reflect"
	"testing"

	"github.com/sngate/sngate/broker/packets"
	"github.com/sngate/sngate/broker/persist"
	"github.com/sngate/sngate/internal/storage"
	"go.etcd.io/bbolt"
)

// Outgoing deliveries keep their packet ids and PUBREC state across a
// restart of the broker (MQTT-4.4.0-1, MQTT-4.3.3-1): see also
// TestPersist_RestartKeepsOutboundQoS2State and TestHardRestartQoS2InFlight.

// expectDup receives the resent PUBLISH of m: DUP set, same packet id.
func (c *client) expectDup(m gotMsg) {
	c.t.Helper()
	got := c.recvMsg()
	m.Dup = true
	if got != m {
		c.t.Fatalf("got PUBLISH %+v, want %+v", got, m)
	}
}

func (c *client) expectPubrel(pid uint16) {
	c.t.Helper()
	if rel := expect[*packets.PubrelPacket](c); rel.PacketID != pid {
		c.t.Fatalf("PUBREL %d, want %d", rel.PacketID, pid)
	}
}

// A QoS 1 delivery sent at once and not acknowledged comes back after a
// restart with DUP set and its packet id; once acknowledged it is gone.
func TestPersist_RestartRedeliversQoS1WithDUPAndSameID(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s1, addr := startBroker(t, Config{}, dir)
	c := connected(t, addr, "sub", false)
	c.mustSubscribe(1, "q1", 1)
	p := connected(t, addr, "pub", true)
	p.pub("q1", "a", 1, false, 1)
	p.pub("q1", "b", 1, false, 2)
	ma := c.expectMsg("q1", "a", 1, false)
	mb := c.expectMsg("q1", "b", 1, false)
	c.send(&packets.PubackPacket{PacketID: ma.PID})
	c.ping()
	shutdownServer(t, s1)

	s2, addr := startBroker(t, Config{}, dir)
	c = dial(t, addr)
	c.connectOK(&packets.ConnectPacket{ClientID: "sub", KeepAlive: 60})
	c.expectDup(mb)
	c.ping() // not "a": it was acknowledged
	c.send(&packets.PubackPacket{PacketID: mb.PID})
	c.ping()
	shutdownServer(t, s2)

	_, addr = startBroker(t, Config{}, dir)
	c = dial(t, addr)
	c.connectOK(&packets.ConnectPacket{ClientID: "sub", KeepAlive: 60})
	c.ping() // nothing left
}

// Deliveries queued while the client was away get their packet ids when
// they are sent (on reconnect, and when an acknowledgement makes room in
// the window), and keep them, with their PUBREC state, across a restart.
func TestPersist_RestartKeepsIDsOfQueuedDeliveries(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := Config{MaxInflight: 3}
	s1, addr := startBroker(t, cfg, dir)
	c := connected(t, addr, "sub", false)
	c.mustSubscribe(1, "f/#", 2)
	c.disconnect()
	p := connected(t, addr, "pub", true)
	for i, m := range []struct {
		payload string
		qos     byte
	}{{"1", 1}, {"2", 2}, {"3", 2}, {"4", 1}} {
		p.pub("f/t", m.payload, m.qos, false, uint16(i+1))
	}

	c = dial(t, addr)
	if !c.connectOK(&packets.ConnectPacket{ClientID: "sub", KeepAlive: 60}) {
		t.Fatal("session not present")
	}
	m1 := c.expectMsg("f/t", "1", 1, false)
	m2 := c.expectMsg("f/t", "2", 2, false)
	m3 := c.expectMsg("f/t", "3", 2, false)
	c.send(&packets.PubackPacket{PacketID: m1.PID}) // makes room for "4"
	m4 := c.expectMsg("f/t", "4", 1, false)
	c.send(&packets.PubrecPacket{PacketID: m3.PID})
	c.expectPubrel(m3.PID)
	c.ping()
	shutdownServer(t, s1)

	s2, addr := startBroker(t, cfg, dir)
	c = dial(t, addr)
	c.connectOK(&packets.ConnectPacket{ClientID: "sub", KeepAlive: 60})
	c.expectDup(m2)
	c.expectPubrel(m3.PID)
	c.expectDup(m4)
	c.ping()
	// finish them; a new delivery meanwhile must not take the id of one
	// still in flight
	c.ack(m2) // room in the window
	p = connected(t, addr, "pub", true)
	p.pub("f/t", "5", 2, false, 1)
	m5 := c.expectMsg("f/t", "5", 2, false)
	if m5.PID == m3.PID || m5.PID == m4.PID {
		t.Fatalf("new delivery got packet id %d, in flight already", m5.PID)
	}
	c.send(&packets.PubcompPacket{PacketID: m3.PID})
	c.ack(m4)
	c.ack(m5)
	c.ping()
	shutdownServer(t, s2)

	_, addr = startBroker(t, cfg, dir)
	c = dial(t, addr)
	c.connectOK(&packets.ConnectPacket{ClientID: "sub", KeepAlive: 60})
	c.ping() // nothing left
}

// The PUBREL waits for the store: when the released state cannot be
// written, none is sent, the client is disconnected, and on its return the
// message comes again with its id for a new PUBREC.
func TestPersist_PubrelWithheldWhenNotStored(t *testing.T) {
	t.Parallel()
	s, addr := startBroker(t, Config{}, t.TempDir())
	c := connected(t, addr, "sub", false)
	c.mustSubscribe(1, "x", 2)
	p := connected(t, addr, "pub", true)
	p.pub("x", "once", 2, false, 1)
	m := c.expectMsg("x", "once", 2, false)

	// damage the stored message so that the SetInflight of the PUBREC fails
	var key, good []byte
	queue := func(tx *bbolt.Tx) *bbolt.Bucket {
		return tx.Bucket([]byte("sessions")).Bucket([]byte("sub")).Bucket([]byte("queue"))
	}
	if err := s.store.DB().Update(context.Background(), func(tx *bbolt.Tx) error {
		k, v := queue(tx).Cursor().First()
		if k == nil {
			t.Fatal("message not stored")
		}
		key, good = append([]byte(nil), k...), append([]byte(nil), v...)
		bad := append([]byte(nil), v...)
		bad[len(bad)/2] ^= 0x40
		return queue(tx).Put(key, bad)
	}); err != nil {
		t.Fatal(err)
	}
	c.send(&packets.PubrecPacket{PacketID: m.PID})
	c.expectClosedSilently()
	waitStats(t, s, "store error counted", func(st Stats) bool { return st.StoreErrors > 0 })

	if err := s.store.DB().Update(context.Background(), func(tx *bbolt.Tx) error {
		return queue(tx).Put(key, good)
	}); err != nil {
		t.Fatal(err)
	}
	c = dial(t, addr)
	c.connectOK(&packets.ConnectPacket{ClientID: "sub", KeepAlive: 60})
	c.expectDup(m)
	c.send(&packets.PubrecPacket{PacketID: m.PID})
	c.expectPubrel(m.PID)
	c.send(&packets.PubcompPacket{PacketID: m.PID})
	c.ping()
}

// Two stored deliveries with one packet id: the broker reuses an id only
// after the delivery that had it was acknowledged, so the older one is done
// (its Dequeue was lost) and is dropped at load rather than sent again.
func TestPersist_LoadDropsSupersededDelivery(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st, err := persist.Open(dir, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	st.Apply([]persist.Op{
		persist.PutSession(persist.Session{ClientID: "sub", Subscriptions: []persist.Subscription{{Filter: "d", QoS: 2}}}),
		persist.Enqueue("sub", persist.Queued{Seq: 1, Msg: persist.Message{Topic: "d", Payload: []byte("old"), QoS: 2}, PacketID: 5, Released: true}),
		persist.Enqueue("sub", persist.Queued{Seq: 2, Msg: persist.Message{Topic: "d", Payload: []byte("new"), QoS: 1}, PacketID: 5}),
		persist.Enqueue("sub", persist.Queued{Seq: 3, Msg: persist.Message{Topic: "d", Payload: []byte("queued"), QoS: 2}}),
	}, func(err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	s, addr := startBroker(t, Config{}, dir)
	c := dial(t, addr)
	c.connectOK(&packets.ConnectPacket{ClientID: "sub", KeepAlive: 60})
	c.expectDup(gotMsg{Topic: "d", Payload: "new", QoS: 1, PID: 5})
	q := c.expectMsg("d", "queued", 2, false)
	if q.Dup || q.PID == 5 {
		t.Fatalf("queued message sent as %+v", q)
	}
	c.ping()
	shutdownServer(t, s)

	st, err = persist.Open(dir, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	state, err := st.Load()
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for _, q := range state.Sessions[0].Queue {
		seqs = append(seqs, q.Seq)
	}
	if !reflect.DeepEqual(seqs, []uint64{2, 3}) {
		t.Fatalf("stored seqs %v, want [2 3]", seqs)
	}
}
