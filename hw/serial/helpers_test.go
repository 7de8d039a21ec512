package serial

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// bound is how long a test waits for something that should happen soon;
// it fails rather than hangs, and asserts nothing about speed.
const bound = 10 * time.Second

// logRecorder is a slog.Handler that keeps the records.
type logRecorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, r.Clone())
	return nil
}

// messages returns the messages logged so far, in order.
func (l *logRecorder) messages() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.records {
		out = append(out, r.Message)
	}
	return out
}

// attr returns attribute key of the first record with message msg.
func (l *logRecorder) attr(msg, key string) (slog.Value, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.records {
		if r.Message != msg {
			continue
		}
		var v slog.Value
		found := false
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == key {
				v, found = a.Value, true
				return false
			}
			return true
		})
		return v, found
	}
	return slog.Value{}, false
}

// eventually polls cond every few milliseconds until it holds, failing
// the test after bound.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still not %s after %v", what, bound)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// noPortGoroutines fails if a goroutine of this package's Port is still
// running (the reopening loop, or a Read or Write the test started).
func noPortGoroutines(t *testing.T) {
	t.Helper()
	var stacks string
	for deadline := time.Now().Add(bound); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		buf := make([]byte, 1<<20)
		stacks = string(buf[:runtime.Stack(buf, true)])
		if !strings.Contains(stacks, "hw/serial.(*Port)") {
			return
		}
	}
	var left []string
	for _, g := range strings.Split(stacks, "\n\n") {
		if strings.Contains(g, "hw/serial.(*Port)") {
			left = append(left, g)
		}
	}
	t.Fatalf("goroutines left behind:\n%s", strings.Join(left, "\n\n"))
}

// readFull reads from f until it has n bytes, bounded.
func readFull(t *testing.T, f *os.File, n int) []byte {
	t.Helper()
	var got bytes.Buffer
	buf := make([]byte, 256)
	if err := f.SetReadDeadline(time.Now().Add(bound)); err != nil {
		t.Fatal(err)
	}
	for got.Len() < n {
		k, err := f.Read(buf)
		got.Write(buf[:k])
		if err != nil {
			t.Fatalf("reading %s after %q: %v", f.Name(), got.Bytes(), err)
		}
	}
	return got.Bytes()
}

// readPort reads from p until it has n bytes, bounded; (0, nil) reads
// are gaps and skipped.
func readPort(t *testing.T, p *Port, n int) []byte {
	t.Helper()
	var got []byte
	buf := make([]byte, 256)
	for deadline := time.Now().Add(bound); len(got) < n; {
		if time.Now().After(deadline) {
			t.Fatalf("read %q from %s, want %d bytes", got, p, n)
		}
		k, err := p.Read(buf)
		if err != nil {
			t.Fatalf("Read: %v after %q", err, got)
		}
		got = append(got, buf[:k]...)
	}
	return got
}
