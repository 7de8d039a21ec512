package packets

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"testing"
	"testing/iotest"
)

// step is one Read result of a scriptReader.
type step struct {
	data []byte
	err  error
}

// scriptReader returns its steps one Read at a time (a step's data may be
// split if p is short), then io.EOF.
type scriptReader struct{ steps []step }

func (s *scriptReader) Read(p []byte) (int, error) {
	if len(s.steps) == 0 {
		return 0, io.EOF
	}
	st := &s.steps[0]
	n := copy(p, st.data)
	st.data = st.data[n:]
	if len(st.data) > 0 {
		return n, nil
	}
	err := st.err
	s.steps = s.steps[1:]
	return n, err
}

// cyclicReader repeats data forever.
type cyclicReader struct {
	data []byte
	off  int
}

func (c *cyclicReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k := copy(p[n:], c.data[c.off:])
		n += k
		c.off = (c.off + k) % len(c.data)
	}
	return n, nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

var errTimeout = errors.New("i/o timeout")

// readerKinds wrap a stream the ways a network delivers it.
var readerKinds = []struct {
	name string
	wrap func(io.Reader) io.Reader
}{
	{"whole", func(r io.Reader) io.Reader { return r }},
	{"one byte", iotest.OneByteReader},
	{"half", iotest.HalfReader},
	{"data with EOF", iotest.DataErrReader},
}

func TestReaderStream(t *testing.T) {
	var stream []byte
	var want []Packet
	for _, tt := range wireTable {
		stream = append(stream, unhex(t, tt.wire)...)
		want = append(want, tt.pkt)
	}
	for _, tt := range nonCanonical {
		stream = append(stream, unhex(t, tt.wire)...)
		want = append(want, tt.pkt)
	}
	for _, rk := range readerKinds {
		for _, size := range []int{DefaultBufferSize, 16, 37} {
			r := NewReaderSize(rk.wrap(bytes.NewReader(stream)), 0, size)
			for i, w := range want {
				fh, body, err := r.ReadPacket()
				if err != nil {
					t.Fatalf("%s, buffer %d: packet %d: %v", rk.name, size, i, err)
				}
				p, err := Decode(fh, body)
				if err != nil || !equalPackets(p, w) {
					t.Fatalf("%s, buffer %d: packet %d = %s, %v; want %s", rk.name, size, i, dump(p), err, dump(w))
				}
			}
			for range 2 {
				if _, _, err := r.ReadPacket(); err != io.EOF {
					t.Fatalf("%s, buffer %d: after the last packet: %v, want io.EOF", rk.name, size, err)
				}
			}
		}
	}
}

func TestReaderEOF(t *testing.T) {
	cases := []struct {
		name, stream string
		packets      int
		want         error
	}{
		{"empty", "", 0, io.EOF},
		{"first byte only", "C0", 0, io.ErrUnexpectedEOF},
		{"remaining length cut", "30 80", 0, io.ErrUnexpectedEOF},
		{"remaining length cut after 3 bytes", "30 80 80 80", 0, io.ErrUnexpectedEOF},
		{"body cut", "30 0A 0003 61", 0, io.ErrUnexpectedEOF},
		{"second packet cut", "C0 00 30", 1, io.ErrUnexpectedEOF},
		{"large body cut", "30 30 0003 612F62" + hx(seq(20)), 0, io.ErrUnexpectedEOF},
		{"two packets", "C0 00 D0 00", 2, io.EOF},
		{"large packet, then EOF", "30 1F 0003 612F62" + hx(seq(26)), 1, io.EOF},
	}
	for _, c := range cases {
		for _, rk := range readerKinds {
			r := NewReaderSize(rk.wrap(bytes.NewReader(unhex(t, c.stream))), 0, 16)
			for i := range c.packets {
				if _, _, err := r.ReadPacket(); err != nil {
					t.Fatalf("%s, %s: packet %d: %v", c.name, rk.name, i, err)
				}
			}
			for range 2 {
				if fh, body, err := r.ReadPacket(); err != c.want || body != nil || fh != (FixedHeader{}) {
					t.Fatalf("%s, %s: %+v, % X, %v; want %v", c.name, rk.name, fh, body, err, c.want)
				}
			}
		}
	}
}

func TestReaderMalformedRemainingLength(t *testing.T) {
	for _, s := range []string{"30 80 80 80 80 01 00", "C0 00 D0 FF FF FF FF 7F", "E0 80 80 80 80"} {
		for _, rk := range readerKinds {
			r := NewReader(rk.wrap(bytes.NewReader(unhex(t, s))), 0)
			var err error
			for err == nil {
				_, _, err = r.ReadPacket()
			}
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, ErrMalformed) || e.Type == 0 {
				t.Fatalf("%s, %s: %v, want ErrMalformed with the type", s, rk.name, err)
			}
			if _, _, err2 := r.ReadPacket(); err2 != err {
				t.Fatalf("%s: the error is not sticky: then %v", s, err2)
			}
		}
	}
}

func TestReaderMaxPacketSize(t *testing.T) {
	// 10 bytes, then 11, with maxPacketSize 10.
	stream := unhex(t, "30 08 0001 61 0102030405  30 09 0001 61 010203040506  C0 00")
	for _, rk := range readerKinds {
		for _, size := range []int{16, DefaultBufferSize} {
			r := NewReaderSize(rk.wrap(bytes.NewReader(stream)), 10, size)
			if fh, body, err := r.ReadPacket(); err != nil || fh.Remaining != 8 || len(body) != 8 {
				t.Fatalf("%s: packet of exactly the limit: %+v, %v", rk.name, fh, err)
			}
			_, _, err := r.ReadPacket()
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, ErrTooLarge) || e.Type != TypePublish {
				t.Fatalf("%s: packet over the limit: %v", rk.name, err)
			}
			if e.Detail != "packet of 11 bytes, the limit is 10" {
				t.Errorf("detail %q", e.Detail)
			}
			if _, _, err2 := r.ReadPacket(); err2 != err {
				t.Fatalf("%s: ErrTooLarge is not sticky: %v", rk.name, err2)
			}
		}
	}
	// The header counts as sent: a non-minimal length makes a packet longer.
	r := NewReader(bytes.NewReader(unhex(t, "C0 80 00")), 2)
	if _, _, err := r.ReadPacket(); !errors.Is(err, ErrTooLarge) {
		t.Errorf("PINGREQ of 3 bytes with a limit of 2: %v", err)
	}
}

func allocatedBytes(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestReaderTooLargeBeforeAllocation: a PUBLISH announcing 256 MB against a
// 1 MB limit is refused after its header, with nothing of its body read
// beyond what the buffer's first fill brought and nothing allocated for it.
func TestReaderTooLargeBeforeAllocation(t *testing.T) {
	src := &countingReader{r: io.MultiReader(bytes.NewReader(unhex(t, "30 FF FF FF 7F")), zeroReader{})}
	var r *Reader
	var err error
	n := allocatedBytes(func() {
		r = NewReader(src, 1<<20)
		_, _, err = r.ReadPacket()
	})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("ReadPacket: %v, want ErrTooLarge", err)
	}
	if r.big != nil {
		t.Errorf("a body slice of %d bytes was allocated", cap(r.big))
	}
	if src.n > DefaultBufferSize {
		t.Errorf("%d bytes read from the stream, more than one buffer fill", src.n)
	}
	if n > 64<<10 { // the buffer, the error; the body would be 256 MB
		t.Errorf("%d bytes allocated, want little more than the Reader's buffer", n)
	}
}

// TestReaderGrowsWithData: a packet under the limit that announces 200 MB
// but sends 1000 bytes costs memory for what arrived, not for the announcement.
func TestReaderGrowsWithData(t *testing.T) {
	stream := append(unhex(t, "30 80 84 AF 5F"), seq(1000)...) // 200,000,000
	var r *Reader
	var err error
	n := allocatedBytes(func() {
		r = NewReader(bytes.NewReader(stream), 0)
		_, _, err = r.ReadPacket()
	})
	if err != io.ErrUnexpectedEOF {
		t.Fatalf("ReadPacket: %v, want io.ErrUnexpectedEOF", err)
	}
	if cap(r.big) > bigChunk || len(r.big) != len(stream)-5 {
		t.Errorf("body slice: len %d, cap %d", len(r.big), cap(r.big))
	}
	if n > 1<<20 {
		t.Errorf("%d bytes allocated for 1000 bytes received", n)
	}
}

// TestReaderMaxRemainingLength: the largest Remaining Length, FF FF FF 7F,
// is a valid header; the packet is then read (here: cut short).
func TestReaderMaxRemainingLength(t *testing.T) {
	stream := append(unhex(t, "30 FF FF FF 7F 0001 61"), seq(100)...)
	r := NewReader(bytes.NewReader(stream), 0)
	if _, _, err := r.ReadPacket(); err != io.ErrUnexpectedEOF {
		t.Errorf("default limit: %v, want io.ErrUnexpectedEOF", err)
	}
	if r.bigFH != (FixedHeader{Type: TypePublish, Remaining: MaxRemainingLength}) {
		t.Errorf("header %+v", r.bigFH)
	}
	r = NewReader(bytes.NewReader(stream), MaxPacketSize-1)
	if _, _, err := r.ReadPacket(); !errors.Is(err, ErrTooLarge) {
		t.Errorf("limit MaxPacketSize-1: %v, want ErrTooLarge", err)
	}
}

// TestReaderLargeBodies mixes packets larger than the buffer with small
// ones; a large body is kept for reuse only up to bigRetain bytes.
func TestReaderLargeBodies(t *testing.T) {
	sizes := []int{3, 100_000, 10, 300_000, 4, 1000, 1000, 70, 64}
	var stream []byte
	for _, n := range sizes {
		stream = AppendPublish(stream, false, 0, false, "t", 0, seq(n))
	}
	for _, rk := range readerKinds {
		r := NewReaderSize(rk.wrap(bytes.NewReader(stream)), 0, 64)
		for i, n := range sizes {
			fh, body, err := r.ReadPacket()
			if err != nil {
				t.Fatalf("%s: packet %d: %v", rk.name, i, err)
			}
			var p PublishPacket
			if err := p.Decode(fh, body); err != nil || !bytes.Equal(p.Payload, seq(n)) {
				t.Fatalf("%s: packet %d: payload of %d bytes, want %d (%v)", rk.name, i, len(p.Payload), n, err)
			}
			if cap(r.big) > max(fh.Remaining, bigRetain) {
				t.Fatalf("%s: packet %d: body slice of capacity %d for %d bytes", rk.name, i, cap(r.big), fh.Remaining)
			}
		}
		if _, _, err := r.ReadPacket(); err != io.EOF || cap(r.big) > bigRetain {
			t.Fatalf("%s: at the end: %v, body slice of capacity %d", rk.name, err, cap(r.big))
		}
	}
}

// TestReaderResumes: an error from the underlying reader, such as a read
// deadline, is returned as is; the bytes read so far are kept and the next
// ReadPacket continues the packet.
func TestReaderResumes(t *testing.T) {
	for _, size := range []int{16, DefaultBufferSize} {
		large := AppendPublish(nil, false, 1, false, "a/b", 1, seq(40))
		src := &scriptReader{steps: []step{
			{unhex(t, "30"), errTimeout},
			{unhex(t, "0A 00"), nil},
			{nil, errTimeout},
			{unhex(t, "03 612F62"), errTimeout},
			{unhex(t, "68656C6C6F C000"), nil},
			{large[:20], errTimeout},
			{large[20:30], nil},
			{nil, errTimeout},
			{large[30:], errTimeout},
			{unhex(t, "E0"), io.EOF},
		}}
		r := NewReaderSize(src, 0, size)
		var got []Packet
		var errs []error
		for range 20 {
			fh, body, err := r.ReadPacket()
			if err != nil {
				errs = append(errs, err)
				if err == io.ErrUnexpectedEOF {
					break
				}
				continue
			}
			p, err := Decode(fh, bytes.Clone(body)) // a PUBLISH aliases the body
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, p)
		}
		want := []Packet{
			&PublishPacket{Topic: []byte("a/b"), Payload: []byte("hello")},
			&PingreqPacket{},
			&PublishPacket{QoS: 1, Topic: []byte("a/b"), PacketID: 1, Payload: seq(40)},
		}
		if len(got) != len(want) {
			t.Fatalf("buffer %d: %d packets, want %d (errors %v)", size, len(got), len(want), errs)
		}
		for i := range want {
			if !equalPackets(got[i], want[i]) {
				t.Fatalf("buffer %d: packet %d = %s, want %s", size, i, dump(got[i]), dump(want[i]))
			}
		}
		wantErrs := []error{errTimeout, errTimeout, errTimeout, errTimeout, errTimeout, errTimeout, io.ErrUnexpectedEOF}
		if len(errs) != len(wantErrs) {
			t.Fatalf("buffer %d: errors %v, want %v", size, errs, wantErrs)
		}
		for i := range errs {
			if errs[i] != wantErrs[i] {
				t.Fatalf("buffer %d: errors %v, want %v", size, errs, wantErrs)
			}
		}
	}
}

// TestReaderBodyCapacity: appending to a returned body cannot overwrite the
// packet after it.
func TestReaderBodyCapacity(t *testing.T) {
	r := NewReader(bytes.NewReader(unhex(t, "30 05 0001 61 4142 C0 00")), 0)
	_, body, err := r.ReadPacket()
	if err != nil || cap(body) != len(body) {
		t.Fatalf("body % X, capacity %d, %v", body, cap(body), err)
	}
	_ = append(body, 0xFF, 0xFF)
	if fh, _, err := r.ReadPacket(); err != nil || fh.Type != TypePingreq || fh.Remaining != 0 {
		t.Fatalf("next packet %+v, %v", fh, err)
	}
	var p PublishPacket
	if err := p.Decode(FixedHeader{Type: TypePublish, Remaining: 5}, unhex(t, "0001 61 4142")); err != nil ||
		cap(p.Topic) != 1 {
		t.Fatalf("topic capacity %d, %v", cap(p.Topic), err)
	}
}

func TestReaderReset(t *testing.T) {
	r := NewReader(bytes.NewReader(unhex(t, "30 FF FF FF FF 01")), 0)
	if _, _, err := r.ReadPacket(); !errors.Is(err, ErrMalformed) {
		t.Fatal(err)
	}
	r.Reset(bytes.NewReader(unhex(t, "D0 00")))
	if fh, _, err := r.ReadPacket(); err != nil || fh.Type != TypePingresp {
		t.Fatalf("after Reset: %+v, %v", fh, err)
	}
	if _, _, err := r.ReadPacket(); err != io.EOF {
		t.Fatalf("after Reset, at the end: %v", err)
	}
}

type funcReader func(p []byte) (int, error)

func (f funcReader) Read(p []byte) (int, error) { return f(p) }

func TestReaderMisbehavingSource(t *testing.T) {
	r := NewReader(funcReader(func([]byte) (int, error) { return 0, nil }), 0)
	if _, _, err := r.ReadPacket(); err != io.ErrNoProgress {
		t.Errorf("no data, no error: %v, want io.ErrNoProgress", err)
	}
	r = NewReader(funcReader(func(p []byte) (int, error) { return len(p) + 1, nil }), 0)
	if _, _, err := r.ReadPacket(); err == nil {
		t.Errorf("an impossible count was accepted")
	}
	// The same inside a large body.
	first := true
	r = NewReaderSize(funcReader(func(p []byte) (int, error) {
		if first {
			first = false
			return copy(p, unhex(t, "30 40 0001 61")), nil
		}
		return 0, nil
	}), 0, 16)
	if _, _, err := r.ReadPacket(); err != io.ErrNoProgress {
		t.Errorf("large body, no data, no error: %v, want io.ErrNoProgress", err)
	}
}

func TestSmallReaderGrowsWhenReadsFillIt(t *testing.T) {
	// 100 PUBLISH packets of 60 bytes, back to back: reads fill the buffer.
	var stream []byte
	for i := range 100 {
		stream = AppendPublish(stream, false, 0, false, "t/x", 0, bytes.Repeat([]byte{byte(i)}, 55))
	}
	r := NewSmallReader(bytes.NewReader(stream), 0)
	if len(r.buf) != SmallBufferSize {
		t.Fatalf("starts with %d bytes", len(r.buf))
	}
	for i := range 100 {
		fh, body, err := r.ReadPacket()
		if err != nil || fh.Type != TypePublish || body[len(body)-1] != byte(i) {
			t.Fatalf("packet %d: %v %v", i, fh, err)
		}
	}
	if len(r.buf) != DefaultBufferSize {
		t.Errorf("buffer of %d bytes after a fast stream, want %d", len(r.buf), DefaultBufferSize)
	}

	// A slow peer: one small packet per read, the buffer stays small.
	slow := NewSmallReader(iotest.OneByteReader(bytes.NewReader(stream[:600])), 0)
	for range 5 {
		if _, _, err := slow.ReadPacket(); err != nil {
			t.Fatal(err)
		}
	}
	if len(slow.buf) != SmallBufferSize {
		t.Errorf("buffer grew to %d for a slow peer", len(slow.buf))
	}
}
