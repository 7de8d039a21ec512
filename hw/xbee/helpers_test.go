package xbee

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
)

// unhex decodes a hex string; spaces and '|' are ignored.
func unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(strings.NewReplacer(" ", "", "|", "").Replace(s))
	if err != nil {
		tb.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// dump formats a frame for failure messages.
func dump(f Frame) string {
	if f == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%T%+v", f, reflect.ValueOf(f).Elem().Interface())
}

// readFrames calls ReadFrame until io.EOF (checking that it sticks) and
// returns the frames.
func readFrames(tb testing.TB, r *Reader) []Frame {
	tb.Helper()
	var out []Frame
	for range 100_000 {
		f, err := r.ReadFrame()
		if errors.Is(err, io.EOF) {
			if _, err := r.ReadFrame(); !errors.Is(err, io.EOF) {
				tb.Fatalf("ReadFrame after io.EOF: %v", err)
			}
			return out
		}
		if err != nil {
			tb.Fatalf("ReadFrame: %v", err)
		}
		if f == nil {
			tb.Fatalf("ReadFrame returned neither a frame nor an error")
		}
		out = append(out, f)
	}
	tb.Fatalf("ReadFrame did not reach io.EOF")
	return nil
}

// dumpAll formats frames for failure messages.
func dumpAll(fs []Frame) string {
	var parts []string
	for _, f := range fs {
		parts = append(parts, dump(f))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func seq(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}
