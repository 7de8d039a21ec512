package broker

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sngate/sngate/broker/packets"
)

// Conformance tests for subscriptions, QoS downgrade, overlap and retained
// messages (§6.4 of the reference) and for topic names and filters (§6.5).

// ---- §6.4 Subscriptions, QoS downgrade, overlap, retained ----

// MQTT-3.8.3-3: a SUBSCRIBE without any filter is a protocol violation.
func TestMQTT_3_8_3_3_SubscribeNeedsFilter(t *testing.T) {
	t.Parallel()
	s, addr := startBroker(t, Config{}, "")
	c := connected(t, addr, "c", true)
	c.raw(rawPacket(0x82, []byte{0, 1}))
	c.expectClosedSilently()
	waitStats(t, s, "protocol error counted", func(st Stats) bool { return st.ProtocolErrors == 1 })
}

// MQTT-3-8.3-4 (numbered so in the standard): a requested QoS above 2 or
// reserved bits in the QoS byte make the SUBSCRIBE malformed: closed.
func TestMQTT_3_8_3_4_RequestedQoSInvalid(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	for _, q := range []byte{3, 0x04, 0x80, 0xFC, 0x81} {
		c := connected(t, addr, "c", true)
		c.raw(rawPacket(0x82, []byte{0, 1}, strField("ok"), []byte{0}, strField("bad"), []byte{q}))
		c.expectClosedSilently() // not even a partial SUBACK
	}
}

// MQTT-3.8.3-2: this server supports wildcards, so it grants filters using
// them (a server without wildcard support would have to refuse them).
func TestMQTT_3_8_3_2_WildcardsSupported(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	c := connected(t, addr, "c", true)
	ack := c.subscribe(1, packets.Subscription{Filter: "#", QoS: 1}, packets.Subscription{Filter: "a/+/c", QoS: 2},
		packets.Subscription{Filter: "+", QoS: 0})
	if string(ack.ReturnCodes) != "\x01\x02\x00" {
		t.Fatalf("SUBACK codes % x", ack.ReturnCodes)
	}
}

// MQTT-3.8.4-1: every SUBSCRIBE is answered with a SUBACK, also when every
// filter is refused.
func TestMQTT_3_8_4_1_AlwaysSuback(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{Auth: aclConfig()}, "")
	c := connected(t, addr, "anon", true)
	for i := range 3 {
		ack := c.subscribe(uint16(i+1), packets.Subscription{Filter: "secret/#", QoS: 1})
		if len(ack.ReturnCodes) != 1 || ack.ReturnCodes[0] != packets.SubackFailure {
			t.Fatalf("SUBACK %+v", ack)
		}
	}
	c.mustSubscribe(9, "open/x", 2)
}

// MQTT-3.8.4-2: the SUBACK carries the packet id of its SUBSCRIBE, also
// when several are pipelined.
func TestMQTT_3_8_4_2_SubackSameID(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, t.TempDir())
	c := connected(t, addr, "persistent", false) // SUBACKs wait for the store
	var b []byte
	ids := []uint16{0xFFFF, 1, 0x8000, 77, 2}
	for i, id := range ids {
		b = (&packets.SubscribePacket{PacketID: id, Filters: []packets.Subscription{{Filter: fmt.Sprint("f/", i), QoS: 1}}}).Append(b)
	}
	c.raw(b)
	for _, id := range ids {
		if a := expect[*packets.SubackPacket](c); a.PacketID != id {
			t.Fatalf("SUBACK %d, want %d", a.PacketID, id)
		}
	}
}

// MQTT-3.8.4-5: one return code per filter, in the order of the filters.
func TestMQTT_3_8_4_5_ReturnCodePerFilterInOrder(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	c := connected(t, addr, "c", true)
	var subs []packets.Subscription
	var want []byte
	for i := range 30 {
		subs = append(subs, packets.Subscription{Filter: fmt.Sprint("f/", i), QoS: byte(i * 7 % 3)})
		want = append(want, byte(i*7%3))
	}
	if ack := c.subscribe(5, subs...); string(ack.ReturnCodes) != string(want) {
		t.Fatalf("codes % x, want % x", ack.ReturnCodes, want)
	}
}

// MQTT-3.9.3-1: the return codes follow the order of the filters, a refused
// one (here by the ACL) with 0x80 in its place.
func TestMQTT_3_9_3_1_FailureCodeInPlace(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{Auth: aclConfig()}, "")
	c := connected(t, addr, "anon", true)
	ack := c.subscribe(3, packets.Subscription{Filter: "open/a", QoS: 2}, packets.Subscription{Filter: "secret/a", QoS: 1},
		packets.Subscription{Filter: "open/#", QoS: 1}, packets.Subscription{Filter: "#", QoS: 0})
	if string(ack.ReturnCodes) != "\x02\x80\x01\x80" {
		t.Fatalf("codes % x", ack.ReturnCodes)
	}
	p := connected(t, addr, "admin", true)
	p.pub("open/a", "x", 2, false, 1) // ACL allows anonymous writes to open/
	c.ack(c.expectMsg("open/a", "x", 2, false))
	c.ping()
}

// MQTT-3.9.3-2: the only return codes are 0x00, 0x01, 0x02 and 0x80; the
// granted QoS is the requested one (this server never grants less).
func TestMQTT_3_9_3_2_OnlyValidReturnCodes(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{Auth: aclConfig()}, "")
	c := connected(t, addr, "anon", true)
	ack := c.subscribe(1, packets.Subscription{Filter: "open/0", QoS: 0}, packets.Subscription{Filter: "open/1", QoS: 1},
		packets.Subscription{Filter: "open/2", QoS: 2}, packets.Subscription{Filter: "x", QoS: 2})
	for i, code := range ack.ReturnCodes {
		if code > 2 && code != 0x80 {
			t.Fatalf("return code %d: 0x%02X", i, code)
		}
	}
	if string(ack.ReturnCodes) != "\x00\x01\x02\x80" {
		t.Fatalf("codes % x", ack.ReturnCodes)
	}
}

// MQTT-3.8.4-4: a SUBSCRIBE with several filters acts as several SUBSCRIBEs
// answered by one SUBACK: each subscription works, each filter's retained
// messages follow.
func TestMQTT_3_8_4_4_MultiFilterSubscribe(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	p := connected(t, addr, "pub", true)
	p.pub("x/r", "rx", 0, true, 0)
	p.pub("y/r", "ry", 0, true, 0)
	c := connected(t, addr, "c", true)
	ack := c.subscribe(4, packets.Subscription{Filter: "x/#", QoS: 1}, packets.Subscription{Filter: "y/+", QoS: 0})
	if ack.PacketID != 4 || string(ack.ReturnCodes) != "\x01\x00" {
		t.Fatalf("SUBACK %+v", ack)
	}
	c.expectMsg("x/r", "rx", 0, true)
	c.expectMsg("y/r", "ry", 0, true)
	p.pub("y/a", "ya", 1, false, 1)
	p.pub("x/a", "xa", 1, false, 2)
	c.expectMsg("y/a", "ya", 0, false)
	c.ack(c.expectMsg("x/a", "xa", 1, false))
	c.ping()
}

// MQTT-3.8.4-3: subscribing again to the same filter replaces the
// subscription (new maximum QoS, still one delivery), resends the retained
// messages, and does not disturb a delivery in flight.
func TestMQTT_3_8_4_3_ResubscribeReplaces(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	p := connected(t, addr, "pub", true)
	p.pub("rs/r", "kept", 2, true, 1)
	c := connected(t, addr, "c", true)
	c.mustSubscribe(1, "rs/#", 2)
	first := c.expectMsg("rs/r", "kept", 2, true)
	c.ack(first)
	p.pub("rs/live", "in flight", 2, false, 2)
	inflight := c.expectMsg("rs/live", "in flight", 2, false)

	c.mustSubscribe(2, "rs/#", 1)
	c.ack(c.expectMsg("rs/r", "kept", 1, true)) // retained again, at the new QoS
	c.ack(inflight)                             // the old flow completes
	p.pub("rs/live", "after", 2, false, 3)
	c.ack(c.expectMsg("rs/live", "after", 1, false))
	c.ping() // one delivery only
}

// MQTT-3.8.4-6: the delivered QoS is the lower of the published QoS and the
// granted QoS.
func TestMQTT_3_8_4_6_QoSDowngrade(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	subs := make([]*client, 3)
	for g := range subs {
		subs[g] = subscribed(t, addr, fmt.Sprint("g", g), "dg", byte(g))
	}
	p := connected(t, addr, "pub", true)
	for q := byte(0); q <= 2; q++ {
		p.pub("dg", fmt.Sprint(q), q, false, uint16(q+1))
		for g, c := range subs {
			c.ack(c.expectMsg("dg", fmt.Sprint(q), min(q, byte(g)), false))
		}
	}
	// Retained messages sent on subscription are downgraded too.
	p.pub("dg/r", "r2", 2, true, 9)
	c := connected(t, addr, "late", true)
	c.mustSubscribe(1, "dg/r", 1)
	c.ack(c.expectMsg("dg/r", "r2", 1, true))
}

// MQTT-3.3.5-1: a client whose subscriptions overlap gets one copy of a
// message (this server sends one per session) at the highest QoS its
// matching subscriptions grant.
func TestMQTT_3_3_5_1_OverlappingOneDelivery(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	c := connected(t, addr, "c", true)
	ack := c.subscribe(1, packets.Subscription{Filter: "a/#", QoS: 0}, packets.Subscription{Filter: "a/+", QoS: 2},
		packets.Subscription{Filter: "a/b", QoS: 1}, packets.Subscription{Filter: "#", QoS: 0})
	if string(ack.ReturnCodes) != "\x00\x02\x01\x00" {
		t.Fatalf("codes % x", ack.ReturnCodes)
	}
	p := connected(t, addr, "pub", true)
	p.pub("a/b", "two", 2, false, 1)
	c.ack(c.expectMsg("a/b", "two", 2, false))
	p.pub("a/b", "one", 1, false, 2)
	c.ack(c.expectMsg("a/b", "one", 1, false))
	p.pub("a/b/c", "deep", 2, false, 3) // matches a/# and # only: QoS 0
	c.expectMsg("a/b/c", "deep", 0, false)
	c.ping()
}

// MQTT-3.10.3-2: an UNSUBSCRIBE without any filter is a protocol violation.
func TestMQTT_3_10_3_2_UnsubscribeNeedsFilter(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	c := connected(t, addr, "c", true)
	c.raw(rawPacket(0xA2, []byte{0, 1}))
	c.expectClosedSilently()
}

// MQTT-3.10.4-1: UNSUBSCRIBE compares filters character by character, with
// no wildcard expansion.
func TestMQTT_3_10_4_1_UnsubscribeExactFilter(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	c := connected(t, addr, "c", true)
	c.mustSubscribe(1, "u/+", 0)
	c.mustSubscribe(2, "u/b", 0)
	c.send(&packets.UnsubscribePacket{PacketID: 3, Filters: []string{"u/#", "u/b", "U/+", "u/+/"}})
	expect[*packets.UnsubackPacket](c)
	p := connected(t, addr, "pub", true)
	p.pub("u/b", "still u/+", 0, false, 0)
	c.expectMsg("u/b", "still u/+", 0, false)
	c.ping()
}

// MQTT-3.10.4-2: after UNSUBSCRIBE no new message is delivered for the
// filter.
func TestMQTT_3_10_4_2_UnsubscribeStopsDeliveries(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	c := subscribed(t, addr, "c", "stop/#", 1)
	c.send(&packets.UnsubscribePacket{PacketID: 2, Filters: []string{"stop/#"}})
	expect[*packets.UnsubackPacket](c)
	p := connected(t, addr, "pub", true)
	p.pub("stop/a", "x", 1, false, 1)
	p.pub("stop/a", "r", 0, true, 0)
	c.ping()
}

// MQTT-3.10.4-3: deliveries in flight when the UNSUBSCRIBE arrives are
// completed.
func TestMQTT_3_10_4_3_UnsubscribeFinishesInflight(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	c := connected(t, addr, "c", false)
	c.mustSubscribe(1, "fin", 2)
	p := connected(t, addr, "pub", true)
	p.pub("fin", "q1", 1, false, 1)
	p.pub("fin", "q2", 2, false, 2)
	m1 := c.expectMsg("fin", "q1", 1, false)
	m2 := c.expectMsg("fin", "q2", 2, false)
	c.send(&packets.UnsubscribePacket{PacketID: 2, Filters: []string{"fin"}})
	expect[*packets.UnsubackPacket](c)
	c.drop() // still resent after a reconnect
	c = dial(t, addr)
	c.connectOK(&packets.ConnectPacket{ClientID: "c", KeepAlive: 60})
	if r := c.recvMsg(); r.PID != m1.PID || !r.Dup {
		t.Fatalf("resent %+v", r)
	}
	if r := c.recvMsg(); r.PID != m2.PID || !r.Dup {
		t.Fatalf("resent %+v", r)
	}
	c.ack(m1)
	c.ack(m2)
	p.pub("fin", "new", 1, false, 3)
	c.ping()
}

// MQTT-3.10.4-4: the UNSUBACK carries the packet id of its UNSUBSCRIBE.
func TestMQTT_3_10_4_4_UnsubackSameID(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, t.TempDir())
	c := connected(t, addr, "persistent", false)
	c.mustSubscribe(1, "a", 1)
	var b []byte
	ids := []uint16{0xABCD, 1, 0xFFFF}
	for _, id := range ids {
		b = (&packets.UnsubscribePacket{PacketID: id, Filters: []string{"a"}}).Append(b)
	}
	c.raw(b)
	for _, id := range ids {
		if a := expect[*packets.UnsubackPacket](c); a.PacketID != id {
			t.Fatalf("UNSUBACK %d, want %d", a.PacketID, id)
		}
	}
}

// MQTT-3.10.4-5: UNSUBACK is sent even if no subscription matched.
func TestMQTT_3_10_4_5_UnsubackWhenNothingMatched(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	c := connected(t, addr, "c", true)
	c.send(&packets.UnsubscribePacket{PacketID: 8, Filters: []string{"never/subscribed", "#"}})
	if a := expect[*packets.UnsubackPacket](c); a.PacketID != 8 {
		t.Fatalf("UNSUBACK %d", a.PacketID)
	}
}

// MQTT-3.10.4-6: an UNSUBSCRIBE with several filters is answered by one
// UNSUBACK and removes them all.
func TestMQTT_3_10_4_6_MultiFilterOneUnsuback(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	c := connected(t, addr, "c", true)
	c.subscribe(1, packets.Subscription{Filter: "m/1"}, packets.Subscription{Filter: "m/2"}, packets.Subscription{Filter: "m/3"})
	c.send(&packets.UnsubscribePacket{PacketID: 2, Filters: []string{"m/1", "m/3", "nope"}})
	expect[*packets.UnsubackPacket](c)
	c.ping() // exactly one UNSUBACK
	p := connected(t, addr, "pub", true)
	for _, topic := range []string{"m/1", "m/2", "m/3"} {
		p.pub(topic, "x", 0, false, 0)
	}
	c.expectMsg("m/2", "x", 0, false)
	c.ping()
}

// MQTT-3.3.1-5: a PUBLISH with Retain 1 is stored, with its QoS, for future
// subscribers.
func TestMQTT_3_3_1_5_RetainStored(t *testing.T) {
	t.Parallel()
	s, addr := startBroker(t, Config{}, "")
	p := connected(t, addr, "pub", true)
	p.pub("st/0", "zero", 0, true, 0)
	p.pub("st/1", "one", 1, true, 1)
	p.pub("st/2", "two", 2, true, 2)
	p.ping()
	if st := s.Stats(); st.Retained != 3 {
		t.Fatalf("%d retained", st.Retained)
	}
	for q := byte(0); q <= 2; q++ {
		c := connected(t, addr, fmt.Sprint("c", q), true)
		c.mustSubscribe(1, fmt.Sprint("st/", q), 2)
		c.ack(c.expectMsg(fmt.Sprint("st/", q), []string{"zero", "one", "two"}[q], q, true))
	}
}

// MQTT-3.3.1-6: a new subscription gets the last retained message of every
// matching topic.
func TestMQTT_3_3_1_6_RetainedOnNewSubscription(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	p := connected(t, addr, "pub", true)
	want := map[string]string{}
	for i := range 5 {
		for v := range 3 {
			topic := fmt.Sprint("nr/", i)
			p.pub(topic, fmt.Sprint(i, "v", v), 1, true, uint16(10*i+v+1))
			want[topic] = fmt.Sprint(i, "v", v)
		}
	}
	p.pub("other/x", "no", 1, true, 99)
	c := connected(t, addr, "c", true)
	c.mustSubscribe(1, "nr/+", 1)
	got := map[string]string{}
	for range 5 {
		m := c.recvMsg()
		if !m.Retain {
			t.Fatalf("retained message without retain flag: %+v", m)
		}
		got[m.Topic] = m.Payload
		c.ack(m)
	}
	c.ping()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// MQTT-3.3.1-7: a retained QoS 0 message replaces the previous retained
// message of its topic.
func TestMQTT_3_3_1_7_RetainedQoS0Replaces(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	p := connected(t, addr, "pub", true)
	p.pub("r0", "first", 2, true, 1)
	p.pub("r0", "second", 0, true, 0)
	p.ping()
	c := connected(t, addr, "c", true)
	c.mustSubscribe(1, "r0", 2)
	c.expectMsg("r0", "second", 0, true)
	c.ping()
}

// MQTT-3.3.1-8: the retain flag is 1 on a retained message sent because of
// a new subscription, whatever QoS it is delivered at.
func TestMQTT_3_3_1_8_RetainFlagOnNewSubscription(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	p := connected(t, addr, "pub", true)
	p.pub("rf", "x", 2, true, 1)
	for q := byte(0); q <= 2; q++ {
		c := connected(t, addr, fmt.Sprint("c", q), true)
		c.mustSubscribe(1, "rf", q)
		c.ack(c.expectMsg("rf", "x", q, true))
	}
}

// MQTT-3.3.1-9: on a delivery to an established subscription the retain
// flag is 0, even when the publisher set it.
func TestMQTT_3_3_1_9_NoRetainFlagOnLiveDelivery(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	c := subscribed(t, addr, "c", "live", 2)
	off := connected(t, addr, "off", false)
	off.mustSubscribe(1, "live", 1)
	off.disconnect()
	p := connected(t, addr, "pub", true)
	for q := byte(0); q <= 2; q++ {
		p.pub("live", fmt.Sprint(q), q, true, uint16(q+1))
		c.ack(c.expectMsg("live", fmt.Sprint(q), q, false))
	}
	// Nor for messages queued for an offline session.
	off = dial(t, addr)
	off.connectOK(&packets.ConnectPacket{ClientID: "off", KeepAlive: 60})
	off.ack(off.expectMsg("live", "1", 1, false))
	off.ack(off.expectMsg("live", "2", 1, false))
	off.ping()
}

// MQTT-3.3.1-10: a retained PUBLISH with an empty payload is delivered to
// current subscribers as usual and deletes the retained message.
func TestMQTT_3_3_1_10_EmptyRetainedDeletes(t *testing.T) {
	t.Parallel()
	s, addr := startBroker(t, Config{}, t.TempDir())
	c := subscribed(t, addr, "c", "del/#", 1)
	p := connected(t, addr, "pub", true)
	p.pub("del/a", "x", 1, true, 1)
	c.ack(c.expectMsg("del/a", "x", 1, false))
	p.pub("del/a", "", 1, true, 2)
	c.ack(c.expectMsg("del/a", "", 1, false))
	if st := s.Stats(); st.Retained != 0 {
		t.Fatalf("%d retained", st.Retained)
	}
	late := subscribed(t, addr, "late", "del/#", 1)
	late.ping()
}

// MQTT-3.3.1-11: a zero-byte retained message is never stored itself, also
// when there is nothing to delete.
func TestMQTT_3_3_1_11_EmptyRetainedNotStored(t *testing.T) {
	t.Parallel()
	s, addr := startBroker(t, Config{}, "")
	p := connected(t, addr, "pub", true)
	p.pub("empty", "", 0, true, 0)
	p.pub("empty2", "", 2, true, 1)
	if st := s.Stats(); st.Retained != 0 {
		t.Fatalf("%d retained", st.Retained)
	}
	c := subscribed(t, addr, "c", "#", 0)
	c.ping()
}

// MQTT-3.3.1-12: a PUBLISH with Retain 0 neither stores, nor deletes or
// replaces a retained message (an empty payload included).
func TestMQTT_3_3_1_12_NonRetainedDoesNotTouchRetained(t *testing.T) {
	t.Parallel()
	s, addr := startBroker(t, Config{}, "")
	p := connected(t, addr, "pub", true)
	p.pub("keep", "retained", 1, true, 1)
	p.pub("keep", "live", 1, false, 2)
	p.pub("keep", "", 1, false, 3)
	p.pub("never", "x", 1, false, 4)
	if st := s.Stats(); st.Retained != 1 {
		t.Fatalf("%d retained", st.Retained)
	}
	c := connected(t, addr, "c", true)
	c.mustSubscribe(1, "#", 1)
	c.ack(c.expectMsg("keep", "retained", 1, true))
	c.ping()
}

// ---- §6.5 Topic names and filters ----

// MQTT-4.7.1-1: wildcards only in filters: a topic name (PUBLISH, will
// topic) with one closes the connection.
func TestMQTT_4_7_1_1_WildcardsOnlyInFilters(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	c := connected(t, addr, "c", true)
	c.raw(rawPacket(0x30, strField("a/#"), []byte("x")))
	c.expectClosed()
	c = dial(t, addr)
	c.raw(rawConnect(0x02|0x04, strField("w"), strField("will/+"), strField("m")))
	c.expectClosedSilently()
}

// MQTT-4.7.1-2: '#' stands alone or after '/', as the last character, and
// matches the parent level too.
func TestMQTT_4_7_1_2_MultiLevelWildcard(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	c := subscribed(t, addr, "c", "sport/#", 0)
	p := connected(t, addr, "pub", true)
	for _, topic := range []string{"sport", "sport/tennis", "sport/tennis/player1", "sport/", "sports", "x/sport"} {
		p.pub(topic, topic, 0, false, 0)
	}
	for _, topic := range []string{"sport", "sport/tennis", "sport/tennis/player1", "sport/"} {
		c.expectMsg(topic, topic, 0, false)
	}
	p.ping()
	c.ping()
	p.pub("sport", "parent", 0, true, 0) // retained: matched by sport/# too
	r := connected(t, addr, "r", true)
	r.mustSubscribe(1, "sport/#", 0)
	r.expectMsg("sport", "parent", 0, true)
	for _, f := range []string{"sport/tennis#", "#/x", "sport/#/ranking", "##", "a/#b"} {
		b := connected(t, addr, "bad", true)
		b.raw(rawPacket(0x82, []byte{0, 1}, strField(f), []byte{0}))
		b.expectClosedSilently()
	}
}

// MQTT-4.7.1-3: '+' fills exactly one whole level, at any level.
func TestMQTT_4_7_1_3_SingleLevelWildcard(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	filters := []string{"+/tennis/#", "+/+", "/+", "+", "sport/+"}
	subs := map[string]*client{}
	for i, f := range filters {
		subs[f] = subscribed(t, addr, fmt.Sprint("s", i), f, 0)
	}
	p := connected(t, addr, "pub", true)
	for _, topic := range []string{"/finance", "sport/tennis/player1", "sport", "sport/", "sport/tennis"} {
		p.pub(topic, topic, 0, false, 0)
	}
	p.ping()
	want := map[string][]string{
		"+/tennis/#": {"sport/tennis/player1", "sport/tennis"},
		"+/+":        {"/finance", "sport/", "sport/tennis"},
		"/+":         {"/finance"},
		"+":          {"sport"},
		"sport/+":    {"sport/", "sport/tennis"},
	}
	for _, f := range filters {
		for _, topic := range want[f] {
			subs[f].expectMsg(topic, topic, 0, false)
		}
		subs[f].ping()
	}
	for _, f := range []string{"sport+", "+sport", "a/+b", "++"} {
		b := connected(t, addr, "bad", true)
		b.raw(rawPacket(0x82, []byte{0, 1}, strField(f), []byte{0}))
		b.expectClosedSilently()
	}
}

// MQTT-4.7.2-1: filters starting with '#' or '+' do not match topic names
// starting with '$' (live or retained); "$SYS/#" and the like do.
func TestMQTT_4_7_2_1_DollarTopicsNotMatchedByLeadingWildcard(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{SysInterval: 20 * time.Millisecond}, "")
	p := connected(t, addr, "pub", true)
	p.pub("$x/r", "retained", 1, true, 1)
	wild := connected(t, addr, "wild", true)
	if ack := wild.subscribe(1, packets.Subscription{Filter: "#"}, packets.Subscription{Filter: "+/r"},
		packets.Subscription{Filter: "+/+"}, packets.Subscription{Filter: "+/#"}); string(ack.ReturnCodes) != "\x00\x00\x00\x00" {
		t.Fatalf("codes % x", ack.ReturnCodes)
	}
	dollar := connected(t, addr, "dollar", true)
	dollar.mustSubscribe(1, "$x/#", 0)
	dollar.expectMsg("$x/r", "retained", 0, true)
	sys := connected(t, addr, "sys", true)
	sys.mustSubscribe(1, "$SYS/#", 0)
	p.pub("$x/r", "live", 1, false, 2)
	p.pub("x/r", "normal", 1, false, 3)
	dollar.expectMsg("$x/r", "live", 0, false)
	// Two rounds of $SYS topics: the first round routed completely.
	seen := 0
	for seen < 30 {
		if m := sys.recvMsg(); !strings.HasPrefix(m.Topic, "$SYS/broker/") {
			t.Fatalf("$SYS/# got %+v", m)
		} else if !m.Retain {
			seen++
		}
	}
	wild.expectMsg("x/r", "normal", 0, false) // once, though all four filters match
	wild.ping()
}

// MQTT-4.7.3-1: topic names and filters are at least one character long.
func TestMQTT_4_7_3_1_TopicNotEmpty(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	for name, b := range map[string][]byte{
		"PUBLISH":     rawPacket(0x30, strField(""), []byte("x")),
		"SUBSCRIBE":   rawPacket(0x82, []byte{0, 1}, strField(""), []byte{0}),
		"UNSUBSCRIBE": rawPacket(0xA2, []byte{0, 1}, strField("")),
	} {
		t.Run(name, func(t *testing.T) {
			c := connected(t, addr, "c", true)
			c.raw(b)
			c.expectClosedSilently()
		})
	}
}

// MQTT-4.7.3-2: topic names and filters do not contain U+0000.
func TestMQTT_4_7_3_2_NoNullCharacter(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	for name, b := range map[string][]byte{
		"PUBLISH":     rawPacket(0x30, strField("a\x00b"), []byte("x")),
		"SUBSCRIBE":   rawPacket(0x82, []byte{0, 1}, strField("a/\x00"), []byte{0}),
		"UNSUBSCRIBE": rawPacket(0xA2, []byte{0, 1}, strField("\x00")),
	} {
		t.Run(name, func(t *testing.T) {
			c := connected(t, addr, "c", true)
			c.raw(b)
			c.expectClosedSilently()
		})
	}
}

// MQTT-4.7.3-3: topic names and filters may be up to 65535 bytes long; such
// a topic works live and retained, also with a store (whose keys are
// shorter: the retained message is then kept in memory only).
func TestMQTT_4_7_3_3_LongestTopic(t *testing.T) {
	t.Parallel()
	s, addr := startBroker(t, Config{}, t.TempDir())
	long := strings.Repeat("x", 65535)
	c := subscribed(t, addr, "c", long, 1)
	p := connected(t, addr, "pub", true)
	p.pub(long, "live", 1, false, 1)
	c.ack(c.expectMsg(long, "live", 1, false))
	p.pub(long, "kept", 1, true, 2)
	c.ack(c.expectMsg(long, "kept", 1, false))
	late := connected(t, addr, "late", true)
	late.mustSubscribe(1, long[:65533]+"/#", 1) // not a match: "/" is absent
	late.mustSubscribe(2, "#", 1)
	late.ack(late.expectMsg(long, "kept", 1, true))
	if st := s.Stats(); st.Retained != 1 {
		t.Fatalf("%d retained", st.Retained)
	}
}

// MQTT-4.7.3-4: matching is byte-exact: no case folding, no trimming, no
// normalisation.
func TestMQTT_4_7_3_4_NoNormalisation(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	c := subscribed(t, addr, "c", "ACCOUNTS/é", 0)
	p := connected(t, addr, "pub", true)
	for _, topic := range []string{"accounts/é", "Accounts/é", "ACCOUNTS/e\u0301", "ACCOUNTS/é ", " ACCOUNTS/é", "ACCOUNTS/é/", "/ACCOUNTS/é", "ACCOUNTS//é"} {
		p.pub(topic, "no", 0, false, 0)
	}
	p.pub("ACCOUNTS/é", "yes", 0, false, 0)
	c.expectMsg("ACCOUNTS/é", "yes", 0, false)
}

// MQTT-1.5.3-1: ill-formed UTF-8 (including encoded surrogates U+D800 to
// U+DFFF) in a topic name, filter or client string closes the connection.
func TestMQTT_1_5_3_1_MalformedUTF8Closes(t *testing.T) {
	t.Parallel()
	s, addr := startBroker(t, Config{}, "")
	bad := []string{"a\xffb", "\xed\xa0\x80", "\xed\xbf\xbf", "\xc0\xaf", "a\xe2\x82", "\xf8\x88\x80\x80\x80"}
	n := 0
	for _, str := range bad {
		for _, b := range [][]byte{
			rawPacket(0x30, strField(str), []byte("x")),
			rawPacket(0x82, []byte{0, 1}, strField(str), []byte{0}),
			rawPacket(0xA2, []byte{0, 1}, strField(str)),
		} {
			c := connected(t, addr, "c", true)
			c.raw(b)
			c.expectClosedSilently()
			n++
		}
		c := dial(t, addr)
		c.raw(rawConnect(0x02|0x80, strField("id"), strField(str)))
		c.expectClosedSilently()
		n++
	}
	waitStats(t, s, "protocol errors counted", func(st Stats) bool { return st.ProtocolErrors == int64(n) })
}

// MQTT-1.5.3-2: U+0000 in a UTF-8 string closes the connection.
func TestMQTT_1_5_3_2_NullCharacterCloses(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	c := dial(t, addr)
	c.raw(rawConnect(0x02|0x80, strField("id"), strField("us\x00er")))
	c.expectClosedSilently()
	c = connected(t, addr, "c", true)
	c.raw(rawPacket(0x30, strField("\x00"), nil))
	c.expectClosedSilently()
}

// MQTT-1.5.3-3: a BOM (U+FEFF) is an ordinary character: not stripped, and
// a topic with one is a different topic.
func TestMQTT_1_5_3_3_BOMNotStripped(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	bom := subscribed(t, addr, "bom", "\ufeffa/#", 0)
	plain := subscribed(t, addr, "plain", "a/#", 0)
	p := connected(t, addr, "pub", true)
	p.pub("\ufeffa/x", "with", 0, false, 0)
	p.pub("a/x", "without", 0, false, 0)
	bom.expectMsg("\ufeffa/x", "with", 0, false)
	plain.expectMsg("a/x", "without", 0, false)
	bom.ping()
	plain.ping()
}

// MQTT-4.8.0-1: a protocol violation closes the connection, and is counted
// in Stats().ProtocolErrors.
func TestMQTT_4_8_0_1_ProtocolViolationCloses(t *testing.T) {
	t.Parallel()
	s, addr := startBroker(t, Config{}, "")
	violations := [][]byte{
		{0x10, 0},                         // a second CONNECT
		{0x40, 3, 0, 1, 0},                // PUBACK with a trailing byte
		{0x62, 1, 0},                      // PUBREL with a short id
		{0x30, 0xFF, 0xFF, 0xFF, 0xFF, 1}, // remaining length of five bytes
		{0xC0, 1, 0},                      // PINGREQ with a body
	}
	for i, b := range violations {
		c := connected(t, addr, "c", true)
		c.raw(b)
		c.expectClosedSilently()
		waitStats(t, s, "protocol error counted", func(st Stats) bool { return st.ProtocolErrors == int64(i+1) })
	}
	c := connected(t, addr, "fine", true) // the broker serves on
	c.ping()
}

// MQTT-4.8.0-2: a transient error while handling a packet (here: the store
// fails) closes the connection; the message is not acknowledged, so the
// client sends it again.
func TestMQTT_4_8_0_2_TransientErrorCloses(t *testing.T) {
	t.Parallel()
	s, addr := startBroker(t, Config{}, t.TempDir())
	c := connected(t, addr, "durable", false)
	c.mustSubscribe(1, "t", 1)
	c.disconnect()
	p := connected(t, addr, "pub", true)
	if err := s.store.Close(); err != nil { // every later write fails
		t.Fatal(err)
	}
	p.send(&packets.PublishPacket{Topic: []byte("t"), Payload: []byte("x"), QoS: 1, PacketID: 1})
	p.expectClosedSilently()
}
