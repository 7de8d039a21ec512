package frame

import "testing"

// loopReader returns data over and over, at most chunk bytes per Read, the
// way a serial port hands over what has arrived.
type loopReader struct {
	data  []byte
	off   int
	chunk int
}

func (l *loopReader) Read(p []byte) (int, error) {
	p = p[:min(len(p), l.chunk)]
	n := 0
	for n < len(p) {
		c := copy(p[n:], l.data[l.off:])
		n += c
		l.off = (l.off + c) % len(l.data)
	}
	return n, nil
}

// benchMsg is the hot path's message: a PUBLISH with a 32-byte reading.
var benchMsg = publish(seq(32))

func BenchmarkRawReadFrame(b *testing.B) {
	for _, chunk := range []int{1, 64, 512} {
		b.Run(chunkName(chunk), func(b *testing.B) {
			var stream []byte
			for range 16 {
				stream = AppendRaw(stream, benchMsg)
			}
			// A frozen clock: with time.Now a scheduling pause of a
			// gap between two Reads would cut a message in half.
			r := NewRawReader(&loopReader{data: stream, chunk: chunk}, RawOptions{Now: newFakeClock().now})
			buf := make([]byte, 256)
			b.SetBytes(int64(len(benchMsg)))
			b.ReportAllocs()
			for b.Loop() {
				if n, err := r.ReadFrame(buf); err != nil || n != len(benchMsg) {
					b.Fatalf("ReadFrame = %d, %v", n, err)
				}
			}
		})
	}
}

func BenchmarkSLIPReadFrame(b *testing.B) {
	for _, chunk := range []int{1, 64, 512} {
		b.Run(chunkName(chunk), func(b *testing.B) {
			var stream []byte
			for range 16 {
				stream = AppendSLIP(stream, benchMsg)
			}
			r := NewSLIPReader(&loopReader{data: stream, chunk: chunk})
			buf := make([]byte, 256)
			b.SetBytes(int64(len(benchMsg)))
			b.ReportAllocs()
			for b.Loop() {
				if n, err := r.ReadFrame(buf); err != nil || n != len(benchMsg) {
					b.Fatalf("ReadFrame = %d, %v", n, err)
				}
			}
		})
	}
}

func BenchmarkAppendRaw(b *testing.B) {
	buf := make([]byte, 0, 256)
	b.SetBytes(int64(len(benchMsg)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendRaw(buf[:0], benchMsg)
	}
}

func BenchmarkAppendSLIP(b *testing.B) {
	buf := make([]byte, 0, 256)
	b.SetBytes(int64(len(benchMsg)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendSLIP(buf[:0], benchMsg)
	}
}

func chunkName(n int) string {
	switch n {
	case 1:
		return "1-byte-reads"
	case 64:
		return "64-byte-reads"
	}
	return "512-byte-reads"
}
