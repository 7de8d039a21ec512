package mqttsn_test

import (
	"errors"
	"testing"

	"github.com/sngate/sngate/mqttsn"
	"github.com/sngate/sngate/mqttsn/mqttsntest"
)

func TestSubscribeByNameThenReceive(t *testing.T) {
	gw := mqttsntest.NewGateway(t)
	in := newInbox()
	c := newClient(t, gw, mqttsn.ClientConfig{OnMessage: in.add})
	connect(t, gw, c)

	var granted mqttsn.QoS
	done := async(func() (err error) { granted, err = c.Subscribe(ctx(), mqttsn.TopicName("s/t"), 2); return err })
	sub := mqttsntest.Expect[*mqttsn.Subscribe](gw)
	if sub.TopicIDType != mqttsn.TopicNormal || sub.TopicName != "s/t" || sub.QoS != 2 || sub.MsgID == 0 {
		t.Fatalf("SUBSCRIBE = %+v", sub)
	}
	gw.Reply(&mqttsn.Suback{QoS: 1, TopicID: 12, MsgID: sub.MsgID})
	mustSucceed(t, done)
	if granted != 1 {
		t.Errorf("granted QoS %d, want 1", granted)
	}

	gw.Reply(&mqttsn.Publish{QoS: 1, TopicID: 12, MsgID: 77, Data: []byte("21.5")})
	ack := mqttsntest.Expect[*mqttsn.Puback](gw)
	if *ack != (mqttsn.Puback{TopicID: 12, MsgID: 77, ReturnCode: mqttsn.Accepted}) {
		t.Errorf("PUBACK = %+v", ack)
	}
	msgs := in.wait(t, 1)
	if m := msgs[0]; m.Topic != "s/t" || string(m.Payload) != "21.5" || m.QoS != 1 {
		t.Errorf("message = %+v", m)
	}
}

func TestSubscribeRetransmitsWithDUP(t *testing.T) {
	gw := mqttsntest.NewGateway(t)
	c := newClient(t, gw, mqttsn.ClientConfig{})
	connect(t, gw, c)
	done := async(func() error { _, err := c.Subscribe(ctx(), mqttsn.TopicName("x/#"), 0); return err })
	s1 := mqttsntest.Expect[*mqttsn.Subscribe](gw)
	s2 := mqttsntest.Expect[*mqttsn.Subscribe](gw)
	if s1.DUP || !s2.DUP || s1.MsgID != s2.MsgID {
		t.Fatalf("SUBSCRIBE %+v then %+v", s1, s2)
	}
	gw.Reply(&mqttsn.Suback{MsgID: s2.MsgID})
	mustSucceed(t, done)
}

func TestWildcardSubscriptionGatewayRegistersTopics(t *testing.T) {
	gw := mqttsntest.NewGateway(t)
	in := newInbox()
	c := newClient(t, gw, mqttsn.ClientConfig{OnMessage: in.add})
	connect(t, gw, c)
	done := async(func() error { _, err := c.Subscribe(ctx(), mqttsn.TopicName("s/#"), 1); return err })
	sub := mqttsntest.Expect[*mqttsn.Subscribe](gw)
	gw.Reply(&mqttsn.Suback{QoS: 1, TopicID: 0, MsgID: sub.MsgID})
	mustSucceed(t, done)

	gw.Reply(&mqttsn.Register{TopicID: 40, MsgID: 5, TopicName: "s/kitchen"})
	ra := mqttsntest.Expect[*mqttsn.Regack](gw)
	if *ra != (mqttsn.Regack{TopicID: 40, MsgID: 5}) {
		t.Fatalf("REGACK = %+v", ra)
	}
	gw.Reply(&mqttsn.Publish{TopicID: 40, Data: []byte("on")})
	if m := in.wait(t, 1)[0]; m.Topic != "s/kitchen" || string(m.Payload) != "on" || m.QoS != 0 {
		t.Errorf("message = %+v", m)
	}
}

func TestSubscribePredefinedAndShort(t *testing.T) {
	gw := mqttsntest.NewGateway(t)
	in := newInbox()
	c := newClient(t, gw, mqttsn.ClientConfig{OnMessage: in.add, PredefinedTopics: map[uint16]string{3: "cfg/interval"}})
	connect(t, gw, c)

	done := async(func() error { _, err := c.Subscribe(ctx(), mqttsn.PredefinedTopic(3), 1); return err })
	sub := mqttsntest.Expect[*mqttsn.Subscribe](gw)
	if sub.TopicIDType != mqttsn.TopicPredefined || sub.TopicID != 3 {
		t.Fatalf("SUBSCRIBE = %+v", sub)
	}
	gw.Reply(&mqttsn.Suback{QoS: 1, TopicID: 3, MsgID: sub.MsgID})
	mustSucceed(t, done)

	done = async(func() error { _, err := c.Subscribe(ctx(), mqttsn.ShortTopic("ab"), 0); return err })
	sub = mqttsntest.Expect[*mqttsn.Subscribe](gw)
	if sub.TopicIDType != mqttsn.TopicShort || mqttsn.ShortTopicName(sub.TopicID) != "ab" {
		t.Fatalf("SUBSCRIBE = %+v", sub)
	}
	gw.Reply(&mqttsn.Suback{MsgID: sub.MsgID})
	mustSucceed(t, done)

	gw.Reply(&mqttsn.Publish{TopicIDType: mqttsn.TopicPredefined, TopicID: 3, Data: []byte("60")})
	id, _ := mqttsn.ShortTopicID("ab")
	gw.Reply(&mqttsn.Publish{TopicIDType: mqttsn.TopicShort, TopicID: id, Data: []byte("1")})
	msgs := in.wait(t, 2)
	if msgs[0].Topic != "cfg/interval" || msgs[1].Topic != "ab" {
		t.Errorf("topics %q, %q", msgs[0].Topic, msgs[1].Topic)
	}
}

func TestSubscribeRejected(t *testing.T) {
	gw := mqttsntest.NewGateway(t)
	c := newClient(t, gw, mqttsn.ClientConfig{})
	connect(t, gw, c)
	done := async(func() error { _, err := c.Subscribe(ctx(), mqttsn.PredefinedTopic(99), 0); return err })
	sub := mqttsntest.Expect[*mqttsn.Subscribe](gw)
	gw.Reply(&mqttsn.Suback{MsgID: sub.MsgID, ReturnCode: mqttsn.RejectedInvalidID})
	var rej *mqttsn.RejectedError
	if err := wait(t, done); !errors.As(err, &rej) || rej.ReturnCode != mqttsn.RejectedInvalidID {
		t.Fatalf("Subscribe = %v", err)
	}
}

func TestUnsubscribe(t *testing.T) {
	gw := mqttsntest.NewGateway(t)
	c := newClient(t, gw, mqttsn.ClientConfig{})
	connect(t, gw, c)
	done := async(func() error { return c.Unsubscribe(ctx(), mqttsn.TopicName("s/#")) })
	u := mqttsntest.Expect[*mqttsn.Unsubscribe](gw)
	if u.TopicIDType != mqttsn.TopicNormal || u.TopicName != "s/#" || u.MsgID == 0 {
		t.Fatalf("UNSUBSCRIBE = %+v", u)
	}
	gw.Reply(&mqttsn.Unsuback{MsgID: u.MsgID})
	mustSucceed(t, done)

	done = async(func() error { return c.Unsubscribe(ctx(), mqttsn.PredefinedTopic(4)) })
	u = mqttsntest.Expect[*mqttsn.Unsubscribe](gw)
	if u.TopicIDType != mqttsn.TopicPredefined || u.TopicID != 4 {
		t.Fatalf("UNSUBSCRIBE = %+v", u)
	}
	gw.Reply(&mqttsn.Unsuback{MsgID: u.MsgID})
	mustSucceed(t, done)

	done = async(func() error { return c.Unsubscribe(ctx(), mqttsn.ShortTopic("xy")) })
	u = mqttsntest.Expect[*mqttsn.Unsubscribe](gw)
	if u.TopicIDType != mqttsn.TopicShort || mqttsn.ShortTopicName(u.TopicID) != "xy" {
		t.Fatalf("UNSUBSCRIBE = %+v", u)
	}
	gw.Reply(&mqttsn.Unsuback{MsgID: u.MsgID})
	mustSucceed(t, done)
}

func TestReceiveUnknownTopicIDIsRefused(t *testing.T) {
	gw := mqttsntest.NewGateway(t)
	in := newInbox()
	c := newClient(t, gw, mqttsn.ClientConfig{OnMessage: in.add})
	connect(t, gw, c)
	for _, qos := range []mqttsn.QoS{0, 1, 2} {
		gw.Reply(&mqttsn.Publish{QoS: qos, TopicID: 55, MsgID: 9, Data: []byte("?")})
		ack := mqttsntest.Expect[*mqttsn.Puback](gw)
		if *ack != (mqttsn.Puback{TopicID: 55, MsgID: 9, ReturnCode: mqttsn.RejectedInvalidID}) {
			t.Errorf("QoS %d: PUBACK = %+v", qos, ack)
		}
	}
	if n := len(in.all()); n != 0 {
		t.Errorf("%d messages on an unknown id were delivered", n)
	}
}

func TestReceiveQoS2DeliversOnce(t *testing.T) {
	gw := mqttsntest.NewGateway(t)
	in := newInbox()
	c := newClient(t, gw, mqttsn.ClientConfig{OnMessage: in.add})
	connect(t, gw, c)
	id, _ := mqttsn.ShortTopicID("q2")
	gw.Reply(&mqttsn.Publish{QoS: 2, TopicIDType: mqttsn.TopicShort, TopicID: id, MsgID: 300, Data: []byte("once")})
	if rec := mqttsntest.Expect[*mqttsn.Pubrec](gw); rec.MsgID != 300 {
		t.Fatalf("PUBREC = %+v", rec)
	}
	// Our PUBREC was "lost": the gateway resends the PUBLISH with DUP.
	gw.Reply(&mqttsn.Publish{DUP: true, QoS: 2, TopicIDType: mqttsn.TopicShort, TopicID: id, MsgID: 300, Data: []byte("once")})
	if rec := mqttsntest.Expect[*mqttsn.Pubrec](gw); rec.MsgID != 300 {
		t.Fatalf("PUBREC = %+v", rec)
	}
	gw.Reply(&mqttsn.Pubrel{MsgID: 300})
	if comp := mqttsntest.Expect[*mqttsn.Pubcomp](gw); comp.MsgID != 300 {
		t.Fatalf("PUBCOMP = %+v", comp)
	}
	if msgs := in.wait(t, 1); len(msgs) != 1 || string(msgs[0].Payload) != "once" {
		t.Fatalf("delivered %+v, want one message", msgs)
	}
	// After PUBCOMP the id is new again.
	gw.Reply(&mqttsn.Publish{QoS: 2, TopicIDType: mqttsn.TopicShort, TopicID: id, MsgID: 300, Data: []byte("again")})
	mqttsntest.Expect[*mqttsn.Pubrec](gw)
	in.wait(t, 2)
}

func TestMalformedDatagramsFromGatewayAreSkipped(t *testing.T) {
	gw := mqttsntest.NewGateway(t)
	in := newInbox()
	c := newClient(t, gw, mqttsn.ClientConfig{OnMessage: in.add})
	connect(t, gw, c)
	for _, raw := range [][]byte{{}, {0x00}, {0x05, 0x0C, 0x20}, {0x01, 0x00}, {0x03, 0x11, 0x00}, {0x02, 0x0C}} {
		gw.ReplyRaw(raw)
	}
	gw.Reply(&mqttsn.Publish{TopicIDType: mqttsn.TopicShort, TopicID: 0x6162, Data: []byte("ok")})
	if m := in.wait(t, 1)[0]; string(m.Payload) != "ok" {
		t.Fatalf("message = %+v", m)
	}
	if !c.Connected() {
		t.Error("malformed datagrams ended the session")
	}
}
