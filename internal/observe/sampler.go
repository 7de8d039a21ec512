package observe

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Sampling defaults: ten minutes of history at a glance.
const (
	defaultSampleEvery = 10 * time.Second
	defaultSamples     = 60
)

// seriesKey names one throughput series: the gateway's messages in, or
// one bridge's messages sent.
type seriesKey struct{ kind, name string }

const (
	kindGateway = "gateway"
	kindBridge  = "bridge"
)

// ring is a counter's increase per interval over its last samples: at most
// len(deltas) once full, so that a long uptime costs nothing more.
type ring struct {
	last   uint64 // the counter at the previous sample
	deltas []int64
	next   int // where the next delta goes once the ring is full
	size   int
}

// add records counter: its increase since the previous sample (the
// counter itself if it went back, as after a restart of its part). The
// first sample only sets the base.
func (r *ring) add(counter uint64, primed bool) {
	defer func() { r.last = counter }()
	if !primed {
		return
	}
	d := int64(counter - r.last)
	if counter < r.last {
		d = int64(counter)
	}
	if len(r.deltas) < r.size {
		r.deltas = append(r.deltas, d)
		return
	}
	r.deltas[r.next] = d
	r.next = (r.next + 1) % r.size
}

// values returns the deltas, oldest first.
func (r *ring) values() []int64 {
	out := make([]int64, 0, len(r.deltas))
	out = append(out, r.deltas[r.next:]...)
	return append(out, r.deltas[:r.next]...)
}

// history is the throughput the status page draws as sparklines. Its
// sampler goroutine belongs to the Server that serves it (see Listen); a
// handler served otherwise shows only what sample was called for.
type history struct {
	src   Sources
	every time.Duration
	size  int

	running atomic.Bool // a sampler goroutine is on

	mu     sync.Mutex
	series map[seriesKey]*ring
}

func newHistory(src Sources, every time.Duration, size int) *history {
	if every <= 0 {
		every = defaultSampleEvery
	}
	if size < 2 {
		size = defaultSamples
	}
	return &history{src: src, every: every, size: size, series: map[seriesKey]*ring{}}
}

// sample reads the counters once. A bridge that is gone loses its series.
func (h *history) sample() {
	counters := map[seriesKey]uint64{}
	if h.src.Gateway != nil {
		counters[seriesKey{kindGateway, ""}] = uint64(h.src.Gateway().Received)
	}
	if h.src.Bridges != nil {
		for _, st := range h.src.Bridges() {
			counters[seriesKey{kindBridge, st.Name}] = st.Sent
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for k := range h.series {
		if _, ok := counters[k]; !ok {
			delete(h.series, k)
		}
	}
	for k, n := range counters {
		r, primed := h.series[k]
		if !primed {
			r = &ring{size: h.size}
			h.series[k] = r
		}
		r.add(n, primed)
	}
}

// values returns the deltas of one series, oldest first; nil before two
// samples.
func (h *history) values(k seriesKey) []int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r := h.series[k]; r != nil {
		return r.values()
	}
	return nil
}

// start runs the sampler until ctx ends, unless one already runs; the
// returned channel is closed when it has stopped (nil if none started).
func (h *history) start(ctx context.Context) <-chan struct{} {
	if !h.running.CompareAndSwap(false, true) {
		return nil
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer h.running.Store(false)
		tick := time.NewTicker(h.every)
		defer tick.Stop()
		h.sample()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				h.sample()
			}
		}
	}()
	return done
}
