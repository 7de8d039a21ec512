package xbee

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"
	"testing/iotest"
)

// readAllData returns the frame data ReadFrameData finds in stream, and the
// reader's stats.
func readAllData(t *testing.T, src interface{ Read([]byte) (int, error) }, escaped bool) ([][]byte, Stats) {
	r := NewReader(src, escaped)
	var out [][]byte
	for range 1_000_000 {
		data, err := r.ReadFrameData()
		if err != nil {
			return out, r.Stats()
		}
		out = append(out, bytes.Clone(data))
	}
	t.Fatal("ReadFrameData did not end")
	return nil, Stats{}
}

// FuzzXBeeReader reads arbitrary bytes as API frames in mode 1 and 2, whole
// and one byte per Read (which must agree). Every frame found must have a
// good checksum and a sane length; whatever decodes must encode back to the
// same frame data. In mode 1 every byte is accounted for. A frame appended
// after the bytes (taken as line noise) must come through in mode 2; the
// bytes taken as frame data must survive Decode, Append and a Reader.
func FuzzXBeeReader(f *testing.F) {
	for _, tt := range wireTable {
		f.Add(unhex(f, tt.mode1), false)
		f.Add(unhex(f, tt.mode2), true)
		w := unhex(f, tt.mode1)
		f.Add(w[3:len(w)-1], true) // frame data alone, for the round trip
	}
	for _, s := range []string{
		"7E 00 02 8A 06 70 7E 00 02 8A 02 73",
		"7E 00 09 88 04 53 4C 00 40 A1 B2 C3 7F 7E 7E 00 02 8A 06 6F",
		"7E 00 15 90 00 7D 33 A2 7E 00 02 8A 06 6F",
		"7E 00 02 8A 06 6F 7E 00 02 8A 7D",
		"7E 00 7D 7E 00 02 8A 06 6F",
		"7E 02 01 10 7E 00 00 FF",
	} {
		f.Add(unhex(f, s), false)
		f.Add(unhex(f, s), true)
	}
	f.Fuzz(func(t *testing.T, stream []byte, escaped bool) {
		whole, ws := readAllData(t, bytes.NewReader(stream), escaped)
		one, os := readAllData(t, iotest.OneByteReader(bytes.NewReader(stream)), escaped)
		if fmt.Sprint(whole) != fmt.Sprint(one) || ws != os {
			t.Fatalf("one byte at a time: %X %+v; whole: %X %+v", one, os, whole, ws)
		}
		wire := 0
		for _, data := range whole {
			if len(data) == 0 || len(data) > MaxFrameLen {
				t.Fatalf("frame data of %d bytes", len(data))
			}
			wire += 4 + len(data)
			fr, err := Decode(data)
			if err != nil {
				continue
			}
			enc, err := Append(nil, fr, false)
			if err != nil || !bytes.Equal(enc[3:len(enc)-1], data) || enc[len(enc)-1] != checksum(data) {
				t.Fatalf("frame data % X decodes to %s, which encodes to % X (%v)", data, dump(fr), enc, err)
			}
		}
		if !escaped && uint64(wire)+ws.Dropped != uint64(len(stream)) {
			t.Fatalf("%d bytes in, %d in frames + %d dropped (%+v)", len(stream), wire, ws.Dropped, ws)
		}

		// The bytes as frame data: Decode, Append, read back.
		if fr, err := Decode(stream); err == nil && len(stream) <= MaxFrameLen {
			enc, err := Append(nil, fr, escaped)
			if err != nil {
				t.Fatalf("Append(%s): %v", dump(fr), err)
			}
			r := NewReader(bytes.NewReader(enc), escaped)
			got, err := r.ReadFrame()
			if err != nil || !reflect.DeepEqual(got, fr) {
				t.Fatalf("% X: Decode = %s, Append = % X, ReadFrame = %s, %v", stream, dump(fr), enc, dump(got), err)
			}
		}

		// Noise, then a frame: in mode 2 the frame always survives.
		if len(stream) > MaxFrameLen-12 {
			return
		}
		rx := &Receive{Src: Address{0x0013A2004011137E, 0x7D13}, Options: RxAcked, Data: bytes.Clone(stream)}
		if len(stream) == 0 {
			rx.Data = nil
		}
		in, err := Append(bytes.Clone(stream), rx, true)
		if err != nil {
			t.Fatal(err)
		}
		r := NewReader(bytes.NewReader(in), true)
		var last Frame
		for {
			fr, err := r.ReadFrame()
			if err != nil {
				break
			}
			last = fr
		}
		if !reflect.DeepEqual(last, rx) {
			t.Fatalf("after the noise % X the frame %s came out as %s", stream, dump(rx), dump(last))
		}
	})
}
