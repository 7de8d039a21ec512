package gateway

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/broker/brokertest"
	"github.com/sngate/sngate/mqttsn"
)

func TestLimiterBurstAndRefill(t *testing.T) {
	t0 := time.Unix(1000, 0)
	l := newLimiter(10, t0)
	allowed := 0
	for range 50 {
		if l.allow("a", t0) {
			allowed++
		}
	}
	if allowed != 20 {
		t.Fatalf("burst: %d allowed, want 20 (2 x 10/s)", allowed)
	}
	if !l.allow("b", t0) {
		t.Fatal("another address is limited by the first one's flood")
	}
	if l.allow("a", t0.Add(50*time.Millisecond)) {
		t.Fatal("half a token after 50ms at 10/s")
	}
	if !l.allow("a", t0.Add(100*time.Millisecond)) {
		t.Fatal("no token after 100ms at 10/s")
	}
	unlimited := newLimiter(0, t0)
	for range 10000 {
		if !unlimited.allow("a", t0) {
			t.Fatal("0 packets per second limited something")
		}
	}
}

func TestLimiterTableIsBounded(t *testing.T) {
	t0 := time.Unix(1000, 0)
	l := newLimiter(10, t0)
	l.max = 100
	// A flood from ever new (spoofed) addresses, all within one sweep
	// period: the table stops at its bound, the rest share the overflow
	// bucket.
	allowed := 0
	for i := range 1000 {
		if l.allow(Addr(fmt.Sprint("10.0.0.1:", i)), t0) {
			allowed++
		}
	}
	if len(l.buckets) != 100 {
		t.Fatalf("%d addresses tracked, want the bound of 100", len(l.buckets))
	}
	if allowed != 100+20 {
		t.Fatalf("%d allowed, want 100 tracked + a burst of 20 through the overflow bucket", allowed)
	}
	// Once they are quiet long enough to be full again, they are forgotten
	// and new addresses get buckets of their own.
	t1 := t0.Add(2*time.Second + limiterSweepEvery)
	if !l.allow("192.168.1.1:5", t1) {
		t.Fatal("a new address after the flood is limited")
	}
	if len(l.buckets) != 1 {
		t.Fatalf("%d addresses tracked after the sweep, want 1", len(l.buckets))
	}
	// An address still draining its bucket is not forgotten.
	for range 30 {
		l.allow("192.168.1.1:5", t1)
	}
	l.sweep(t1.Add(time.Second))
	if len(l.buckets) != 1 {
		t.Fatal("a sweep forgot an address that had not earned its burst back")
	}
}

func TestLogThrottle(t *testing.T) {
	var lt logThrottle
	t0 := time.Unix(1000, 0)
	if n, ok := lt.tick(t0); !ok || n != 1 {
		t.Fatalf("first event: %d %v", n, ok)
	}
	for i := range 5 {
		if _, ok := lt.tick(t0.Add(time.Duration(i) * time.Second)); ok {
			t.Fatal("logged twice within 10s")
		}
	}
	if n, ok := lt.tick(t0.Add(logEvery)); !ok || n != 6 {
		t.Fatalf("after 10s: %d %v, want 6 events in one line", n, ok)
	}
}

// logBuffer is a slog handler's output, safe to read while the gateway logs.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestRateLimitDropsAFloodAndSparesOthers(t *testing.T) {
	var logs logBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b, _ := brokertest.NewServer(t, broker.Config{}, broker.Options{})
	g, gw := serveGateway(t, Config{PacketsPerSecond: new(5)}, b, log)
	good := snClient(t, gw, mqttsn.ClientConfig{ClientID: "good", CleanSession: true})
	if err := good.Connect(bg()); err != nil {
		t.Fatal(err)
	}
	flood := dialRaw(t, gw)
	for range 100 {
		flood.write([]byte{0x00}) // malformed when it gets through
	}
	if err := good.Ping(bg()); err != nil {
		t.Fatalf("the well-behaved client suffers: %v", err)
	}
	deadline := time.Now().Add(waitTime)
	for {
		s := g.Stats()
		if s.RateLimited+s.Malformed >= 100 {
			if s.Malformed > 12 || s.RateLimited < 88 {
				t.Errorf("stats %+v: want about 10 through (burst 2 x 5/s), the rest rate-limited", s)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v: not all datagrams counted", s)
		}
		time.Sleep(10 * time.Millisecond)
	}
	out := logs.String()
	if n := strings.Count(out, "RATE-LIMITED"); n != 1 {
		t.Errorf("%d RATE-LIMITED lines, want 1 per 10s:\n%s", n, out)
	}
	if n := strings.Count(out, "malformed datagrams dropped"); n != 1 {
		t.Errorf("%d malformed lines, want 1 per 10s:\n%s", n, out)
	}
}

func TestPacketsPerSecondConfig(t *testing.T) {
	if c := (Config{}).withDefaults(); c.PacketsPerSecond == nil || *c.PacketsPerSecond != DefaultPacketsPerSecond {
		t.Errorf("default packets_per_second: %v", c.PacketsPerSecond)
	}
	if c := (Config{PacketsPerSecond: new(0)}).withDefaults(); c.packetsPerSecond() != 0 {
		t.Error("packets_per_second 0 does not mean unlimited")
	}
	c := Config{PacketsPerSecond: new(-1)}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "packets_per_second") {
		t.Errorf("negative packets_per_second: %v", err)
	}
}

// pacedTransport is a transport whose medium bounds its senders, as a
// serial line's baud rate does.
type pacedTransport struct{ Transport }

func (pacedTransport) Paced() bool { return true }

func TestPacedTransportIsNotRateLimited(t *testing.T) {
	b, _ := brokertest.NewServer(t, broker.Config{}, broker.Options{})
	g, err := New(Config{PacketsPerSecond: new(5)}, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := g.rateFor(pacedTransport{}); r != 0 {
		t.Errorf("a paced transport is limited to %d datagrams per second, want no limit", r)
	}
	if r := g.rateFor(&UDPTransport{}); r != 5 {
		t.Errorf("UDP is limited to %d datagrams per second, want packets_per_second (5)", r)
	}
}
