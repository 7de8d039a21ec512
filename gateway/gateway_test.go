package gateway

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/broker/brokertest"
	"github.com/sngate/sngate/mqttsn"
)

const waitTime = 5 * time.Second

// startGateway runs a broker and a gateway in front of it on a free
// loopback UDP port (cfg.Listen, if set, says which).
func startGateway(tb testing.TB, cfg Config) (*Gateway, *broker.Server, string) {
	tb.Helper()
	b, _ := brokertest.NewServer(tb, broker.Config{}, broker.Options{})
	g, addr := serveGateway(tb, cfg, b, nil)
	return g, b, addr
}

// serveGateway serves a gateway in front of b, logging to log (nil:
// nowhere). (Tests outside this package use gatewaytest.NewServer, which
// this package cannot import.)
func serveGateway(t testing.TB, cfg Config, b *broker.Server, log *slog.Logger) (*Gateway, string) {
	t.Helper()
	if cfg.RetryInterval == 0 {
		cfg.RetryInterval = 200 * time.Millisecond
	}
	g, err := New(cfg, b, log)
	if err != nil {
		t.Fatal(err)
	}
	listen := cfg.Listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	tr, err := ListenUDP(context.Background(), UDPConfig{Address: listen, Broadcast: cfg.Broadcast})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Serve(tr) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTime)
		defer cancel()
		if err := g.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return g, tr.LocalAddr().String()
}

// snClient dials the gateway with the project's MQTT-SN client.
func snClient(t *testing.T, addr string, cfg mqttsn.ClientConfig) *mqttsn.Client {
	t.Helper()
	if cfg.RetryInterval == 0 {
		cfg.RetryInterval = 200 * time.Millisecond
	}
	c, err := mqttsn.Dial(context.Background(), addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// collector gathers messages, from either side.
type collector struct {
	mu  sync.Mutex
	got []string // "topic payload"
	ch  chan struct{}
}

func newCollector() *collector { return &collector{ch: make(chan struct{}, 1000)} }

func (c *collector) add(s string) {
	c.mu.Lock()
	c.got = append(c.got, s)
	c.mu.Unlock()
	c.ch <- struct{}{}
}

func (c *collector) wait(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.After(waitTime)
	for {
		c.mu.Lock()
		got := append([]string(nil), c.got...)
		c.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-c.ch:
		case <-deadline:
			t.Fatalf("got %q, want %d messages", got, n)
		}
	}
}

// brokerSubscriber is an in-process broker client collecting what it gets.
func brokerSubscriber(t *testing.T, b *broker.Server, filter string) *collector {
	t.Helper()
	col := newCollector()
	var lc *broker.LocalClient
	lc, _, err := b.Connect(broker.LocalConfig{ClientID: "watcher-" + filter, CleanSession: true, OnMessage: func(d broker.Delivery) {
		col.add(d.Message.Topic + " " + string(d.Message.Payload))
		if d.QoS > 0 {
			go lc.Ack(d.PacketID)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lc.Subscribe(context.Background(), broker.Subscription{Filter: filter, QoS: 2}); err != nil {
		t.Fatal(err)
	}
	return col
}

func bg() context.Context { return context.Background() }

func TestPublishFromSensorReachesBroker(t *testing.T) {
	_, b, addr := startGateway(t, Config{PredefinedTopics: []PredefinedTopic{{ID: 5, Topic: "fixed/five"}}})
	col := brokerSubscriber(t, b, "#")
	c := snClient(t, addr, mqttsn.ClientConfig{ClientID: "sensor1", CleanSession: true})
	if err := c.Connect(bg()); err != nil {
		t.Fatal(err)
	}
	for qos := mqttsn.QoS0; qos <= mqttsn.QoS2; qos++ {
		if err := c.Publish(bg(), mqttsn.TopicName("sensors/t1"), []byte{'0' + byte(qos)}, qos, false); err != nil {
			t.Fatalf("QoS %d: %v", qos, err)
		}
	}
	if err := c.Publish(bg(), mqttsn.PredefinedTopic(5), []byte("p"), 1, false); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(bg(), mqttsn.ShortTopic("ab"), []byte("s"), 1, false); err != nil {
		t.Fatal(err)
	}
	got := col.wait(t, 5)
	want := []string{"sensors/t1 0", "sensors/t1 1", "sensors/t1 2", "fixed/five p", "ab s"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("broker got %q, want %q", got, want)
			break
		}
	}
}

func TestQoSMinus1WithoutConnection(t *testing.T) {
	_, b, addr := startGateway(t, Config{PredefinedTopics: []PredefinedTopic{{ID: 7, Topic: "meter/7"}}})
	col := brokerSubscriber(t, b, "#")
	c := snClient(t, addr, mqttsn.ClientConfig{ClientID: "dumb"})
	c.Publish(bg(), mqttsn.ShortTopic("xy"), []byte("1"), -1, false)
	c.Publish(bg(), mqttsn.PredefinedTopic(7), []byte("2"), -1, false)
	c.Publish(bg(), mqttsn.PredefinedTopic(99), []byte("unknown: dropped"), -1, false)
	got := col.wait(t, 2)
	if got[0] != "xy 1" || got[1] != "meter/7 2" {
		t.Fatalf("broker got %q", got)
	}
}

func TestSubscribeByNameWildcardAndShort(t *testing.T) {
	_, b, addr := startGateway(t, Config{})
	col := newCollector()
	c := snClient(t, addr, mqttsn.ClientConfig{ClientID: "actuator", CleanSession: true,
		OnMessage: func(m mqttsn.Message) { col.add(m.Topic + " " + string(m.Payload)) }})
	if err := c.Connect(bg()); err != nil {
		t.Fatal(err)
	}
	for _, tp := range []mqttsn.Topic{mqttsn.TopicName("cmd/valve"), mqttsn.TopicName("cfg/#"), mqttsn.ShortTopic("zz")} {
		if q, err := c.Subscribe(bg(), tp, 1); err != nil || q != 1 {
			t.Fatalf("Subscribe %v: %v %v", tp, q, err)
		}
	}
	pub, _, _ := b.Connect(broker.LocalConfig{ClientID: "app", CleanSession: true})
	pub.Publish(bg(), broker.Message{Topic: "cmd/valve", Payload: []byte("open"), QoS: 1})
	pub.Publish(bg(), broker.Message{Topic: "cfg/interval", Payload: []byte("60"), QoS: 1}) // needs a gateway REGISTER
	pub.Publish(bg(), broker.Message{Topic: "zz", Payload: []byte("short"), QoS: 2})
	pub.Publish(bg(), broker.Message{Topic: "cfg/interval", Payload: []byte("30"), QoS: 0})
	got := col.wait(t, 4)
	want := []string{"cmd/valve open", "cfg/interval 60", "zz short", "cfg/interval 30"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("client got %q, want %q", got, want)
		}
	}
}

func TestWillOnKeepAliveExpiry(t *testing.T) {
	g, b, addr := startGateway(t, Config{})
	col := brokerSubscriber(t, b, "status/#")
	c := snClient(t, addr, mqttsn.ClientConfig{ClientID: "s9", CleanSession: true, KeepAlive: time.Second,
		Will: &mqttsn.Will{Topic: "status/s9", Message: []byte("lost")}})
	if err := c.Connect(bg()); err != nil {
		t.Fatal(err)
	}
	c.Close() // the sensor dies: no more PINGREQ
	if got := col.wait(t, 1); got[0] != "status/s9 lost" {
		t.Fatalf("got %q", got)
	}
	if g.Stats().ClientsLost != 1 {
		t.Errorf("stats %+v", g.Stats())
	}
}

func TestNoWillAfterDisconnect(t *testing.T) {
	_, b, addr := startGateway(t, Config{})
	col := brokerSubscriber(t, b, "status/#")
	c := snClient(t, addr, mqttsn.ClientConfig{ClientID: "s8", CleanSession: true, KeepAlive: time.Second,
		Will: &mqttsn.Will{Topic: "status/s8", Message: []byte("lost")}})
	if err := c.Connect(bg()); err != nil {
		t.Fatal(err)
	}
	if err := c.Disconnect(bg()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // past the keep-alive tolerance
	col.mu.Lock()
	defer col.mu.Unlock()
	if len(col.got) != 0 {
		t.Fatalf("will published after DISCONNECT: %q", col.got)
	}
}

func TestSleepingClientCollectsBufferedMessages(t *testing.T) {
	_, b, addr := startGateway(t, Config{})
	col := newCollector()
	c := snClient(t, addr, mqttsn.ClientConfig{ClientID: "sleeper", CleanSession: true,
		OnMessage: func(m mqttsn.Message) { col.add(m.Topic + " " + string(m.Payload)) }})
	if err := c.Connect(bg()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Subscribe(bg(), mqttsn.TopicName("cmd/#"), 1); err != nil {
		t.Fatal(err)
	}
	if err := c.Sleep(bg(), time.Minute); err != nil {
		t.Fatal(err)
	}
	pub, _, _ := b.Connect(broker.LocalConfig{ClientID: "app", CleanSession: true})
	pub.Publish(bg(), broker.Message{Topic: "cmd/a", Payload: []byte("1"), QoS: 1})
	pub.Publish(bg(), broker.Message{Topic: "cmd/b", Payload: []byte("2"), QoS: 0})
	time.Sleep(100 * time.Millisecond)
	col.mu.Lock()
	early := len(col.got)
	col.mu.Unlock()
	if early != 0 {
		t.Fatal("a sleeping client was sent messages")
	}
	if err := c.Wake(bg()); err != nil {
		t.Fatal(err)
	}
	got := col.wait(t, 2)
	if got[0] != "cmd/a 1" || got[1] != "cmd/b 2" {
		t.Fatalf("after waking: %q", got)
	}
}

func TestUnknownTopicIDAndMalformedDatagrams(t *testing.T) {
	g, _, addr := startGateway(t, Config{})
	c := snClient(t, addr, mqttsn.ClientConfig{ClientID: "x", CleanSession: true})
	if err := c.Connect(bg()); err != nil {
		t.Fatal(err)
	}
	raw, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, b := range [][]byte{{0}, {0x05, 0x0C}, {0x03, 0x11, 0}, {0x01, 0x00}} {
		raw.Write(b)
	}
	// The well-behaved client is unaffected.
	if err := c.Ping(bg()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitTime)
	for g.Stats().Malformed < 4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g.Stats().Malformed != 4 {
		t.Errorf("stats %+v, want 4 malformed", g.Stats())
	}
}
