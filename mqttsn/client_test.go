package mqttsn_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sngate/sngate/mqttsn"
	"github.com/sngate/sngate/mqttsn/mqttsntest"
)

// testRetry is the Tretry of test clients: short, so that retransmission is
// exercised quickly. It is not a timing assertion: the fake gateway waits up
// to mqttsntest.DefaultTimeout for each message.
const testRetry = 150 * time.Millisecond

// inbox collects the messages a client delivers.
type inbox struct {
	mu   sync.Mutex
	msgs []mqttsn.Message
	got  chan struct{}
}

func newInbox() *inbox { return &inbox{got: make(chan struct{}, 100)} }

func (in *inbox) add(m mqttsn.Message) {
	in.mu.Lock()
	m.Payload = append([]byte(nil), m.Payload...)
	in.msgs = append(in.msgs, m)
	in.mu.Unlock()
	in.got <- struct{}{}
}

func (in *inbox) all() []mqttsn.Message {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]mqttsn.Message(nil), in.msgs...)
}

// wait waits for the n-th message.
func (in *inbox) wait(t *testing.T, n int) []mqttsn.Message {
	t.Helper()
	deadline := time.After(mqttsntest.DefaultTimeout)
	for len(in.all()) < n {
		select {
		case <-in.got:
		case <-deadline:
			t.Fatalf("got %d messages, want %d", len(in.all()), n)
		}
	}
	return in.all()
}

func newClient(t *testing.T, gw *mqttsntest.Gateway, cfg mqttsn.ClientConfig) *mqttsn.Client {
	t.Helper()
	if cfg.ClientID == "" {
		cfg.ClientID = "sensor1"
	}
	if cfg.RetryInterval == 0 {
		cfg.RetryInterval = testRetry
	}
	c, err := mqttsn.Dial(context.Background(), gw.Addr(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// async runs f on its own goroutine and returns its result channel.
func async(f func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	return ch
}

func wait(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(2 * mqttsntest.DefaultTimeout):
		t.Fatal("call did not return")
		return nil
	}
}

func mustSucceed(t *testing.T, ch <-chan error) {
	t.Helper()
	if err := wait(t, ch); err != nil {
		t.Fatal(err)
	}
}

// connect runs a will-less connection against gw.
func connect(t *testing.T, gw *mqttsntest.Gateway, c *mqttsn.Client) {
	t.Helper()
	done := async(func() error { return c.Connect(context.Background()) })
	gw.AcceptConnect()
	mustSucceed(t, done)
}

func ctx() context.Context { return context.Background() }

func TestConnectCleanSession(t *testing.T) {
	gw := mqttsntest.NewGateway(t)
	c := newClient(t, gw, mqttsn.ClientConfig{ClientID: "abc", CleanSession: true, KeepAlive: 60 * time.Second})
	done := async(func() error { return c.Connect(ctx()) })
	got := gw.AcceptConnect()
	mustSucceed(t, done)
	want := &mqttsn.Connect{CleanSession: true, KeepAlive: 60, ClientID: "abc"}
	if *got != *want {
		t.Errorf("CONNECT = %+v, want %+v", got, want)
	}
	if !c.Connected() {
		t.Error("not connected after CONNACK")
	}
}

func TestConnectPersistentSessionWithWill(t *testing.T) {
	gw := mqttsntest.NewGateway(t)
	will := &mqttsn.Will{Topic: "status/abc", Message: []byte("gone"), QoS: 1, Retain: true}
	c := newClient(t, gw, mqttsn.ClientConfig{ClientID: "abc", Will: will})
	done := async(func() error { return c.Connect(ctx()) })

	conn := mqttsntest.Expect[*mqttsn.Connect](gw)
	if !conn.Will || conn.CleanSession {
		t.Errorf("CONNECT flags = %+v, want Will and no CleanSession", conn)
	}
	gw.Reply(&mqttsn.WillTopicReq{})
	wt := mqttsntest.Expect[*mqttsn.WillTopic](gw)
	if wt.Topic != "status/abc" || wt.QoS != 1 || !wt.Retain {
		t.Errorf("WILLTOPIC = %+v", wt)
	}
	gw.Reply(&mqttsn.WillMsgReq{})
	wm := mqttsntest.Expect[*mqttsn.WillMsg](gw)
	if string(wm.Message) != "gone" {
		t.Errorf("WILLMSG = %q", wm.Message)
	}
	gw.Reply(&mqttsn.Connack{ReturnCode: mqttsn.Accepted})
	mustSucceed(t, done)
}

func TestConnectWillStepsAreRetransmitted(t *testing.T) {
	gw := mqttsntest.NewGateway(t)
	c := newClient(t, gw, mqttsn.ClientConfig{Will: &mqttsn.Will{Topic: "w", Message: []byte("x")}})
	done := async(func() error { return c.Connect(ctx()) })
	mqttsntest.Expect[*mqttsn.Connect](gw) // lost
	mqttsntest.Expect[*mqttsn.Connect](gw) // resent after Tretry
	gw.Reply(&mqttsn.WillTopicReq{})
	mqttsntest.Expect[*mqttsn.WillTopic](gw) // lost
	mqttsntest.Expect[*mqttsn.WillTopic](gw)
	gw.Reply(&mqttsn.WillMsgReq{})
	mqttsntest.Expect[*mqttsn.WillMsg](gw)
	gw.Reply(&mqttsn.Connack{})
	mustSucceed(t, done)
}

func TestConnectRejected(t *testing.T) {
	gw := mqttsntest.NewGateway(t)
	c := newClient(t, gw, mqttsn.ClientConfig{})
	done := async(func() error { return c.Connect(ctx()) })
	mqttsntest.Expect[*mqttsn.Connect](gw)
	gw.Reply(&mqttsn.Connack{ReturnCode: mqttsn.RejectedCongestion})
	var rej *mqttsn.RejectedError
	if err := wait(t, done); !errors.As(err, &rej) || rej.ReturnCode != mqttsn.RejectedCongestion {
		t.Fatalf("Connect = %v, want congestion rejection", err)
	}
	if c.Connected() {
		t.Error("connected after a rejected CONNECT")
	}
}

func TestConnectGivesUpAfterNretry(t *testing.T) {
	gw := mqttsntest.NewGateway(t)
	c := newClient(t, gw, mqttsn.ClientConfig{MaxRetries: 2})
	done := async(func() error { return c.Connect(ctx()) })
	for range 3 { // the first try and two resends
		mqttsntest.Expect[*mqttsn.Connect](gw)
	}
	if err := wait(t, done); !errors.Is(err, mqttsn.ErrNoAnswer) {
		t.Fatalf("Connect = %v, want ErrNoAnswer", err)
	}
	gw.ExpectNothing(3 * testRetry)
}

func TestPublishQoS1RegistersTopicFirst(t *testing.T) {
	gw := mqttsntest.NewGateway(t)
	c := newClient(t, gw, mqttsn.ClientConfig{})
	connect(t, gw, c)

	done := async(func() error { return c.Publish(ctx(), mqttsn.TopicName("a/b"), []byte("hi"), 1, false) })
	reg := mqttsntest.Expect[*mqttsn.Register](gw)
	if reg.TopicID != 0 || reg.TopicName != "a/b" || reg.MsgID == 0 {
		t.Fatalf("REGISTER = %+v", reg)
	}
	gw.Reply(&mqttsn.Regack{TopicID: 7, MsgID: reg.MsgID})
	pub := mqttsntest.Expect[*mqttsn.Publish](gw)
	if pub.TopicID != 7 || pub.TopicIDType != mqttsn.TopicNormal || pub.QoS != 1 || pub.MsgID == 0 || string(pub.Data) != "hi" || pub.DUP {
		t.Fatalf("PUBLISH = %+v", pub)
	}
	gw.Reply(&mqttsn.Puback{TopicID: 7, MsgID: pub.MsgID})
	mustSucceed(t, done)

	// The id is known now: no second REGISTER.
	done = async(func() error { return c.Publish(ctx(), mqttsn.TopicName("a/b"), []byte("2"), 0, true) })
	pub = mqttsntest.Expect[*mqttsn.Publish](gw)
	if pub.TopicID != 7 || pub.QoS != 0 || pub.MsgID != 0 || !pub.Retain {
		t.Fatalf("QoS 0 PUBLISH = %+v", pub)
	}
	mustSucceed(t, done)
}

func TestPublishRetransmitsWithDUPAndSameMsgID(t *testing.T) {
	gw := mqttsntest.NewGateway(t)
	lost := make(chan error, 1)
	c := newClient(t, gw, mqttsn.ClientConfig{MaxRetries: 2, OnConnectionLost: func(err error) { lost <- err }})
	connect(t, gw, c)

	done := async(func() error { return c.Publish(ctx(), mqttsn.PredefinedTopic(9), []byte("v"), 1, false) })
	first := mqttsntest.Expect[*mqttsn.Publish](gw)
	if first.DUP {
		t.Fatal("first PUBLISH has DUP set")
	}
	second := mqttsntest.Expect[*mqttsn.Publish](gw)
	if !second.DUP || second.MsgID != first.MsgID || second.TopicIDType != mqttsn.TopicPredefined || second.TopicID != 9 {
		t.Fatalf("resent PUBLISH = %+v, first %+v", second, first)
	}
	gw.Reply(&mqttsn.Puback{TopicID: 9, MsgID: first.MsgID})
	mustSucceed(t, done)

	// Nretry resends without an answer: the connection is lost.
	done = async(func() error { return c.Publish(ctx(), mqttsn.PredefinedTopic(9), []byte("v"), 1, false) })
	for range 3 {
		mqttsntest.Expect[*mqttsn.Publish](gw)
	}
	if err := wait(t, done); !errors.Is(err, mqttsn.ErrNoAnswer) {
		t.Fatalf("Publish = %v, want ErrNoAnswer", err)
	}
	if err := wait(t, lost); !errors.Is(err, mqttsn.ErrNoAnswer) {
		t.Fatalf("OnConnectionLost(%v)", err)
	}
	if err := c.Publish(ctx(), mqttsn.PredefinedTopic(9), nil, 1, false); !errors.Is(err, mqttsn.ErrConnectionLost) {
		t.Fatalf("Publish after loss = %v, want ErrConnectionLost", err)
	}
}

func TestPublishQoS2(t *testing.T) {
	gw := mqttsntest.NewGateway(t)
	c := newClient(t, gw, mqttsn.ClientConfig{})
	connect(t, gw, c)

	done := async(func() error { return c.Publish(ctx(), mqttsn.ShortTopic("ab"), []byte("x"), 2, false) })
	pub := mqttsntest.Expect[*mqttsn.Publish](gw)
	if pub.QoS != 2 || pub.TopicIDType != mqttsn.TopicShort || mqttsn.ShortTopicName(pub.TopicID) != "ab" {
		t.Fatalf("PUBLISH = %+v", pub)
	}
	gw.Reply(&mqttsn.Pubrec{MsgID: pub.MsgID})
	rel := mqttsntest.Expect[*mqttsn.Pubrel](gw) // lost
	rel2 := mqttsntest.Expect[*mqttsn.Pubrel](gw)
	if rel.MsgID != pub.MsgID || rel2.MsgID != pub.MsgID {
		t.Fatalf("PUBREL ids %d, %d, want %d", rel.MsgID, rel2.MsgID, pub.MsgID)
	}
	gw.Reply(&mqttsn.Pubcomp{MsgID: pub.MsgID})
	mustSucceed(t, done)
}

func TestPublishQoSMinus1NeedsNoConnection(t *testing.T) {
	gw := mqttsntest.NewGateway(t)
	c := newClient(t, gw, mqttsn.ClientConfig{})
	if err := c.Publish(ctx(), mqttsn.ShortTopic("ab"), []byte("1"), -1, false); err != nil {
		t.Fatal(err)
	}
	d, err := gw.Next(mqttsntest.DefaultTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{0x08, 0x0C, 0x62, 0x61, 0x62, 0x00, 0x00, 0x31}; !bytes.Equal(d.Raw, want) {
		t.Errorf("wire % X, want % X", d.Raw, want)
	}
	if err := c.Publish(ctx(), mqttsn.PredefinedTopic(5), []byte("z"), -1, false); err != nil {
		t.Fatal(err)
	}
	pub := mqttsntest.Expect[*mqttsn.Publish](gw)
	if pub.QoS != mqttsn.QoSMinus1 || pub.TopicIDType != mqttsn.TopicPredefined || pub.TopicID != 5 {
		t.Errorf("PUBLISH = %+v", pub)
	}
	if err := c.Publish(ctx(), mqttsn.TopicName("a/b"), nil, -1, false); err == nil {
		t.Error("QoS -1 on a topic name was accepted")
	}
	if err := c.Publish(ctx(), mqttsn.TopicName("a/b"), nil, 0, false); !errors.Is(err, mqttsn.ErrNotConnected) {
		t.Errorf("QoS 0 before Connect = %v, want ErrNotConnected", err)
	}
}

func TestPublishReregistersAfterInvalidTopicID(t *testing.T) {
	gw := mqttsntest.NewGateway(t)
	c := newClient(t, gw, mqttsn.ClientConfig{})
	connect(t, gw, c)
	done := async(func() error { return c.Publish(ctx(), mqttsn.TopicName("t"), []byte("1"), 1, false) })
	reg := mqttsntest.Expect[*mqttsn.Register](gw)
	gw.Reply(&mqttsn.Regack{TopicID: 3, MsgID: reg.MsgID})
	pub := mqttsntest.Expect[*mqttsn.Publish](gw)
	gw.Reply(&mqttsn.Puback{TopicID: 3, MsgID: pub.MsgID, ReturnCode: mqttsn.RejectedInvalidID})
	reg = mqttsntest.Expect[*mqttsn.Register](gw)
	gw.Reply(&mqttsn.Regack{TopicID: 4, MsgID: reg.MsgID})
	pub = mqttsntest.Expect[*mqttsn.Publish](gw)
	if pub.TopicID != 4 {
		t.Fatalf("PUBLISH after re-REGISTER uses id %d, want 4", pub.TopicID)
	}
	gw.Reply(&mqttsn.Puback{TopicID: 4, MsgID: pub.MsgID})
	mustSucceed(t, done)
}

func TestQoS0ErrorPubackMakesNextPublishRegister(t *testing.T) {
	gw := mqttsntest.NewGateway(t)
	c := newClient(t, gw, mqttsn.ClientConfig{})
	connect(t, gw, c)
	done := async(func() error { return c.Publish(ctx(), mqttsn.TopicName("t"), []byte("1"), 0, false) })
	reg := mqttsntest.Expect[*mqttsn.Register](gw)
	gw.Reply(&mqttsn.Regack{TopicID: 3, MsgID: reg.MsgID})
	mqttsntest.Expect[*mqttsn.Publish](gw)
	mustSucceed(t, done)
	// The gateway forgot id 3 (it restarted, say) and says so.
	gw.Reply(&mqttsn.Puback{TopicID: 3, ReturnCode: mqttsn.RejectedInvalidID})
	for range 50 { // the PUBACK is handled on the receive goroutine: retry until it took effect
		done = async(func() error { return c.Publish(ctx(), mqttsn.TopicName("t"), []byte("2"), 0, false) })
		p := gw.Receive()
		if reg, ok := p.(*mqttsn.Register); ok {
			gw.Reply(&mqttsn.Regack{TopicID: 5, MsgID: reg.MsgID})
			if pub := mqttsntest.Expect[*mqttsn.Publish](gw); pub.TopicID != 5 {
				t.Fatalf("PUBLISH on id %d, want 5", pub.TopicID)
			}
			mustSucceed(t, done)
			return
		}
		mustSucceed(t, done)
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the client kept publishing on the rejected id")
}

func TestPublishCongestionIsReported(t *testing.T) {
	gw := mqttsntest.NewGateway(t)
	c := newClient(t, gw, mqttsn.ClientConfig{})
	connect(t, gw, c)
	done := async(func() error { return c.Publish(ctx(), mqttsn.PredefinedTopic(1), nil, 1, false) })
	pub := mqttsntest.Expect[*mqttsn.Publish](gw)
	gw.Reply(&mqttsn.Puback{TopicID: 1, MsgID: pub.MsgID, ReturnCode: mqttsn.RejectedCongestion})
	var rej *mqttsn.RejectedError
	if err := wait(t, done); !errors.As(err, &rej) || rej.ReturnCode != mqttsn.RejectedCongestion {
		t.Fatalf("Publish = %v, want congestion", err)
	}
}

func TestOnlyOneQoS1PublishInFlight(t *testing.T) {
	gw := mqttsntest.NewGateway(t)
	c := newClient(t, gw, mqttsn.ClientConfig{RetryInterval: 5 * time.Second})
	connect(t, gw, c)
	first := async(func() error { return c.Publish(ctx(), mqttsn.PredefinedTopic(1), []byte("1"), 1, false) })
	p1 := mqttsntest.Expect[*mqttsn.Publish](gw)
	second := async(func() error { return c.Publish(ctx(), mqttsn.PredefinedTopic(1), []byte("2"), 1, false) })
	gw.ExpectNothing(300 * time.Millisecond) // the second waits for PUBACK of the first
	gw.Reply(&mqttsn.Puback{TopicID: 1, MsgID: p1.MsgID})
	p2 := mqttsntest.Expect[*mqttsn.Publish](gw)
	if string(p1.Data) != "1" || string(p2.Data) != "2" || p1.MsgID == p2.MsgID {
		t.Fatalf("publishes %+v then %+v", p1, p2)
	}
	gw.Reply(&mqttsn.Puback{TopicID: 1, MsgID: p2.MsgID})
	mustSucceed(t, first)
	mustSucceed(t, second)
}

func TestOnlyOneRegisterInFlight(t *testing.T) {
	gw := mqttsntest.NewGateway(t)
	c := newClient(t, gw, mqttsn.ClientConfig{RetryInterval: 5 * time.Second})
	connect(t, gw, c)
	first := async(func() error { _, err := c.Register(ctx(), "a"); return err })
	r1 := mqttsntest.Expect[*mqttsn.Register](gw)
	second := async(func() error { _, err := c.Register(ctx(), "b"); return err })
	gw.ExpectNothing(300 * time.Millisecond)
	gw.Reply(&mqttsn.Regack{TopicID: 1, MsgID: r1.MsgID})
	r2 := mqttsntest.Expect[*mqttsn.Register](gw)
	gw.Reply(&mqttsn.Regack{TopicID: 2, MsgID: r2.MsgID})
	mustSucceed(t, first)
	mustSucceed(t, second)
	if r1.TopicName != "a" || r2.TopicName != "b" {
		t.Fatalf("registered %q then %q", r1.TopicName, r2.TopicName)
	}
}

func TestPersistentSessionKeepsTopicIDs(t *testing.T) {
	for _, clean := range []bool{false, true} {
		gw := mqttsntest.NewGateway(t)
		c := newClient(t, gw, mqttsn.ClientConfig{CleanSession: clean})
		connect(t, gw, c)
		done := async(func() error { _, err := c.Register(ctx(), "a/b"); return err })
		reg := mqttsntest.Expect[*mqttsn.Register](gw)
		gw.Reply(&mqttsn.Regack{TopicID: 7, MsgID: reg.MsgID})
		mustSucceed(t, done)
		done = async(func() error { return c.Disconnect(ctx()) })
		mqttsntest.Expect[*mqttsn.Disconnect](gw)
		gw.Reply(&mqttsn.Disconnect{})
		mustSucceed(t, done)

		done = async(func() error { return c.Connect(ctx()) })
		if conn := gw.AcceptConnect(); conn.CleanSession != clean {
			t.Fatalf("CONNECT = %+v", conn)
		}
		mustSucceed(t, done)
		done = async(func() error { return c.Publish(ctx(), mqttsn.TopicName("a/b"), []byte("x"), 0, false) })
		if clean {
			// A clean session starts without topic ids: register again.
			reg := mqttsntest.Expect[*mqttsn.Register](gw)
			gw.Reply(&mqttsn.Regack{TopicID: 8, MsgID: reg.MsgID})
			if pub := mqttsntest.Expect[*mqttsn.Publish](gw); pub.TopicID != 8 {
				t.Errorf("clean: PUBLISH on id %d, want 8", pub.TopicID)
			}
		} else if pub := mqttsntest.Expect[*mqttsn.Publish](gw); pub.TopicID != 7 {
			t.Errorf("persistent: PUBLISH on id %d, want the session's 7", pub.TopicID)
		}
		mustSucceed(t, done)
	}
}
