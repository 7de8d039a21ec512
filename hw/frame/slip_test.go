package frame

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

// slipWire pairs messages with their SLIP wire form: END, escaped bytes, END.
var slipWire = []struct{ name, msg, wire string }{
	{"DISCONNECT sleep 300 s (reference §4.2)", "04 18 01 2C", "C0 04 18 01 2C C0"},
	{"PINGRESP", "02 17", "C0 02 17 C0"},
	{"END in the data", "03 09 C0", "C0 03 09 DB DC C0"},
	{"ESC in the data", "03 09 DB", "C0 03 09 DB DD C0"},
	{"ESC ESC_END in the data, escaped as data", "04 09 DB DC", "C0 04 09 DB DD DC C0"},
	{"END and ESC back to back", "05 09 C0 DB C0", "C0 05 09 DB DC DB DD DB DC C0"},
	{"only specials", "C0 DB", "C0 DB DC DB DD C0"},
	{"ESC_END and ESC_ESC alone are data", "04 09 DC DD", "C0 04 09 DC DD C0"},
	{"long form PUBLISH", "01 00 0A 0C 00 00 01 00 00 C0", "C0 01 00 0A 0C 00 00 01 00 00 DB DC C0"},
}

func TestSLIPWire(t *testing.T) {
	for _, tt := range slipWire {
		t.Run(tt.name, func(t *testing.T) {
			msg, wire := unhex(t, tt.msg), unhex(t, tt.wire)
			if got := AppendSLIP([]byte{0xAA}, msg); !bytes.Equal(got, append([]byte{0xAA}, wire...)) {
				t.Fatalf("AppendSLIP(% X) = % X, want AA % X", msg, got, wire)
			}
			readsBackEachWay(t, "", wire, 64, [][]byte{msg}, newSLIP)
		})
	}
}

func TestAppendSLIPEmpty(t *testing.T) {
	if got := AppendSLIP(nil, nil); !bytes.Equal(got, []byte{0xC0, 0xC0}) {
		t.Fatalf("AppendSLIP(nil) = % X, want C0 C0", got)
	}
}

// TestSLIPStreams checks delimiting, bad escapes, long frames and the end of
// input.
func TestSLIPStreams(t *testing.T) {
	runStreamCases(t, []streamCase{
		{
			name:   "empty frames between ENDs are ignored",
			stream: "C0 C0 C0 02 17 C0 C0 C0 02 16 C0 C0",
			want:   []string{"02 17", "02 16"},
			stats:  Stats{Frames: 2},
		},
		{
			name:   "no leading END",
			stream: "02 17 C0 02 16 C0",
			want:   []string{"02 17", "02 16"},
			stats:  Stats{Frames: 2},
		},
		{
			name:   "line noise before the first END is a frame of its own",
			stream: "FF 00 | C0 02 17 C0",
			want:   []string{"FF 00", "02 17"},
			stats:  Stats{Frames: 2},
		},
		{
			name:   "bad escape drops the frame",
			stream: "C0 03 09 DB 41 42 C0 | C0 02 17 C0",
			want:   []string{"02 17"},
			stats:  Stats{Frames: 1, BadFrames: 1, Dropped: 5},
		},
		{
			name:   "ESC ESC is a bad escape",
			stream: "C0 03 DB DB DD C0 | 02 17 C0",
			want:   []string{"02 17"},
			stats:  Stats{Frames: 1, BadFrames: 1, Dropped: 4},
		},
		{
			name:   "ESC END: frame cut inside an escape, END still ends it",
			stream: "C0 03 09 DB C0 | 02 17 C0",
			want:   []string{"02 17"},
			stats:  Stats{Frames: 1, BadFrames: 1, Dropped: 3},
		},
		{
			name:   "frame longer than the buffer skipped to the next END",
			stream: "C0 09 0C 20 00 01 00 02 68 69 C0 | C0 02 17 C0",
			buf:    8,
			want:   []string{"too long", "02 17"},
			stats:  Stats{Frames: 1, TooLong: 1, Dropped: 9},
		},
		{
			name:   "escapes count as one byte each against the buffer",
			stream: "C0 DB DC DB DC DB DC DB DC C0",
			buf:    4,
			want:   []string{"C0 C0 C0 C0"},
			stats:  Stats{Frames: 1},
		},
		{
			name:   "bad escape inside a skipped frame counts once",
			stream: "C0 01 02 03 04 05 DB 41 C0 02 17 C0",
			buf:    4,
			want:   []string{"too long", "02 17"},
			stats:  Stats{Frames: 1, TooLong: 1, Dropped: 7},
		},
		{
			name:   "frame without its closing END at the end of input",
			stream: "C0 02 17 C0 | 09 0C 20",
			want:   []string{"02 17"},
			stats:  Stats{Frames: 1, BadFrames: 1, Dropped: 3},
		},
		{
			name:   "lone ESC at the end of input",
			stream: "C0 02 17 C0 | DB",
			want:   []string{"02 17"},
			stats:  Stats{Frames: 1, BadFrames: 1, Dropped: 1},
		},
		{
			name:   "too-long frame cut by the end of input",
			stream: "C0 01 02 03 04 05",
			buf:    4,
			want:   []string{"too long"},
			stats:  Stats{TooLong: 1, Dropped: 5},
		},
		{
			name:   "zero-length buffer",
			stream: "C0 02 17 C0",
			buf:    -1,
			want:   []string{"too long"},
			stats:  Stats{TooLong: 1, Dropped: 2},
		},
		{
			name:   "nothing but ENDs",
			stream: "C0 C0 C0",
			stats:  Stats{},
		},
	}, 64, newSLIP)
}

func TestSLIPReadErrors(t *testing.T) {
	clk := newFakeClock()
	steps := []step{
		{data: unhex(t, "C0 02 17 C0 C0 09 0C"), err: errBoom},
		{data: unhex(t, "20 00 01 00 02 68 69 C0")},
		{idle: 1}, // an idle read, (0, nil): read again
		{data: unhex(t, "02 16 C0")},
	}
	r := NewSLIPReader(&script{clk: clk, steps: steps})
	res := readAll(t, r, 64)
	want := normEvents([]string{"02 17", "error: boom", "09 0C 20 00 01 00 02 68 69", "02 16"})
	if fmt.Sprint(res.events) != fmt.Sprint(want) {
		t.Fatalf("got %q, want %q", res.events, want)
	}
}

// TestSLIPRoundTrip frames random messages, all byte values included, and
// reads them back through differently split reads.
func TestSLIPRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var msgs [][]byte
	var stream []byte
	for range 300 {
		m := randBytes(rng, 1+rng.IntN(300))
		if rng.IntN(4) == 0 { // stuff a run of specials in
			m = append(m, 0xC0, 0xDB, 0xDB, 0xC0)
		}
		msgs = append(msgs, m)
		stream = AppendSLIP(stream, m)
	}
	readsBackEachWay(t, "", stream, 304, msgs, newSLIP)
}

// TestSLIPBufferSizeChanges: a frame begun with a big buffer and finished
// with a small one is too long for the small one, not truncated.
func TestSLIPBufferSizeChanges(t *testing.T) {
	clk := newFakeClock()
	steps := []step{
		{data: unhex(t, "C0 09 0C 20 00 01"), err: errBoom},
		{data: unhex(t, "00 02 68 69 C0 02 17 C0")},
	}
	r := NewSLIPReader(&script{clk: clk, steps: steps})
	if _, err := r.ReadFrame(make([]byte, 64)); err != errBoom {
		t.Fatalf("first ReadFrame: %v, want boom", err)
	}
	res := readAll(t, r, 4)
	want := []string{"too long", "0217"}
	if fmt.Sprint(res.events) != fmt.Sprint(want) {
		t.Fatalf("got %q, want %q", res.events, want)
	}
}
