package packets

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// seedWires returns the wire bytes of every example in the test tables:
// canonical, non-canonical, refused.
func seedWires(tb testing.TB) [][]byte {
	var seeds [][]byte
	for _, tt := range wireTable {
		seeds = append(seeds, unhex(tb, tt.wire))
	}
	for _, tt := range nonCanonical {
		seeds = append(seeds, unhex(tb, tt.wire))
	}
	for _, tt := range decodeErrors {
		seeds = append(seeds, unhex(tb, tt.wire))
	}
	for _, tt := range ruleTable {
		seeds = append(seeds, unhex(tb, tt.wire))
	}
	return seeds
}

// splitWire splits one packet's wire bytes into FuzzDecode's arguments.
func splitWire(tb testing.TB, wire []byte) (first byte, body []byte) {
	_, n, err := DecodeRemainingLength(wire[1:])
	if err != nil {
		tb.Fatalf("seed % X: %v", wire, err)
	}
	return wire[0], wire[1+n:]
}

// readerSeed is one FuzzReader input.
type readerSeed struct {
	stream  []byte
	maxSize uint16
	bufSize byte
}

// readerSeeds returns each example alone (under a few limits and buffer
// sizes), the examples back to back, and stream-level failures.
func readerSeeds(tb testing.TB) []readerSeed {
	var seeds []readerSeed
	var all []byte
	for i, w := range seedWires(tb) {
		seeds = append(seeds, readerSeed{w, []uint16{0, 8, 40}[i%3], []byte{0, 16, 24}[i%3]})
		all = append(all, w...)
	}
	seeds = append(seeds, readerSeed{all, 0, 0}, readerSeed{all, 64, 16})
	for _, s := range []string{"", "30", "30 80", "30 80 80 80 80 01", "C0 00 D0 FF FF FF FF 7F",
		"30 FF FF FF 7F 0001 61", "30 80 80 01 0001 61 0102", "C0 80 80 80 00 E0 00"} {
		seeds = append(seeds, readerSeed{unhex(tb, s), 0, 16})
	}
	return seeds
}

var decodeKinds = []error{ErrMalformed, ErrProtocol, ErrUnsupportedLevel, ErrBadProtocolName}

// FuzzDecode: Decode never panics and refuses with an *Error of a decoding
// kind; what it accepts, Append writes back as the same fixed header and
// body (every field of every packet is represented exactly), which reads
// and decodes to an equal packet.
func FuzzDecode(f *testing.F) {
	for _, w := range seedWires(f) {
		first, body := splitWire(f, w)
		f.Add(first, body)
	}
	f.Fuzz(func(t *testing.T, first byte, body []byte) {
		fh := FixedHeader{Type: Type(first >> 4), Flags: first & 0x0F, Remaining: len(body)}
		orig := bytes.Clone(body)
		p, err := Decode(fh, body)
		if !bytes.Equal(body, orig) {
			t.Fatalf("Decode changed its input: % X became % X", orig, body)
		}
		if err != nil {
			if p != nil {
				t.Fatalf("Decode(%02X % X) returned %s with error %v", first, body, dump(p), err)
			}
			var e *Error
			if !errors.As(err, &e) || e.Type != fh.Type {
				t.Fatalf("Decode(%02X % X): error %T %v", first, body, err, err)
			}
			known := false
			for _, k := range decodeKinds {
				known = known || errors.Is(err, k)
			}
			if !known {
				t.Fatalf("Decode(%02X % X): error %v of kind %v", first, body, err, e.Kind)
			}
			return
		}
		if p.Type() != fh.Type {
			t.Fatalf("Decode(%02X % X) = %s", first, body, dump(p))
		}
		wire := p.Append(nil)
		if len(wire) != 1+RemainingLengthSize(len(body))+len(body) {
			t.Fatalf("Decode(%02X % X) = %s; Append wrote % X", first, body, dump(p), wire)
		}
		if pp, ok := p.(*PublishPacket); ok {
			w2 := AppendPublish(nil, pp.Dup, pp.QoS, pp.Retain, string(pp.Topic), pp.PacketID, pp.Payload)
			if !bytes.Equal(w2, wire) {
				t.Fatalf("AppendPublish = % X, Append = % X", w2, wire)
			}
		}
		r := NewReader(bytes.NewReader(wire), 0)
		fh2, body2, err := r.ReadPacket()
		if err != nil {
			t.Fatalf("Decode(%02X % X) = %s; Append = % X, which ReadPacket refuses: %v", first, body, dump(p), wire, err)
		}
		if fh2 != fh || !bytes.Equal(body2, body) {
			t.Fatalf("Decode(%02X % X) = %s; Append = % X: header %+v, body % X", first, body, dump(p), wire, fh2, body2)
		}
		p2, err := Decode(fh2, body2)
		if err != nil || !equalPackets(p, p2) {
			t.Fatalf("Decode(%02X % X) = %s; Append = % X; Decode = %s, %v", first, body, dump(p), wire, dump(p2), err)
		}
		if _, _, err := r.ReadPacket(); err != io.EOF {
			t.Fatalf("Append(%s) = % X: more than one packet (%v)", dump(p), wire, err)
		}
	})
}

// readResult is what a Reader made of a stream.
type readResult struct {
	headers []FixedHeader
	bodies  [][]byte
	err     error
}

// readStream reads src to its first error, checking the Reader's invariants
// after every packet: bodies as long as announced, packets within the
// limit, and no body slice larger than the packet it holds.
func readStream(t *testing.T, src io.Reader, streamLen, limit, bufSize int) readResult {
	r := NewReaderSize(src, limit, bufSize)
	var res readResult
	largest := 0
	consumed := 0
	for {
		fh, body, err := r.ReadPacket()
		if r.bigOn || err == nil {
			largest = max(largest, r.bigFH.Remaining, fh.Remaining)
		}
		if cap(r.big) > largest || (limit > 0 && cap(r.big) > limit) {
			t.Fatalf("body slice of capacity %d; largest packet %d, limit %d", cap(r.big), largest, limit)
		}
		if err != nil {
			if _, _, err2 := r.ReadPacket(); errors.As(err, new(*Error)) && err2 != err {
				t.Fatalf("framing error %v not sticky: then %v", err, err2)
			}
			res.err = err
			return res
		}
		total := 1 + RemainingLengthSize(fh.Remaining) + fh.Remaining
		if len(body) != fh.Remaining || (limit > 0 && total > limit) {
			t.Fatalf("packet %+v with a body of %d bytes, limit %d", fh, len(body), limit)
		}
		if consumed += total; consumed > streamLen {
			t.Fatalf("%d bytes of packets from a %d-byte stream", consumed, streamLen)
		}
		Decode(fh, body) // must not panic
		res.headers = append(res.headers, fh)
		res.bodies = append(res.bodies, bytes.Clone(body))
	}
}

// FuzzReader: ReadPacket never panics, never loops, never holds a body slice
// larger than the packet (so never larger than maxPacketSize), and cuts a
// stream the same way however the stream's bytes arrive.
func FuzzReader(f *testing.F) {
	for _, s := range readerSeeds(f) {
		f.Add(s.stream, s.maxSize, s.bufSize)
	}
	f.Fuzz(func(t *testing.T, stream []byte, maxSize uint16, bufSize byte) {
		limit, size := int(maxSize), int(bufSize)
		whole := readStream(t, bytes.NewReader(stream), len(stream), limit, size)
		switch {
		case whole.err == io.EOF, whole.err == io.ErrUnexpectedEOF:
		case errors.Is(whole.err, ErrMalformed), errors.Is(whole.err, ErrTooLarge):
		default:
			t.Fatalf("ReadPacket: unexpected error %v", whole.err)
		}
		bytewise := readStream(t, iotest.OneByteReader(bytes.NewReader(stream)), len(stream), limit, size)
		if len(whole.headers) != len(bytewise.headers) || whole.err.Error() != bytewise.err.Error() {
			t.Fatalf("whole stream: %d packets, %v; byte by byte: %d packets, %v",
				len(whole.headers), whole.err, len(bytewise.headers), bytewise.err)
		}
		for i := range whole.headers {
			if whole.headers[i] != bytewise.headers[i] || !bytes.Equal(whole.bodies[i], bytewise.bodies[i]) {
				t.Fatalf("packet %d: %+v % X whole, %+v % X byte by byte", i,
					whole.headers[i], whole.bodies[i], bytewise.headers[i], bytewise.bodies[i])
			}
		}
	})
}
