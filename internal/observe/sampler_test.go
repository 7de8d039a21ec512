package observe

import (
	"context"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sngate/sngate/bridge"
)

func TestRingBounded(t *testing.T) {
	tests := []struct {
		name     string
		size     int
		counters []uint64
		want     []int64
	}{
		{"first sample is the base", 4, []uint64{7}, []int64{}},
		{"deltas", 4, []uint64{7, 9, 9, 20}, []int64{2, 0, 11}},
		{"full ring keeps the newest", 3, []uint64{0, 1, 3, 6, 10, 15}, []int64{3, 4, 5}},
		{"counter reset counts from zero", 4, []uint64{100, 110, 4}, []int64{10, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &ring{size: tt.size}
			for i, c := range tt.counters {
				r.add(c, i > 0)
			}
			if got := r.values(); !slices.Equal(got, tt.want) {
				t.Errorf("values %v, want %v", got, tt.want)
			}
		})
	}
	r := &ring{size: 60}
	for i := range 10000 {
		r.add(uint64(i), i > 0)
	}
	if len(r.deltas) != 60 || cap(r.deltas) > 64 {
		t.Errorf("after 10000 samples: len %d cap %d, want 60", len(r.deltas), cap(r.deltas))
	}
}

func TestHistoryForgetsGoneBridges(t *testing.T) {
	names := []string{"a", "b"}
	h := newHistory(Sources{Bridges: func() []bridge.ConnectionStats {
		out := []bridge.ConnectionStats{}
		for _, n := range names {
			out = append(out, bridge.ConnectionStats{Name: n})
		}
		return out
	}}, 0, 0)
	h.sample()
	h.sample()
	names = []string{"b"}
	h.sample()
	if h.values(seriesKey{kindBridge, "a"}) != nil || len(h.values(seriesKey{kindBridge, "b"})) != 2 {
		t.Errorf("series after a bridge went: %v", h.series)
	}
}

// TestShutdownStopsSampler: the Server samples while it serves, and
// Shutdown returns only once the sampler has stopped.
func TestShutdownStopsSampler(t *testing.T) {
	var calls atomic.Int64
	src := Sources{Bridges: func() []bridge.ConnectionStats {
		n := calls.Add(1)
		return []bridge.ConnectionStats{{Name: "cloud", Sent: uint64(n)}}
	}}
	h := Handler(src, Health{}, Status{SampleEvery: 2 * time.Millisecond, Samples: 5})
	hist := h.(*handler).hist
	srv, err := Listen(Config{Listen: "127.0.0.1:0"}, h, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for calls.Load() < 20 {
		if time.Now().After(deadline) {
			t.Fatalf("%d samples in 5s", calls.Load())
		}
		time.Sleep(time.Millisecond)
	}
	if got := hist.values(seriesKey{kindBridge, "cloud"}); len(got) != 5 {
		t.Errorf("%d samples kept, want 5", len(got))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-srv.sampling:
	default:
		t.Fatal("Shutdown returned with the sampler running")
	}
	if hist.running.Load() {
		t.Error("the history still counts a running sampler")
	}
	n := calls.Load()
	time.Sleep(20 * time.Millisecond)
	if calls.Load() != n {
		t.Error("sampled after Shutdown")
	}

	// The handler may be served again, and one sampler runs at a time.
	srv, err = Listen(Config{Listen: "127.0.0.1:0"}, h, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	if srv.sampling == nil {
		t.Fatal("no sampler on the second Listen")
	}
	if hist.start(context.Background()) != nil {
		t.Error("a second sampler started beside the first")
	}
}
