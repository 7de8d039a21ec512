package mqttload

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/broker/brokertest"
	"github.com/sngate/sngate/broker/packets"
)

// waitTime bounds every wait in these tests.
const waitTime = 20 * time.Second

// startBroker serves an in-memory sngate broker on a free loopback port.
func startBroker(t testing.TB, cfg broker.Config) (*broker.Server, string) {
	t.Helper()
	return brokertest.NewServer(t, cfg, broker.Options{})
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	t.Cleanup(cancel)
	return ctx
}

func TestHistogramQuantiles(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 || h.Max() != 0 || h.Mean() != 0 {
		t.Fatal("empty histogram is not all zero")
	}
	// 1..100000 µs: p50 is 50 ms, p99 99 ms.
	for i := 1; i <= 100000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	for _, tt := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}} {
		got := h.Quantile(tt.q)
		if got < tt.want || float64(got-tt.want) > float64(tt.want)/128 {
			t.Errorf("Quantile(%v) = %v, want %v within 1/128 above", tt.q, got, tt.want)
		}
	}
	if h.Max() != 100*time.Millisecond || h.Count() != 100000 {
		t.Errorf("Max %v Count %d", h.Max(), h.Count())
	}
	if m := h.Mean(); m < 50*time.Millisecond || m > 50*time.Millisecond+time.Microsecond {
		t.Errorf("Mean %v, want 50.0005ms", m)
	}

	var a, b Histogram
	a.Record(time.Millisecond)
	b.Record(3 * time.Millisecond)
	b.Record(-time.Second) // counts as 0
	a.Merge(&b)
	if a.Count() != 3 || a.Max() != 3*time.Millisecond || a.Quantile(0) != 0 {
		t.Errorf("merged: count %d max %v min %v", a.Count(), a.Max(), a.Quantile(0))
	}
}

func TestHistogramBuckets(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	prev := -1
	for v := uint64(0); v < 1<<12; v++ { // indexes grow with the value
		i := bucketOf(v)
		if i < prev || i > prev+1 {
			t.Fatalf("bucketOf(%d) = %d after %d", v, i, prev)
		}
		prev = i
	}
	for range 100000 {
		v := r.Uint64N(1 << maxBits)
		i := bucketOf(v)
		hi := bucketHigh(i)
		if hi < v || float64(hi-v) > float64(v)/subCount {
			t.Fatalf("value %d: bucket %d ends at %d", v, i, hi)
		}
		if i > 0 && bucketHigh(i-1) >= v {
			t.Fatalf("value %d also fits bucket %d", v, i-1)
		}
	}
	if i := bucketOf(1 << 62); i != histBuckets-1 {
		t.Errorf("huge value in bucket %d, want the last", i)
	}
}

func TestConfigValidate(t *testing.T) {
	good := Config{Addr: "x:1", Mode: FanIn, Publishers: 1, Subscribers: 1, Size: Header, Duration: time.Second}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		change func(*Config)
		want   string
	}{
		{func(c *Config) { c.Mode = "fan-sideways" }, "mode"},
		{func(c *Config) { c.Publishers = 0 }, "publishers"},
		{func(c *Config) { c.Subscribers = MaxClients + 1 }, "subscribers"},
		{func(c *Config) { c.QoS = 2 }, "qos"},
		{func(c *Config) { c.Size = Header - 1 }, "size"},
		{func(c *Config) { c.Duration = 0 }, "duration"},
		{func(c *Config) { c.Warmup = -1 }, "warmup"},
		{func(c *Config) { c.Rate = -1 }, "rate"},
		{func(c *Config) { c.Inflight = MaxInflight + 1 }, "inflight"},
	} {
		c := good
		tt.change(&c)
		if err := c.Validate(); err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%+v: error %v, want one starting %q", c, err, tt.want)
		}
		if _, err := Run(testContext(t), c); err == nil {
			t.Errorf("Run(%+v) did not fail", c)
		}
	}
}

// checkResult checks what holds for every run without loss.
func checkResult(t *testing.T, r Result, subs int) {
	t.Helper()
	if r.Sent == 0 {
		t.Fatalf("nothing sent: %+v", r)
	}
	if r.Expected != r.Sent*int64(subs) {
		t.Errorf("expected %d, want sent %d × %d subscribers", r.Expected, r.Sent, subs)
	}
	if r.Received != r.Expected || r.Loss != 0 || r.Duplicates != 0 || r.Unacked != 0 {
		t.Errorf("received %d of %d, loss %d, dups %d, unacked %d", r.Received, r.Expected, r.Loss, r.Duplicates, r.Unacked)
	}
	if !(0 < r.P50 && r.P50 <= r.P99 && r.P99 <= r.Max && r.Max < 5*time.Second) {
		t.Errorf("latencies p50 %v p99 %v max %v", r.P50, r.P99, r.Max)
	}
	if r.Throughput <= 0 {
		t.Errorf("throughput %v", r.Throughput)
	}
}

func TestRunModes(t *testing.T) {
	_, addr := startBroker(t, broker.Config{})
	for _, tt := range []struct {
		mode       Mode
		qos        byte
		pubs, subs int
		rate       float64
	}{
		{FanIn, 0, 4, 1, 500},
		{FanIn, 1, 4, 2, 500},
		{FanOut, 0, 1, 5, 1000},
		{FanOut, 1, 2, 5, 1000},
		{FanOut, 1, 1, 3, 0}, // as fast as the window allows
	} {
		cfg := Config{Addr: addr, Mode: tt.mode, QoS: tt.qos, Publishers: tt.pubs, Subscribers: tt.subs,
			Size: 100, Rate: tt.rate, Warmup: 100 * time.Millisecond, Duration: 500 * time.Millisecond}
		r, err := Run(testContext(t), cfg)
		if err != nil {
			t.Fatalf("%+v: %v", cfg, err)
		}
		checkResult(t, r, tt.subs)
		if tt.rate > 0 {
			// Half a second at the rate, give or take the pacing.
			want := tt.rate * 0.5 * float64(tt.pubs)
			if got := float64(r.Sent); got < want*0.8 || got > want*1.2 {
				t.Errorf("%+v: sent %v, want about %v", cfg, got, want)
			}
		}
		if r.Mode != tt.mode || r.QoS != tt.qos || r.Publishers != tt.pubs || r.Subscribers != tt.subs || r.Size != 100 {
			t.Errorf("result does not describe the run: %+v", r)
		}
	}
}

// TestRunWindowPreventsOverflow: a broker with tiny queues drops QoS 1
// messages from publishers bounded only by PUBACKs, and none from
// publishers whose window also waits for the deliveries.
func TestRunWindowPreventsOverflow(t *testing.T) {
	_, addr := startBroker(t, broker.Config{MaxInflight: 1, MaxQueuedMessages: 5})
	cfg := Config{Addr: addr, Mode: FanOut, QoS: 1, Publishers: 1, Subscribers: 2, Size: 64,
		Inflight: 4, Warmup: 50 * time.Millisecond, Duration: 300 * time.Millisecond}
	r, err := Run(testContext(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, r, 2)

	cfg.OpenLoop, cfg.Inflight = true, 200
	r, err = Run(testContext(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.Loss <= 0 || r.Received+r.Loss != r.Expected || !r.OpenLoop {
		t.Errorf("open loop into 5-message queues: %+v, want loss", r)
	}
}

func TestRunQoS0AsFastAsPossible(t *testing.T) {
	_, addr := startBroker(t, broker.Config{})
	cfg := Config{Addr: addr, Mode: FanIn, Publishers: 3, Subscribers: 1, Size: 16,
		Duration: 300 * time.Millisecond, Drain: 2 * time.Second}
	r, err := Run(testContext(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// QoS 0 may lose messages under overload, but never gains any.
	if r.Sent == 0 || r.Received == 0 || r.Loss < 0 || r.Received+r.Loss != r.Expected || r.Duplicates != 0 {
		t.Errorf("%+v", r)
	}
}

func TestRunBrokerGoesAway(t *testing.T) {
	s, addr := startBroker(t, broker.Config{})
	go func() {
		time.Sleep(300 * time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), waitTime)
		defer cancel()
		_ = s.Shutdown(ctx)
	}()
	began := time.Now()
	_, err := Run(testContext(t), Config{Addr: addr, Mode: FanOut, QoS: 1, Publishers: 1, Subscribers: 2,
		Size: 32, Duration: 10 * time.Second})
	if err == nil {
		t.Fatal("Run did not fail when the broker shut down")
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("Run took %v to notice", d)
	}
}

func TestRunCancel(t *testing.T) {
	_, addr := startBroker(t, broker.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	began := time.Now()
	_, err := Run(ctx, Config{Addr: addr, Mode: FanIn, QoS: 0, Publishers: 2, Subscribers: 1,
		Size: 32, Rate: 100, Duration: 10 * time.Second})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err %v, want the context's", err)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("Run took %v to stop", d)
	}
}

// fakeBroker accepts one connection and answers its CONNECT with code.
func fakeBroker(t *testing.T, code byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		r := packets.NewReader(nc, 0)
		if _, _, err := r.ReadPacket(); err != nil {
			return
		}
		_, _ = nc.Write((&packets.ConnackPacket{ReturnCode: code}).Append(nil))
		_, _, _ = r.ReadPacket() // until the client closes
	}()
	return ln.Addr().String()
}

func TestDialRefused(t *testing.T) {
	addr := fakeBroker(t, packets.ConnRefusedNotAuthorized)
	_, err := Dial(testContext(t), addr, Options{ClientID: "x"})
	var ce *ConnackError
	if !errors.As(err, &ce) || ce.Code != 5 || !strings.Contains(err.Error(), "not authorized") {
		t.Errorf("err %v, want CONNACK code 5", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	if _, err := Run(testContext(t), Config{Addr: closed, Mode: FanIn, Publishers: 1, Subscribers: 1,
		Size: 16, Duration: time.Second}); err == nil || !strings.Contains(err.Error(), "subscriber 0") {
		t.Errorf("Run against a closed port: %v", err)
	}
}

func TestClientPublishSubscribe(t *testing.T) {
	_, addr := startBroker(t, broker.Config{})
	ctx := testContext(t)
	sub, err := Dial(ctx, addr, Options{ClientID: "sub", KeepAlive: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if err := sub.Subscribe(ctx, "t/#", 1); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 10)
	sub.Start(func(p *packets.PublishPacket) { got <- string(p.Topic) + "=" + string(p.Payload) }, nil)

	pub, err := Dial(ctx, addr, Options{ClientID: "pub"})
	if err != nil {
		t.Fatal(err)
	}
	acks := make(chan uint16, 10)
	pub.Start(nil, func(id uint16) { acks <- id })
	if err := pub.Publish("t/a", 1, 7, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish("t/b", 0, 0, []byte("y")); err != nil {
		t.Fatal(err)
	}
	if err := pub.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"t/a=x", "t/b=y"} {
		select {
		case g := <-got:
			if g != want {
				t.Errorf("got %q, want %q", g, want)
			}
		case <-time.After(waitTime):
			t.Fatalf("no %q", want)
		}
	}
	select {
	case id := <-acks:
		if id != 7 {
			t.Errorf("PUBACK %d, want 7", id)
		}
	case <-time.After(waitTime):
		t.Fatal("no PUBACK")
	}
	// The keep-alive pinger keeps the subscriber connected past 1.5 ×
	// its keep-alive.
	time.Sleep(3500 * time.Millisecond)
	select {
	case <-sub.Done():
		t.Fatalf("subscriber dropped: %v", sub.Err())
	default:
	}
	if err := pub.Disconnect(); err != nil {
		t.Errorf("Disconnect: %v", err)
	}
	if err := pub.Err(); err != nil {
		t.Errorf("Err after Disconnect: %v", err)
	}
}

func TestOpenIdleAndRSS(t *testing.T) {
	_, addr := startBroker(t, broker.Config{})
	set, err := OpenIdle(testContext(t), addr, 50, IdleOptions{Parallel: 8})
	defer set.Close()
	if err != nil {
		t.Fatal(err)
	}
	if set.Len() != 50 {
		t.Errorf("Len %d, want 50", set.Len())
	}
	rss, err := RSS(os.Getpid())
	if err != nil || rss < 1<<20 {
		t.Errorf("RSS = %d, %v", rss, err)
	}
	if _, err := RSS(1 << 30); err == nil {
		t.Error("RSS of a process that cannot exist succeeded")
	}
	set.Close()
	if set.Len() != 0 {
		t.Errorf("Len after Close %d", set.Len())
	}

	// A broker refusing clients: the error says which and why.
	_, addr = startBroker(t, broker.Config{MaxClients: 3})
	set2, err := OpenIdle(testContext(t), addr, 10, IdleOptions{Parallel: 1})
	defer set2.Close()
	var ce *ConnackError
	if !errors.As(err, &ce) || ce.Code != packets.ConnRefusedServerUnavailable || set2.Len() != 3 {
		t.Errorf("OpenIdle past max_clients: %d open, err %v", set2.Len(), err)
	}
}

func TestRaiseFileLimit(t *testing.T) {
	var before syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &before); err != nil {
		t.Fatal(err)
	}
	lim, err := RaiseFileLimit(before.Cur)
	if err != nil || lim != before {
		t.Errorf("RaiseFileLimit(current) = %+v, %v", lim, err)
	}
	if before.Max == ^uint64(0) || os.Geteuid() == 0 {
		t.Skip("the hard limit can be raised here")
	}
	if _, err := RaiseFileLimit(before.Max + 1); !errors.Is(err, ErrFileLimit) {
		t.Errorf("above the hard limit: %v", err)
	}
}
