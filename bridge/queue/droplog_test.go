package queue

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// captureHandler is a slog.Handler that keeps every record, for tests.
type captureHandler struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}
func (h *captureHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *captureHandler) WithGroup(string) slog.Handler      { return h }

// count returns how many records at level have msg containing sub.
func (h *captureHandler) count(level slog.Level, sub string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.recs {
		if r.Level == level && strings.Contains(r.Message, sub) {
			n++
		}
	}
	return n
}

// attrs returns the attributes of the i-th record at level.
func (h *captureHandler) attrs(level slog.Level, i int) map[string]slog.Value {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.recs {
		if r.Level != level {
			continue
		}
		if i == 0 {
			m := map[string]slog.Value{}
			r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value; return true })
			return m
		}
		i--
	}
	return nil
}

func TestDropLogRateLimited(t *testing.T) {
	h := &captureHandler{}
	d := newDropLog(slog.New(h), time.Hour) // no second summary before close
	d.add(1, 0, 0, "limit")                 // first: logged at once
	for range 99 {
		d.add(1, 0, 0, "limit")
	}
	d.add(0, 5, 0, "disk full")
	d.add(0, 0, 0, "nothing") // no event
	if n := h.count(slog.LevelWarn, "dropped"); n != 1 {
		t.Fatalf("%d warnings before close, want 1", n)
	}
	d.close()
	if n := h.count(slog.LevelWarn, "dropped"); n != 2 {
		t.Fatalf("%d warnings after close, want 2", n)
	}
	first, second := h.attrs(slog.LevelWarn, 0), h.attrs(slog.LevelWarn, 1)
	if first["dropped_oldest"].Uint64() != 1 || second["dropped_oldest"].Uint64() != 99 ||
		second["refused"].Uint64() != 5 || second["cause"].String() != "disk full" {
		t.Fatalf("summaries %v, %v", first, second)
	}
	d.close() // nothing left: no third line
	if n := h.count(slog.LevelWarn, "dropped"); n != 2 {
		t.Fatalf("%d warnings after a second close", n)
	}
}

// TestDropLogTimer: the summary of events inside the interval comes when
// the interval ends, without another event.
func TestDropLogTimer(t *testing.T) {
	h := &captureHandler{}
	d := newDropLog(slog.New(h), time.Millisecond)
	defer d.close()
	d.add(1, 0, 0, "limit")
	d.add(1, 0, 0, "limit")
	deadline := time.Now().Add(10 * time.Second)
	for h.count(slog.LevelWarn, "dropped") < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := h.count(slog.LevelWarn, "dropped"); n != 2 {
		t.Fatalf("%d warnings, want 2", n)
	}
}
