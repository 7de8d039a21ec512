package frame

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

// TestRawResync feeds streams with garbage, cut and oversized messages
// (without gaps: a bytes.Reader never idles) and checks what comes out and
// what was counted.
func TestRawResync(t *testing.T) {
	runStreamCases(t, []streamCase{
		{
			name:   "garbage before a message",
			stream: "00 FF 03 | 03 05 00",
			want:   []string{"03 05 00"},
			stats:  Stats{Frames: 1, Resyncs: 1, Dropped: 3},
		},
		{
			name:   "garbage between messages",
			stream: "02 17 | 00 03 03 00 | 02 17",
			want:   []string{"02 17", "02 17"},
			stats:  Stats{Frames: 2, Resyncs: 1, Dropped: 4},
		},
		{
			name:   "two garbage runs are two resyncs",
			stream: "00 | 02 17 | 00 00 | 02 16",
			want:   []string{"02 17", "02 16"},
			stats:  Stats{Frames: 2, Resyncs: 2, Dropped: 3},
		},
		{
			// 05 0D: a PUBACK must be 7 bytes. 0D 00: an ADVERTISE must be 5.
			// 01 00 07 0D: a long-form PUBACK of 7 is 2 short of its 5-byte part.
			name:   "wrong sizes for fixed-size types",
			stream: "05 0D 00 01 00 | 07 0D 00 01 00 02 00",
			want:   []string{"07 0D 00 01 00 02 00"},
			stats:  Stats{Frames: 1, Resyncs: 1, Dropped: 5},
		},
		{
			name:   "DISCONNECT is 2 or 4 bytes, never 3",
			stream: "03 18 00 | 04 18 01 2C",
			want:   []string{"04 18 01 2C"},
			stats:  Stats{Frames: 1, Resyncs: 1, Dropped: 3},
		},
		{
			// The 00s keep the garbage from forming plausible headers
			// across the pairs (03 02 would be a 3-byte GWINFO).
			name:   "reserved types",
			stream: "02 03 00 02 11 00 02 19 00 02 1E 00 02 FF 00 | 02 17",
			want:   []string{"02 17"},
			stats:  Stats{Frames: 1, Resyncs: 1, Dropped: 15},
		},
		{
			name:   "length byte 0x00",
			stream: "00 05 | 03 05 00",
			want:   []string{"03 05 00"},
			stats:  Stats{Frames: 1, Resyncs: 1, Dropped: 2},
		},
		{
			// 01 00 03: a 3-byte Length of 3 is shorter than its own header.
			// 17 02 then looks like a 23-byte GWINFO that never completes;
			// at the end of input the bytes after it still split into a
			// PINGRESP, which is returned.
			name:   "long-form length below its header",
			stream: "01 00 03 17 | 02 17",
			want:   []string{"02 17"},
			stats:  Stats{Frames: 1, BadFrames: 1, Resyncs: 1, Dropped: 4},
		},
		{
			name:   "nested encapsulation",
			stream: "05 FE 00 00 07 | 02 FE | 02 17",
			want:   []string{"02 17"},
			stats:  Stats{Frames: 1, BadFrames: 1, Resyncs: 1, Dropped: 7},
		},
		{
			name:   "cut message at the end of input",
			stream: "09 0C 20 00 01",
			want:   nil,
			stats:  Stats{BadFrames: 1, Dropped: 5},
		},
		{
			// With neither a gap nor the end of input, the cut PUBLISH
			// takes the next message's bytes: the raw framing's known
			// weakness, which only an idle gap (TestRawGaps) repairs.
			name:   "cut message swallows the next one when the line never idles",
			stream: "09 0C 20 00 | 02 17 03 05 00",
			want:   []string{"09 0C 20 00 02 17 03 05 00"},
			stats:  Stats{Frames: 1},
		},
		{
			name:   "cut message, then a whole one, then the end of input",
			stream: "09 0C 20 00 | 02 17",
			want:   []string{"02 17"},
			stats:  Stats{Frames: 1, BadFrames: 1, Dropped: 4},
		},
		{
			name:   "cut message, then several whole ones, then the end of input",
			stream: "20 0C 00 | 02 17 | 03 05 00 | 04 18 01 2C",
			want:   []string{"02 17", "03 05 00", "04 18 01 2C"},
			stats:  Stats{Frames: 3, BadFrames: 1, Dropped: 3},
		},
		{
			name:   "too long for the buffer, skipped whole",
			stream: "09 0C 20 00 01 00 02 68 69 | 02 17",
			buf:    8,
			want:   []string{"too long", "02 17"},
			stats:  Stats{Frames: 1, TooLong: 1, Dropped: 9},
		},
		{
			name:   "too long, long form",
			stream: "01 01 35 0C 00 00 01 00 00" + hexSeq(300) + "| 02 17",
			buf:    64,
			want:   []string{"too long", "02 17"},
			stats:  Stats{Frames: 1, TooLong: 1, Dropped: 309},
		},
		{
			name:   "buffer of exactly the message",
			stream: "09 0C 20 00 01 00 02 68 69 | 02 17",
			buf:    9,
			want:   []string{"09 0C 20 00 01 00 02 68 69", "02 17"},
			stats:  Stats{Frames: 2},
		},
		{
			name:   "too long, cut by the end of input",
			stream: "20 0C 00 00 01",
			buf:    16,
			want:   []string{"too long"},
			stats:  Stats{TooLong: 1, Dropped: 5},
		},
		{
			name:   "zero-length buffer",
			stream: "02 17",
			buf:    -1,
			want:   []string{"too long"},
			stats:  Stats{TooLong: 1, Dropped: 2},
		},
		{
			name:   "empty input",
			stream: "",
			want:   nil,
			stats:  Stats{},
		},
		{
			name:   "a single byte",
			stream: "02",
			want:   nil,
			stats:  Stats{BadFrames: 1, Dropped: 1},
		},
	}, 1024, newRaw)
}

// randomStream returns n random valid messages (both Length forms, some
// encapsulated) and the stream of them with garbage runs in between; garbage
// is made of bytes that can never start a message (0x00, reserved types), so
// that the frames to expect are known.
func randomStream(rng *rand.Rand, n int) ([][]byte, []byte) {
	var msgs [][]byte
	var stream []byte
	for range n {
		if rng.IntN(4) == 0 {
			for range 1 + rng.IntN(4) {
				stream = append(stream, 0x00)
			}
		}
		m := randomMessage(rng)
		msgs = append(msgs, m)
		stream = AppendRaw(stream, m)
	}
	return msgs, stream
}

// randomMessage returns a valid PUBLISH, PINGREQ, PUBACK or an encapsulated
// PINGRESP, in the short or the long Length form.
func randomMessage(rng *rand.Rand) []byte {
	var body []byte
	switch rng.IntN(4) {
	case 0:
		body = append([]byte{0x0C, 0x20, 0x00, 0x01, 0x00, 0x02}, randBytes(rng, rng.IntN(300))...)
	case 1:
		body = append([]byte{0x16}, randBytes(rng, rng.IntN(24))...)
	case 2:
		body = []byte{0x0D, 0x00, 0x01, 0x00, 0x02, 0x00}
	case 3:
		return []byte{0x05, 0xFE, 0x00, 0x00, 0x01, 0x02, 0x17}
	}
	if len(body) <= 254 && rng.IntN(3) != 0 {
		return append([]byte{byte(len(body) + 1)}, body...)
	}
	total := len(body) + 3
	return append([]byte{0x01, byte(total >> 8), byte(total)}, body...)
}

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.UintN(256))
	}
	return b
}

// TestRawSplitReads checks that however a long stream is split into Reads,
// the same frames and counters come out.
func TestRawSplitReads(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	msgs, stream := randomStream(rng, 500)
	var first Stats
	for i, rr := range rawReaders {
		r := NewRawReader(rr.wrap(bytes.NewReader(stream)), RawOptions{})
		res := readAll(t, r, 512)
		if len(res.errs) != 0 || !sameFrames(res.frames, msgs) {
			t.Fatalf("%s: %d frames, errors %v; want the %d messages", rr.name, len(res.frames), res.errs, len(msgs))
		}
		s := r.Stats()
		if i == 0 {
			first = s
		} else if s != first {
			t.Fatalf("%s: stats %+v, whole stream gave %+v", rr.name, s, first)
		}
	}
	if first.Frames != uint64(len(msgs)) || first.Dropped == 0 || first.BadFrames != 0 {
		t.Fatalf("stats %+v", first)
	}
}

// TestRawBufferSizeChanges checks that a caller may change the buffer size
// between calls, bigger or smaller, with a message half read.
func TestRawBufferSizeChanges(t *testing.T) {
	stream := unhex(t, "09 0C 20 00 01 00 02 68 69 | 02 17 | 01 01 35 0C 00 00 01 00 00"+hexSeq(300)+"| 02 16")
	r := NewRawReader(iotest.OneByteReader(bytes.NewReader(stream)), RawOptions{})
	var got []string
	for _, size := range []int{4, 16, 1024, 2} {
		n, err := r.ReadFrame(make([]byte, size))
		if err != nil {
			got = append(got, fmt.Sprintf("%d: %v", size, errors.Is(err, ErrTooLong)))
		} else {
			got = append(got, fmt.Sprintf("%d: %d bytes", size, n))
		}
	}
	want := []string{"4: true", "16: 2 bytes", "1024: 309 bytes", "2: 2 bytes"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}
