package broker

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sngate/sngate/broker/auth"
	"github.com/sngate/sngate/broker/packets"
)

// Conformance tests for CONNECT / CONNACK (§6.1 of the reference) and for
// sessions, keep-alive and will (§6.2), plus the connection limits and
// persistence across a restart.

// ---- §6.1 CONNECT / CONNACK ----

// MQTT-3.1.0-1: the first packet must be CONNECT; anything else closes the
// connection without an answer and counts as a protocol error.
func TestMQTT_3_1_0_1_FirstPacketMustBeConnect(t *testing.T) {
	t.Parallel()
	s, addr := startBroker(t, Config{}, "")
	for i, first := range []packets.Packet{
		&packets.PingreqPacket{},
		&packets.PublishPacket{Topic: []byte("a"), Payload: []byte("x")},
		&packets.SubscribePacket{PacketID: 1, Filters: []packets.Subscription{{Filter: "#"}}},
	} {
		c := dial(t, addr)
		c.send(first)
		c.expectClosedSilently()
		waitStats(t, s, "protocol error counted", func(st Stats) bool { return st.ProtocolErrors == int64(i+1) })
	}
}

// MQTT-3.1.0-2: a second CONNECT is a protocol violation: the connection is
// closed (and, being closed for a protocol error, its will is published).
func TestMQTT_3_1_0_2_SecondConnectClosed(t *testing.T) {
	t.Parallel()
	s, addr := startBroker(t, Config{}, "")
	w := subscribed(t, addr, "watch", "will/#", 0)
	c := connectedWill(t, addr, "twice", &Message{Topic: "will/twice", Payload: []byte("gone")})
	c.send(&packets.ConnectPacket{ClientID: "twice", CleanSession: true})
	c.expectClosedSilently()
	w.expectMsg("will/twice", "gone", 0, false)
	waitStats(t, s, "protocol error counted", func(st Stats) bool { return st.ProtocolErrors == 1 })
}

// MQTT-3.1.2-1: a protocol name other than "MQTT" (or MQTT 3.1's "MQIsdp")
// closes the connection without CONNACK.
func TestMQTT_3_1_2_1_WrongProtocolName(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	for _, name := range []string{"MQTX", "mqtt", "MQTT\x00", ""} {
		c := dial(t, addr)
		c.raw(rawPacket(0x10, strField(name), []byte{4, 0x02, 0, 60}, strField("x")))
		c.expectClosedSilently()
	}
}

// MQTT-3.1.2-2: an unsupported protocol level gets CONNACK 0x01, then the
// connection is closed.
func TestMQTT_3_1_2_2_UnsupportedLevel(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	for _, v := range []struct {
		name  string
		level byte
	}{{"MQTT", 5}, {"MQTT", 3}, {"MQTT", 0}, {"MQIsdp", 4}} {
		c := dial(t, addr)
		c.raw(rawPacket(0x10, strField(v.name), []byte{v.level, 0x02, 0, 60}, strField("x")))
		c.expectRefused(packets.ConnRefusedProtocolLevel)
	}
}

// MQTT 3.1 clients (protocol name "MQIsdp", level 3) are accepted and
// served like 3.1.1 clients.
func TestMQTT_3_1_2_2_MQIsdpLevel3Accepted(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	c := dial(t, addr)
	c.connectOK(&packets.ConnectPacket{ProtocolName: "MQIsdp", ProtocolLevel: 3, ClientID: "old", CleanSession: true, KeepAlive: 60})
	c.mustSubscribe(1, "v3/#", 1)
	p := connected(t, addr, "pub", true)
	p.pub("v3/a", "hello", 1, false, 1)
	c.ack(c.expectMsg("v3/a", "hello", 1, false))
	c.ping()
}

// MQTT-3.1.2-3: the reserved connect flag (bit 0) must be 0, else the
// connection is closed without CONNACK.
func TestMQTT_3_1_2_3_ReservedConnectFlag(t *testing.T) {
	t.Parallel()
	expectConnectClosed(t, rawConnect(0x03, strField("x")))
}

// MQTT-3.1.2-11: with Will Flag 0 the will topic and message are absent;
// bytes where they would be are trailing garbage: malformed, closed.
func TestMQTT_3_1_2_11_NoWillFieldsWithoutWillFlag(t *testing.T) {
	t.Parallel()
	expectConnectClosed(t, rawConnect(0x02, strField("x"), strField("will/topic"), strField("msg")))
}

// MQTT-3.1.2-13: with Will Flag 0 the Will QoS must be 0.
func TestMQTT_3_1_2_13_WillQoSWithoutWillFlag(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	for _, qos := range []byte{1, 2} {
		c := dial(t, addr)
		c.raw(rawConnect(0x02|qos<<3, strField("x")))
		c.expectClosedSilently()
	}
}

// MQTT-3.1.2-14: Will QoS 3 is invalid.
func TestMQTT_3_1_2_14_WillQoS3(t *testing.T) {
	t.Parallel()
	expectConnectClosed(t, rawConnect(0x02|0x04|3<<3, strField("x"), strField("will/t"), strField("m")))
}

// MQTT-3.1.2-15: with Will Flag 0 the Will Retain flag must be 0.
func TestMQTT_3_1_2_15_WillRetainWithoutWillFlag(t *testing.T) {
	t.Parallel()
	expectConnectClosed(t, rawConnect(0x02|0x20, strField("x")))
}

// MQTT-3.1.2-18: with User Name Flag 0 no user name is present.
func TestMQTT_3_1_2_18_NoUsernameWithoutFlag(t *testing.T) {
	t.Parallel()
	expectConnectClosed(t, rawConnect(0x02, strField("x"), strField("user")))
}

// MQTT-3.1.2-19: with User Name Flag 1 the user name must be present.
func TestMQTT_3_1_2_19_UsernameFlagNeedsUsername(t *testing.T) {
	t.Parallel()
	expectConnectClosed(t, rawConnect(0x02|0x80, strField("x")))
}

// MQTT-3.1.2-20: with Password Flag 0 no password is present.
func TestMQTT_3_1_2_20_NoPasswordWithoutFlag(t *testing.T) {
	t.Parallel()
	expectConnectClosed(t, rawConnect(0x02|0x80, strField("x"), strField("user"), strField("secret")))
}

// MQTT-3.1.2-21: with Password Flag 1 the password must be present.
func TestMQTT_3_1_2_21_PasswordFlagNeedsPassword(t *testing.T) {
	t.Parallel()
	expectConnectClosed(t, rawConnect(0x02|0x80|0x40, strField("x"), strField("user")))
}

// MQTT-3.1.2-22: with User Name Flag 0 the Password Flag must be 0.
func TestMQTT_3_1_2_22_PasswordWithoutUsername(t *testing.T) {
	t.Parallel()
	expectConnectClosed(t, rawConnect(0x02|0x40, strField("x"), strField("secret")))
}

// MQTT-3.1.3-1: the payload fields come in the order client id, will topic,
// will message, user name, password; all of them present are read right.
func TestMQTT_3_1_3_1_PayloadOrder(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	w := subscribed(t, addr, "watch", "will/#", 1)
	c := dial(t, addr)
	c.connectOK(&packets.ConnectPacket{ClientID: "full", CleanSession: true, KeepAlive: 60,
		WillFlag: true, WillTopic: "will/full", WillMessage: []byte("will payload"), WillQoS: 1,
		UsernameFlag: true, Username: "user", PasswordFlag: true, Password: []byte("pw")})
	c.drop()
	w.ack(w.expectMsg("will/full", "will payload", 1, false))
}

// MQTT-3.1.3-5: client ids of 1-23 bytes of [0-9a-zA-Z] are accepted; so
// are longer ones and other characters.
func TestMQTT_3_1_3_5_ClientIDCharacters(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	for _, id := range []string{
		"a", "0", "Z",
		"0123456789abcdefghijABC", // 23
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
		"sensor/1 ü-€", strings.Repeat("x", 1000),
	} {
		c := connected(t, addr, id, true)
		c.ping()
		c.disconnect()
	}
}

// MQTT-3.1.3-6: an empty client id with CleanSession 1 is accepted and the
// broker assigns a unique one: two such clients are served side by side.
func TestMQTT_3_1_3_6_EmptyClientIDAssigned(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	var cs []*client
	for range 2 {
		c := dial(t, addr)
		if present := c.connectOK(&packets.ConnectPacket{CleanSession: true, KeepAlive: 60}); present {
			t.Fatal("session present for a new clean session")
		}
		c.mustSubscribe(1, "anon", 0)
		cs = append(cs, c)
	}
	p := connected(t, addr, "pub", true)
	p.pub("anon", "both", 0, false, 0)
	for _, c := range cs { // neither took the other over
		c.expectMsg("anon", "both", 0, false)
	}
}

// MQTT-3.1.3-8 (the server's side of MQTT-3.1.3-7): an empty client id
// with CleanSession 0 gets CONNACK 0x02, then the connection is closed.
func TestMQTT_3_1_3_8_EmptyClientIDPersistentRejected(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	c := dial(t, addr)
	c.send(&packets.ConnectPacket{ProtocolName: "MQTT", ProtocolLevel: 4, CleanSession: false, KeepAlive: 60})
	c.expectRefused(packets.ConnRefusedIdentifierRejected)
}

// MQTT-3.1.3-9: a client id the server rejects gets CONNACK 0x02 and the
// close. The broker rejects persistent sessions whose id is too long to be a
// key of its store (more than 32768 bytes): accepting one would make every
// store write for it fail, and with it the acknowledgement of every QoS 1/2
// message published to its subscriptions. A clean session may use it.
func TestMQTT_3_1_3_9_RejectedClientID(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, t.TempDir())
	long := strings.Repeat("i", 40000)
	c := dial(t, addr)
	c.send(&packets.ConnectPacket{ClientID: long, CleanSession: false, KeepAlive: 60})
	c.expectRefused(packets.ConnRefusedIdentifierRejected)

	c = connected(t, addr, long, true)
	c.mustSubscribe(1, "long/id", 1)
	p := connected(t, addr, "pub", true)
	p.pub("long/id", "ok", 1, false, 1)
	c.ack(c.expectMsg("long/id", "ok", 1, false))
}

// MQTT-3.1.4-1: a malformed CONNECT closes the connection without CONNACK.
func TestMQTT_3_1_4_1_MalformedConnectNoConnack(t *testing.T) {
	t.Parallel()
	s, addr := startBroker(t, Config{}, "")
	cases := map[string][]byte{
		"truncated client id":     rawPacket(0x10, strField("MQTT"), []byte{4, 0x02, 0, 60, 0, 10, 'a'}),
		"no connect flags":        rawPacket(0x10, strField("MQTT"), []byte{4}),
		"trailing bytes":          rawConnect(0x02, strField("x"), []byte{0}),
		"client id not UTF-8":     rawConnect(0x02, strField("a\xffb")),
		"client id with U+0000":   rawConnect(0x02, strField("a\x00b")),
		"client id surrogate":     rawConnect(0x02, strField("\xed\xa0\x80")),
		"will topic with #":       rawConnect(0x02|0x04, strField("x"), strField("will/#"), strField("m")),
		"will topic empty":        rawConnect(0x02|0x04, strField("x"), strField(""), strField("m")),
		"user name not UTF-8":     rawConnect(0x02|0x80, strField("x"), strField("\xc0\xaf")),
		"CONNECT flags 0001":      append([]byte{0x11}, rawConnect(0x02, strField("x"))[1:]...),
		"remaining length 5 byte": {0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F},
	}
	n := 0
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			c := dial(t, addr)
			c.raw(b)
			c.expectClosedSilently()
		})
		n++
	}
	waitStats(t, s, "protocol errors counted", func(st Stats) bool { return st.ProtocolErrors == int64(n) })
}

// MQTT-3.1.4-2: a CONNECT with the client id of a connected client closes
// the existing connection; the new one gets the session.
func TestMQTT_3_1_4_2_ClientIDTakeover(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	old := connected(t, addr, "dup", false)
	old.mustSubscribe(1, "take/#", 1)
	c := dial(t, addr)
	if !c.connectOK(&packets.ConnectPacket{ClientID: "dup", CleanSession: false, KeepAlive: 60}) {
		t.Fatal("takeover of a persistent session: session present 0")
	}
	old.expectClosed()
	p := connected(t, addr, "pub", true)
	p.pub("take/x", "to the new one", 1, false, 1)
	c.ack(c.expectMsg("take/x", "to the new one", 1, false))

	// A clean takeover of a clean session works the same way.
	a := connected(t, addr, "clean", true)
	b := connected(t, addr, "clean", true)
	a.expectClosed()
	b.ping()
}

// MQTT-3.1.4-2, the race: a client can have its CONNACK before the broker
// has attached it to its session (the CONNACK is flushed first). A takeover
// in between finds nothing to kick; the superseded client must then be
// ended when it comes to attach, not left connected beside the new one.
func TestMQTT_3_1_4_2_TakeoverBeforeAttach(t *testing.T) {
	t.Parallel()
	s, _ := startBroker(t, Config{}, "")
	for _, clean := range []bool{true, false} {
		id := fmt.Sprint("race-", clean)
		var a, b kickOutlet
		sessA, genA, _ := s.attach(id, clean, clientIdentity{ClientID: id}, false)
		sessB, genB, _ := s.attach(id, clean, clientIdentity{ClientID: id}, false)
		sessA.resume(&a, genA)
		sessB.resume(&b, genB)
		if !a.kicked || b.kicked {
			t.Fatalf("clean %v: superseded kicked %v, new kicked %v", clean, a.kicked, b.kicked)
		}
	}
}

// kickOutlet is an outlet that only records a kick.
type kickOutlet struct{ kicked bool }

func (*kickOutlet) publish(delivery, bool) bool { return true }
func (*kickOutlet) pubrel(uint16)               {}
func (o *kickOutlet) kick()                     { o.kicked = true }

// MQTT-3.1.4-4: an accepted CONNECT is answered by CONNACK 0x00.
func TestMQTT_3_1_4_4_ConnackAccepted(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	c := dial(t, addr)
	ack := c.connect(&packets.ConnectPacket{ClientID: "ok", CleanSession: true, KeepAlive: 60})
	if ack.ReturnCode != packets.ConnAccepted || ack.SessionPresent {
		t.Fatalf("CONNACK %+v", ack)
	}
}

// MQTT-3.1.4-5: after a refused CONNECT the server processes nothing more
// the client sent.
func TestMQTT_3_1_4_5_DataAfterRejectedConnectIgnored(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	w := subscribed(t, addr, "watch", "#", 0)
	publish := (&packets.PublishPacket{Topic: []byte("sneaky"), Payload: []byte("x")}).Append(nil)

	c := dial(t, addr)
	c.raw(append((&packets.ConnectPacket{ProtocolName: "MQTT", ProtocolLevel: 5, ClientID: "bad"}).Append(nil), publish...))
	c.expectRefused(packets.ConnRefusedProtocolLevel)

	c = dial(t, addr)
	c.raw(append((&packets.ConnectPacket{ProtocolName: "MQTT", ProtocolLevel: 4}).Append(nil), publish...))
	c.expectRefused(packets.ConnRefusedIdentifierRejected)

	w.ping() // nothing was routed
}

// MQTT-3.2.0-1: CONNACK is the first packet the server sends, even when a
// persistent session has messages waiting.
func TestMQTT_3_2_0_1_ConnackFirst(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	c := connected(t, addr, "queued", false)
	c.mustSubscribe(1, "q", 1)
	c.disconnect()
	p := connected(t, addr, "pub", true)
	for i := range 5 {
		p.pub("q", "m", 1, false, uint16(i+1))
	}
	c = dial(t, addr)
	if !c.connectOK(&packets.ConnectPacket{ClientID: "queued", KeepAlive: 60}) { // CONNACK first
		t.Fatal("no session present")
	}
	for range 5 {
		c.ack(c.expectMsg("q", "m", 1, false))
	}
}

// MQTT-3.2.2-4: a refusing CONNACK has Session Present 0, even when the
// client has a stored session; the session is left as it was.
func TestMQTT_3_2_2_4_RefusedConnackNoSessionPresent(t *testing.T) {
	t.Parallel()
	hash, err := auth.HashPassword([]byte("right"), auth.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	pwfile := filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(pwfile, []byte("user:"+hash+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, addr := startBroker(t, Config{Auth: auth.Config{PasswordFile: pwfile}}, "")
	login := func(pw string) *packets.ConnectPacket {
		return &packets.ConnectPacket{ClientID: "stored", KeepAlive: 60,
			UsernameFlag: true, Username: "user", PasswordFlag: true, Password: []byte(pw)}
	}
	c := dial(t, addr)
	c.connectOK(login("right"))
	c.mustSubscribe(1, "s", 1)
	c.disconnect()

	c = dial(t, addr)
	c.send(login("wrong"))
	c.expectRefused(packets.ConnRefusedBadUsernamePassword)

	c = dial(t, addr)
	if !c.connectOK(login("right")) {
		t.Fatal("the refused CONNECT lost the stored session")
	}
}

// MQTT-3.2.2-5: after a non-zero CONNACK the server closes the connection.
func TestMQTT_3_2_2_5_RefusedConnectionClosed(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{MaxClients: 1}, "")
	connected(t, addr, "only", true)
	for _, v := range []struct {
		p  *packets.ConnectPacket
		rc byte
	}{
		{&packets.ConnectPacket{ProtocolName: "MQTT", ProtocolLevel: 6, ClientID: "x"}, packets.ConnRefusedProtocolLevel},
		{&packets.ConnectPacket{ProtocolName: "MQTT", ProtocolLevel: 4}, packets.ConnRefusedIdentifierRejected},
		{&packets.ConnectPacket{ProtocolName: "MQTT", ProtocolLevel: 4, ClientID: "x", CleanSession: true}, packets.ConnRefusedServerUnavailable},
	} {
		c := dial(t, addr)
		c.send(v.p)
		c.expectRefused(v.rc) // reads the close, too
	}
}

// MQTT-3.2.2-6: when no return code fits (here: a CONNECT larger than
// max_packet_size) the server closes without CONNACK.
func TestMQTT_3_2_2_6_NoFittingCodeClosesSilently(t *testing.T) {
	t.Parallel()
	s, addr := startBroker(t, Config{MaxPacketSize: 256}, "")
	c := dial(t, addr)
	c.send(&packets.ConnectPacket{ClientID: strings.Repeat("x", 300), CleanSession: true})
	c.expectClosedSilently()
	waitStats(t, s, "oversize packet counted", func(st Stats) bool { return st.OversizePackets == 1 && st.ProtocolErrors == 1 })
}

// max_clients: a client beyond the limit gets CONNACK 0x03 (server
// unavailable) and is counted; once a client leaves, there is room again.
func TestLimit_MaxClientsConnack3(t *testing.T) {
	t.Parallel()
	s, addr := startBroker(t, Config{MaxClients: 2}, "")
	a := connected(t, addr, "a", true)
	connected(t, addr, "b", true)
	c := dial(t, addr)
	c.send(&packets.ConnectPacket{ClientID: "c", CleanSession: true, KeepAlive: 60})
	c.expectRefused(packets.ConnRefusedServerUnavailable)
	if st := s.Stats(); st.RefusedMaxClients != 1 || st.ClientsConnected != 2 {
		t.Fatalf("stats %+v", st)
	}
	a.disconnect()
	waitStats(t, s, "client a gone", func(st Stats) bool { return st.ClientsConnected == 1 })
	connected(t, addr, "c", true).ping()
}

// A device that reconnects while its old connection is still open (it was
// cut off without the broker noticing) takes its id over even when the
// broker is full: the old connection's slot becomes its own.
func TestLimit_MaxClientsAllowsTakeover(t *testing.T) {
	t.Parallel()
	s, addr := startBroker(t, Config{MaxClients: 1}, "")
	old := connected(t, addr, "dev", true)
	connected(t, addr, "dev", true).ping()
	old.expectClosed()
	c := dial(t, addr)
	c.send(&packets.ConnectPacket{ClientID: "other", CleanSession: true, KeepAlive: 60})
	c.expectRefused(packets.ConnRefusedServerUnavailable)
	waitStats(t, s, "one client", func(st Stats) bool { return st.ClientsConnected == 1 })
}

// ---- §6.2 Sessions, keep-alive, will ----

// MQTT-3.2.2-1: CleanSession 1 → Session Present 0, even if a stored
// session existed.
func TestMQTT_3_2_2_1_CleanSessionNoSessionPresent(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	c := connected(t, addr, "s", false)
	c.mustSubscribe(1, "x", 1)
	c.disconnect()
	c = dial(t, addr)
	if c.connectOK(&packets.ConnectPacket{ClientID: "s", CleanSession: true, KeepAlive: 60}) {
		t.Fatal("session present with CleanSession 1")
	}
}

// MQTT-3.2.2-2: CleanSession 0 with a stored session → Session Present 1.
func TestMQTT_3_2_2_2_StoredSessionPresent(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	c := connected(t, addr, "s", false)
	c.disconnect()
	c = dial(t, addr)
	if !c.connectOK(&packets.ConnectPacket{ClientID: "s", KeepAlive: 60}) {
		t.Fatal("session present 0 with a stored session")
	}
	c.drop() // a lost connection keeps the session too
	c = dial(t, addr)
	if !c.connectOK(&packets.ConnectPacket{ClientID: "s", KeepAlive: 60}) {
		t.Fatal("session present 0 after a dropped connection")
	}
}

// MQTT-3.2.2-3: CleanSession 0 without stored session → Session Present 0;
// a clean session is never stored for a later CleanSession 0.
func TestMQTT_3_2_2_3_NoStoredSessionNotPresent(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	c := dial(t, addr)
	if c.connectOK(&packets.ConnectPacket{ClientID: "new", KeepAlive: 60}) {
		t.Fatal("session present for a new client")
	}
	c = connected(t, addr, "wasclean", true)
	c.disconnect()
	c = dial(t, addr)
	if c.connectOK(&packets.ConnectPacket{ClientID: "wasclean", KeepAlive: 60}) {
		t.Fatal("session present after a clean session")
	}
}

// MQTT-3.1.2-4: CleanSession 0 resumes the stored session: its
// subscriptions stay after disconnect.
func TestMQTT_3_1_2_4_PersistentSessionResumed(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	c := connected(t, addr, "p", false)
	c.mustSubscribe(1, "keep/+", 2)
	c.disconnect()
	c = dial(t, addr)
	if !c.connectOK(&packets.ConnectPacket{ClientID: "p", KeepAlive: 60}) {
		t.Fatal("no session present")
	}
	p := connected(t, addr, "pub", true)
	p.pub("keep/a", "still subscribed", 2, false, 1)
	c.ack(c.expectMsg("keep/a", "still subscribed", 2, false))
}

// MQTT-3.1.2-5: a persistent session keeps receiving QoS 1 and 2 messages
// while offline, and gets them in order on reconnect; QoS 0 messages are not
// queued (queue_qos0 off).
func TestMQTT_3_1_2_5_OfflineQueueQoS1And2(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	c := connected(t, addr, "p", false)
	c.mustSubscribe(1, "off/#", 2)
	c.disconnect()
	p := connected(t, addr, "pub", true)
	p.pub("off/1", "q1", 1, false, 1)
	p.pub("off/0", "q0", 0, false, 0)
	p.pub("off/2", "q2", 2, false, 2)
	c = dial(t, addr)
	c.connectOK(&packets.ConnectPacket{ClientID: "p", KeepAlive: 60})
	c.ack(c.expectMsg("off/1", "q1", 1, false))
	c.ack(c.expectMsg("off/2", "q2", 2, false))
	c.ping() // no QoS 0 message
}

// queue_qos0: with it on, QoS 0 messages are queued for an offline
// persistent session too, and delivered with DUP 0 and no packet id.
func TestMQTT_3_1_2_5_OfflineQueueQoS0WhenEnabled(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{QueueQoS0: true}, "")
	c := connected(t, addr, "p", false)
	c.mustSubscribe(1, "off/#", 1)
	c.disconnect()
	p := connected(t, addr, "pub", true)
	p.pub("off/0", "a", 0, false, 0)
	p.pub("off/1", "b", 1, false, 1)
	c = dial(t, addr)
	c.connectOK(&packets.ConnectPacket{ClientID: "p", KeepAlive: 60})
	if m := c.expectMsg("off/0", "a", 0, false); m.Dup {
		t.Fatalf("QoS 0 with DUP: %+v", m)
	}
	c.ack(c.expectMsg("off/1", "b", 1, false))
}

// MQTT-3.1.2-6: CleanSession 1 discards the stored session (subscriptions
// and queued messages), and the clean session is not kept afterwards.
func TestMQTT_3_1_2_6_CleanSessionDiscardsState(t *testing.T) {
	t.Parallel()
	s, addr := startBroker(t, Config{}, "")
	c := connected(t, addr, "p", false)
	c.mustSubscribe(1, "gone/#", 1)
	c.disconnect()
	p := connected(t, addr, "pub", true)
	p.pub("gone/1", "queued", 1, false, 1)

	c = dial(t, addr)
	if c.connectOK(&packets.ConnectPacket{ClientID: "p", CleanSession: true, KeepAlive: 60}) {
		t.Fatal("session present with CleanSession 1")
	}
	p.pub("gone/2", "live", 1, false, 2)
	c.ping() // neither the queued message nor the subscription survived
	c.disconnect()
	waitStats(t, s, "clean session gone", func(st Stats) bool { return st.Sessions == 1 }) // "pub"

	c = dial(t, addr)
	if c.connectOK(&packets.ConnectPacket{ClientID: "p", KeepAlive: 60}) {
		t.Fatal("a clean session was kept")
	}
	c.ping()
}

// MQTT-3.1.2-7: retained messages are not session state: they outlive the
// session of their publisher.
func TestMQTT_3_1_2_7_RetainedOutliveSession(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	p := connected(t, addr, "pub", true)
	p.pub("ret/a", "kept", 1, true, 1)
	p.disconnect()
	c := connected(t, addr, "late", true)
	c.mustSubscribe(1, "ret/#", 1)
	c.ack(c.expectMsg("ret/a", "kept", 1, true))
}

// MQTT-3.1.2-24: with keep-alive 1 s the broker closes a silent connection
// after 1.5 s, as for a network failure (the will is published). A client
// that pings stays connected; keep-alive 0 turns the check off.
func TestMQTT_3_1_2_24_KeepAliveOneAndAHalf(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	w := subscribed(t, addr, "watch", "will/#", 0)
	silent := dial(t, addr)
	silent.connectOK(&packets.ConnectPacket{ClientID: "silent", CleanSession: true, KeepAlive: 1,
		WillFlag: true, WillTopic: "will/silent", WillMessage: []byte("timed out")})
	start := time.Now()
	pinger := dial(t, addr)
	pinger.connectOK(&packets.ConnectPacket{ClientID: "pinger", CleanSession: true, KeepAlive: 1})
	off := dial(t, addr)
	off.connectOK(&packets.ConnectPacket{ClientID: "off", CleanSession: true, KeepAlive: 0})

	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 4 {
			time.Sleep(500 * time.Millisecond)
			_, _ = pinger.nc.Write([]byte{0xC0, 0}) // PINGREQ
		}
	}()
	silent.expectClosed()
	if d := time.Since(start); d < 1400*time.Millisecond || d > 3*time.Second {
		t.Errorf("closed after %v, want 1.5 s", d)
	}
	w.expectMsg("will/silent", "timed out", 0, false)
	<-done
	for range 4 {
		expect[*packets.PingrespPacket](pinger)
	}
	pinger.ping()
	off.ping()
}

// MQTT-3.12.4-1: every PINGREQ is answered with PINGRESP.
func TestMQTT_3_12_4_1_PingResp(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	c := connected(t, addr, "p", true)
	var b []byte
	for range 10 {
		b = (&packets.PingreqPacket{}).Append(b)
	}
	c.raw(b)
	for range 10 {
		expect[*packets.PingrespPacket](c)
	}
	c.ping()
}

// MQTT-3.1.2-8: the will is published when the client closes the network
// connection without DISCONNECT.
func TestMQTT_3_1_2_8_WillOnAbnormalClose(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	w := subscribed(t, addr, "watch", "will/#", 2)
	c := connectedWill(t, addr, "lost", &Message{Topic: "will/lost", Payload: []byte("bye"), QoS: 2})
	c.drop()
	w.ack(w.expectMsg("will/lost", "bye", 2, false))
}

// MQTT-3.1.2-8: the will is published when the keep-alive expires.
func TestMQTT_3_1_2_8_WillOnKeepAliveExpiry(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	w := subscribed(t, addr, "watch", "will/#", 1)
	c := dial(t, addr)
	c.connectOK(&packets.ConnectPacket{ClientID: "sleepy", CleanSession: true, KeepAlive: 1,
		WillFlag: true, WillTopic: "will/sleepy", WillMessage: []byte("expired"), WillQoS: 1})
	w.ack(w.expectMsg("will/sleepy", "expired", 1, false))
	c.expectClosed()
}

// MQTT-3.1.2-8: the will is published when the server closes the connection
// for a protocol error, which is counted.
func TestMQTT_3_1_2_8_WillOnProtocolError(t *testing.T) {
	t.Parallel()
	s, addr := startBroker(t, Config{}, "")
	w := subscribed(t, addr, "watch", "will/#", 0)
	c := connectedWill(t, addr, "bad", &Message{Topic: "will/bad", Payload: []byte("violated")})
	c.raw([]byte{0x30 | 0x06, 3, 0, 1, 'x'}) // PUBLISH with QoS bits 11
	c.expectClosed()
	w.expectMsg("will/bad", "violated", 0, false)
	if st := s.Stats(); st.ProtocolErrors != 1 {
		t.Fatalf("protocol errors %d", st.ProtocolErrors)
	}
}

// MQTT-3.1.2-10: the will is removed once published: it is published once,
// and a reconnecting client without a will leaves none.
func TestMQTT_3_1_2_10_WillPublishedOnce(t *testing.T) {
	t.Parallel()
	s, addr := startBroker(t, Config{}, "")
	w := subscribed(t, addr, "watch", "will/#", 0)
	c := dial(t, addr)
	c.connectOK(&packets.ConnectPacket{ClientID: "once", KeepAlive: 60,
		WillFlag: true, WillTopic: "will/once", WillMessage: []byte("1")})
	c.drop()
	w.expectMsg("will/once", "1", 0, false)
	c = dial(t, addr)
	c.connectOK(&packets.ConnectPacket{ClientID: "once", KeepAlive: 60})
	c.drop()
	waitStats(t, s, "client gone", func(st Stats) bool { return st.ClientsConnected == 1 })
	w.ping()
}

// MQTT-3.14.4-3: on DISCONNECT the will is discarded unpublished.
func TestMQTT_3_14_4_3_DisconnectDiscardsWill(t *testing.T) {
	t.Parallel()
	s, addr := startBroker(t, Config{}, "")
	w := subscribed(t, addr, "watch", "will/#", 0)
	c := connectedWill(t, addr, "polite", &Message{Topic: "will/polite", Payload: []byte("no")})
	c.disconnect()
	waitStats(t, s, "client gone", func(st Stats) bool { return st.ClientsConnected == 1 })
	w.ping()
}

// MQTT-3.1.2-12: without the will flag no will is published.
func TestMQTT_3_1_2_12_NoWillFlagNoWill(t *testing.T) {
	t.Parallel()
	s, addr := startBroker(t, Config{}, "")
	w := subscribed(t, addr, "watch", "#", 0)
	c := connected(t, addr, "nowill", true)
	c.drop()
	waitStats(t, s, "client gone", func(st Stats) bool { return st.ClientsConnected == 1 })
	w.ping()
	if st := s.Stats(); st.MessagesIn != 0 {
		t.Fatalf("%d messages routed", st.MessagesIn)
	}
}

// MQTT-3.1.2-16: Will Retain 0 → the will is published non-retained (live
// subscribers get retain 0, later ones nothing).
func TestMQTT_3_1_2_16_WillNotRetained(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	w := subscribed(t, addr, "watch", "will/#", 0)
	c := connectedWill(t, addr, "w", &Message{Topic: "will/w", Payload: []byte("x")})
	c.drop()
	w.expectMsg("will/w", "x", 0, false)
	late := subscribed(t, addr, "late", "will/#", 0)
	late.ping()
}

// MQTT-3.1.2-17: Will Retain 1 → the will is published retained: later
// subscribers get it with the retain flag.
func TestMQTT_3_1_2_17_WillRetained(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	w := subscribed(t, addr, "watch", "will/#", 1)
	c := connectedWill(t, addr, "w", &Message{Topic: "will/w", Payload: []byte("offline"), QoS: 1, Retain: true})
	c.drop()
	w.ack(w.expectMsg("will/w", "offline", 1, false)) // live delivery: retain 0 (MQTT-3.3.1-9)
	late := connected(t, addr, "late", true)
	late.mustSubscribe(1, "will/#", 1)
	late.ack(late.expectMsg("will/w", "offline", 1, true))
}

// MQTT-3.14.1-1: DISCONNECT with reserved bits set is a protocol violation:
// the connection is closed and, not being a DISCONNECT, the will published.
func TestMQTT_3_14_1_1_DisconnectReservedBits(t *testing.T) {
	t.Parallel()
	s, addr := startBroker(t, Config{}, "")
	w := subscribed(t, addr, "watch", "will/#", 0)
	for i, b := range [][]byte{{0xE1, 0}, {0xE8, 0}, {0xE0, 1, 0}} {
		c := connectedWill(t, addr, "d", &Message{Topic: "will/d", Payload: []byte("x")})
		c.raw(b)
		c.expectClosed()
		w.expectMsg("will/d", "x", 0, false)
		waitStats(t, s, "protocol error counted", func(st Stats) bool { return st.ProtocolErrors == int64(i+1) })
	}
}

// MQTT-4.4.0-1: on reconnect with CleanSession 0 the server resends
// unacknowledged PUBLISH packets with DUP 1 and their original ids, in
// order, and PUBREL for those the client had PUBREC'd; never PUBLISH after
// PUBREL (MQTT-4.3.3-1).
func TestMQTT_4_4_0_1_RedeliveryWithDUPOnReconnect(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	c := connected(t, addr, "p", false)
	c.mustSubscribe(1, "re/#", 2)
	p := connected(t, addr, "pub", true)
	p.pub("re/1", "one", 1, false, 1)
	p.pub("re/2", "two", 2, false, 2)
	p.pub("re/3", "three", 2, false, 3)
	m1 := c.expectMsg("re/1", "one", 1, false)
	m2 := c.expectMsg("re/2", "two", 2, false)
	m3 := c.expectMsg("re/3", "three", 2, false)
	if m1.Dup || m2.Dup || m3.Dup {
		t.Fatal("DUP on a first delivery")
	}
	c.send(&packets.PubrecPacket{PacketID: m3.PID})
	if rel := expect[*packets.PubrelPacket](c); rel.PacketID != m3.PID {
		t.Fatalf("PUBREL %d", rel.PacketID)
	}
	c.drop()

	c = dial(t, addr)
	c.connectOK(&packets.ConnectPacket{ClientID: "p", KeepAlive: 60})
	r1 := c.recvMsg()
	r2 := c.recvMsg()
	if r1 != (gotMsg{"re/1", "one", 1, false, true, m1.PID}) || r2 != (gotMsg{"re/2", "two", 2, false, true, m2.PID}) {
		t.Fatalf("resent %+v, %+v; want DUP copies of %+v, %+v", r1, r2, m1, m2)
	}
	if rel := expect[*packets.PubrelPacket](c); rel.PacketID != m3.PID {
		t.Fatalf("PUBREL %d, want %d", rel.PacketID, m3.PID)
	}
	c.send(&packets.PubcompPacket{PacketID: m3.PID})
	c.ack(r1)
	c.ack(r2)
	c.ping()
	c.drop()
	c = dial(t, addr)
	c.connectOK(&packets.ConnectPacket{ClientID: "p", KeepAlive: 60})
	c.ping() // all acknowledged: nothing resent
}

// MQTT-4.4.0-1, client side: a client resending an unacknowledged QoS 2
// PUBLISH after reconnecting gets PUBREC without a second delivery, and its
// resent PUBREL gets PUBCOMP.
func TestMQTT_4_4_0_1_ClientResendsQoS2AfterReconnect(t *testing.T) {
	t.Parallel()
	_, addr := startBroker(t, Config{}, "")
	w := subscribed(t, addr, "watch", "in/#", 2)
	p := connected(t, addr, "pub", false)
	pkt := &packets.PublishPacket{Topic: []byte("in/x"), Payload: []byte("once"), QoS: 2, PacketID: 9}
	p.send(pkt)
	if rec := expect[*packets.PubrecPacket](p); rec.PacketID != 9 {
		t.Fatalf("PUBREC %d", rec.PacketID)
	}
	w.ack(w.expectMsg("in/x", "once", 2, false))
	p.drop()

	p = dial(t, addr)
	p.connectOK(&packets.ConnectPacket{ClientID: "pub", KeepAlive: 60})
	pkt.Dup = true
	p.send(pkt)
	if rec := expect[*packets.PubrecPacket](p); rec.PacketID != 9 {
		t.Fatalf("PUBREC %d", rec.PacketID)
	}
	p.send(&packets.PubrelPacket{PacketID: 9})
	if comp := expect[*packets.PubcompPacket](p); comp.PacketID != 9 {
		t.Fatalf("PUBCOMP %d", comp.PacketID)
	}
	w.ping() // delivered once
}

// ---- Persistence across a restart (same data directory, no processes) ----

// A persistent session, its subscription and its queued QoS 1 messages
// survive a Shutdown and a new Server on the same directory.
func TestPersist_RestartKeepsSessionAndQueue(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s1, addr := startBroker(t, Config{}, dir)
	c := connected(t, addr, "p", false)
	c.mustSubscribe(1, "dur/#", 1)
	c.disconnect()
	p := connected(t, addr, "pub", true)
	const n = 20
	for i := range n {
		p.pub("dur/"+string(rune('a'+i)), "m", 1, false, uint16(i+1))
	}
	shutdownServer(t, s1)

	_, addr = startBroker(t, Config{}, dir)
	c = dial(t, addr)
	if !c.connectOK(&packets.ConnectPacket{ClientID: "p", KeepAlive: 60}) {
		t.Fatal("no session present after restart")
	}
	for i := range n {
		c.ack(c.expectMsg("dur/"+string(rune('a'+i)), "m", 1, false))
	}
	c.ping()
	p = connected(t, addr, "pub", true) // the subscription was restored too
	p.pub("dur/live", "after", 1, false, 1)
	c.ack(c.expectMsg("dur/live", "after", 1, false))
}

// Retained messages survive a restart; a deleted one stays deleted.
func TestPersist_RestartKeepsRetained(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s1, addr := startBroker(t, Config{}, dir)
	p := connected(t, addr, "pub", true)
	p.pub("r/q1", "one", 1, true, 1)
	p.pub("r/q0", "zero", 0, true, 0)
	p.pub("r/q2", "two", 2, true, 2)
	p.pub("r/gone", "x", 1, true, 3)
	p.pub("r/gone", "", 1, true, 4)
	p.ping()
	shutdownServer(t, s1)

	s2, addr := startBroker(t, Config{}, dir)
	if st := s2.Stats(); st.Retained != 3 {
		t.Fatalf("%d retained messages after restart, want 3", st.Retained)
	}
	c := connected(t, addr, "c", true)
	c.mustSubscribe(1, "r/#", 2)
	got := map[string]gotMsg{}
	for range 3 {
		m := c.recvMsg()
		got[m.Topic] = m
	}
	for _, m := range got {
		c.ack(m)
	}
	for topic, want := range map[string]struct {
		payload string
		qos     byte
	}{"r/q1": {"one", 1}, "r/q0": {"zero", 0}, "r/q2": {"two", 2}} {
		if m := got[topic]; m.Payload != want.payload || m.QoS != want.qos || !m.Retain {
			t.Errorf("%s: %+v, want %q QoS %d retained", topic, m, want.payload, want.qos)
		}
	}
	c.ping()
}

func shutdownServer(t *testing.T, s *Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// The ids of incoming QoS 2 messages awaiting PUBREL survive a restart: the
// publisher's resent PUBLISH is answered without a second delivery
// (MQTT-4.3.3-2 across a restart).
func TestPersist_RestartKeepsInboundQoS2(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s1, addr := startBroker(t, Config{}, dir)
	w := connected(t, addr, "watch", false)
	w.mustSubscribe(1, "in", 2)
	p := connected(t, addr, "pub", false)
	pkt := &packets.PublishPacket{Topic: []byte("in"), Payload: []byte("once"), QoS: 2, PacketID: 9}
	p.send(pkt)
	expect[*packets.PubrecPacket](p)
	w.ack(w.expectMsg("in", "once", 2, false))
	w.ping() // the PUBCOMP is handled
	shutdownServer(t, s1)

	_, addr = startBroker(t, Config{}, dir)
	w = dial(t, addr)
	w.connectOK(&packets.ConnectPacket{ClientID: "watch", KeepAlive: 60})
	p = dial(t, addr)
	p.connectOK(&packets.ConnectPacket{ClientID: "pub", KeepAlive: 60})
	pkt.Dup = true
	p.send(pkt)
	expect[*packets.PubrecPacket](p)
	p.send(&packets.PubrelPacket{PacketID: 9})
	expect[*packets.PubcompPacket](p)
	w.ping() // not delivered again
}

// A QoS 2 delivery the subscriber had received and PUBREC'd before a
// restart must continue with PUBREL and its original id afterwards, never
// with a new PUBLISH (MQTT-4.3.3-1, 4.4.0-1).
func TestPersist_RestartKeepsOutboundQoS2State(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s1, addr := startBroker(t, Config{}, dir)
	c := connected(t, addr, "sub", false)
	c.mustSubscribe(1, "out", 2)
	p := connected(t, addr, "pub", true)
	p.pub("out", "x", 2, false, 1)
	m := c.expectMsg("out", "x", 2, false)
	c.send(&packets.PubrecPacket{PacketID: m.PID})
	expect[*packets.PubrelPacket](c)
	c.ping()
	shutdownServer(t, s1)

	_, addr = startBroker(t, Config{}, dir)
	c = dial(t, addr)
	c.connectOK(&packets.ConnectPacket{ClientID: "sub", KeepAlive: 60})
	switch got := c.recv().(type) {
	case *packets.PubrelPacket:
		if got.PacketID != m.PID {
			t.Fatalf("PUBREL %d, want %d", got.PacketID, m.PID)
		}
	default:
		t.Fatalf("after restart got %T %+v, want PUBREL %d", got, got, m.PID)
	}
}
