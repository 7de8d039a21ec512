package queue

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// procIO reads /proc/self/io: write_bytes (bytes this process caused to be
// sent to the block device, page granular, journal not included) and wchar
// (bytes passed to write(2) and friends). ok is false where it is missing.
func procIO() (writeBytes, wchar int64, ok bool) {
	f, err := os.Open("/proc/self/io")
	if err != nil {
		return 0, 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ": ")
		n, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "write_bytes":
			writeBytes = n
		case "wchar":
			wchar = n
		}
	}
	return writeBytes, wchar, true
}

// ioMeter reports disk-B/msg (write_bytes) and wchar-B/msg over a run.
type ioMeter struct {
	wb, wc int64
	ok     bool
}

func startIO() ioMeter {
	wb, wc, ok := procIO()
	return ioMeter{wb, wc, ok}
}

func (m ioMeter) report(b *testing.B, msgs int) {
	wb, wc, ok := procIO()
	if !ok || !m.ok || msgs == 0 {
		return
	}
	b.ReportMetric(float64(wb-m.wb)/float64(msgs), "disk-B/msg")
	b.ReportMetric(float64(wc-m.wc)/float64(msgs), "wchar-B/msg")
}

func benchRecord(i uint64) Record {
	r := rec(i, 100)
	r.Topic = "sensors/gw1/temperature"
	return r
}

// BenchmarkAppend64: 64 goroutines append 100-byte payloads, each waiting
// for its record to be durable before the next (as 64 QoS 1 publishers
// would). msgs/s is durable appends per second.
func BenchmarkAppend64(b *testing.B) {
	q, _ := openTest(b, Options{})
	var next atomic.Uint64
	var wg sync.WaitGroup
	io := startIO()
	start := time.Now()
	b.ResetTimer()
	for range 64 {
		wg.Go(func() {
			done := make(chan error, 1)
			for {
				i := next.Add(1)
				if i > uint64(b.N) {
					return
				}
				q.Append(benchRecord(i), func(err error) { done <- err })
				if err := <-done; err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	io.report(b, b.N)
	st := q.Stats()
	b.ReportMetric(float64(st.Appended)/float64(max(st.Commits, 1)), "msgs/commit")
}

// BenchmarkAppendPipelined: one producer keeps up to 1024 appends in
// flight, as the bridge does when the broker hands it a stream.
func BenchmarkAppendPipelined(b *testing.B) {
	q, _ := openTest(b, Options{})
	window := make(chan struct{}, 1024)
	var wg sync.WaitGroup
	io := startIO()
	start := time.Now()
	b.ResetTimer()
	for i := range uint64(b.N) {
		window <- struct{}{}
		wg.Add(1)
		q.Append(benchRecord(i), func(err error) {
			if err != nil {
				b.Error(err)
			}
			<-window
			wg.Done()
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	io.report(b, b.N)
	st := q.Stats()
	b.ReportMetric(float64(st.Appended)/float64(max(st.Commits, 1)), "msgs/commit")
}

// fill appends n records with up to 1024 in flight.
func fill(tb testing.TB, q *Queue, n int) {
	tb.Helper()
	window := make(chan struct{}, 1024)
	var wg sync.WaitGroup
	for i := range uint64(n) {
		window <- struct{}{}
		wg.Add(1)
		q.Append(benchRecord(i), func(err error) {
			if err != nil {
				tb.Error(err)
			}
			<-window
			wg.Done()
		})
	}
	wg.Wait()
}

// BenchmarkDrain: the sender's loop on a pre-filled queue: Read 100
// records, Remove each (asynchronously, as acknowledgements come), repeat.
func BenchmarkDrain(b *testing.B) {
	q, _ := openTest(b, Options{})
	fill(b, q, b.N)
	var wg sync.WaitGroup
	io := startIO()
	start := time.Now()
	b.ResetTimer()
	var after uint64
	for n := 0; n < b.N; {
		rs, err := q.Read(after, 100)
		if err != nil {
			b.Fatal(err)
		}
		if len(rs) == 0 {
			b.Fatalf("queue empty after %d of %d", n, b.N)
		}
		for _, r := range rs {
			wg.Add(1)
			q.Remove(r.Seq, func(err error) {
				if err != nil {
					b.Error(err)
				}
				wg.Done()
			})
		}
		n += len(rs)
		after = rs[len(rs)-1].Seq
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	io.report(b, b.N)
	if st := q.Stats(); st.Messages != 0 {
		b.Fatalf("%d records left", st.Messages)
	}
}

// memStatus reads VmRSS, RssAnon and RssFile (KiB) from /proc/self/status.
func memStatus() map[string]int64 {
	out := map[string]int64{}
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch k {
		case "VmRSS", "RssAnon", "RssFile", "VmHWM":
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			out[k] = n
		}
	}
	return out
}

func memLine(tb testing.TB, label string, path string) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m := memStatus()
	var size int64
	if fi, err := os.Stat(path); err == nil {
		size = fi.Size()
	}
	tb.Logf("%-14s VmRSS %6.1f MiB (anon %5.1f, file %5.1f)  heap in use %5.1f MiB  file %6.1f MiB",
		label, float64(m["VmRSS"])/1024, float64(m["RssAnon"])/1024, float64(m["RssFile"])/1024,
		float64(ms.HeapInuse)/(1<<20), float64(size)/(1<<20))
}

// TestMillionRSS queues 1,000,000 records of 100 bytes and logs the
// process's memory at every quarter: it must stay flat, the queue keeping
// nothing per record in memory. Then it reopens the file (timed: Open must
// not scan) and drains it. Minutes long: run with
//
//	SNGATE_QUEUE_1M=1 go test -run TestMillionRSS -v -timeout 30m ./bridge/queue
func TestMillionRSS(t *testing.T) {
	if os.Getenv("SNGATE_QUEUE_1M") == "" {
		t.Skip("set SNGATE_QUEUE_1M=1 to queue a million records")
	}
	const total, step = 1_000_000, 250_000
	path := filepath.Join(t.TempDir(), "million.db")
	q := openAt(t, path, Options{})
	memLine(t, "0", path)
	io := startIO()
	start := time.Now()
	for n := 0; n < total; n += step {
		window := make(chan struct{}, 1024)
		var wg sync.WaitGroup
		for i := uint64(n); i < uint64(n+step); i++ {
			window <- struct{}{}
			wg.Add(1)
			q.Append(benchRecord(i), func(err error) {
				if err != nil {
					t.Error(err)
				}
				<-window
				wg.Done()
			})
		}
		wg.Wait()
		memLine(t, strconv.Itoa(n+step), path)
	}
	el := time.Since(start)
	st := q.Stats()
	wb, wc, _ := procIO()
	t.Logf("appended %d in %v (%.0f msgs/s), %d commits (%.0f msgs/commit), disk %.0f B/msg, wchar %.0f B/msg",
		st.Appended, el.Round(time.Millisecond), float64(total)/el.Seconds(), st.Commits,
		float64(st.Appended)/float64(st.Commits), float64(wb-io.wb)/total, float64(wc-io.wc)/total)
	if st.Messages != total {
		t.Fatalf("%d records queued", st.Messages)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}

	t0 := time.Now()
	q = openAt(t, path, Options{})
	t.Logf("reopen of %d records: %v", q.Stats().Messages, time.Since(t0).Round(time.Microsecond))
	memLine(t, "reopened", path)

	// Drain as the sender does: acknowledgements (Removes) in flight are
	// bounded by its window.
	t0 = time.Now()
	io = startIO()
	var after uint64
	var wg sync.WaitGroup
	window := make(chan struct{}, 1024)
	for n := 0; n < total; {
		rs, err := q.Read(after, 500)
		if err != nil || len(rs) == 0 {
			t.Fatalf("read after %d: %d records, %v", n, len(rs), err)
		}
		for _, r := range rs {
			window <- struct{}{}
			wg.Add(1)
			q.Remove(r.Seq, func(err error) {
				if err != nil {
					t.Error(err)
				}
				<-window
				wg.Done()
			})
		}
		n += len(rs)
		after = rs[len(rs)-1].Seq
		if n%step == 0 {
			memLine(t, fmt.Sprintf("drained %d", n), path)
		}
	}
	wg.Wait()
	wb, wc, _ = procIO()
	el = time.Since(t0)
	t.Logf("drained %d in %v (%.0f msgs/s), disk %.0f B/msg, wchar %.0f B/msg", total, el.Round(time.Millisecond),
		float64(total)/el.Seconds(), float64(wb-io.wb)/total, float64(wc-io.wc)/total)
	memLine(t, "drained", path)
	if st := q.Stats(); st.Messages != 0 {
		t.Fatalf("%d left", st.Messages)
	}

	// A trickle after the drain: one message at a time, appended then
	// removed, as a quiet sensor's. Every commit rewrites bbolt's freelist,
	// which now lists most of the file.
	const trickle = 500
	io = startIO()
	c0 := q.Stats().Commits
	for i := range uint64(trickle) {
		seqs := mustAppend(t, q, benchRecord(i))
		removeWait(t, q, seqs[0])
	}
	wb, _, _ = procIO()
	t.Logf("trickle after the drain: %d commits, disk %.0f B/msg", q.Stats().Commits-c0, float64(wb-io.wb)/trickle)
}
