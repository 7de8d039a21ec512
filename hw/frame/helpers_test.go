package frame

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// unhex decodes a hex string; spaces and '|' (used to mark frame
// boundaries in the tables) are ignored.
func unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(strings.NewReplacer(" ", "", "|", "").Replace(s))
	if err != nil {
		tb.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// unhexAll decodes a list of hex strings.
func unhexAll(tb testing.TB, ss []string) [][]byte {
	tb.Helper()
	var out [][]byte
	for _, s := range ss {
		out = append(out, unhex(tb, s))
	}
	return out
}

// seq returns n bytes 00 01 02 ... (wrapping at 0xFF).
func seq(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// fakeClock is the clock a RawReader under test reads; script advances it.
type fakeClock struct{ t time.Time }

func newFakeClock() *fakeClock           { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }
func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }

// step is one Read of a script: the line is idle for idle (the Read blocks
// that long), then data arrives; with no data the Read returns (0, err) after
// the idle time, as a serial port with a read timeout does.
type step struct {
	idle time.Duration
	data []byte
	err  error
}

// script is an io.Reader that plays steps against a fake clock, returning
// each step's data in one Read (or several if p is short). After the last step
// it returns io.EOF.
type script struct {
	clk   *fakeClock
	steps []step
}

func (s *script) Read(p []byte) (int, error) {
	if len(s.steps) == 0 {
		return 0, io.EOF
	}
	st := &s.steps[0]
	s.clk.add(st.idle)
	st.idle = 0
	n := copy(p, st.data)
	st.data = st.data[n:]
	if len(st.data) > 0 {
		return n, nil
	}
	err := st.err
	s.steps = s.steps[1:]
	return n, err
}

// data and idle build script steps.
func data(tb testing.TB, hexs string) step { return step{data: unhex(tb, hexs)} }
func idle(d time.Duration) step            { return step{idle: d} }

// result is everything a reader produced until the end of input (or until
// limit calls, to catch a reader that never ends).
type result struct {
	frames [][]byte
	errs   []error  // non-EOF errors, in order
	events []string // frames as hex and errors as "too long" or "error: ...", in order
}

// readAll calls ReadFrame with a buffer of bufLen bytes until io.EOF (which
// it then checks is returned again) or a fatal number of calls.
func readAll(tb testing.TB, r Reader, bufLen int) result {
	tb.Helper()
	var res result
	buf := make([]byte, bufLen)
	for range 1_000_000 {
		n, err := r.ReadFrame(buf)
		if n < 0 || n > len(buf) {
			tb.Fatalf("ReadFrame returned n = %d for a %d-byte buffer", n, len(buf))
		}
		if err == nil {
			res.frames = append(res.frames, append([]byte(nil), buf[:n]...))
			res.events = append(res.events, strings.ToUpper(hex.EncodeToString(buf[:n])))
			continue
		}
		if n != 0 {
			tb.Fatalf("ReadFrame returned n = %d with error %v", n, err)
		}
		if errors.Is(err, io.EOF) {
			if _, err2 := r.ReadFrame(buf); !errors.Is(err2, io.EOF) {
				tb.Fatalf("ReadFrame after io.EOF returned %v, want io.EOF again", err2)
			}
			return res
		}
		res.errs = append(res.errs, err)
		if errors.Is(err, ErrTooLong) {
			res.events = append(res.events, "too long")
		} else {
			res.events = append(res.events, "error: "+err.Error())
		}
	}
	tb.Fatalf("ReadFrame did not reach io.EOF in a million calls")
	return res
}

// hexFrames formats frames for failure messages.
func hexFrames(frames [][]byte) string {
	var sb strings.Builder
	for i, f := range frames {
		if i > 0 {
			sb.WriteString(" | ")
		}
		sb.WriteString(strings.ToUpper(hex.EncodeToString(f)))
	}
	return "[" + sb.String() + "]"
}

// sameFrames reports whether a and b hold the same frames.
func sameFrames(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if string(a[i]) != string(b[i]) {
			return false
		}
	}
	return true
}

// normEvents removes the spaces from the hex frames of a table's events.
func normEvents(ev []string) []string {
	out := make([]string, len(ev))
	for i, e := range ev {
		if strings.HasPrefix(e, "too long") || strings.HasPrefix(e, "error:") {
			out[i] = e
		} else {
			out[i] = strings.ReplaceAll(e, " ", "")
		}
	}
	return out
}

// statsReader is a Reader with counters: RawReader and SLIPReader.
type statsReader interface {
	Reader
	Stats() Stats
}

// streamCase is one row of a stream table.
type streamCase struct {
	name   string
	stream string
	buf    int      // buffer size; 0: the table's default, -1: an empty buffer
	want   []string // frames (hex) and errors, in order
	stats  Stats
}

// runStreamCases reads each case's stream with newReader, fed through
// each of rawReaders, and checks what came out and what was counted.
func runStreamCases(t *testing.T, tests []streamCase, defaultBuf int, newReader func(io.Reader) statsReader) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream := unhex(t, tt.stream)
			bufLen := tt.buf
			switch bufLen {
			case 0:
				bufLen = defaultBuf
			case -1:
				bufLen = 0
			}
			for _, rr := range rawReaders {
				r := newReader(rr.wrap(bytes.NewReader(stream)))
				res := readAll(t, r, bufLen)
				if want := normEvents(tt.want); fmt.Sprint(res.events) != fmt.Sprint(want) {
					t.Errorf("%s: got %q, want %q", rr.name, res.events, want)
				}
				if s := r.Stats(); s != tt.stats {
					t.Errorf("%s: stats %+v, want %+v", rr.name, s, tt.stats)
				}
			}
		})
	}
}

// readsBackEachWay reads stream with newReader, fed through each of
// rawReaders, and checks that exactly the frames want come out, without
// errors, each counted.
func readsBackEachWay(t *testing.T, label string, stream []byte, bufLen int, want [][]byte, newReader func(io.Reader) statsReader) {
	t.Helper()
	for _, rr := range rawReaders {
		r := newReader(rr.wrap(bytes.NewReader(stream)))
		res := readAll(t, r, bufLen)
		if len(res.errs) != 0 || !sameFrames(res.frames, want) {
			t.Fatalf("%s%s: frames %s, errors %v; want %s", label, rr.name, hexFrames(res.frames), res.errs, hexFrames(want))
		}
		if s := r.Stats(); s != (Stats{Frames: uint64(len(want))}) {
			t.Fatalf("%s%s: stats %+v", label, rr.name, s)
		}
	}
}

// newRaw and newSLIP are the readers under test, as runStreamCases and
// readsBackEachWay take them.
func newRaw(r io.Reader) statsReader  { return NewRawReader(r, RawOptions{}) }
func newSLIP(r io.Reader) statsReader { return NewSLIPReader(r) }
