package mqttsn_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/sngate/sngate/mqttsn"
	"github.com/sngate/sngate/mqttsn/mqttsntest"
)

func TestKeepAlivePingsAndLosesSilentGateway(t *testing.T) {
	gw := mqttsntest.NewGateway(t)
	lost := make(chan error, 1)
	c := newClient(t, gw, mqttsn.ClientConfig{KeepAlive: 200 * time.Millisecond, MaxRetries: 1,
		OnConnectionLost: func(err error) { lost <- err }})
	done := async(func() error { return c.Connect(ctx()) })
	if conn := gw.AcceptConnect(); conn.KeepAlive != 1 {
		t.Errorf("CONNECT Duration = %d, want 1 (200ms rounded up)", conn.KeepAlive)
	}
	mustSucceed(t, done)

	ping := mqttsntest.Expect[*mqttsn.Pingreq](gw)
	if ping.ClientID != "" {
		t.Errorf("keep-alive PINGREQ carries client id %q", ping.ClientID)
	}
	gw.Reply(&mqttsn.Pingresp{})
	mqttsntest.Expect[*mqttsn.Pingreq](gw) // the next period's: unanswered
	mqttsntest.Expect[*mqttsn.Pingreq](gw) // its one resend
	if err := wait(t, lost); !errors.Is(err, mqttsn.ErrNoAnswer) {
		t.Fatalf("OnConnectionLost(%v), want ErrNoAnswer", err)
	}
	if c.Connected() {
		t.Error("still connected")
	}
}

func TestAnswersGatewayPingreq(t *testing.T) {
	gw := mqttsntest.NewGateway(t)
	c := newClient(t, gw, mqttsn.ClientConfig{})
	connect(t, gw, c)
	gw.Reply(&mqttsn.Pingreq{})
	mqttsntest.Expect[*mqttsn.Pingresp](gw)
}

func TestDisconnect(t *testing.T) {
	gw := mqttsntest.NewGateway(t)
	c := newClient(t, gw, mqttsn.ClientConfig{})
	connect(t, gw, c)
	done := async(func() error { return c.Disconnect(ctx()) })
	if d := mqttsntest.Expect[*mqttsn.Disconnect](gw); d.HasDuration {
		t.Errorf("DISCONNECT = %+v, want no duration", d)
	}
	gw.Reply(&mqttsn.Disconnect{})
	mustSucceed(t, done)
	if c.Connected() {
		t.Error("connected after Disconnect")
	}
}

func TestGatewayDisconnectLosesConnection(t *testing.T) {
	gw := mqttsntest.NewGateway(t)
	lost := make(chan error, 1)
	c := newClient(t, gw, mqttsn.ClientConfig{OnConnectionLost: func(err error) { lost <- err }})
	connect(t, gw, c)
	gw.Reply(&mqttsn.Disconnect{})
	if err := wait(t, lost); !errors.Is(err, mqttsn.ErrConnectionLost) {
		t.Fatalf("OnConnectionLost(%v)", err)
	}
	// Connecting again works.
	connect(t, gw, c)
}

func TestSleepWakeCollectsBufferedMessages(t *testing.T) {
	gw := mqttsntest.NewGateway(t)
	in := newInbox()
	c := newClient(t, gw, mqttsn.ClientConfig{ClientID: "abc", OnMessage: in.add})
	connect(t, gw, c)

	done := async(func() error { return c.Sleep(ctx(), 300*time.Second) })
	d := mqttsntest.Expect[*mqttsn.Disconnect](gw)
	if !d.HasDuration || d.Duration != 300 {
		t.Fatalf("DISCONNECT = %+v, want sleep 300", d)
	}
	gw.Reply(&mqttsn.Disconnect{})
	mustSucceed(t, done)
	if err := c.Publish(ctx(), mqttsn.PredefinedTopic(1), nil, 1, false); !errors.Is(err, mqttsn.ErrAsleep) {
		t.Errorf("Publish while asleep = %v, want ErrAsleep", err)
	}

	done = async(func() error { return c.Wake(ctx()) })
	ping := mqttsntest.Expect[*mqttsn.Pingreq](gw)
	if ping.ClientID != "abc" {
		t.Fatalf("wake PINGREQ client id %q, want abc", ping.ClientID)
	}
	id, _ := mqttsn.ShortTopicID("tt")
	for i, data := range []string{"one", "two"} {
		gw.Reply(&mqttsn.Publish{QoS: 1, TopicIDType: mqttsn.TopicShort, TopicID: id, MsgID: uint16(i + 1), Data: []byte(data)})
		if ack := mqttsntest.Expect[*mqttsn.Puback](gw); ack.MsgID != uint16(i+1) {
			t.Fatalf("PUBACK = %+v", ack)
		}
	}
	gw.Reply(&mqttsn.Pingresp{})
	mustSucceed(t, done)
	if msgs := in.wait(t, 2); string(msgs[0].Payload) != "one" || string(msgs[1].Payload) != "two" {
		t.Fatalf("messages %+v", msgs)
	}

	// Back asleep: another wake with nothing buffered, its PINGREQ lost once.
	done = async(func() error { return c.Wake(ctx()) })
	mqttsntest.Expect[*mqttsn.Pingreq](gw)
	mqttsntest.Expect[*mqttsn.Pingreq](gw)
	gw.Reply(&mqttsn.Pingresp{})
	mustSucceed(t, done)

	// CONNECT makes the client active again.
	connect(t, gw, c)
	if !c.Connected() {
		t.Fatal("not active after Connect from sleep")
	}
}

func TestNoKeepAlivePingsWhileAsleep(t *testing.T) {
	gw := mqttsntest.NewGateway(t)
	c := newClient(t, gw, mqttsn.ClientConfig{KeepAlive: 100 * time.Millisecond})
	connect(t, gw, c)
	done := async(func() error { return c.Sleep(ctx(), time.Minute) })
	for {
		// A keep-alive PINGREQ may cross the DISCONNECT.
		p := gw.Receive()
		if _, ok := p.(*mqttsn.Pingreq); ok {
			gw.Reply(&mqttsn.Pingresp{})
			continue
		}
		if _, ok := p.(*mqttsn.Disconnect); !ok {
			t.Fatalf("got %T, want DISCONNECT", p)
		}
		break
	}
	gw.Reply(&mqttsn.Disconnect{})
	mustSucceed(t, done)
	gw.ExpectNothing(500 * time.Millisecond) // five keep-alive periods
}

func TestWillUpdates(t *testing.T) {
	gw := mqttsntest.NewGateway(t)
	c := newClient(t, gw, mqttsn.ClientConfig{})
	connect(t, gw, c)

	done := async(func() error { return c.UpdateWillTopic(ctx(), "status/x", 1, true) })
	wt := mqttsntest.Expect[*mqttsn.WillTopicUpd](gw)
	if wt.Topic != "status/x" || wt.QoS != 1 || !wt.Retain {
		t.Fatalf("WILLTOPICUPD = %+v", wt)
	}
	gw.Reply(&mqttsn.WillTopicResp{})
	mustSucceed(t, done)

	done = async(func() error { return c.UpdateWillMessage(ctx(), []byte("offline")) })
	wm := mqttsntest.Expect[*mqttsn.WillMsgUpd](gw)
	if string(wm.Message) != "offline" {
		t.Fatalf("WILLMSGUPD = %+v", wm)
	}
	gw.Reply(&mqttsn.WillMsgResp{})
	mustSucceed(t, done)

	done = async(func() error { return c.UpdateWillTopic(ctx(), "", 0, false) })
	d, err := gw.Next(mqttsntest.DefaultTimeout)
	if err != nil || len(d.Raw) != 2 || d.Raw[1] != byte(mqttsn.TypeWillTopicUpd) {
		t.Fatalf("empty WILLTOPICUPD = % X, %v", d.Raw, err)
	}
	gw.Reply(&mqttsn.WillTopicResp{ReturnCode: mqttsn.RejectedUnsupported})
	var rej *mqttsn.RejectedError
	if err := wait(t, done); !errors.As(err, &rej) {
		t.Fatalf("UpdateWillTopic = %v, want rejection", err)
	}

	// A reconnect offers the updated will.
	done = async(func() error { return c.Connect(ctx()) })
	if conn := mqttsntest.Expect[*mqttsn.Connect](gw); !conn.Will {
		t.Fatal("CONNECT after will update offers no will")
	}
	gw.Reply(&mqttsn.WillTopicReq{})
	if wt := mqttsntest.Expect[*mqttsn.WillTopic](gw); wt.Topic != "status/x" {
		t.Fatalf("WILLTOPIC = %+v", wt)
	}
	gw.Reply(&mqttsn.WillMsgReq{})
	if wm := mqttsntest.Expect[*mqttsn.WillMsg](gw); string(wm.Message) != "offline" {
		t.Fatalf("WILLMSG = %+v", wm)
	}
	gw.Reply(&mqttsn.Connack{})
	mustSucceed(t, done)
}

func TestDiscoverHearsGWInfoAndAdvertise(t *testing.T) {
	gw := mqttsntest.NewGateway(t)
	pc, err := mqttsn.ListenDiscovery(ctx(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	to, _ := net.ResolveUDPAddr("udp", gw.Addr())

	var mu sync.Mutex
	var heard []mqttsn.GatewayInfo
	got := make(chan struct{}, 10)
	dctx, cancel := context.WithCancel(ctx())
	done := async(func() error {
		return mqttsn.Discover(dctx, pc, mqttsn.DiscoverConfig{To: to, Radius: 2, Retry: testRetry}, func(g mqttsn.GatewayInfo) {
			mu.Lock()
			heard = append(heard, g)
			mu.Unlock()
			got <- struct{}{}
		})
	})
	s1 := mqttsntest.Expect[*mqttsn.SearchGW](gw)
	s2 := mqttsntest.Expect[*mqttsn.SearchGW](gw) // resent: nobody answered yet
	if s1.Radius != 2 || s2.Radius != 2 {
		t.Fatalf("SEARCHGW radius %d, %d", s1.Radius, s2.Radius)
	}
	gw.Reply(&mqttsn.GWInfo{GatewayID: 7})
	gw.Reply(&mqttsn.Advertise{GatewayID: 7, Duration: 900})
	for range 2 {
		select {
		case <-got:
		case <-time.After(mqttsntest.DefaultTimeout):
			t.Fatal("nothing heard")
		}
	}
	cancel()
	mustSucceed(t, done)
	mu.Lock()
	defer mu.Unlock()
	if heard[0].GatewayID != 7 || heard[0].Advertised || heard[0].From.String() != gw.Addr() {
		t.Errorf("GWINFO heard as %+v", heard[0])
	}
	if !heard[1].Advertised || heard[1].Interval != 900*time.Second {
		t.Errorf("ADVERTISE heard as %+v", heard[1])
	}
}
