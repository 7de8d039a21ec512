package storage

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const benchWriters = 8

// benchPuts runs b.N puts of 100-byte values from benchWriters goroutines,
// each waiting for its write to be durable before issuing the next, and
// reports throughput as ops/s.
func benchPuts(b *testing.B, write func(k, v []byte) error) {
	val := make([]byte, 100)
	var next atomic.Uint64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range benchWriters {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > uint64(b.N) {
					return
				}
				if err := write(key(i), val); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
}

func benchGroupCommit(b *testing.B, opts Options) {
	db, _ := openTest(b, opts)
	benchPuts(b, func(k, v []byte) error {
		ch := make(chan error, 1)
		db.Submit(put(k, v), func(err error) { ch <- err })
		return <-ch
	})
	st := db.Stats()
	b.ReportMetric(float64(st.Ops)/float64(max(st.Commits, 1)), "ops/commit")
	b.ReportMetric(float64(st.CommitTime.Microseconds())/float64(max(st.Commits, 1)), "µs/commit")
}

// BenchmarkGroupCommit: Submit + wait for done, default 2ms commit window.
func BenchmarkGroupCommit(b *testing.B) { benchGroupCommit(b, Options{}) }

// BenchmarkGroupCommitNoWindow: Submit + wait, CommitWindow < 0 (batches form
// only from ops that arrive during the previous fsync).
func BenchmarkGroupCommitNoWindow(b *testing.B) { benchGroupCommit(b, Options{CommitWindow: -1}) }

// BenchmarkUpdate: the same through Update (Submit + wait, with context).
func BenchmarkUpdate(b *testing.B) {
	db, _ := openTest(b, Options{})
	benchPuts(b, func(k, v []byte) error { return db.Update(context.Background(), put(k, v)) })
}

// BenchmarkNaive is the baseline: one bbolt Update (one fsync'ed
// transaction) per op, same 8 writers.
func BenchmarkNaive(b *testing.B) {
	db, _ := openTest(b, Options{})
	benchPuts(b, func(k, v []byte) error { return db.bolt.Update(put(k, v)) })
}

// BenchmarkBoltBatch is bbolt's own DB.Batch (10ms default delay), for reference.
func BenchmarkBoltBatch(b *testing.B) {
	db, _ := openTest(b, Options{})
	benchPuts(b, func(k, v []byte) error { return db.bolt.Batch(put(k, v)) })
}
