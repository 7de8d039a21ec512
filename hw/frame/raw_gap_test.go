package frame

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

// TestRawGaps plays serial-port timing: a Read that returns nothing after
// idling (a read timeout), or that blocks and then returns data.
func TestRawGaps(t *testing.T) {
	const ms = time.Millisecond
	tests := []struct {
		name  string
		gap   time.Duration
		buf   int // 0: 64
		steps func(t *testing.T) []step
		want  []string
		stats Stats
	}{
		{
			name: "cut message dropped at a gap",
			steps: func(t *testing.T) []step {
				return []step{data(t, "09 0C 20 00"), idle(60 * ms), data(t, "02 17")}
			},
			want:  []string{"02 17"},
			stats: Stats{Frames: 1, BadFrames: 1, Dropped: 4},
		},
		{
			name: "idle reads add up to a gap",
			steps: func(t *testing.T) []step {
				return []step{data(t, "09 0C 20 00"), idle(20 * ms), idle(20 * ms), idle(20 * ms), data(t, "02 17")}
			},
			want:  []string{"02 17"},
			stats: Stats{Frames: 1, BadFrames: 1, Dropped: 4},
		},
		{
			name: "idle shorter than the gap keeps the partial message",
			steps: func(t *testing.T) []step {
				return []step{data(t, "09 0C 20 00"), idle(20 * ms), idle(20 * ms), data(t, "01 00 02 68 69")}
			},
			want:  []string{"09 0C 20 00 01 00 02 68 69"},
			stats: Stats{Frames: 1},
		},
		{
			name: "a Read that blocked for a gap before returning data",
			steps: func(t *testing.T) []step {
				return []step{data(t, "09 0C 20 00"), {idle: 60 * ms, data: unhex(t, "02 17")}}
			},
			want:  []string{"02 17"},
			stats: Stats{Frames: 1, BadFrames: 1, Dropped: 4},
		},
		{
			// 30 09 looks like a 48-byte WILLMSG; at the gap the bytes
			// after it split exactly into a PUBLISH, which is kept.
			name: "noise byte that looks like a long header, then a message and a gap",
			steps: func(t *testing.T) []step {
				return []step{data(t, "30 | 09 0C 20 00 01 00 02 68 69"), idle(60 * ms), data(t, "02 17")}
			},
			want:  []string{"09 0C 20 00 01 00 02 68 69", "02 17"},
			stats: Stats{Frames: 2, BadFrames: 1, Dropped: 1},
		},
		{
			name: "noise, several messages, gap",
			steps: func(t *testing.T) []step {
				return []step{data(t, "30 | 02 16 | 03 05 00 | 01 00 04 17"), idle(60 * ms), data(t, "02 17")}
			},
			want:  []string{"02 16", "03 05 00", "01 00 04 17", "02 17"},
			stats: Stats{Frames: 4, BadFrames: 1, Dropped: 1},
		},
		{
			// With a MaxRawLen buffer nothing is too long, so noise that
			// reads as a 65535-byte message is resolved at the gap.
			name: "noise that looks like a long-form header, full-size buffer",
			buf:  MaxRawLen,
			steps: func(t *testing.T) []step {
				return []step{data(t, "01 FF FF 0C | 02 16 | 03 05 00"), idle(60 * ms), data(t, "02 17")}
			},
			want:  []string{"02 16", "03 05 00", "02 17"},
			stats: Stats{Frames: 3, BadFrames: 1, Dropped: 4},
		},
		{
			name: "messages split across reads with short pauses",
			steps: func(t *testing.T) []step {
				return []step{data(t, "09 0C"), idle(10 * ms), data(t, "20 00 01 00"), idle(30 * ms), data(t, "02 68 69 02"), data(t, "17")}
			},
			want:  []string{"09 0C 20 00 01 00 02 68 69", "02 17"},
			stats: Stats{Frames: 2},
		},
		{
			name: "gaps with nothing pending change nothing",
			steps: func(t *testing.T) []step {
				return []step{idle(time.Second), data(t, "02 17"), idle(time.Second), idle(time.Second), data(t, "02 16")}
			},
			want:  []string{"02 17", "02 16"},
			stats: Stats{Frames: 2},
		},
		{
			name: "gap ends the skipping of a too-long message",
			buf:  16,
			steps: func(t *testing.T) []step {
				// 20 0C: a 32-byte PUBLISH, longer than the 16-byte buffer
				// (and really just noise): the gap stops the skip.
				return []step{data(t, "20 0C 00 00 01"), idle(60 * ms), data(t, "02 17")}
			},
			want:  []string{"too long", "02 17"},
			stats: Stats{Frames: 1, TooLong: 1, Dropped: 5},
		},
		{
			name: "gap detection off",
			gap:  -1,
			steps: func(t *testing.T) []step {
				return []step{data(t, "09 0C 20 00"), idle(time.Hour), data(t, "01 00 02 68 69")}
			},
			want:  []string{"09 0C 20 00 01 00 02 68 69"},
			stats: Stats{Frames: 1},
		},
		{
			name: "custom gap",
			gap:  5 * ms,
			steps: func(t *testing.T) []step {
				return []step{data(t, "09 0C 20 00"), idle(6 * ms), data(t, "02 17")}
			},
			want:  []string{"02 17"},
			stats: Stats{Frames: 1, BadFrames: 1, Dropped: 4},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			r := NewRawReader(&script{clk: clk, steps: tt.steps(t)}, RawOptions{Gap: tt.gap, Now: clk.now})
			bufLen := tt.buf
			if bufLen == 0 {
				bufLen = 64
			}
			res := readAll(t, r, bufLen)
			if want := normEvents(tt.want); fmt.Sprint(res.events) != fmt.Sprint(want) {
				t.Errorf("got %q, want %q", res.events, want)
			}
			if s := r.Stats(); s != tt.stats {
				t.Errorf("stats %+v, want %+v", s, tt.stats)
			}
		})
	}
}

var errBoom = errors.New("boom")

// TestRawReadErrors checks that read errors reach the caller in order with
// the frames, and that the reader carries on after them.
func TestRawReadErrors(t *testing.T) {
	tests := []struct {
		name  string
		steps func(t *testing.T) []step
		want  []string
	}{
		{
			name: "error with the message's first bytes, the rest after it",
			steps: func(t *testing.T) []step {
				return []step{{data: unhex(t, "09 0C 20 00"), err: errBoom}, data(t, "01 00 02 68 69")}
			},
			want: []string{"error: boom", "09 0C 20 00 01 00 02 68 69"},
		},
		{
			name: "messages completed by the failing Read come first",
			steps: func(t *testing.T) []step {
				return []step{{data: unhex(t, "02 17 02 16"), err: errBoom}, data(t, "02 18")}
			},
			want: []string{"02 17", "02 16", "error: boom", "02 18"},
		},
		{
			name: "timeout error (a deadline) is returned, and reading goes on",
			steps: func(t *testing.T) []step {
				return []step{data(t, "02 17"), {idle: 10 * time.Millisecond, err: os.ErrDeadlineExceeded}, data(t, "02 16")}
			},
			want: []string{"02 17", "error: " + os.ErrDeadlineExceeded.Error(), "02 16"},
		},
		{
			name: "end of input together with the last bytes",
			steps: func(t *testing.T) []step {
				return []step{{data: unhex(t, "02 17"), err: io.EOF}}
			},
			want: []string{"02 17"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			r := NewRawReader(&script{clk: clk, steps: tt.steps(t)}, RawOptions{Now: clk.now})
			res := readAll(t, r, 16)
			if want := normEvents(tt.want); fmt.Sprint(res.events) != fmt.Sprint(want) {
				t.Errorf("got %q, want %q", res.events, want)
			}
		})
	}
}

// brokenReader claims more bytes than it was asked for.
type brokenReader struct{}

func (brokenReader) Read(p []byte) (int, error) { return len(p) + 1, nil }

func TestRawBrokenReader(t *testing.T) {
	r := NewRawReader(brokenReader{}, RawOptions{})
	if _, err := r.ReadFrame(make([]byte, 16)); err == nil || !strings.Contains(err.Error(), "io.Reader returned") {
		t.Fatalf("ReadFrame = %v, want an error about the reader", err)
	}
}
