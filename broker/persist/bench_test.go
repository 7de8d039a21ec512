package persist

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sngate/sngate/internal/storage"
)

// BenchmarkApplyEnqueueDequeue: 8 goroutines, each applying one
// Enqueue+Dequeue unit (100-byte payload) and waiting for it to be durable.
func BenchmarkApplyEnqueueDequeue(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts storage.Options
	}{
		{"window=2ms", storage.Options{}},
		{"window=none", storage.Options{CommitWindow: -1}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := openStore(b, b.TempDir(), bc.opts)
			const writers = 8
			for w := range writers {
				mustApply(b, s, PutSession(Session{ClientID: clientName(w)}))
			}
			payload := make([]byte, 100)
			var next atomic.Uint64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for w := range writers {
				id := clientName(w)
				wg.Go(func() {
					ch := make(chan error, 1)
					done := func(err error) { ch <- err }
					var prev uint64 // this session's previous message, now "delivered"
					for {
						i := next.Add(1)
						if i > uint64(b.N) {
							return
						}
						s.Apply([]Op{
							Enqueue(id, Queued{Seq: i, Msg: Message{Topic: "bench/t", Payload: payload, QoS: 1}}),
							Dequeue(id, prev),
						}, done)
						prev = i
						if err := <-ch; err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "applies/s")
			st := s.Stats()
			b.ReportMetric(float64(st.Ops)/float64(max(st.Commits, 1)), "applies/commit")
			b.ReportMetric(float64(st.CommitTime.Microseconds())/float64(max(st.Commits, 1)), "µs/commit")
		})
	}
}

func clientName(i int) string { return "bench-" + string(rune('a'+i)) }

// BenchmarkApplyQueuedDelivery: the store writes of a message that waits in
// a session's queue before it is sent, as units of 8 concurrent sessions:
// each unit enqueues message i, and either records the packet id of
// message i-1 (now sent, SetInflight) or not, and dequeues message i-2 (now
// acknowledged). It measures what SetInflight adds to the same commits.
func BenchmarkApplyQueuedDelivery(b *testing.B) {
	for _, size := range []int{100, 4096} {
		for _, setInflight := range []bool{false, true} {
			name := fmt.Sprintf("payload=%d/setinflight=%v", size, setInflight)
			b.Run(name, func(b *testing.B) {
				s := openStore(b, b.TempDir(), storage.Options{})
				const writers = 8
				for w := range writers {
					mustApply(b, s, PutSession(Session{ClientID: clientName(w)}))
				}
				payload := make([]byte, size)
				var next atomic.Uint64
				var wg sync.WaitGroup
				b.ResetTimer()
				start := time.Now()
				for w := range writers {
					id := clientName(w)
					wg.Go(func() {
						ch := make(chan error, 1)
						done := func(err error) { ch <- err }
						var prev, prev2 uint64
						for {
							i := next.Add(1)
							if i > uint64(b.N) {
								return
							}
							ops := []Op{Enqueue(id, Queued{Seq: i, Msg: Message{Topic: "bench/t", Payload: payload, QoS: 1}})}
							if setInflight {
								ops = append(ops, SetInflight(id, prev, uint16(prev), false))
							}
							ops = append(ops, Dequeue(id, prev2))
							s.Apply(ops, done)
							prev, prev2 = i, prev
							if err := <-ch; err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "applies/s")
				st := s.Stats()
				b.ReportMetric(float64(st.CommitTime.Microseconds())/float64(max(st.Commits, 1)), "µs/commit")
			})
		}
	}
}
