package mqttsn

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// seedWires returns the wire bytes of every example in the test tables:
// canonical, non-canonical and malformed.
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
	return seeds
}

// encapsulate wraps wire in an encapsulation header with node id 00 01.
func encapsulate(wire []byte) []byte {
	return append([]byte{0x05, byte(TypeEncapsulated), 0x00, 0x00, 0x01}, wire...)
}

var errorKinds = []error{ErrTooShort, ErrSize, ErrLength, ErrUnknownType, ErrInvalid}

// checkDecodeError checks that a failed decode returned an *Error of one of
// the decoding kinds.
func checkDecodeError(t *testing.T, data []byte, err error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Decode(% X): error %T %q is not an *Error", data, err, err)
	}
	for _, k := range errorKinds {
		if errors.Is(err, k) {
			return
		}
	}
	t.Fatalf("Decode(% X): error %q has kind %v", data, err, e.Kind)
}

// checkRoundTrip checks a packet p that Decode made from data: Unmarshal
// agrees, Marshal succeeds, Decode(Marshal(p)) equals p and a second Marshal
// writes the same bytes.
func checkRoundTrip(t *testing.T, data []byte, p Packet) {
	t.Helper()
	if p == nil {
		t.Fatalf("Decode(% X) returned neither a packet nor an error", data)
	}
	q := newPacket(p.Type())
	if err := Unmarshal(data, q); err != nil {
		t.Fatalf("Decode(% X) succeeded, Unmarshal failed: %v", data, err)
	}
	if !equalPackets(p, q) {
		t.Fatalf("Decode(% X) = %s, Unmarshal = %s", data, dump(p), dump(q))
	}
	enc, err := Marshal(p)
	if err != nil {
		t.Fatalf("Decode(% X) = %s, which Marshal refuses: %v", data, dump(p), err)
	}
	if len(enc) != Len(p) {
		t.Fatalf("Marshal(%s) wrote %d bytes, Len says %d", dump(p), len(enc), Len(p))
	}
	p2, err := Decode(enc)
	if err != nil {
		t.Fatalf("Decode(% X) = %s; Marshal = % X, which Decode refuses: %v", data, dump(p), enc, err)
	}
	if !equalPackets(p, p2) {
		t.Fatalf("Decode(% X) = %s; Marshal = % X; Decode = %s", data, dump(p), enc, dump(p2))
	}
	enc2, err := Marshal(p2)
	if err != nil || !bytes.Equal(enc, enc2) {
		t.Fatalf("Marshal not stable: % X, then % X (%v)", enc, enc2, err)
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range seedWires(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		orig := bytes.Clone(data)
		p, err := Decode(data)
		if !bytes.Equal(data, orig) {
			t.Fatalf("Decode changed its input: % X became % X", orig, data)
		}
		if err != nil {
			if p != nil {
				t.Fatalf("Decode(% X) returned %s with error %v", data, dump(p), err)
			}
			checkDecodeError(t, data, err)
			return
		}
		checkRoundTrip(t, data, p)
	})
}

func FuzzParseHeader(f *testing.F) {
	for _, s := range seedWires(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		total, hdr, typ, err := ParseHeader(data)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.HasType {
				t.Fatalf("ParseHeader(% X): error %q is not a header *Error", data, err)
			}
			if !errors.Is(err, ErrTooShort) && !errors.Is(err, ErrLength) {
				t.Fatalf("ParseHeader(% X): error %q has kind %v", data, err, e.Kind)
			}
			if total != 0 || hdr != 0 || typ != 0 {
				t.Fatalf("ParseHeader(% X) = %d, %d, %v with error %v", data, total, hdr, typ, err)
			}
			if _, derr := Decode(data); derr == nil {
				t.Fatalf("ParseHeader(% X) failed, Decode succeeded", data)
			}
			return
		}
		if len(data) < hdr {
			t.Fatalf("ParseHeader(% X): header of %d bytes in %d", data, hdr, len(data))
		}
		switch hdr {
		case 2:
			if data[0] < 2 || total != int(data[0]) {
				t.Fatalf("ParseHeader(% X): 1-byte form, total %d", data, total)
			}
		case 4:
			if data[0] != 0x01 || total != int(binary.BigEndian.Uint16(data[1:])) || total < 4 {
				t.Fatalf("ParseHeader(% X): 3-byte form, total %d", data, total)
			}
		default:
			t.Fatalf("ParseHeader(% X): header length %d", data, hdr)
		}
		if typ != MsgType(data[hdr-1]) {
			t.Fatalf("ParseHeader(% X): type %v", data, typ)
		}

		// Decode must agree with the header.
		p, err := Decode(data)
		switch {
		case newPacket(typ) == nil:
			if !errors.Is(err, ErrUnknownType) {
				t.Fatalf("Decode(% X) of reserved %v: %v", data, typ, err)
			}
		case typ == TypeEncapsulated:
			if err == nil && total >= len(data) {
				t.Fatalf("Decode(% X): encapsulation header of %d bytes leaves no inner message", data, total)
			}
		case total != len(data):
			if !errors.Is(err, ErrLength) {
				t.Fatalf("Decode(% X): length field %d, datagram %d: %v", data, total, len(data), err)
			}
		}
		if err == nil && p.Type() != typ {
			t.Fatalf("Decode(% X) = %v, header says %v", data, p.Type(), typ)
		}
	})
}

func FuzzEncapsulated(f *testing.F) {
	for _, tt := range wireTable {
		if tt.pkt.Type() != TypeEncapsulated {
			f.Add(encapsulate(unhex(f, tt.wire)))
		} else {
			f.Add(unhex(f, tt.wire))
		}
	}
	for _, tt := range nonCanonical {
		if tt.pkt.Type() != TypeEncapsulated {
			f.Add(encapsulate(unhex(f, tt.wire)))
		}
	}
	for _, tt := range decodeErrors {
		f.Add(encapsulate(unhex(f, tt.wire)))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var e Encapsulated
		err := Unmarshal(data, &e)
		p, derr := Decode(data)
		if err != nil {
			checkDecodeError(t, data, err)
			if derr == nil && p.Type() == TypeEncapsulated {
				t.Fatalf("Decode(% X) = %s, Unmarshal into *Encapsulated: %v", data, dump(p), err)
			}
			return
		}
		if derr != nil || !equalPackets(p, &e) {
			t.Fatalf("Unmarshal(% X) = %s, Decode = %s, %v", data, dump(&e), dump(p), derr)
		}

		// The header: Length, 0xFE, Ctrl, node id.
		hl := int(data[0])
		if hl != 3+len(e.NodeID) || !bytes.Equal(e.NodeID, data[3:hl]) || e.Radius != data[2]&0x03 {
			t.Fatalf("Unmarshal(% X) = %s: header mismatch", data, dump(&e))
		}
		if e.Message == nil || e.Message.Type() == TypeEncapsulated {
			t.Fatalf("Unmarshal(% X) = %s: bad inner message", data, dump(&e))
		}
		inner, err := Decode(data[hl:])
		if err != nil || !equalPackets(inner, e.Message) {
			t.Fatalf("inner % X decodes as %s, %v; encapsulated as %s", data[hl:], dump(inner), err, dump(e.Message))
		}

		checkRoundTrip(t, data, &e)

		// The re-encoding keeps the node id and the radius.
		enc, _ := Marshal(&e)
		want := append([]byte{data[0], data[1], data[2] & 0x03}, e.NodeID...)
		if !bytes.HasPrefix(enc, want) {
			t.Fatalf("Marshal(%s) = % X, want header % X", dump(&e), enc, want)
		}
	})
}

// TestFuzzSeedsEncapsulated runs every wire example through an encapsulation
// so the table-driven tests cover what FuzzEncapsulated is seeded with even
// when fuzzing is off.
func TestFuzzSeedsEncapsulated(t *testing.T) {
	for _, tt := range wireTable {
		if tt.pkt.Type() == TypeEncapsulated {
			continue
		}
		data := encapsulate(unhex(t, tt.wire))
		p, err := Decode(data)
		if err != nil {
			t.Errorf("%s encapsulated: %v", tt.name, err)
			continue
		}
		want := &Encapsulated{NodeID: []byte{0, 1}, Message: tt.pkt}
		if !equalPackets(p, want) {
			t.Errorf("%s encapsulated:\n got %s\nwant %s", tt.name, dump(p), dump(want))
		}
	}
	for _, tt := range decodeErrors {
		if _, _, typ, err := ParseHeader(unhex(t, tt.wire)); err == nil && typ == TypeEncapsulated {
			continue // nesting is refused whatever the inner message
		}
		_, err := Decode(encapsulate(unhex(t, tt.wire)))
		if !errors.Is(err, tt.kind) {
			t.Errorf("%s encapsulated: %v, want %v", tt.name, err, tt.kind)
		}
	}
}
