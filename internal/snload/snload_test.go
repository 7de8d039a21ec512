package snload

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/broker/brokertest"
	"github.com/sngate/sngate/gateway"
	"github.com/sngate/sngate/gateway/gatewaytest"
)

// startGateway runs an in-process broker (on a loopback TCP port) and a
// gateway in front of it (on a loopback UDP port) and returns both
// addresses.
func startGateway(t *testing.T) (gw, br string) {
	t.Helper()
	b, addr := brokertest.NewServer(t, broker.Config{SysInterval: -1}, broker.Options{})
	// No per-address rate limit: every load client sends far more than a sensor.
	_, gw = gatewaytest.NewServer(t, gateway.Config{PacketsPerSecond: new(0)}, b)
	return gw, addr
}

func checkResult(t *testing.T, name string, r Result, cfg Config, wantLoss bool) {
	t.Helper()
	if r.Direction != cfg.Direction || r.QoS != cfg.QoS || r.Clients != cfg.Clients || r.Size != cfg.Size ||
		r.Duration != cfg.Duration || r.Rate != cfg.Rate {
		t.Errorf("%s: run not described: %+v", name, r)
	}
	per := int64(1)
	if cfg.Direction == Down {
		per = int64(cfg.Clients)
	}
	if r.Sent == 0 || r.Expected != r.Sent*per || r.Loss != r.Expected-r.Received || r.Duplicates != 0 {
		t.Errorf("%s: implausible counts: %+v", name, r)
	}
	if !wantLoss && (r.Loss != 0 || r.Unacked != 0 || r.Rejected != 0) {
		t.Errorf("%s: loss: %+v", name, r)
	}
	if r.Received > 0 && !(0 < r.P50 && r.P50 <= r.P99 && r.P99 <= r.Max && r.Throughput > 0) {
		t.Errorf("%s: implausible latency or rate: %+v", name, r)
	}
}

func TestRunUp(t *testing.T) {
	gw, br := startGateway(t)
	for _, qos := range []int{-1, 0, 1, 2} {
		cfg := Config{Gateway: gw, Broker: br, Direction: Up, Clients: 3, QoS: qos, Size: 32,
			Rate: 500, Duration: time.Second, Warmup: 100 * time.Millisecond}
		r, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatalf("QoS %d: %v (%+v)", qos, err, r)
		}
		checkResult(t, "up", r, cfg, false)
		// The rate is a ceiling: a slow machine may send less, never more.
		if r.Sent == 0 || r.Sent > 3*500*11/10 {
			t.Errorf("QoS %d: sent %d at 3 × 500/s for 1s", qos, r.Sent)
		}
		t.Logf("QoS %d: %+v", qos, r)
	}
}

func TestRunUpMax(t *testing.T) {
	gw, br := startGateway(t)
	cfg := Config{Gateway: gw, Broker: br, Direction: Up, Clients: 4, QoS: 1, Size: 64,
		Duration: time.Second, Window: 16}
	r, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, "up max", r, cfg, false)
	t.Logf("%+v", r)
}

func TestRunDown(t *testing.T) {
	gw, br := startGateway(t)
	for _, qos := range []int{0, 1} {
		cfg := Config{Gateway: gw, Broker: br, Direction: Down, Clients: 5, QoS: qos, Size: 40,
			Duration: time.Second, Warmup: 100 * time.Millisecond, Window: 32}
		if qos == 0 {
			cfg.Rate = 1000
		}
		r, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatalf("QoS %d: %v (%+v)", qos, err, r)
		}
		checkResult(t, "down", r, cfg, false)
		t.Logf("QoS %d: %+v", qos, r)
	}
}

func TestValidate(t *testing.T) {
	ok := Config{Gateway: "x:1", Broker: "y:2", Direction: Up, Clients: 1, Size: Header, Duration: time.Second}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*Config){
		"direction": func(c *Config) { c.Direction = "sideways" },
		"clients":   func(c *Config) { c.Clients = 0 },
		"qos up":    func(c *Config) { c.QoS = 3 },
		"qos down":  func(c *Config) { c.Direction, c.QoS = Down, -1 },
		"size":      func(c *Config) { c.Size = Header - 1 },
		"duration":  func(c *Config) { c.Duration = 0 },
		"rate":      func(c *Config) { c.Rate = -1 },
		"window":    func(c *Config) { c.Window = -2 },
		"topic":     func(c *Config) { c.Topic = "a/#" },
		"short":     func(c *Config) { c.Direction, c.Topic = Down, "ab" },
		"gateway":   func(c *Config) { c.Gateway = "" },
	} {
		c := ok
		mod(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: no error for %+v", name, c)
		}
	}
}

func TestOpenIdle(t *testing.T) {
	b, _ := brokertest.NewServer(t, broker.Config{SysInterval: -1}, broker.Options{})
	g, gw := gatewaytest.NewServer(t, gateway.Config{PacketsPerSecond: new(0)}, b)
	set, err := OpenIdle(context.Background(), gw, 50, IdleOptions{})
	defer set.Close()
	if err != nil {
		t.Fatal(err)
	}
	if set.Len() != 50 {
		t.Fatalf("%d clients connected, want 50", set.Len())
	}
	if n := g.Stats().ClientsConnected; n != 50 {
		t.Fatalf("the gateway has %d clients, want 50", n)
	}
	// Close disconnects them: the gateway need not wait for their
	// keep-alive (18 h) to end their sessions.
	set.Close()
	deadline := time.Now().Add(5 * time.Second)
	for g.Stats().ClientsConnected != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d clients still connected after Close", g.Stats().ClientsConnected)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestNoGateway(t *testing.T) {
	// A UDP port nobody listens on: CONNECT gets no answer (or an ICMP
	// error).
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	set, err := OpenIdle(ctx, addr, 1, IdleOptions{Timeout: 300 * time.Millisecond, Retry: 100 * time.Millisecond})
	defer set.Close()
	if err == nil {
		t.Fatal("no error without a gateway")
	}
	var ne net.Error
	if !errors.As(err, &ne) && !errors.Is(err, ErrTimeout) {
		t.Logf("error: %v", err)
	}
}
