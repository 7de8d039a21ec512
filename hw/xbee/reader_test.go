package xbee

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"reflect"
	"testing"
	"testing/iotest"
)

// Frames used in the resync tests, by their mode 1 wire.
const (
	wireCoord  = "7E 00 02 8A 06 6F" // Modem Status, coordinator started
	wireJoined = "7E 00 02 8A 02 73" // Modem Status, joined
)

var (
	coordStarted = &ModemStatus{Status: ModemCoordinatorStarted}
	joined       = &ModemStatus{Status: ModemJoined}
)

// sources are the ways a test feeds a stream to a Reader: the frames must
// not depend on how the bytes are split across Reads.
var sources = []struct {
	name string
	wrap func(io.Reader) io.Reader
}{
	{"whole", func(r io.Reader) io.Reader { return r }},
	{"one byte", iotest.OneByteReader},
	{"half", iotest.HalfReader},
	{"data with EOF", iotest.DataErrReader},
}

func TestReaderResync(t *testing.T) {
	tests := []struct {
		name    string
		escaped bool
		stream  string
		want    []Frame
		stats   Stats
	}{
		{
			name:   "garbage before a frame",
			stream: "00 11 22 | " + wireCoord,
			want:   []Frame{coordStarted},
			stats:  Stats{Frames: 1, Dropped: 3},
		},
		{
			name:   "garbage between frames",
			stream: wireCoord + "| FF FF 00 |" + wireJoined,
			want:   []Frame{coordStarted, joined},
			stats:  Stats{Frames: 2, Dropped: 3},
		},
		{
			name:   "checksum error, then a good frame",
			stream: "7E 00 02 8A 06 70 |" + wireJoined,
			want:   []Frame{joined},
			stats:  Stats{Frames: 1, ChecksumErrors: 1, Dropped: 6},
		},
		{
			name:    "checksum error, then a good frame, mode 2",
			escaped: true,
			stream:  "7E 00 02 8A 06 70 |" + wireJoined,
			want:    []Frame{joined},
			stats:   Stats{Frames: 1, ChecksumErrors: 1, Dropped: 6},
		},
		{
			// A 0x7E inside the bad frame (its checksum) is tried as a start
			// byte too, and fails; the next real frame is found after it.
			name:   "checksum error with a 0x7E inside, mode 1",
			stream: "7E 00 09 88 04 53 4C 00 40 A1 B2 C3 7F 7E | " + wireCoord,
			want:   []Frame{coordStarted},
			stats:  Stats{Frames: 1, BadFrames: 1, ChecksumErrors: 1, Dropped: 14},
		},
		{
			name:    "cut frame, then a good one, mode 2",
			escaped: true,
			stream:  "7E 00 15 90 00 7D 33 A2 |" + wireCoord,
			want:    []Frame{coordStarted},
			stats:   Stats{Frames: 1, BadFrames: 1, Dropped: 8},
		},
		{
			// Mode 1 cannot see the cut: the 21 bytes the length asks for
			// run into the next frames, which are found when the end of
			// input (on a live line: the checksum) fails the cut frame.
			name:   "cut frame, then good ones, mode 1",
			stream: "7E 00 15 90 00 13 A2 |" + wireCoord + "|" + wireJoined,
			want:   []Frame{coordStarted, joined},
			stats:  Stats{Frames: 2, BadFrames: 1, Dropped: 7},
		},
		{
			name:   "cut frame and more frames than it asks for, mode 1",
			stream: "7E 00 07 8B 01 |" + wireCoord + "|" + wireJoined + "|" + wireCoord,
			want:   []Frame{coordStarted, joined, coordStarted},
			stats:  Stats{Frames: 3, ChecksumErrors: 1, Dropped: 5},
		},
		{
			name:   "length 0",
			stream: "7E 00 00 FF |" + wireCoord,
			want:   []Frame{coordStarted},
			stats:  Stats{Frames: 1, BadFrames: 1, Dropped: 4},
		},
		{
			name:   "length over MaxFrameLen",
			stream: "7E 02 01 10 |" + wireCoord,
			want:   []Frame{coordStarted},
			stats:  Stats{Frames: 1, BadFrames: 1, Dropped: 4},
		},
		{
			name:   "length of exactly MaxFrameLen is fine",
			stream: frameHex(&Unknown{ID: 0xA1, Data: make([]byte, MaxFrameLen-1)}, false) + "|" + wireCoord,
			want:   []Frame{&Unknown{ID: 0xA1, Data: make([]byte, MaxFrameLen-1)}, coordStarted},
			stats:  Stats{Frames: 2},
		},
		{
			name:    "lone escape byte at the end of input",
			escaped: true,
			stream:  wireCoord + "| 7E 00 02 8A 7D",
			want:    []Frame{coordStarted},
			stats:   Stats{Frames: 1, BadFrames: 1, Dropped: 5},
		},
		{
			name:    "lone escape byte at the end of input, after garbage only",
			escaped: true,
			stream:  "7D",
			stats:   Stats{Dropped: 1},
		},
		{
			name:    "escape byte followed by a start byte",
			escaped: true,
			stream:  "7E 00 02 8A 7D |" + wireCoord,
			want:    []Frame{coordStarted},
			stats:   Stats{Frames: 1, BadFrames: 1, Dropped: 5},
		},
		{
			name:    "escaped length byte cut by a start byte",
			escaped: true,
			stream:  "7E 00 7D |" + wireCoord,
			want:    []Frame{coordStarted},
			stats:   Stats{Frames: 1, BadFrames: 1, Dropped: 3},
		},
		{
			name:   "start byte alone at the end of input",
			stream: wireCoord + "| 7E",
			want:   []Frame{coordStarted},
			stats:  Stats{Frames: 1, BadFrames: 1, Dropped: 1},
		},
		{
			name:   "0x7E in the data and as checksum, mode 1",
			stream: "7E 00 09 88 04 53 4C 00 40 A1 B2 C3 7E |" + wireCoord,
			want:   []Frame{&ATResponse{FrameID: 4, Command: [2]byte{'S', 'L'}, Data: []byte{0x40, 0xA1, 0xB2, 0xC3}}, coordStarted},
			stats:  Stats{Frames: 2},
		},
		{
			// Checksum fine, but a Transmit Status has 7 bytes of frame data.
			name:   "frame too short for its type is skipped",
			stream: "7E 00 02 8B 01 73 |" + wireCoord,
			want:   []Frame{coordStarted},
			stats:  Stats{Frames: 1, BadFrames: 1, Dropped: 6},
		},
		{
			name:   "empty input",
			stream: "",
			stats:  Stats{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream := unhex(t, tt.stream)
			for _, src := range sources {
				r := NewReader(src.wrap(bytes.NewReader(stream)), tt.escaped)
				got := readFrames(t, r)
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("%s: read %s, want %s", src.name, dumpAll(got), dumpAll(tt.want))
				}
				if s := r.Stats(); s != tt.stats {
					t.Errorf("%s: stats %+v, want %+v", src.name, s, tt.stats)
				}
			}
		})
	}
}

// frameHex encodes f for a table; tables are built before any test runs,
// so a failure panics.
func frameHex(f Frame, escaped bool) string {
	b, err := Append(nil, f, escaped)
	if err != nil {
		panic(err)
	}
	return fmt.Sprintf("% X", b)
}

// TestReadFrameDataKeepsMalformed: ReadFrameData does not decode, so a
// frame that is too short for its type comes through it.
func TestReadFrameDataKeepsMalformed(t *testing.T) {
	r := NewReader(bytes.NewReader(unhex(t, "7E 00 02 8B 01 73")), false)
	data, err := r.ReadFrameData()
	if err != nil || !bytes.Equal(data, []byte{0x8B, 0x01}) {
		t.Fatalf("ReadFrameData = % X, %v", data, err)
	}
	if _, err := r.ReadFrameData(); !errors.Is(err, io.EOF) {
		t.Fatalf("second ReadFrameData = %v, want io.EOF", err)
	}
	if s := r.Stats(); s != (Stats{Frames: 1}) {
		t.Fatalf("stats %+v", s)
	}
}

// errAfter returns its data, then err once, then io.EOF.
type errAfter struct {
	data []byte
	err  error
	done bool
}

func (e *errAfter) Read(p []byte) (int, error) {
	if len(e.data) > 0 {
		n := copy(p, e.data)
		e.data = e.data[n:]
		return n, nil
	}
	if !e.done {
		e.done = true
		return 0, e.err
	}
	return 0, io.EOF
}

func TestReaderErrors(t *testing.T) {
	// A read error mid-frame is returned; the frame is kept and completed
	// by the bytes after it.
	wire := unhex(t, wireCoord)
	src := io.MultiReader(&errAfter{data: wire[:3], err: os.ErrDeadlineExceeded}, bytes.NewReader(wire[3:]))
	r := NewReader(src, true)
	if _, err := r.ReadFrame(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("first ReadFrame: %v, want the deadline error", err)
	}
	f, err := r.ReadFrame()
	if err != nil || !reflect.DeepEqual(f, coordStarted) {
		t.Fatalf("second ReadFrame = %s, %v", dump(f), err)
	}

	// A broken io.Reader is reported, not trusted.
	if _, err := NewReader(brokenReader{}, false).ReadFrame(); err == nil {
		t.Fatal("ReadFrame from a broken reader succeeded")
	}
}

type brokenReader struct{}

func (brokenReader) Read(p []byte) (int, error) { return -1, nil }

// randomFrame returns a random frame of any type, with data up to 255 bytes.
func randomFrame(rng *rand.Rand) Frame {
	data := func() []byte {
		n := rng.IntN(256)
		if n == 0 {
			return nil
		}
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return b
	}
	addr := Address{Long: rng.Uint64(), Short: uint16(rng.UintN(65536))}
	b := func() byte { return byte(rng.UintN(256)) }
	switch rng.IntN(8) {
	case 0:
		return &TransmitRequest{FrameID: b(), Dest: addr, Radius: b(), Options: b(), Data: data()}
	case 1:
		return &TransmitStatus{FrameID: b(), Short: addr.Short, Retries: b(), Delivery: b(), Discovery: b()}
	case 2:
		return &Receive{Src: addr, Options: b(), Data: data()}
	case 3:
		return &ExplicitReceive{Src: addr, SrcEndpoint: b(), DstEndpoint: b(), Cluster: uint16(rng.UintN(65536)),
			Profile: uint16(rng.UintN(65536)), Options: b(), Data: data()}
	case 4:
		return &ATCommand{FrameID: b(), Command: [2]byte{b(), b()}, Param: data()}
	case 5:
		return &ATResponse{FrameID: b(), Command: [2]byte{b(), b()}, Status: b(), Data: data()}
	case 6:
		return &ModemStatus{Status: b()}
	}
	// Unknown: any identifier this package does not decode.
	id := FrameType(b())
	for newFrame(id) != nil {
		id++
	}
	return &Unknown{ID: id, Data: data()}
}

// TestReaderSplitReads reads a long stream of random frames with garbage
// between them (bytes other than 0x7E) in both modes, split every way.
func TestReaderSplitReads(t *testing.T) {
	for _, escaped := range []bool{false, true} {
		rng := rand.New(rand.NewPCG(5, 6))
		var frames []Frame
		var stream []byte
		var garbage uint64
		for range 400 {
			for range rng.IntN(3) {
				stream = append(stream, byte(rng.UintN(0x7E)))
				garbage++
			}
			f := randomFrame(rng)
			frames = append(frames, f)
			var err error
			if stream, err = Append(stream, f, escaped); err != nil {
				t.Fatal(err)
			}
		}
		for _, src := range sources {
			r := NewReader(src.wrap(bytes.NewReader(stream)), escaped)
			got := readFrames(t, r)
			if !reflect.DeepEqual(got, frames) {
				t.Fatalf("escaped=%v %s: %d frames differ from the %d sent", escaped, src.name, len(got), len(frames))
			}
			if s := r.Stats(); s != (Stats{Frames: uint64(len(frames)), Dropped: garbage}) {
				t.Fatalf("escaped=%v %s: stats %+v, %d bytes of garbage", escaped, src.name, s, garbage)
			}
		}
	}
}
