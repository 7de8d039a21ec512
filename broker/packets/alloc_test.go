package packets

import (
	"strings"
	"testing"
)

// The PUBLISH path of the broker: every packet is read, decoded and fanned
// out, so none of these may allocate.

const benchTopic = "sensors/room/t01" // 16 bytes

func benchPublish() []byte {
	return AppendPublish(nil, false, 1, false, benchTopic, 7, seq(32))
}

func TestAllocsPublishDecode(t *testing.T) {
	fh, body := readOne(t, benchPublish())
	var p PublishPacket
	allocs := testing.AllocsPerRun(1000, func() {
		if err := p.Decode(fh, body); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("PublishPacket.Decode: %v allocations, want 0", allocs)
	}
	// A long topic too: no string conversion for validation.
	long := AppendPublish(nil, false, 0, false, strings.Repeat("building/7/room/", 12)+"t", 0, nil)
	fh, body = readOne(t, long)
	if allocs := testing.AllocsPerRun(1000, func() {
		if err := p.Decode(fh, body); err != nil {
			t.Fatal(err)
		}
	}); allocs != 0 {
		t.Errorf("PublishPacket.Decode with a %d-byte topic: %v allocations, want 0", len(p.Topic), allocs)
	}
}

func TestAllocsAppendPublish(t *testing.T) {
	payload := seq(32)
	buf := make([]byte, 0, 128)
	allocs := testing.AllocsPerRun(1000, func() {
		buf = AppendPublish(buf[:0], true, 2, true, benchTopic, 7, payload)
	})
	if allocs != 0 {
		t.Errorf("AppendPublish: %v allocations, want 0", allocs)
	}
	p := &PublishPacket{QoS: 1, Topic: []byte(benchTopic), PacketID: 7, Payload: payload}
	if allocs := testing.AllocsPerRun(1000, func() { buf = p.Append(buf[:0]) }); allocs != 0 {
		t.Errorf("PublishPacket.Append: %v allocations, want 0", allocs)
	}
}

func TestAllocsAppendAck(t *testing.T) {
	buf := make([]byte, 0, 16)
	for _, typ := range []Type{TypePuback, TypePubrec, TypePubrel, TypePubcomp, TypeUnsuback} {
		if allocs := testing.AllocsPerRun(1000, func() { buf = AppendAck(buf[:0], typ, 9) }); allocs != 0 {
			t.Errorf("AppendAck(%v): %v allocations, want 0", typ, allocs)
		}
	}
	c := &ConnackPacket{SessionPresent: true}
	s := &SubackPacket{PacketID: 3, ReturnCodes: []byte{1, 0x80}}
	if allocs := testing.AllocsPerRun(1000, func() {
		buf = s.Append(c.Append((&PingrespPacket{}).Append(buf[:0])))
	}); allocs != 0 {
		t.Errorf("PINGRESP, CONNACK, SUBACK Append: %v allocations, want 0", allocs)
	}
}

// TestAllocsReadPacket: once warmed up, a Reader returns packets that fit
// its buffer straight from it.
func TestAllocsReadPacket(t *testing.T) {
	var stream []byte
	for i := range 50 {
		stream = AppendPublish(stream, false, byte(i%3), false, benchTopic, uint16(i+1), seq(i))
		stream = AppendAck(stream, TypePuback, uint16(i))
		stream = (&PingreqPacket{}).Append(stream)
	}
	stream = AppendPublish(stream, false, 0, false, benchTopic, 0, seq(3000)) // fits the buffer
	r := NewReader(&cyclicReader{data: stream}, 0)
	var p PublishPacket
	allocs := testing.AllocsPerRun(10000, func() {
		fh, body, err := r.ReadPacket()
		if err != nil {
			t.Fatal(err)
		}
		if fh.Type == TypePublish {
			if err := p.Decode(fh, body); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs != 0 {
		t.Errorf("ReadPacket (+ PublishPacket.Decode): %v allocations per packet, want 0", allocs)
	}
}

// TestAllocsDecode documents what Decode costs for the other packets.
func TestAllocsDecode(t *testing.T) {
	cases := []struct {
		name, wire string
		want       float64
	}{
		{"PUBLISH: the packet", "30 0A 0003 612F62 68656C6C6F", 1},
		{"PUBACK: the packet", "40 02 0001", 1},
		{"PINGREQ: nothing", "C0 00", 0},
		{"SUBSCRIBE: packet, slice, one string for all filters", "82 0C 0001 0003 612F2B 01 0001 23 02", 3},
		{"UNSUBSCRIBE: packet, slice, one string for all filters", "A2 0A 0001 0003 612F2B 0001 23", 3},
	}
	for _, c := range cases {
		fh, body := readOne(t, unhex(t, c.wire))
		allocs := testing.AllocsPerRun(1000, func() {
			if _, err := Decode(fh, body); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != c.want {
			t.Errorf("Decode of %s: %v allocations, want %v", c.name, allocs, c.want)
		}
	}
}
