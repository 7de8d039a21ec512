package bridge

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/broker/brokertest"
	"github.com/sngate/sngate/internal/mosquittotest"
)

// waitTime bounds every wait of these tests; nothing is timed.
const waitTime = 60 * time.Second

// protocols are the two upstream libraries; every bridge test runs on both.
var protocols = []string{"mqtt5", "mqtt311"}

// testLogger logs to the test (shown with -v or on failure); debug level
// with SNGATE_TEST_DEBUG set.
func testLogger(t testing.TB) *slog.Logger {
	level := slog.LevelInfo
	if os.Getenv("SNGATE_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// local is the local side of a bridge test: a broker on a free port with
// a bridge attached.
type local struct {
	srv  *broker.Server
	addr string
	br   *Bridge
}

// startLocal runs a broker keeping its state in dataDir and a bridge with
// one connection, and starts the bridge.
func startLocal(t testing.TB, dataDir string, conns ...ConnectionConfig) *local {
	t.Helper()
	srv, addr := brokertest.NewServer(t, broker.Config{}, broker.Options{DataDir: dataDir})
	br, err := New(Config{Connections: conns}, srv, Options{DataDir: dataDir, Logger: testLogger(t), StatusInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("bridge.New: %v", err)
	}
	br.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := br.Shutdown(ctx); err != nil {
			t.Errorf("bridge shutdown: %v", err)
		}
	})
	return &local{srv: srv, addr: addr, br: br}
}

// stats returns the stats of connection name.
func (l *local) stats(t testing.TB, name string) ConnectionStats {
	t.Helper()
	for _, st := range l.br.Stats() {
		if st.Name == name {
			return st
		}
	}
	t.Fatalf("no bridge connection %q", name)
	return ConnectionStats{}
}

// waitStats waits until cond holds for connection name.
func (l *local) waitStats(t testing.TB, name, what string, cond func(ConnectionStats) bool) ConnectionStats {
	t.Helper()
	deadline := time.Now().Add(waitTime)
	for {
		st := l.stats(t, name)
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("bridge %s: no %s within %v: %+v", name, what, waitTime, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cutUpstream waits until connection name is up, stops the upstream and
// waits until the bridge has noticed: the outage has begun.
func (l *local) cutUpstream(t testing.TB, name string, up *mosquittotest.Broker) {
	t.Helper()
	l.waitStats(t, name, "connection", func(s ConnectionStats) bool { return s.Connected })
	up.Stop()
	l.waitStats(t, name, "disconnection", func(s ConnectionStats) bool { return !s.Connected })
}

// client attaches an in-process client to the local broker, collecting
// what it receives.
func (l *local) client(t testing.TB, id string) (*broker.LocalClient, *inbox) {
	t.Helper()
	in := &inbox{}
	lc, _, err := l.srv.Connect(broker.LocalConfig{ClientID: id, CleanSession: true, OnMessage: in.add})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lc.Disconnect(false) })
	in.ack = lc.Ack
	return lc, in
}

// inbox collects deliveries to an in-process client and acknowledges them.
type inbox struct {
	mu  sync.Mutex
	got []broker.Delivery
	ack func(uint16)
}

func (in *inbox) add(d broker.Delivery) {
	in.mu.Lock()
	in.got = append(in.got, d)
	in.mu.Unlock()
	if d.PacketID != 0 {
		go in.ack(d.PacketID) // not under the session lock
	}
}

func (in *inbox) reset() {
	in.mu.Lock()
	in.got = nil
	in.mu.Unlock()
}

func (in *inbox) wait(t testing.TB, n int) []broker.Delivery {
	t.Helper()
	deadline := time.Now().Add(waitTime)
	for {
		in.mu.Lock()
		got := append([]broker.Delivery(nil), in.got...)
		in.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d messages, want %d", len(got), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// publishNumbered publishes payloads first..last (decimal) to topic on the
// broker at addr with mosquitto_pub -l: one real MQTT client, QoS 1
// pipelined, in order. It returns once mosquitto_pub has every PUBACK.
func publishNumbered(t testing.TB, addr, topic string, qos byte, first, last int) {
	t.Helper()
	if _, err := exec.LookPath("mosquitto_pub"); err != nil {
		t.Skip("mosquitto_pub not installed (Debian package mosquitto-clients)")
	}
	host, port, _ := net.SplitHostPort(addr)
	var lines bytes.Buffer
	for i := first; i <= last; i++ {
		fmt.Fprintf(&lines, "%d\n", i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	defer cancel()
	cmd := exec.CommandContext(ctx, "mosquitto_pub", "-h", host, "-p", port, "-t", topic, "-q", strconv.Itoa(int(qos)), "-M", "100", "-l")
	cmd.Stdin = &lines
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_pub: %v: %s", err, out)
	}
}

// checkNumbered checks that payloads hold first..last in order, each at
// least once, and returns how many were duplicates.
func checkNumbered(t testing.TB, payloads []string, first, last int) (dups int) {
	t.Helper()
	next := first
	seen := make(map[int]bool)
	for _, p := range payloads {
		n, err := strconv.Atoi(p)
		if err != nil {
			t.Fatalf("payload %q is not a number", p)
		}
		if seen[n] {
			dups++
			continue
		}
		if n != next {
			t.Fatalf("got %d where %d was due (out of order or lost)", n, next)
		}
		seen[n] = true
		next++
	}
	if next != last+1 {
		t.Fatalf("got %d..%d, want %d..%d", first, next-1, first, last)
	}
	return dups
}
