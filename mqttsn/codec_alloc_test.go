package mqttsn

import (
	"errors"
	"testing"
)

// The PUBLISH hot path: a gateway decodes every datagram and encodes every
// forwarded message, so neither may allocate beyond the packet value itself.

func TestAllocsUnmarshalPublish(t *testing.T) {
	wire := unhex(t, "29 0C 20 00 01 00 02"+hx(seq(34)))
	var p Publish
	allocs := testing.AllocsPerRun(100, func() {
		if err := Unmarshal(wire, &p); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Unmarshal of a PUBLISH into a *Publish: %v allocations, want 0", allocs)
	}
}

func TestAllocsAppendPublish(t *testing.T) {
	p := &Publish{QoS: QoS1, TopicID: 1, MsgID: 2, Data: seq(32)}
	buf := make([]byte, 0, 64)
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		if buf, err = Append(buf[:0], p); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Append of a PUBLISH into a buffer with room: %v allocations, want 0", allocs)
	}
}

func TestAllocsDecodePublish(t *testing.T) {
	wire := unhex(t, "29 0C 20 00 01 00 02"+hx(seq(34)))
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := Decode(wire); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 1 {
		t.Errorf("Decode of a PUBLISH: %v allocations, want 1 (the packet)", allocs)
	}
}

func TestEncodeNilPacketIsAnError(t *testing.T) {
	if _, err := Marshal(nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("Marshal(nil) = %v, want ErrInvalid", err)
	}
	if got := Len(&Encapsulated{NodeID: []byte{1}}); got != 4 {
		t.Errorf("Len of an empty encapsulation = %d, want 4", got)
	}
}
