package bridge

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/broker/brokertest"
	"github.com/sngate/sngate/internal/mosquittotest"
)

// procIO reads a counter of /proc/self/io: write_bytes is what reached
// the block layer, the figure that wears an SD card.
func procIO(tb testing.TB, field string) int64 {
	tb.Helper()
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		tb.Skipf("no /proc/self/io: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := bytes.CutPrefix(sc.Bytes(), []byte(field+": ")); ok {
			n, _ := strconv.ParseInt(string(v), 10, 64)
			return n
		}
	}
	tb.Fatalf("/proc/self/io has no %s", field)
	return 0
}

// rssMiB is this process's resident set.
func rssMiB(tb testing.TB) float64 {
	tb.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Skipf("no /proc/self/status: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmRSS:")); ok {
			kb, _ := strconv.ParseInt(string(bytes.Fields(v)[0]), 10, 64)
			return float64(kb) / 1024
		}
	}
	return 0
}

// benchPayload is a 100-byte sensor reading.
var benchPayload = bytes.Repeat([]byte("x"), 100)

// queueing returns a broker with a bridge whose upstream is unreachable,
// so every message of sensors/# stays in the disk queue.
func queueing(tb testing.TB, dir string, url string) (*broker.Server, *Bridge) {
	tb.Helper()
	srv, _ := brokertest.NewServer(tb, broker.Config{}, broker.Options{DataDir: dir})
	inflight, _ := strconv.Atoi(os.Getenv("SNGATE_BRIDGE_INFLIGHT")) // 0: the default
	br, err := New(Config{Connections: []ConnectionConfig{{
		Name: "cloud", URL: url, ReconnectMax: time.Second, Inflight: inflight,
		Protocol: os.Getenv("SNGATE_BRIDGE_PROTOCOL"), // "": the default
		Queue:    QueueConfig{MaxMessages: 2_000_000, MaxBytes: 1 << 30},
		Rules:    []Rule{{Direction: DirOut, Topic: "sensors/#", QoS: 1, RemotePrefix: "gw1/"}},
	}}}, srv, Options{DataDir: dir, StatusInterval: -1})
	if err != nil {
		tb.Fatal(err)
	}
	br.Start()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		br.Shutdown(ctx)
	})
	return srv, br
}

// publishConcurrently publishes n QoS 1 messages to sensors/<publisher>
// from the given number of in-process publishers, each waiting for its
// acknowledgement (the disk queue's fsync) before the next.
func publishConcurrently(tb testing.TB, srv *broker.Server, publishers, n int, progress func(done int64)) {
	tb.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	for p := range publishers {
		lc, _, err := srv.Connect(broker.LocalConfig{ClientID: fmt.Sprintf("pub%d", p), CleanSession: true})
		if err != nil {
			tb.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer lc.Disconnect(false)
			topic := fmt.Sprintf("sensors/%d", p)
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				if err := lc.Publish(context.Background(), broker.Message{Topic: topic, Payload: benchPayload, QoS: 1}); err != nil {
					tb.Error(err)
					return
				}
				if progress != nil {
					progress(i)
				}
			}
		}()
	}
	wg.Wait()
}

// BenchmarkBridgeEnqueue: QoS 1 messages from many publishers into the
// bridge's disk queue, each acknowledged only once durable. Reports the
// rate and the bytes written to disk per message: the more publishers
// wait at once, the more messages share a commit.
func BenchmarkBridgeEnqueue(b *testing.B) {
	for _, publishers := range []int{64, 512} {
		b.Run(fmt.Sprintf("publishers=%d", publishers), func(b *testing.B) {
			srv, br := queueing(b, b.TempDir(), "mqtt://127.0.0.1:1")
			writeBefore, charBefore := procIO(b, "write_bytes"), procIO(b, "wchar")
			start := time.Now()
			b.ResetTimer()
			publishConcurrently(b, srv, publishers, b.N, nil)
			b.StopTimer()
			elapsed := time.Since(start)
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
			b.ReportMetric(float64(procIO(b, "write_bytes")-writeBefore)/float64(b.N), "disk-B/msg")
			b.ReportMetric(float64(procIO(b, "wchar")-charBefore)/float64(b.N), "wchar-B/msg")
			if st := br.Stats()[0]; st.QueueMessages != int64(b.N) {
				b.Fatalf("queue holds %d, want %d", st.QueueMessages, b.N)
			}
		})
	}
}

// TestBridgeMillion queues 1,000,000 messages while the upstream is away,
// reporting the resident set as the queue grows, then drains them to a
// local mosquitto and reports the rate. It takes minutes: run it with
// SNGATE_BRIDGE_1M=1 go test -run TestBridgeMillion -v -timeout 30m ./bridge
// (SNGATE_BRIDGE_INFLIGHT=N sets the window, SNGATE_BRIDGE_PROTOCOL=mqtt311
// the protocol).
func TestBridgeMillion(t *testing.T) {
	if os.Getenv("SNGATE_BRIDGE_1M") == "" {
		t.Skip("set SNGATE_BRIDGE_1M=1 to queue and drain a million messages")
	}
	const n = 1_000_000
	up := mosquittotest.Start(t, mosquittotest.Config{})
	up.Stop()
	dir := t.TempDir()
	srv, br := queueing(t, dir, up.URL())

	t.Logf("RSS at start: %.1f MiB", rssMiB(t))
	var mu sync.Mutex
	maxRSS := 0.0
	start := time.Now()
	writeBefore := procIO(t, "write_bytes")
	publishConcurrently(t, srv, 512, n, func(i int64) {
		if i%250_000 == 0 {
			r := rssMiB(t)
			mu.Lock()
			maxRSS = max(maxRSS, r)
			mu.Unlock()
			t.Logf("%7d queued: RSS %.1f MiB", i, r)
		}
	})
	took := time.Since(start)
	st := br.Stats()[0]
	fi, _ := os.Stat(dir + "/bridge/cloud.db")
	t.Logf("queued %d in %v: %.0f msgs/s, %.0f disk bytes/msg; queue file %.1f MiB; max RSS %.1f MiB",
		st.QueueMessages, took.Round(time.Millisecond), float64(n)/took.Seconds(),
		float64(procIO(t, "write_bytes")-writeBefore)/n, float64(fi.Size())/(1<<20), maxRSS)
	if st.QueueMessages != n {
		t.Fatalf("queue holds %d, want %d", st.QueueMessages, n)
	}

	up.Start()
	start = time.Now()
	deadline := start.Add(20 * time.Minute)
	for br.Stats()[0].QueueMessages > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("not drained after 20 minutes: %+v", br.Stats()[0])
		}
		time.Sleep(100 * time.Millisecond)
		if r := rssMiB(t); r > maxRSS {
			maxRSS = r
		}
	}
	took = time.Since(start)
	t.Logf("drained %d in %v: %.0f msgs/s; max RSS %.1f MiB", n, took.Round(time.Millisecond), float64(n)/took.Seconds(), maxRSS)
}
