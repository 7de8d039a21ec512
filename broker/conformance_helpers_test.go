package broker

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/sngate/sngate/broker/auth"
	"github.com/sngate/sngate/broker/packets"
)

// Helpers for the conformance tests (conformance_*_test.go). Each test is
// named after the MQTT 3.1.1 normative statement it checks, as listed in §6
// of the MQTT-SN gateway reference.
//
// To show that something did NOT happen without sleeping, the tests use
// PINGREQ as a barrier: a connection handles its packets in order and its
// output is a FIFO, so once a publisher has its PINGRESP (or PUBACK) the
// broker has routed its earlier messages, and once a subscriber has its
// PINGRESP everything routed to it before has arrived.

// gotMsg is a received PUBLISH, copied out of the reader's buffer (a decoded
// PUBLISH aliases it only until the next read).
type gotMsg struct {
	Topic   string
	Payload string
	QoS     byte
	Retain  bool
	Dup     bool
	PID     uint16
}

// recvMsg receives the next packet and fails unless it is a PUBLISH.
func (c *client) recvMsg() gotMsg {
	c.t.Helper()
	p := expect[*packets.PublishPacket](c)
	return gotMsg{Topic: string(p.Topic), Payload: string(p.Payload), QoS: p.QoS, Retain: p.Retain, Dup: p.Dup, PID: p.PacketID}
}

// expectMsg receives a PUBLISH and checks its topic, payload, QoS and retain
// flag; a QoS 1/2 delivery must carry a packet id (MQTT-2.3.1-1).
func (c *client) expectMsg(topic, payload string, qos byte, retain bool) gotMsg {
	c.t.Helper()
	m := c.recvMsg()
	if m.Topic != topic || m.Payload != payload || m.QoS != qos || m.Retain != retain {
		c.t.Fatalf("got PUBLISH %+v, want topic %q payload %q QoS %d retain %v", m, topic, payload, qos, retain)
	}
	if (qos == 0) != (m.PID == 0) {
		c.t.Fatalf("PUBLISH %+v: packet id %d at QoS %d", m, m.PID, qos)
	}
	return m
}

// ack completes a received QoS 1 or 2 delivery as a subscriber does.
func (c *client) ack(m gotMsg) {
	c.t.Helper()
	switch m.QoS {
	case 1:
		c.send(&packets.PubackPacket{PacketID: m.PID})
	case 2:
		c.send(&packets.PubrecPacket{PacketID: m.PID})
		if rel := expect[*packets.PubrelPacket](c); rel.PacketID != m.PID {
			c.t.Fatalf("PUBREL %d, want %d", rel.PacketID, m.PID)
		}
		c.send(&packets.PubcompPacket{PacketID: m.PID})
	}
}

// pub publishes and completes the sender's side of the flow: PUBACK at
// QoS 1, PUBREC-PUBREL-PUBCOMP at QoS 2, and at QoS 0 a PINGREQ barrier, so
// that in every case the broker has routed the message when pub returns.
// The client must not be subscribed to the topic (deliveries would
// interleave).
func (c *client) pub(topic, payload string, qos byte, retain bool, pid uint16) {
	c.t.Helper()
	if qos == 0 {
		pid = 0
	}
	c.send(&packets.PublishPacket{Topic: []byte(topic), Payload: []byte(payload), QoS: qos, Retain: retain, PacketID: pid})
	switch qos {
	case 0:
		c.ping()
	case 1:
		if a := expect[*packets.PubackPacket](c); a.PacketID != pid {
			c.t.Fatalf("PUBACK %d, want %d", a.PacketID, pid)
		}
	case 2:
		if a := expect[*packets.PubrecPacket](c); a.PacketID != pid {
			c.t.Fatalf("PUBREC %d, want %d", a.PacketID, pid)
		}
		c.send(&packets.PubrelPacket{PacketID: pid})
		if a := expect[*packets.PubcompPacket](c); a.PacketID != pid {
			c.t.Fatalf("PUBCOMP %d, want %d", a.PacketID, pid)
		}
	}
}

// ping is a barrier: PINGREQ, and the next packet must be its PINGRESP.
func (c *client) ping() {
	c.t.Helper()
	c.send(&packets.PingreqPacket{})
	expect[*packets.PingrespPacket](c)
}

// disconnect sends DISCONNECT and waits for the broker to close.
func (c *client) disconnect() {
	c.t.Helper()
	c.send(&packets.DisconnectPacket{})
	c.expectClosed()
}

// drop closes the connection without DISCONNECT, as a lost client.
func (c *client) drop() { c.nc.Close() }

// expectClosedSilently fails unless the broker closes the connection
// without sending any packet first.
func (c *client) expectClosedSilently() {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(waitTime))
	fh, _, err := c.r.ReadPacket()
	if err == nil {
		c.t.Fatalf("got %v, want the connection closed without an answer", fh.Type)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.t.Fatal("connection still open")
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !isReset(err) {
		c.t.Fatalf("read: %v, want the connection closed", err)
	}
}

// expectConnectClosed opens a connection to a broker of its own, sends raw
// as its first packet, a CONNECT the broker must reject, and expects the
// connection closed without CONNACK.
func expectConnectClosed(t *testing.T, raw []byte) {
	t.Helper()
	_, addr := startBroker(t, Config{}, "")
	c := dial(t, addr)
	c.raw(raw)
	c.expectClosedSilently()
}

// expectRefused reads a CONNACK with return code rc and session present 0
// (MQTT-3.2.2-4), then the close (MQTT-3.2.2-5).
func (c *client) expectRefused(rc byte) {
	c.t.Helper()
	ack := expect[*packets.ConnackPacket](c)
	if ack.ReturnCode != rc || ack.SessionPresent {
		c.t.Fatalf("CONNACK %+v, want return code 0x%02X without session present", ack, rc)
	}
	c.expectClosedSilently()
}

// connectOK connects with p and fails unless accepted; it returns whether a
// session was present.
func (c *client) connectOK(p *packets.ConnectPacket) bool {
	c.t.Helper()
	ack := c.connect(p)
	if ack.ReturnCode != 0 {
		c.t.Fatalf("CONNACK return code 0x%02X", ack.ReturnCode)
	}
	return ack.SessionPresent
}

// connectedWill dials and connects with a will.
func connectedWill(t testing.TB, addr, id string, will *Message) *client {
	t.Helper()
	c := dial(t, addr)
	c.connectOK(&packets.ConnectPacket{ClientID: id, CleanSession: true, KeepAlive: 60, WillFlag: true,
		WillTopic: will.Topic, WillMessage: will.Payload, WillQoS: will.QoS, WillRetain: will.Retain})
	return c
}

// subscribed dials a clean-session client and subscribes it to filter,
// which must match no retained message. The PINGREQ barrier makes sure the
// broker is done with the SUBSCRIBE: it looks the retained messages up after
// writing the SUBACK, so a message retained by another client right after
// the SUBACK may otherwise reach the subscriber twice, live and as retained.
func subscribed(t testing.TB, addr, id, filter string, qos byte) *client {
	t.Helper()
	c := connected(t, addr, id, true)
	c.mustSubscribe(1, filter, qos)
	c.ping()
	return c
}

// mustSubscribe subscribes to one filter and fails unless granted qos.
func (c *client) mustSubscribe(pid uint16, filter string, qos byte) {
	c.t.Helper()
	ack := c.subscribe(pid, packets.Subscription{Filter: filter, QoS: qos})
	if ack.PacketID != pid || len(ack.ReturnCodes) != 1 || ack.ReturnCodes[0] != qos {
		c.t.Fatalf("SUBACK %+v for %q QoS %d", ack, filter, qos)
	}
}

// pollUntil polls cond until it holds, failing after waitTime.
func pollUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTime)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// strField encodes an MQTT string or binary field: 2-byte length, then s.
func strField(s string) []byte {
	return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...)
}

// rawPacket builds a packet from its first byte and body, with a one- or
// two-byte Remaining Length.
func rawPacket(first byte, body ...[]byte) []byte {
	var b []byte
	for _, p := range body {
		b = append(b, p...)
	}
	return append(packets.AppendRemainingLength([]byte{first}, len(b)), b...)
}

// rawConnect builds a CONNECT for "MQTT" level 4 with the given connect
// flags, keep-alive 60 and payload fields exactly as given.
func rawConnect(flags byte, payload ...[]byte) []byte {
	return rawPacket(0x10, append([][]byte{strField("MQTT"), {4, flags, 0, 60}}, payload...)...)
}

// waitStats polls the server's counters until check accepts them.
func waitStats(t testing.TB, s *Server, what string, check func(Stats) bool) {
	t.Helper()
	pollUntil(t, what, func() bool { return check(s.Stats()) })
}

// aclConfig allows user "admin" everything and anonymous clients only the
// topics under "open/".
func aclConfig() auth.Config {
	return auth.Config{ACL: []auth.Rule{{User: "admin", Topic: "#"}, {Anonymous: true, Topic: "open/#"}}}
}
