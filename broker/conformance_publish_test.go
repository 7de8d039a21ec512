package broker

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sngate/sngate/broker/packets"
)

// Conformance tests for PUBLISH, QoS, packet ids and ordering (§6.3 of the
// reference), plus the packet size, in-flight and queue limits.

// MQTT-2.3.1-1: SUBSCRIBE, UNSUBSCRIBE and QoS 1/2 PUBLISH carry a non-zero
// packet id: a client sending id 0 is closed; the server never sends 0.
func TestMQTT_2_3_1_1_NonZeroPacketIDs(t *testing.T) {
	t.Parallel()
	s, addr := startBroker(t, Config{}, "")
	for name, b := range map[string][]byte{
		"PUBLISH QoS 1": rawPacket(0x32, strField("a"), []byte{0, 0}),
		"PUBLISH QoS 2": rawPacket(0x34, strField("a"), []byte{0, 0}, []byte("x")),
		"SUBSCRIBE":     rawPacket(0x82, []byte{0, 0}, strField("a"), []byte{0}),
		"UNSUBSCRIBE":   rawPacket(0xA2, []byte{0, 0}, strField("a")),
	} {
		t.Run(name, func(t *testing.T) {
			c := connected(t, addr, "zero", true)
			c.raw(b)
			c.expectClosed()
		})
	}
	waitStats(t, s, "protocol errors counted", func(st Stats) bool { return st.ProtocolErrors == 4 })

	c := subscribed(t, addr, "sub", "ids", 2)
	p := connected(t, addr, "pub", true)
	for i := range 5 {
		p.pub("ids", "x", byte(1+i%2), false, uint16(i+1))
		if m := c.recvMsg(); m.PID == 0 {
			t.Fatalf("server sent packet id 0: %+v", m)
		} else {
			c.ack(m)
		}
	}
}

// MQTT-2.3.1-2: a new packet uses an id not in use; a client may reuse an
// id once its flow is complete (SUBACK, UNSUBACK, PUBACK, PUBCOMP).
func TestMQTT_2_3_1_2_IDFreedOnCompletion(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	w := subscribed(t, addr, "watch", "reuse", 2)
	c := connected(t, addr, "c", true)
	for range 3 {
		c.mustSubscribe(7, "x", 1)
		c.send(&packets.UnsubscribePacket{PacketID: 7, Filters: []string{"x"}})
		if a := expect[*packets.UnsubackPacket](c); a.PacketID != 7 {
			t.Fatalf("UNSUBACK %d", a.PacketID)
		}
		c.pub("reuse", "q1", 1, false, 7)
		w.ack(w.expectMsg("reuse", "q1", 2-1, false))
		c.pub("reuse", "q2", 2, false, 7)
		w.ack(w.expectMsg("reuse", "q2", 2, false))
	}
}

// MQTT-2.3.1-3: a resent packet keeps its id (here: the server's resend to
// a reconnecting persistent session).
func TestMQTT_2_3_1_3_ResendKeepsID(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	c := connected(t, addr, "p", false)
	c.mustSubscribe(1, "keep", 1)
	p := connected(t, addr, "pub", true)
	p.pub("keep", "a", 1, false, 1)
	first := c.expectMsg("keep", "a", 1, false)
	for range 2 {
		c.drop()
		c = dial(t, addr)
		c.connectOK(&packets.ConnectPacket{ClientID: "p", KeepAlive: 60})
		if again := c.expectMsg("keep", "a", 1, false); again.PID != first.PID || !again.Dup {
			t.Fatalf("resent %+v, first sent %+v", again, first)
		}
	}
	c.ack(first)
	c.ping()
}

// MQTT-2.3.1-4: the server's own QoS 1/2 PUBLISH ids are unused ones: all
// in-flight deliveries have distinct ids, and the allocator skips 0 and ids
// still in flight when it wraps around.
func TestMQTT_2_3_1_4_ServerIDsUnused(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{MaxInflight: 50}, "")
	c := subscribed(t, addr, "sub", "ids/#", 2)
	p := connected(t, addr, "pub", true)
	for i := range 40 {
		p.pub(fmt.Sprintf("ids/%d", i), "x", byte(1+i%2), false, uint16(i+1))
	}
	seen := map[uint16]bool{}
	var ms []gotMsg
	for range 40 {
		m := c.recvMsg()
		if m.PID == 0 || seen[m.PID] {
			t.Fatalf("packet id %d reused while in flight", m.PID)
		}
		seen[m.PID] = true
		ms = append(ms, m)
	}
	for _, m := range ms {
		c.ack(m)
	}
	c.ping()

	// The wrap-around, white-box: with ids 65535, 1 and 2 in flight the
	// allocator after 65534 skips them and 0.
	ws := newSession(nil, "w", false)
	ws.inflight = []*delivery{{pid: 65535}, {pid: 1}, {pid: 2}}
	ws.nextPID = 65534
	if got := ws.allocPID(); got != 3 {
		t.Fatalf("allocPID = %d, want 3", got)
	}
}

// MQTT-2.3.1-5: a QoS 0 PUBLISH has no packet id: the bytes after the
// topic of an incoming one are payload, and an outgoing one (also one
// downgraded to QoS 0) carries none.
func TestMQTT_2_3_1_5_QoS0NoPacketID(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	w := subscribed(t, addr, "watch", "e", 0)
	c := connected(t, addr, "c", true)
	c.raw(rawPacket(0x30, strField("e"), []byte{0x12, 0x34, 'z'}))
	c.ping()
	w.expectMsg("e", "\x12\x34z", 0, false)
	c.pub("e", "from QoS 2", 2, false, 7)
	w.expectMsg("e", "from QoS 2", 0, false) // expectMsg checks that there is no id
}

// MQTT-2.3.1-6: PUBACK, PUBREC, PUBREL (and PUBCOMP) carry the id of the
// PUBLISH they belong to, both ways.
func TestMQTT_2_3_1_6_PublishAcksEchoID(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	w := subscribed(t, addr, "watch", "e", 2)
	c := connected(t, addr, "c", true)
	for _, id := range []uint16{1, 0x1234, 0xFFFF} {
		c.pub("e", "1", 1, false, id) // checks the PUBACK id
		c.pub("e", "2", 2, false, id) // checks the PUBREC and PUBCOMP ids
		w.ack(w.expectMsg("e", "1", 1, false))
		w.ack(w.expectMsg("e", "2", 2, false)) // checks the server's PUBREL id
	}
}

// MQTT-2.3.1-7: SUBACK and UNSUBACK carry the id of their SUBSCRIBE and
// UNSUBSCRIBE.
func TestMQTT_2_3_1_7_SubackUnsubackEchoID(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	c := connected(t, addr, "c", true)
	for _, id := range []uint16{1, 0x1234, 0xFFFF} {
		if a := c.subscribe(id, packets.Subscription{Filter: "x"}); a.PacketID != id {
			t.Fatalf("SUBACK %d for %d", a.PacketID, id)
		}
		c.send(&packets.UnsubscribePacket{PacketID: id, Filters: []string{"x"}})
		if a := expect[*packets.UnsubackPacket](c); a.PacketID != id {
			t.Fatalf("UNSUBACK %d for %d", a.PacketID, id)
		}
	}
}

// §2.3.1: client and server packet ids are independent: a client may use
// for its own PUBLISH the id of a PUBLISH the server has in flight to it.
func TestMQTT_2_3_1_IndependentIDSpaces(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	c := connected(t, addr, "both", true)
	c.mustSubscribe(1, "loop", 2)
	p := connected(t, addr, "pub", true)
	p.pub("loop", "from server", 2, false, 1)
	in := c.expectMsg("loop", "from server", 2, false)

	// The same id the other way, both QoS 2 flows open at once.
	c.send(&packets.PublishPacket{Topic: []byte("other"), Payload: []byte("from client"), QoS: 2, PacketID: in.PID})
	if a := expect[*packets.PubrecPacket](c); a.PacketID != in.PID {
		t.Fatalf("PUBREC %d", a.PacketID)
	}
	c.send(&packets.PubrecPacket{PacketID: in.PID}) // for the server's
	if a := expect[*packets.PubrelPacket](c); a.PacketID != in.PID {
		t.Fatalf("PUBREL %d", a.PacketID)
	}
	c.send(&packets.PubrelPacket{PacketID: in.PID}) // for ours
	if a := expect[*packets.PubcompPacket](c); a.PacketID != in.PID {
		t.Fatalf("PUBCOMP %d", a.PacketID)
	}
	c.send(&packets.PubcompPacket{PacketID: in.PID})
	c.ping()
	p.pub("loop", "next", 1, false, 2) // the server's flow is complete
	c.ack(c.expectMsg("loop", "next", 1, false))
}

// MQTT-3.3.1-1: DUP is 1 when the server re-delivers a PUBLISH and 0 on its
// first delivery.
func TestMQTT_3_3_1_1_DupOnRedelivery(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	c := connected(t, addr, "p", false)
	c.mustSubscribe(1, "d", 2)
	p := connected(t, addr, "pub", true)
	p.pub("d", "1", 1, false, 1)
	p.pub("d", "2", 2, false, 2)
	for _, m := range []gotMsg{c.recvMsg(), c.recvMsg()} {
		if m.Dup {
			t.Fatalf("first delivery with DUP: %+v", m)
		}
	}
	c.drop()
	c = dial(t, addr)
	c.connectOK(&packets.ConnectPacket{ClientID: "p", KeepAlive: 60})
	for range 2 {
		if m := c.recvMsg(); !m.Dup {
			t.Fatalf("re-delivery without DUP: %+v", m)
		} else {
			c.ack(m)
		}
	}
}

// MQTT-3.3.1-2: DUP is 0 on every QoS 0 PUBLISH the server sends, also for
// queued QoS 0 messages delivered on reconnect.
func TestMQTT_3_3_1_2_NoDupAtQoS0(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{QueueQoS0: true}, "")
	c := connected(t, addr, "p", false)
	c.mustSubscribe(1, "d", 0)
	p := connected(t, addr, "pub", true)
	p.pub("d", "live", 2, false, 1) // downgraded to 0
	if m := c.expectMsg("d", "live", 0, false); m.Dup {
		t.Fatalf("QoS 0 with DUP: %+v", m)
	}
	c.disconnect()
	p.pub("d", "queued", 1, false, 2)
	c = dial(t, addr)
	c.connectOK(&packets.ConnectPacket{ClientID: "p", KeepAlive: 60})
	if m := c.expectMsg("d", "queued", 0, false); m.Dup {
		t.Fatalf("QoS 0 with DUP: %+v", m)
	}
}

// MQTT-3.3.1-3: the DUP flag of an incoming PUBLISH is not passed on: the
// server sets its own outgoing DUP independently.
func TestMQTT_3_3_1_3_OutgoingDupIndependent(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	c := subscribed(t, addr, "sub", "d", 2)
	p := connected(t, addr, "pub", true)
	for qos := byte(1); qos <= 2; qos++ {
		p.send(&packets.PublishPacket{Dup: true, QoS: qos, Topic: []byte("d"), Payload: []byte("dup in"), PacketID: 5})
		if qos == 1 {
			expect[*packets.PubackPacket](p)
		} else {
			expect[*packets.PubrecPacket](p)
			p.send(&packets.PubrelPacket{PacketID: 5})
			expect[*packets.PubcompPacket](p)
		}
		if m := c.expectMsg("d", "dup in", qos, false); m.Dup {
			t.Fatalf("incoming DUP passed on: %+v", m)
		} else {
			c.ack(m)
		}
	}
}

// MQTT-3.3.1-4: a PUBLISH with both QoS bits set closes the connection.
func TestMQTT_3_3_1_4_QoS3Closed(t *testing.T) {
	t.Parallel()
	s, addr := startBroker(t, Config{}, "")
	w := subscribed(t, addr, "watch", "#", 0)
	c := connected(t, addr, "c", true)
	c.raw(rawPacket(0x36, strField("q3"), []byte{0, 1}, []byte("x")))
	c.expectClosed()
	w.ping()
	if st := s.Stats(); st.ProtocolErrors != 1 || st.MessagesIn != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// MQTT-3.3.2-1: the topic name is the first field of PUBLISH, a UTF-8
// string: one that is not, or does not fit the packet, closes the
// connection; a valid one is read from there.
func TestMQTT_3_3_2_1_TopicNameFirstField(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	w := subscribed(t, addr, "watch", "#", 0)
	for _, b := range [][]byte{
		rawPacket(0x30, []byte{0, 5, 'a', 'b'}),                // longer than the packet
		rawPacket(0x30, []byte{0}),                             // half a length
		rawPacket(0x32, strField("a")),                         // no room for the packet id
		rawPacket(0x30, strField("a\xfe"), []byte("x")),        // not UTF-8
		rawPacket(0x30, strField("\xed\xb0\x80"), []byte("x")), // a surrogate
	} {
		c := connected(t, addr, "c", true)
		c.raw(b)
		c.expectClosedSilently()
	}
	w.ping()
	c := connected(t, addr, "c", true)
	c.raw(rawPacket(0x30, strField("t/é"), []byte{0, 3, 'x'}))
	c.ping()
	w.expectMsg("t/é", "\x00\x03x", 0, false)
}

// MQTT-3.3.2-2: the topic name of a PUBLISH has no wildcards: a wildcard
// closes the connection.
func TestMQTT_3_3_2_2_TopicNameNoWildcards(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	w := subscribed(t, addr, "watch", "#", 0)
	for _, topic := range []string{"a/+", "+", "#", "a/#", "a+b", "x#"} {
		c := connected(t, addr, "c", true)
		c.raw(rawPacket(0x30, strField(topic), []byte("x")))
		c.expectClosed()
	}
	w.ping()
}

// MQTT-3.3.2-3: the topic name sent to a subscriber is the one published,
// which its filter matches, not the filter.
func TestMQTT_3_3_2_3_DeliveredTopicIsPublishedName(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	c := subscribed(t, addr, "sub", "home/+/temp/#", 0)
	p := connected(t, addr, "pub", true)
	p.pub("home/kitchen/temp/c", "21", 0, false, 0)
	p.pub("home/hall/temp", "19", 0, false, 0)
	c.expectMsg("home/kitchen/temp/c", "21", 0, false)
	c.expectMsg("home/hall/temp", "19", 0, false)
}

// MQTT-3.3.4-1: the response to PUBLISH is none at QoS 0, PUBACK at QoS 1,
// PUBREC at QoS 2; the subscriber gets each at its QoS with the flow of that
// QoS.
func TestMQTT_3_3_4_1_ResponsePerQoS(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	c := subscribed(t, addr, "sub", "r", 2)
	p := connected(t, addr, "pub", true)

	p.send(&packets.PublishPacket{Topic: []byte("r"), Payload: []byte("0")})
	p.ping() // no answer before the PINGRESP
	c.expectMsg("r", "0", 0, false)

	p.send(&packets.PublishPacket{Topic: []byte("r"), Payload: []byte("1"), QoS: 1, PacketID: 10})
	if a := expect[*packets.PubackPacket](p); a.PacketID != 10 {
		t.Fatalf("PUBACK %d", a.PacketID)
	}
	m := c.expectMsg("r", "1", 1, false)
	c.send(&packets.PubackPacket{PacketID: m.PID})

	p.send(&packets.PublishPacket{Topic: []byte("r"), Payload: []byte("2"), QoS: 2, PacketID: 11})
	if a := expect[*packets.PubrecPacket](p); a.PacketID != 11 {
		t.Fatalf("PUBREC %d", a.PacketID)
	}
	m = c.expectMsg("r", "2", 2, false) // delivered on PUBLISH, before PUBREL
	p.send(&packets.PubrelPacket{PacketID: 11})
	if a := expect[*packets.PubcompPacket](p); a.PacketID != 11 {
		t.Fatalf("PUBCOMP %d", a.PacketID)
	}
	c.send(&packets.PubrecPacket{PacketID: m.PID})
	if a := expect[*packets.PubrelPacket](c); a.PacketID != m.PID {
		t.Fatalf("PUBREL %d", a.PacketID)
	}
	c.send(&packets.PubcompPacket{PacketID: m.PID})
	c.ping()
	p.ping()
}

// MQTT-3.3.5-2: a PUBLISH the ACL denies is acknowledged as usual per QoS
// and delivered nowhere; the connection stays open.
func TestMQTT_3_3_5_2_UnauthorisedPublishAcked(t *testing.T) {
	t.Parallel()
	s, addr := startBroker(t, Config{Auth: aclConfig()}, "")
	w := dial(t, addr)
	w.connectOK(&packets.ConnectPacket{ClientID: "admin", CleanSession: true, KeepAlive: 60, UsernameFlag: true, Username: "admin"})
	w.mustSubscribe(1, "#", 2)
	c := connected(t, addr, "anon", true)
	c.pub("secret/x", "0", 0, false, 0)
	c.pub("secret/x", "1", 1, false, 1)
	c.pub("secret/x", "2", 2, false, 2)
	c.pub("open/x", "ok", 0, false, 0)
	w.expectMsg("open/x", "ok", 0, false)
	if st := s.Stats(); st.ACLDenied != 3 {
		t.Fatalf("ACL denials %d, want 3", st.ACLDenied)
	}
}

// MQTT-4.3.2-2: after PUBACK the same packet id is a new publication.
func TestMQTT_4_3_2_2_QoS1SameIDIsNewMessage(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	c := subscribed(t, addr, "sub", "q1", 1)
	p := connected(t, addr, "pub", true)
	p.pub("q1", "a", 1, false, 3)
	p.pub("q1", "b", 1, false, 3)
	c.ack(c.expectMsg("q1", "a", 1, false))
	c.ack(c.expectMsg("q1", "b", 1, false))
}

// MQTT-4.3.3-1: as QoS 2 sender the server keeps the PUBLISH until PUBREC,
// then the PUBREL until PUBCOMP, and never resends the PUBLISH after PUBREL.
func TestMQTT_4_3_3_1_NoPublishResendAfterPubrel(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	c := connected(t, addr, "p", false)
	c.mustSubscribe(1, "q2", 2)
	p := connected(t, addr, "pub", true)
	p.pub("q2", "x", 2, false, 1)
	m := c.expectMsg("q2", "x", 2, false)
	c.drop() // before PUBREC: the PUBLISH is resent
	c = dial(t, addr)
	c.connectOK(&packets.ConnectPacket{ClientID: "p", KeepAlive: 60})
	if again := c.expectMsg("q2", "x", 2, false); again.PID != m.PID || !again.Dup {
		t.Fatalf("resent %+v", again)
	}
	c.send(&packets.PubrecPacket{PacketID: m.PID})
	expect[*packets.PubrelPacket](c)
	for range 2 { // after PUBREC: only PUBREL, again and again
		c.drop()
		c = dial(t, addr)
		c.connectOK(&packets.ConnectPacket{ClientID: "p", KeepAlive: 60})
		if rel := expect[*packets.PubrelPacket](c); rel.PacketID != m.PID {
			t.Fatalf("PUBREL %d, want %d", rel.PacketID, m.PID)
		}
	}
	c.send(&packets.PubcompPacket{PacketID: m.PID})
	c.ping()
}

// MQTT-4.3.3-2: as QoS 2 receiver the server answers a PUBLISH resent before
// PUBREL with PUBREC without delivering it again; PUBREL gets PUBCOMP; then
// the id is new.
func TestMQTT_4_3_3_2_QoS2ExactlyOnce(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	c := subscribed(t, addr, "sub", "once", 2)
	p := connected(t, addr, "pub", true)
	pkt := &packets.PublishPacket{Topic: []byte("once"), Payload: []byte("x"), QoS: 2, PacketID: 42}
	p.send(pkt)
	expect[*packets.PubrecPacket](p)
	pkt.Dup = true
	for range 3 {
		p.send(pkt)
		if a := expect[*packets.PubrecPacket](p); a.PacketID != 42 {
			t.Fatalf("PUBREC %d", a.PacketID)
		}
	}
	p.send(&packets.PubrelPacket{PacketID: 42})
	expect[*packets.PubcompPacket](p)
	p.send(&packets.PubrelPacket{PacketID: 42}) // a repeated PUBREL is answered too
	expect[*packets.PubcompPacket](p)
	c.ack(c.expectMsg("once", "x", 2, false))
	c.ping() // once

	p.pub("once", "y", 2, false, 42) // the id is free again
	c.ack(c.expectMsg("once", "y", 2, false))
}

// MQTT-3.6.1-1: PUBREL's fixed-header flags must be 0010.
func TestMQTT_3_6_1_1_PubrelFlags(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	c := connected(t, addr, "c", true)
	c.send(&packets.PublishPacket{Topic: []byte("t"), QoS: 2, PacketID: 1})
	expect[*packets.PubrecPacket](c)
	c.raw([]byte{0x60, 2, 0, 1})
	c.expectClosed()
}

// MQTT-3.8.1-1: SUBSCRIBE's fixed-header flags must be 0010.
func TestMQTT_3_8_1_1_SubscribeFlags(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	for _, first := range []byte{0x80, 0x83, 0x8A} {
		c := connected(t, addr, "c", true)
		c.raw(rawPacket(first, []byte{0, 1}, strField("a"), []byte{0}))
		c.expectClosedSilently()
	}
}

// MQTT-3.10.1-1: UNSUBSCRIBE's fixed-header flags must be 0010.
func TestMQTT_3_10_1_1_UnsubscribeFlags(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	for _, first := range []byte{0xA0, 0xA3, 0xAA} {
		c := connected(t, addr, "c", true)
		c.raw(rawPacket(first, []byte{0, 1}, strField("a")))
		c.expectClosedSilently()
	}
}

// MQTT-2.2.2-1: reserved fixed-header flags have their listed values in the
// packets the server sends (the test client's decoder checks them on every
// packet: CONNACK, SUBACK, UNSUBACK, PUBLISH, PUBACK, PUBREC, PUBREL,
// PUBCOMP, PINGRESP).
func TestMQTT_2_2_2_1_ServerSendsValidFlags(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	c := connected(t, addr, "c", true)
	c.mustSubscribe(1, "f", 2)
	p := connected(t, addr, "p", true)
	p.pub("f", "1", 1, true, 1)
	p.pub("f", "2", 2, false, 2)
	c.ack(c.expectMsg("f", "1", 1, false))
	c.ack(c.expectMsg("f", "2", 2, false))
	c.send(&packets.UnsubscribePacket{PacketID: 2, Filters: []string{"f"}})
	expect[*packets.UnsubackPacket](c)
	c.ping()
	for _, b := range [][]byte{{0x82, 6, 0, 3, 0, 1, 'f', 1}, {0xC0, 0}} {
		c.raw(b) // and check the raw first bytes of SUBACK, PUBLISH (retained), PINGRESP
	}
	for _, want := range []byte{0x90, 0x33, 0xD0} {
		_ = c.nc.SetReadDeadline(time.Now().Add(waitTime))
		fh, _, err := c.r.ReadPacket()
		if err != nil {
			t.Fatal(err)
		}
		if got := byte(fh.Type)<<4 | fh.Flags; got != want {
			t.Fatalf("first byte 0x%02X, want 0x%02X", got, want)
		}
	}
}

// MQTT-2.2.2-2: invalid fixed-header flags, and reserved packet types,
// close the connection; each counts as a protocol error.
func TestMQTT_2_2_2_2_InvalidFlagsClose(t *testing.T) {
	t.Parallel()
	s, addr := startBroker(t, Config{}, "")
	cases := map[string][]byte{
		"PUBACK 0001":       {0x41, 2, 0, 1},
		"PUBREC 1000":       {0x58, 2, 0, 1},
		"PUBCOMP 0010":      {0x72, 2, 0, 1},
		"PINGREQ 0001":      {0xC1, 0},
		"DISCONNECT 2":      {0xE2, 0},
		"type 0":            {0x00, 0},
		"type 15":           {0xF0, 0},
		"CONNACK":           {0x20, 2, 0, 0},
		"SUBACK":            {0x90, 3, 0, 1, 0},
		"PINGRESP":          {0xD0, 0},
		"UNSUBACK":          {0xB0, 2, 0, 1},
		"PUBLISH QoS 0 DUP": rawPacket(0x38, strField("t"), []byte("x")),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			c := connected(t, addr, "c", true)
			c.raw(b)
			c.expectClosedSilently()
		})
	}
	waitStats(t, s, "protocol errors counted", func(st Stats) bool { return st.ProtocolErrors == int64(len(cases)) })
}

// MQTT-4.6.0-1: re-sent messages keep their original order.
func TestMQTT_4_6_0_1_ResendInOrder(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	c := connected(t, addr, "p", false)
	c.mustSubscribe(1, "o/#", 2)
	p := connected(t, addr, "pub", true)
	var first []gotMsg
	for i := range 8 {
		p.pub(fmt.Sprintf("o/%d", i%3), fmt.Sprint(i), byte(1+i%2), false, uint16(i+1))
		first = append(first, c.recvMsg())
	}
	c.drop()
	c = dial(t, addr)
	c.connectOK(&packets.ConnectPacket{ClientID: "p", KeepAlive: 60})
	for _, f := range first {
		m := c.recvMsg()
		f.Dup = true
		if m != f {
			t.Fatalf("resent %+v, want %+v", m, f)
		}
	}
	for _, f := range first {
		c.ack(f)
	}
	c.ping()
}

// MQTT-4.6.0-2: PUBACKs go out in the order the PUBLISHes came in, also when
// some wait for the store (a persistent subscriber) and others do not.
func TestMQTT_4_6_0_2_PubacksInOrder(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{CommitWindow: 5 * time.Millisecond}, t.TempDir())
	c := connected(t, addr, "durable", false)
	c.mustSubscribe(1, "slow/#", 1)
	p := connected(t, addr, "pub", true)
	var b []byte
	var ids []uint16
	for i := range 60 {
		topic := "fast/x"
		if i%3 == 0 {
			topic = "slow/x" // waits for a store commit
		}
		id := uint16(1000 - 7*i)
		ids = append(ids, id)
		b = (&packets.PublishPacket{Topic: []byte(topic), Payload: []byte("m"), QoS: 1, PacketID: id}).Append(b)
	}
	p.raw(b)
	for _, id := range ids {
		if a := expect[*packets.PubackPacket](p); a.PacketID != id {
			t.Fatalf("PUBACK %d, want %d", a.PacketID, id)
		}
	}
}

// MQTT-4.6.0-3: PUBRECs go out in the order the PUBLISHes came in.
func TestMQTT_4_6_0_3_PubrecsInOrder(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, t.TempDir())
	c := connected(t, addr, "durable", false)
	c.mustSubscribe(1, "slow/#", 2)
	p := connected(t, addr, "pub", true)
	var b []byte
	var ids []uint16
	for i := range 40 {
		topic := "fast/x"
		if i%2 == 0 {
			topic = "slow/x"
		}
		id := uint16(500 + 11*i)
		ids = append(ids, id)
		b = (&packets.PublishPacket{Topic: []byte(topic), Payload: []byte("m"), QoS: 2, PacketID: id}).Append(b)
		if i%5 == 4 { // a duplicate, answered at once but in its turn
			b = (&packets.PublishPacket{Dup: true, Topic: []byte(topic), Payload: []byte("m"), QoS: 2, PacketID: id}).Append(b)
			ids = append(ids, id)
		}
	}
	p.raw(b)
	for _, id := range ids {
		if a := expect[*packets.PubrecPacket](p); a.PacketID != id {
			t.Fatalf("PUBREC %d, want %d", a.PacketID, id)
		}
	}
}

// MQTT-4.6.0-4: the server's PUBRELs go out in the order of the PUBRECs it
// received.
func TestMQTT_4_6_0_4_PubrelsInOrder(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	c := subscribed(t, addr, "sub", "r", 2)
	p := connected(t, addr, "pub", true)
	var ms []gotMsg
	for i := range 5 {
		p.pub("r", fmt.Sprint(i), 2, false, uint16(i+1))
		ms = append(ms, c.recvMsg())
	}
	var b []byte
	order := []int{3, 0, 4, 1, 2}
	for _, i := range order {
		b = (&packets.PubrecPacket{PacketID: ms[i].PID}).Append(b)
	}
	c.raw(b)
	for _, i := range order {
		if rel := expect[*packets.PubrelPacket](c); rel.PacketID != ms[i].PID {
			t.Fatalf("PUBREL %d, want %d", rel.PacketID, ms[i].PID)
		}
	}
	for _, i := range order {
		c.send(&packets.PubcompPacket{PacketID: ms[i].PID})
	}
	c.ping()
}

// MQTT-4.6.0-5, -6: messages of one topic and QoS from one client reach each
// subscriber in the order they were published — live, through a small
// in-flight window, and from an offline queue.
func TestMQTT_4_6_0_5_OrderedPerTopic(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{MaxInflight: 3}, "")
	live := subscribed(t, addr, "live", "ord/#", 2)
	off := connected(t, addr, "off", false)
	off.mustSubscribe(1, "ord/#", 2)
	off.disconnect()

	const n = 150
	p := connected(t, addr, "pub", true)
	var b []byte
	for i := range n {
		qos := byte(i % 3)
		b = (&packets.PublishPacket{Topic: []byte(fmt.Sprintf("ord/%d", i%4)), Payload: []byte(fmt.Sprint(i)),
			QoS: qos, PacketID: uint16(i + 1)}).Append(b)
	}
	p.raw(b)
	for range n { // PUBACK or PUBREC per QoS 1/2 message, PUBCOMP per QoS 2
		switch a := p.recv().(type) {
		case *packets.PubrecPacket:
			p.send(&packets.PubrelPacket{PacketID: a.PacketID})
		case *packets.PubackPacket, *packets.PubcompPacket:
		default:
			t.Fatalf("publisher got %T", a)
		}
	}
	check := func(c *client, name string, count int) {
		t.Helper()
		last := map[string]int{}
		for range count {
			m := c.nextPublish()
			var i int
			fmt.Sscan(m.Payload, &i)
			key := fmt.Sprintf("%s QoS %d", m.Topic, m.QoS)
			if prev, ok := last[key]; ok && i <= prev {
				t.Fatalf("%s: %s got %d after %d", name, key, i, prev)
			}
			last[key] = i
			switch m.QoS {
			case 1:
				c.send(&packets.PubackPacket{PacketID: m.PID})
			case 2:
				c.send(&packets.PubrecPacket{PacketID: m.PID})
			}
		}
	}
	check(live, "live", n)
	off = dial(t, addr)
	off.connectOK(&packets.ConnectPacket{ClientID: "off", KeepAlive: 60})
	check(off, "offline queue", n-n/3) // QoS 0 was not queued
}

// nextPublish returns the next PUBLISH, answering PUBRELs on the way with
// PUBCOMP.
func (c *client) nextPublish() gotMsg {
	c.t.Helper()
	for {
		switch p := c.recv().(type) {
		case *packets.PubrelPacket:
			c.send(&packets.PubcompPacket{PacketID: p.PacketID})
		case *packets.PublishPacket:
			return gotMsg{Topic: string(p.Topic), Payload: string(p.Payload), QoS: p.QoS, Retain: p.Retain, Dup: p.Dup, PID: p.PacketID}
		default:
			c.t.Fatalf("got %T, want PUBLISH", p)
		}
	}
}

// MQTT-4.5.0-1: an accepted message goes to every session with a matching
// subscription.
func TestMQTT_4_5_0_1_EveryMatchingSubscriber(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	var subs []*client
	for i, f := range []string{"a/b/c", "a/+/c", "a/#", "#", "+/b/+"} {
		subs = append(subs, subscribed(t, addr, fmt.Sprint("s", i), f, 1))
	}
	other := subscribed(t, addr, "other", "a/b", 1)
	p := connected(t, addr, "pub", true)
	p.pub("a/b/c", "all", 1, false, 1)
	for _, c := range subs {
		c.ack(c.expectMsg("a/b/c", "all", 1, false))
	}
	other.ping()
}

// MQTT-4.5.0-2: a receiver acknowledges every PUBLISH per its QoS even when
// it delivers it nowhere (no subscriber).
func TestMQTT_4_5_0_2_AckedEvenWhenDropped(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, t.TempDir())
	p := connected(t, addr, "pub", true)
	p.pub("nobody/listens", "x", 1, false, 1)
	p.pub("nobody/listens", "x", 2, false, 2)
	p.pub("nobody/listens", "x", 0, false, 0)
	p.ping()
}

// max_packet_size: a packet over the limit closes the connection and is
// counted (OversizePackets and ProtocolErrors); one at the limit passes.
func TestLimit_MaxPacketSize(t *testing.T) {
	t.Parallel()
	const limit = 1024
	s, addr := startBroker(t, Config{MaxPacketSize: limit}, "")
	w := subscribed(t, addr, "watch", "big", 0)
	c := connected(t, addr, "c", true)
	// 1 + 2 (remaining length) + 2 + 3 (topic) + payload = limit
	fits := strings.Repeat("x", limit-8)
	c.pub("big", fits, 0, false, 0)
	c.ping()
	w.expectMsg("big", fits, 0, false)
	c.send(&packets.PublishPacket{Topic: []byte("big"), Payload: []byte(fits + "y")})
	c.expectClosed()
	w.ping()
	waitStats(t, s, "oversize packet counted", func(st Stats) bool { return st.OversizePackets == 1 && st.ProtocolErrors == 1 })
}

// max_inflight: no more than N QoS 1/2 deliveries are unacknowledged at
// once; the others follow, in order, as acknowledgements come.
func TestLimit_MaxInflight(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{MaxInflight: 2}, "")
	c := subscribed(t, addr, "sub", "w", 2)
	p := connected(t, addr, "pub", true)
	for i := range 6 {
		p.pub("w", fmt.Sprint(i), byte(1+i%2), false, uint16(i+1))
	}
	m0 := c.expectMsg("w", "0", 1, false)
	m1 := c.expectMsg("w", "1", 2, false)
	c.ping() // the window is full
	c.ack(m0)
	m2 := c.expectMsg("w", "2", 1, false)
	c.ping()
	// PUBREC does not free the slot; PUBCOMP does.
	c.send(&packets.PubrecPacket{PacketID: m1.PID})
	expect[*packets.PubrelPacket](c)
	c.ping()
	c.send(&packets.PubcompPacket{PacketID: m1.PID})
	m3 := c.expectMsg("w", "3", 2, false)
	c.ping()
	c.ack(m2)
	m4 := c.expectMsg("w", "4", 1, false)
	c.ack(m3)
	c.ack(m4)
	c.ack(c.expectMsg("w", "5", 2, false))
	c.ping() // the window is empty
	// QoS 0 is not held back by a full window.
	for i := range 2 {
		p.pub("w", fmt.Sprint("f", i), 1, false, uint16(i+10))
	}
	p.pub("w", "zero", 0, false, 0)
	f0 := c.expectMsg("w", "f0", 1, false)
	f1 := c.expectMsg("w", "f1", 1, false)
	c.expectMsg("w", "zero", 0, false)
	c.ack(f0)
	c.ack(f1)
	c.ping()
}

// max_queued_messages, queue_qos0 off: a full queue of an offline session
// drops the new message, counted in DroppedQueueFull.
func TestLimit_MaxQueuedMessagesDropsNew(t *testing.T) {
	t.Parallel()
	s, addr := startBroker(t, Config{MaxQueuedMessages: 3}, "")
	c := connected(t, addr, "p", false)
	c.mustSubscribe(1, "q", 1)
	c.disconnect()
	p := connected(t, addr, "pub", true)
	for i := range 5 {
		p.pub("q", fmt.Sprint(i), 1, false, uint16(i+1))
	}
	if st := s.Stats(); st.DroppedQueueFull != 2 {
		t.Fatalf("DroppedQueueFull %d, want 2", st.DroppedQueueFull)
	}
	c = dial(t, addr)
	c.connectOK(&packets.ConnectPacket{ClientID: "p", KeepAlive: 60})
	for i := range 3 {
		c.ack(c.expectMsg("q", fmt.Sprint(i), 1, false))
	}
	c.ping()
}

// max_queued_messages, queue_qos0 on: a full queue drops its oldest QoS 0
// message first; with none left, the new message.
func TestLimit_MaxQueuedMessagesDropsOldestQoS0(t *testing.T) {
	t.Parallel()
	s, addr := startBroker(t, Config{MaxQueuedMessages: 3, QueueQoS0: true}, "")
	c := connected(t, addr, "p", false)
	c.mustSubscribe(1, "q", 1)
	c.disconnect()
	p := connected(t, addr, "pub", true)
	p.pub("q", "a0", 0, false, 0)
	p.pub("q", "b0", 0, false, 0)
	p.pub("q", "c1", 1, false, 1)
	p.pub("q", "d1", 1, false, 2) // drops a0
	p.pub("q", "e1", 1, false, 3) // drops b0
	p.pub("q", "f1", 1, false, 4) // no QoS 0 left: dropped itself
	p.pub("q", "g0", 0, false, 0) // dropped itself
	p.ping()
	if st := s.Stats(); st.DroppedQueueFull != 4 {
		t.Fatalf("DroppedQueueFull %d, want 4", st.DroppedQueueFull)
	}
	c = dial(t, addr)
	c.connectOK(&packets.ConnectPacket{ClientID: "p", KeepAlive: 60})
	for _, want := range []string{"c1", "d1", "e1"} {
		c.ack(c.expectMsg("q", want, 1, false))
	}
	c.ping()
}
