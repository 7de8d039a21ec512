package gateway

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/broker/auth"
	"github.com/sngate/sngate/broker/brokertest"
	"github.com/sngate/sngate/mqttsn"
)

// rawPeer is a scripted MQTT-SN client, a forwarder or a misbehaving
// peer on a UDP socket of its own: it sends exactly what a test says, byte
// by byte if need be, and shows exactly what the gateway sends, lost
// packets included.
type rawPeer struct {
	tb   testing.TB
	conn *net.UDPConn
}

func dialRaw(tb testing.TB, addr string) *rawPeer {
	tb.Helper()
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	conn, err := net.DialUDP("udp", nil, ua)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return &rawPeer{tb: tb, conn: conn}
}

// write sends b as one datagram, well-formed or not. (No Helper: a fuzz
// target calls it, on its *testing.F.)
func (r *rawPeer) write(b []byte) {
	if _, err := r.conn.Write(b); err != nil {
		r.tb.Fatal(err)
	}
}

func (r *rawPeer) send(p mqttsn.Packet) {
	r.tb.Helper()
	b, err := mqttsn.Marshal(p)
	if err != nil {
		r.tb.Fatal(err)
	}
	r.write(b)
}

// forward sends p as the node's, encapsulated, as a forwarder does.
func (r *rawPeer) forward(node []byte, p mqttsn.Packet) {
	r.tb.Helper()
	r.send(&mqttsn.Encapsulated{NodeID: node, Message: p})
}

// recv reads and decodes the next datagram from the gateway.
func (r *rawPeer) recv() mqttsn.Packet {
	r.tb.Helper()
	buf := make([]byte, mqttsn.MaxMessageLen)
	_ = r.conn.SetReadDeadline(time.Now().Add(waitTime))
	n, err := r.conn.Read(buf)
	if err != nil {
		r.tb.Fatalf("nothing from the gateway: %v", err)
	}
	p, err := mqttsn.Decode(buf[:n])
	if err != nil {
		r.tb.Fatalf("undecodable datagram from the gateway % X: %v", buf[:n], err)
	}
	return p
}

// recvFor reads the next datagram, which must be encapsulated for node,
// and returns the inner message.
func (r *rawPeer) recvFor(node []byte) mqttsn.Packet {
	r.tb.Helper()
	p := r.recv()
	e, ok := p.(*mqttsn.Encapsulated)
	if !ok {
		r.tb.Fatalf("got %T %+v, want it encapsulated for node % X", p, p, node)
	}
	if !bytes.Equal(e.NodeID, node) || e.Radius != 0 {
		r.tb.Fatalf("encapsulated for node % X radius %d, want node % X radius 0", e.NodeID, e.Radius, node)
	}
	return e.Message
}

func expectSN[T mqttsn.Packet](r *rawPeer) T {
	r.tb.Helper()
	p := r.recv()
	v, ok := p.(T)
	if !ok {
		var want T
		r.tb.Fatalf("got %T %+v, want %T", p, p, want)
	}
	return v
}

func (r *rawPeer) connect(id string, keepAlive uint16) {
	r.tb.Helper()
	r.send(&mqttsn.Connect{ClientID: id, CleanSession: true, KeepAlive: keepAlive})
	if ack := expectSN[*mqttsn.Connack](r); ack.ReturnCode != mqttsn.Accepted {
		r.tb.Fatalf("CONNACK %v", ack.ReturnCode)
	}
}

func publishFromBroker(t *testing.T, b *broker.Server, topic, payload string, qos byte) {
	t.Helper()
	pub, _, err := b.Connect(broker.LocalConfig{ClientID: "app-" + topic + payload, CleanSession: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Disconnect(false)
	if err := pub.Publish(bg(), broker.Message{Topic: topic, Payload: []byte(payload), QoS: qos}); err != nil {
		t.Fatal(err)
	}
}

func TestDownstreamQoS2WithLostPacketsIsExactlyOnce(t *testing.T) {
	_, b, addr := startGateway(t, Config{})
	r := dialRaw(t, addr)
	r.connect("q2", 60)
	r.send(&mqttsn.Subscribe{QoS: 2, MsgID: 1, TopicName: "x/y"})
	sub := expectSN[*mqttsn.Suback](r)
	if sub.ReturnCode != mqttsn.Accepted || sub.QoS != 2 || sub.TopicID == 0 {
		t.Fatalf("SUBACK %+v", sub)
	}
	publishFromBroker(t, b, "x/y", "once", 2)

	first := expectSN[*mqttsn.Publish](r) // "lost": not answered
	again := expectSN[*mqttsn.Publish](r) // resent after Tretry
	if first.DUP || !again.DUP || again.MsgID != first.MsgID || again.TopicID != sub.TopicID || string(again.Data) != "once" {
		t.Fatalf("PUBLISH %+v then %+v", first, again)
	}
	r.send(&mqttsn.Pubrec{MsgID: first.MsgID})
	rel := expectSN[*mqttsn.Pubrel](r) // lost
	rel2 := expectSN[*mqttsn.Pubrel](r)
	if rel.MsgID != first.MsgID || rel2.MsgID != first.MsgID {
		t.Fatalf("PUBREL %+v, %+v", rel, rel2)
	}
	r.send(&mqttsn.Pubcomp{MsgID: first.MsgID})
	r.send(&mqttsn.Pingreq{})
	if p := r.recv(); p.Type() != mqttsn.TypePingresp {
		t.Fatalf("after PUBCOMP: %T %+v, want only PINGRESP", p, p)
	}
}

func TestUpstreamQoS2ResentPublishIsDeliveredOnce(t *testing.T) {
	_, b, addr := startGateway(t, Config{})
	col := brokerSubscriber(t, b, "#")
	r := dialRaw(t, addr)
	r.connect("up2", 60)
	r.send(&mqttsn.Register{MsgID: 1, TopicName: "up/q2"})
	reg := expectSN[*mqttsn.Regack](r)
	pub := &mqttsn.Publish{QoS: 2, TopicID: reg.TopicID, MsgID: 7, Data: []byte("one")}
	r.send(pub)
	expectSN[*mqttsn.Pubrec](r)
	pub.DUP = true
	r.send(pub) // our PUBREC "was lost"
	expectSN[*mqttsn.Pubrec](r)
	r.send(&mqttsn.Pubrel{MsgID: 7})
	expectSN[*mqttsn.Pubcomp](r)
	col.wait(t, 1)
	time.Sleep(50 * time.Millisecond)
	col.mu.Lock()
	defer col.mu.Unlock()
	if len(col.got) != 1 {
		t.Fatalf("broker got %q, want one message", col.got)
	}
}

func TestSilentClientIsLostAfterRetriesAndItsWillPublished(t *testing.T) {
	g, b, addr := startGateway(t, Config{MaxRetries: 2})
	col := brokerSubscriber(t, b, "status/#")
	r := dialRaw(t, addr)
	r.send(&mqttsn.Connect{ClientID: "mute", CleanSession: true, KeepAlive: 600, Will: true})
	expectSN[*mqttsn.WillTopicReq](r)
	r.send(&mqttsn.WillTopic{Topic: "status/mute"})
	expectSN[*mqttsn.WillMsgReq](r)
	r.send(&mqttsn.WillMsg{Message: []byte("gone")})
	expectSN[*mqttsn.Connack](r)
	r.send(&mqttsn.Subscribe{QoS: 1, MsgID: 1, TopicName: "cmd"})
	expectSN[*mqttsn.Suback](r)
	publishFromBroker(t, b, "cmd", "go", 1)
	for range 3 { // the first try and two resends, none answered
		expectSN[*mqttsn.Publish](r)
	}
	if got := col.wait(t, 1); got[0] != "status/mute gone" {
		t.Fatalf("got %q", got)
	}
	if g.Stats().ClientsLost != 1 {
		t.Errorf("stats %+v", g.Stats())
	}
}

func TestOversleepingClientIsLost(t *testing.T) {
	_, b, addr := startGateway(t, Config{})
	col := brokerSubscriber(t, b, "status/#")
	c := snClient(t, addr, mqttsnWill("s7", "status/s7"))
	if err := c.Connect(bg()); err != nil {
		t.Fatal(err)
	}
	if err := c.Sleep(bg(), time.Second); err != nil {
		t.Fatal(err)
	}
	// It never wakes: lost after the sleep time and its tolerance.
	if got := col.wait(t, 1); got[0] != "status/s7 lost" {
		t.Fatalf("got %q", got)
	}
}

func mqttsnWill(id, topic string) mqttsn.ClientConfig {
	return mqttsn.ClientConfig{ClientID: id, CleanSession: true, KeepAlive: time.Minute,
		Will: &mqttsn.Will{Topic: topic, Message: []byte("lost")}}
}

func TestClientTakesItsSessionOverFromANewAddress(t *testing.T) {
	_, b, addr := startGateway(t, Config{})
	old := dialRaw(t, addr)
	old.connect("roamer", 60)
	old.send(&mqttsn.Subscribe{MsgID: 1, TopicName: "r"})
	expectSN[*mqttsn.Suback](old)

	moved := dialRaw(t, addr) // another source port: a rebooted or roaming device
	moved.connect("roamer", 60)
	moved.send(&mqttsn.Subscribe{MsgID: 1, TopicName: "r"})
	sub := expectSN[*mqttsn.Suback](moved)
	publishFromBroker(t, b, "r", "here", 0)
	if p := expectSN[*mqttsn.Publish](moved); string(p.Data) != "here" || p.TopicID != sub.TopicID {
		t.Fatalf("PUBLISH %+v", p)
	}
	// The old address is no client any more.
	old.send(&mqttsn.Pingreq{})
	if p := old.recv(); p.Type() != mqttsn.TypeDisconnect {
		t.Fatalf("old address got %T, want DISCONNECT", p)
	}
}

func TestUnknownTopicIDGetsPubackInvalid(t *testing.T) {
	_, _, addr := startGateway(t, Config{})
	r := dialRaw(t, addr)
	r.connect("u", 60)
	r.send(&mqttsn.Publish{QoS: 1, TopicID: 42, MsgID: 3, Data: []byte("?")})
	ack := expectSN[*mqttsn.Puback](r)
	if ack.ReturnCode != mqttsn.RejectedInvalidID || ack.TopicID != 42 || ack.MsgID != 3 {
		t.Fatalf("PUBACK %+v", ack)
	}
	r.send(&mqttsn.Publish{QoS: 1, TopicIDType: mqttsn.TopicPredefined, TopicID: 9, MsgID: 4})
	if ack := expectSN[*mqttsn.Puback](r); ack.ReturnCode != mqttsn.RejectedInvalidID {
		t.Fatalf("unknown predefined id: PUBACK %+v", ack)
	}
}

func TestClientRejectingAnIDGetsItRegisteredAgain(t *testing.T) {
	_, b, addr := startGateway(t, Config{})
	r := dialRaw(t, addr)
	r.connect("forgetful", 60)
	r.send(&mqttsn.Subscribe{QoS: 1, MsgID: 1, TopicName: "w/#"})
	expectSN[*mqttsn.Suback](r)
	publishFromBroker(t, b, "w/1", "a", 1)
	reg := expectSN[*mqttsn.Register](r)
	r.send(&mqttsn.Regack{TopicID: reg.TopicID, MsgID: reg.MsgID})
	pub := expectSN[*mqttsn.Publish](r)
	// The client lost the id (it rebooted): PUBACK "invalid topic id".
	r.send(&mqttsn.Puback{TopicID: pub.TopicID, MsgID: pub.MsgID, ReturnCode: mqttsn.RejectedInvalidID})
	reg2 := expectSN[*mqttsn.Register](r)
	if reg2.TopicName != "w/1" {
		t.Fatalf("REGISTER %+v", reg2)
	}
	r.send(&mqttsn.Regack{TopicID: reg2.TopicID, MsgID: reg2.MsgID})
	if p := expectSN[*mqttsn.Publish](r); string(p.Data) != "a" || p.TopicID != reg2.TopicID {
		t.Fatalf("resent PUBLISH %+v", p)
	}
}

func TestPredefinedTopicsPerClient(t *testing.T) {
	_, b, addr := startGateway(t, Config{PredefinedTopics: []PredefinedTopic{
		{ID: 1, Topic: "all/one"}, {ClientID: "special", ID: 1, Topic: "special/one"},
	}})
	col := brokerSubscriber(t, b, "#")
	for _, id := range []string{"plain", "special"} {
		r := dialRaw(t, addr)
		r.connect(id, 60)
		r.send(&mqttsn.Publish{QoS: 1, TopicIDType: mqttsn.TopicPredefined, TopicID: 1, MsgID: 1, Data: []byte(id)})
		expectSN[*mqttsn.Puback](r)
	}
	got := col.wait(t, 2)
	if got[0] != "all/one plain" || got[1] != "special/one special" {
		t.Fatalf("got %q", got)
	}
}

func TestUnknownPeerIsToldToConnect(t *testing.T) {
	g, _, addr := startGateway(t, Config{})
	r := dialRaw(t, addr)
	r.send(&mqttsn.Publish{QoS: 1, TopicID: 1, MsgID: 1})
	expectSN[*mqttsn.Disconnect](r)
	if g.Stats().Unexpected == 0 {
		t.Error("not counted")
	}
}

func TestMaxClientsCongestion(t *testing.T) {
	_, _, addr := startGateway(t, Config{MaxClients: 1})
	dialRaw(t, addr).connect("first", 60)
	r := dialRaw(t, addr)
	r.send(&mqttsn.Connect{ClientID: "second", CleanSession: true, KeepAlive: 60})
	if ack := expectSN[*mqttsn.Connack](r); ack.ReturnCode != mqttsn.RejectedCongestion {
		t.Fatalf("CONNACK %v, want congestion", ack.ReturnCode)
	}
}

func TestSearchGWAnsweredWithGWInfo(t *testing.T) {
	_, _, addr := startGateway(t, Config{GatewayID: 9})
	r := dialRaw(t, addr)
	r.send(&mqttsn.SearchGW{Radius: 1})
	if gi := expectSN[*mqttsn.GWInfo](r); gi.GatewayID != 9 {
		t.Fatalf("GWINFO %+v", gi)
	}
}

func TestIPv6Client(t *testing.T) {
	if pc, err := net.ListenPacket("udp", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	} else {
		pc.Close()
	}
	_, b, addr := startGateway(t, Config{Listen: "[::1]:0"})
	col := brokerSubscriber(t, b, "#")
	c := snClient(t, addr, mqttsn.ClientConfig{ClientID: "v6", CleanSession: true})
	if err := c.Connect(bg()); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(bg(), mqttsn.TopicName("six/one"), []byte("::1"), 1, false); err != nil {
		t.Fatal(err)
	}
	if got := col.wait(t, 1); got[0] != "six/one ::1" {
		t.Fatalf("got %q", got)
	}
}

func TestWillUpdatesChangeThePublishedWill(t *testing.T) {
	_, b, addr := startGateway(t, Config{})
	col := brokerSubscriber(t, b, "status/#")
	c := snClient(t, addr, mqttsn.ClientConfig{ClientID: "upd", CleanSession: true, KeepAlive: time.Second,
		Will: &mqttsn.Will{Topic: "status/old", Message: []byte("old")}})
	if err := c.Connect(bg()); err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateWillTopic(bg(), "status/new", 1, false); err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateWillMessage(bg(), []byte("new")); err != nil {
		t.Fatal(err)
	}
	c.Close() // lost: the updated will goes out
	if got := col.wait(t, 1); got[0] != "status/new new" {
		t.Fatalf("will %q, want the updated one", got)
	}
}

func TestEmptyWillTopicUpdateDeletesTheWill(t *testing.T) {
	g, b, addr := startGateway(t, Config{})
	col := brokerSubscriber(t, b, "#")
	c := snClient(t, addr, mqttsn.ClientConfig{ClientID: "nowill", CleanSession: true, KeepAlive: time.Second,
		Will: &mqttsn.Will{Topic: "status/x", Message: []byte("x")}})
	if err := c.Connect(bg()); err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateWillTopic(bg(), "", 0, false); err != nil {
		t.Fatal(err)
	}
	c.Close()
	// Once the gateway has declared the client lost (a will would have gone
	// out then), a marker must be the first thing the subscriber sees.
	deadline := time.Now().Add(waitTime)
	for g.Stats().ClientsLost == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the client was never declared lost")
		}
		time.Sleep(20 * time.Millisecond)
	}
	publishFromBroker(t, b, "marker", "m", 0)
	if got := col.wait(t, 1); got[0] != "marker m" {
		t.Fatalf("got %q: the deleted will was published", got)
	}
}

func TestAdvertiseIsBroadcastEveryInterval(t *testing.T) {
	listener, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close()
	startGateway(t, Config{GatewayID: 4, AdvertiseInterval: time.Second, Broadcast: listener.LocalAddr().String()})
	buf := make([]byte, 64)
	for range 2 { // at start, then after one interval
		_ = listener.SetReadDeadline(time.Now().Add(waitTime))
		n, _, err := listener.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		p, err := mqttsn.Decode(buf[:n])
		if adv, ok := p.(*mqttsn.Advertise); err != nil || !ok || adv.GatewayID != 4 || adv.Duration != 1 {
			t.Fatalf("got %T %+v, %v; want ADVERTISE from gateway 4 every 1 s", p, p, err)
		}
	}
}

// TestClientIDPrefixAndACL: a client's broker session is its id with the
// configured prefix, and the broker's ACL applies to it like to any client.
func TestClientIDPrefixAndACL(t *testing.T) {
	b, _ := brokertest.NewServer(t, broker.Config{Auth: auth.Config{ACL: []auth.Rule{
		{Pattern: true, Topic: "dev/%c", Access: "write"},
		{Anonymous: true, Topic: "#", Access: "read"},
	}}}, broker.Options{})
	_, addr := serveGateway(t, Config{ClientIDPrefix: "sn-"}, b, nil)
	col := brokerSubscriber(t, b, "dev/#")
	c := snClient(t, addr, mqttsn.ClientConfig{ClientID: "s1", CleanSession: true})
	if err := c.Connect(bg()); err != nil {
		t.Fatal(err)
	}
	denied := b.Stats().ACLDenied
	c.Publish(bg(), mqttsn.TopicName("dev/s1"), []byte("no: the session is sn-s1"), 1, false)
	c.Publish(bg(), mqttsn.TopicName("dev/sn-s1"), []byte("yes"), 1, false)
	if got := col.wait(t, 1); got[0] != "dev/sn-s1 yes" {
		t.Fatalf("got %q", got)
	}
	if b.Stats().ACLDenied != denied+1 {
		t.Errorf("denied publish not counted")
	}
}

func TestUnsubscribeAndPredefinedSubscribe(t *testing.T) {
	_, b, addr := startGateway(t, Config{PredefinedTopics: []PredefinedTopic{{ID: 3, Topic: "cfg/rate"}}})
	col := newCollector()
	c := snClient(t, addr, mqttsn.ClientConfig{ClientID: "u", CleanSession: true,
		PredefinedTopics: map[uint16]string{3: "cfg/rate"},
		OnMessage:        func(m mqttsn.Message) { col.add(m.Topic + " " + string(m.Payload)) }})
	if err := c.Connect(bg()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Subscribe(bg(), mqttsn.PredefinedTopic(3), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Subscribe(bg(), mqttsn.TopicName("news"), 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Unsubscribe(bg(), mqttsn.TopicName("news")); err != nil {
		t.Fatal(err)
	}
	publishFromBroker(t, b, "news", "not for you", 0)
	publishFromBroker(t, b, "cfg/rate", "60", 1)
	if got := col.wait(t, 1); got[0] != "cfg/rate 60" {
		t.Fatalf("got %q", got)
	}
	time.Sleep(50 * time.Millisecond)
	col.mu.Lock()
	defer col.mu.Unlock()
	if len(col.got) != 1 {
		t.Fatalf("got %q after UNSUBSCRIBE", col.got)
	}
}

func TestSleepBufferIsBoundedAndDropsCounted(t *testing.T) {
	g, b, addr := startGateway(t, Config{MaxSleepBuffer: 2})
	col := newCollector()
	c := snClient(t, addr, mqttsn.ClientConfig{ClientID: "z", CleanSession: true,
		OnMessage: func(m mqttsn.Message) { col.add(string(m.Payload)) }})
	if err := c.Connect(bg()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Subscribe(bg(), mqttsn.ShortTopic("zz"), 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Sleep(bg(), time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"1", "2", "3", "4"} {
		publishFromBroker(t, b, "zz", p, 0)
	}
	if err := c.Wake(bg()); err != nil {
		t.Fatal(err)
	}
	if got := col.wait(t, 2); got[0] != "1" || got[1] != "2" || len(got) != 2 {
		t.Fatalf("after waking: %q", got)
	}
	if d := g.Stats().DroppedSleepBuffer; d != 2 {
		t.Errorf("DroppedSleepBuffer = %d, want 2", d)
	}
}
