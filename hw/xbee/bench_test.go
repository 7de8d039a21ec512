package xbee

import "testing"

// loopReader returns data over and over, at most chunk bytes per Read.
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

// The hot path: a sensor's 41-byte PUBLISH (32-byte reading) in a Receive
// Packet, and the gateway's answer in a Transmit Request. The address holds
// bytes that need escaping in mode 2.
var (
	benchPublish = append([]byte{0x29, 0x0C, 0x20, 0x00, 0x01, 0x00, 0x02}, seq(34)...)
	benchRx      = &Receive{Src: Address{0x0013A2004011137E, 0x7D13}, Options: RxAcked, Data: benchPublish}
	benchTx      = &TransmitRequest{FrameID: 1, Dest: benchRx.Src, Data: benchPublish}
)

func modeName(escaped bool) string {
	if escaped {
		return "mode2"
	}
	return "mode1"
}

func BenchmarkAppend(b *testing.B) {
	for _, escaped := range []bool{false, true} {
		b.Run(modeName(escaped), func(b *testing.B) {
			buf := make([]byte, 0, 256)
			b.SetBytes(int64(benchTx.size()))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = Append(buf[:0], benchTx, escaped); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchStream returns 16 Receive Packets back to back.
func benchStream(b *testing.B, escaped bool) []byte {
	var stream []byte
	for range 16 {
		var err error
		if stream, err = Append(stream, benchRx, escaped); err != nil {
			b.Fatal(err)
		}
	}
	return stream
}

// BenchmarkReadFrameData is the allocation-free path: frame data into a
// reused *Receive with Unmarshal.
func BenchmarkReadFrameData(b *testing.B) {
	for _, escaped := range []bool{false, true} {
		for _, chunk := range []int{1, 64} {
			b.Run(modeName(escaped)+"/"+chunkName(chunk), func(b *testing.B) {
				r := NewReader(&loopReader{data: benchStream(b, escaped), chunk: chunk}, escaped)
				var rx Receive
				b.SetBytes(int64(benchRx.size()))
				b.ReportAllocs()
				for b.Loop() {
					data, err := r.ReadFrameData()
					if err != nil {
						b.Fatal(err)
					}
					if err := Unmarshal(data, &rx); err != nil || len(rx.Data) != len(benchPublish) {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkReadFrame is the convenient path, which hands the caller a frame
// of its own (two allocations: the frame and its data).
func BenchmarkReadFrame(b *testing.B) {
	for _, escaped := range []bool{false, true} {
		b.Run(modeName(escaped), func(b *testing.B) {
			r := NewReader(&loopReader{data: benchStream(b, escaped), chunk: 64}, escaped)
			b.SetBytes(int64(benchRx.size()))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.ReadFrame(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func chunkName(n int) string {
	if n == 1 {
		return "1-byte-reads"
	}
	return "64-byte-reads"
}
