package frame

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"testing/iotest"

	"github.com/sngate/sngate/mqttsn"
)

// rawSeeds returns the streams of the raw tests.
func rawSeeds(tb testing.TB) [][]byte {
	var seeds [][]byte
	for _, tt := range rawWire {
		seeds = append(seeds, unhex(tb, tt.wire))
	}
	for _, s := range []string{
		"00 FF 03 | 03 05 00",
		"05 0D 00 01 00 | 07 0D 00 01 00 02 00",
		"01 00 03 17 | 02 17",
		"05 FE 00 00 07 | 02 FE | 02 17",
		"09 0C 20 00 | 02 17 03 05 00",
		"30 | 09 0C 20 00 01 00 02 68 69",
		"01 FF FF 0C | 02 16 | 03 05 00",
		"20 0C 00 | 02 17 | 03 05 00 | 04 18 01 2C",
	} {
		seeds = append(seeds, unhex(tb, s))
	}
	return seeds
}

// rawRun is what one RawReader run produced.
type rawRun struct {
	res   result
	stats Stats
}

// runRaw reads stream through a RawReader with a buffer of bufLen bytes.
func runRaw(t *testing.T, src interface{ Read([]byte) (int, error) }, opts RawOptions, bufLen int) rawRun {
	r := NewRawReader(src, opts)
	res := readAll(t, r, bufLen)
	return rawRun{res, r.Stats()}
}

// checkRawRun checks what must hold for any input: every frame passes the
// sanity checks with its exact length and fits the buffer, the only errors
// are ErrTooLong, and every byte read was either returned or counted as
// dropped.
func checkRawRun(t *testing.T, stream []byte, bufLen int, run rawRun) {
	t.Helper()
	var out uint64
	for _, f := range run.res.frames {
		if total, st := checkHeader(f); st != headerOK || total != len(f) || len(f) > bufLen {
			t.Fatalf("frame % X: checkHeader = %d, %d (buffer %d)", f, total, st, bufLen)
		}
		out += uint64(len(f))
	}
	for _, err := range run.res.errs {
		if !errors.Is(err, ErrTooLong) {
			t.Fatalf("unexpected error %v", err)
		}
	}
	s := run.stats
	if s.Frames != uint64(len(run.res.frames)) || s.TooLong != uint64(len(run.res.errs)) {
		t.Fatalf("stats %+v for %d frames and %d errors", s, len(run.res.frames), len(run.res.errs))
	}
	if out+s.Dropped != uint64(len(stream)) {
		t.Fatalf("%d bytes in, %d returned + %d dropped (stats %+v)", len(stream), out, s.Dropped, s)
	}
}

// publish returns a PUBLISH (QoS 0, topic id 1) carrying payload, in the
// 1-byte Length form when it fits.
func publish(payload []byte) []byte {
	body := 6 + len(payload)
	if body <= 254 {
		return append([]byte{byte(body + 1), 0x0C, 0, 0, 1, 0, 0}, payload...)
	}
	total := body + 3
	return append([]byte{0x01, byte(total >> 8), byte(total), 0x0C, 0, 0, 1, 0, 0}, payload...)
}

// FuzzRawReader reads arbitrary bytes as a raw stream: whole, one byte per
// Read (which must agree), and in chunks with idle gaps chosen by gaps. A
// message sent after a gap must come through whatever came before, and
// anything mqttsn.Decode accepts must pass as one frame. The buffer is
// size modulo 4096 bytes, 0 included (everything is then too long).
func FuzzRawReader(f *testing.F) {
	for _, s := range rawSeeds(f) {
		f.Add(s, []byte{0x85, 0x03, 0x81}, uint16(512))
	}
	f.Add(unhex(f, "09 0C 20 00 01 00 02 68 69 02 17"), []byte{0x03}, uint16(8))
	f.Add(unhex(f, "02 17"), []byte{}, uint16(0))
	f.Fuzz(func(t *testing.T, stream, gaps []byte, size uint16) {
		if len(gaps) > 4096 {
			return // keeps the PUBLISH below within 65535 bytes
		}
		bufLen := int(size) % 4096
		whole := runRaw(t, bytes.NewReader(stream), RawOptions{}, bufLen)
		checkRawRun(t, stream, bufLen, whole)
		one := runRaw(t, iotest.OneByteReader(bytes.NewReader(stream)), RawOptions{}, bufLen)
		if fmt.Sprint(one.res.events) != fmt.Sprint(whole.res.events) || one.stats != whole.stats {
			t.Fatalf("one byte at a time: %q %+v; whole: %q %+v", one.res.events, one.stats, whole.res.events, whole.stats)
		}

		if _, err := mqttsn.Decode(stream); err == nil && len(stream) <= bufLen {
			if !sameFrames(whole.res.frames, [][]byte{stream}) {
				t.Fatalf("mqttsn.Decode accepts % X, the raw reader returned %s", stream, hexFrames(whole.res.frames))
			}
		}

		// Chunks with gaps, then a gap and a PUBLISH carrying gaps.
		clk := newFakeClock()
		var steps []step
		rest := stream
		for i := 0; len(rest) > 0; i++ {
			c := byte(0x10)
			if len(gaps) > 0 {
				c = gaps[i%len(gaps)]
			}
			n := min(int(c&0x3F)+1, len(rest))
			st := step{data: rest[:n]}
			if c&0x80 != 0 {
				st.idle = DefaultGap
			}
			steps = append(steps, st)
			rest = rest[n:]
		}
		msg := publish(gaps)
		steps = append(steps, idle(DefaultGap), step{data: msg})
		in := append(bytes.Clone(stream), msg...)
		gappy := runRaw(t, &script{clk: clk, steps: steps}, RawOptions{Now: clk.now}, bufLen)
		checkRawRun(t, in, bufLen, gappy)
		if len(msg) <= bufLen {
			if n := len(gappy.res.frames); n == 0 || !bytes.Equal(gappy.res.frames[n-1], msg) {
				t.Fatalf("the message after the gap, % X, did not come through: %q", msg, gappy.res.events)
			}
		} else if n := len(gappy.res.events); n == 0 || gappy.res.events[n-1] != "too long" {
			t.Fatalf("the too-long message after the gap was not reported: %q", gappy.res.events)
		}
	})
}

// slipSeeds returns the streams of the SLIP tests.
func slipSeeds(tb testing.TB) [][]byte {
	var seeds [][]byte
	for _, tt := range slipWire {
		seeds = append(seeds, unhex(tb, tt.wire))
	}
	for _, s := range []string{
		"C0 C0 C0 02 17 C0 C0 C0 02 16 C0 C0",
		"C0 03 09 DB 41 42 C0 | C0 02 17 C0",
		"C0 03 09 DB C0 | 02 17 C0",
		"C0 02 17 C0 | DB",
		"C0 01 02 03 04 05 DB 41 C0 02 17 C0",
	} {
		seeds = append(seeds, unhex(tb, s))
	}
	return seeds
}

// FuzzSLIPReader reads arbitrary bytes as a SLIP stream, whole and one byte
// per Read, and checks that a message framed by AppendSLIP comes back exactly,
// alone and after the arbitrary bytes taken as line noise. The buffer is size
// modulo 1024 bytes.
func FuzzSLIPReader(f *testing.F) {
	for _, s := range slipSeeds(f) {
		f.Add(s, uint16(64))
	}
	f.Add(unhex(f, "C0 01 02 03 04 05 C0 02 17 C0"), uint16(4))
	f.Fuzz(func(t *testing.T, stream []byte, size uint16) {
		bufLen := int(size) % 1024
		var runs [2]rawRun
		for i, src := range []interface{ Read([]byte) (int, error) }{
			bytes.NewReader(stream), iotest.OneByteReader(bytes.NewReader(stream)),
		} {
			r := NewSLIPReader(src)
			runs[i] = rawRun{readAll(t, r, bufLen), r.Stats()}
		}
		if fmt.Sprint(runs[0].res.events) != fmt.Sprint(runs[1].res.events) || runs[0].stats != runs[1].stats {
			t.Fatalf("one byte at a time: %q %+v; whole: %q %+v", runs[1].res.events, runs[1].stats, runs[0].res.events, runs[0].stats)
		}
		s := runs[0].stats
		if s.Frames != uint64(len(runs[0].res.frames)) || s.TooLong != uint64(len(runs[0].res.errs)) {
			t.Fatalf("stats %+v for %d frames and %d errors", s, len(runs[0].res.frames), len(runs[0].res.errs))
		}
		for _, fr := range runs[0].res.frames {
			if len(fr) == 0 || len(fr) > bufLen {
				t.Fatalf("frame of %d bytes with a %d-byte buffer", len(fr), bufLen)
			}
		}
		for _, err := range runs[0].res.errs {
			if !errors.Is(err, ErrTooLong) {
				t.Fatalf("unexpected error %v", err)
			}
		}

		// Round trip, alone and behind the noise.
		if len(stream) == 0 || len(stream) > bufLen {
			return
		}
		framed := AppendSLIP(nil, stream)
		if len(framed) > 2*len(stream)+2 {
			t.Fatalf("AppendSLIP wrote %d bytes for %d", len(framed), len(stream))
		}
		res := readAll(t, NewSLIPReader(bytes.NewReader(framed)), bufLen)
		if len(res.errs) != 0 || !sameFrames(res.frames, [][]byte{stream}) {
			t.Fatalf("round trip of % X: %q", stream, res.events)
		}
		res = readAll(t, NewSLIPReader(bytes.NewReader(append(bytes.Clone(stream), framed...))), bufLen)
		if n := len(res.frames); n == 0 || !bytes.Equal(res.frames[n-1], stream) {
			t.Fatalf("% X after noise: %q", stream, res.events)
		}
	})
}
