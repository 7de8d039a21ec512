package queue

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"strings"
	"testing"
	"time"
)

// TestRecordWireFormat pins the on-disk bytes: a change here breaks every
// queue file in the field.
func TestRecordWireFormat(t *testing.T) {
	r := Record{
		Seq:     7, // the key, not in the value
		Topic:   "a/b",
		Payload: []byte{0xde, 0xad},
		QoS:     1,
		Retain:  true,
		Time:    time.Unix(0, 0x0102030405060708),
	}
	want := []byte{
		0x01,                                           // format version
		0x01,                                           // flags: retain
		0x01,                                           // QoS
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // time, unix ns
		0x00, 0x03, // topic length
		'a', '/', 'b', // topic
		0xde, 0xad, // payload
	}
	want = binary.BigEndian.AppendUint32(want, crc32.Checksum(want, crc32.MakeTable(crc32.Castagnoli)))
	got := encodeRecord(r)
	if !bytes.Equal(got, want) {
		t.Fatalf("encodeRecord\n got %x\nwant %x", got, want)
	}
	dec, err := decodeRecord(7, got)
	if err != nil {
		t.Fatal(err)
	}
	if !recordsEqual(dec, r) {
		t.Fatalf("decode = %+v, want %+v", dec, r)
	}
	if valueSize(got) != uint64(len(r.Topic)+len(r.Payload)) {
		t.Fatalf("valueSize = %d", valueSize(got))
	}
	if !valueTime(got).Equal(r.Time) {
		t.Fatalf("valueTime = %v", valueTime(got))
	}
}

func TestMetaWireFormat(t *testing.T) {
	m := meta{next: 0x1122, count: 3, bytes: 300}
	want := []byte{
		0x01,                                           // format version
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x11, 0x22, // next Seq
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, // count
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x2c, // bytes
	}
	want = binary.BigEndian.AppendUint32(want, crc32.Checksum(want, crc32.MakeTable(crc32.Castagnoli)))
	got := encodeMeta(m)
	if !bytes.Equal(got, want) {
		t.Fatalf("encodeMeta\n got %x\nwant %x", got, want)
	}
	if dec, err := decodeMeta(got); err != nil || dec != m {
		t.Fatalf("decodeMeta = %+v, %v", dec, err)
	}
	newer := append([]byte{2}, want[1:len(want)-4]...)
	newer = binary.BigEndian.AppendUint32(newer, crc32.Checksum(newer, castagnoli))
	if _, err := decodeMeta(newer); !errors.Is(err, errNewerFormat) {
		t.Fatalf("version 2 meta: %v, want errNewerFormat", err)
	}
}

func TestDecodeRecordRejects(t *testing.T) {
	good := encodeRecord(Record{Topic: "t", Payload: []byte("p"), Time: time.Unix(1, 0)})
	reseal := func(b []byte) []byte {
		b = append([]byte(nil), b[:len(b)-4]...)
		return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	}
	mut := func(f func(b []byte)) []byte {
		b := append([]byte(nil), good...)
		f(b)
		return reseal(b)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "truncated"},
		{"short", good[:recordOverhead-1], "truncated"},
		{"bit flip", func() []byte { b := append([]byte(nil), good...); b[14] ^= 1; return b }(), "checksum"},
		{"version", mut(func(b []byte) { b[0] = 2 }), "version"},
		{"flags", mut(func(b []byte) { b[1] = 2 }), "flags"},
		{"qos", mut(func(b []byte) { b[2] = 3 }), "QoS"},
		{"topic length", mut(func(b []byte) { b[12] = 9 }), "topic length"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeRecord(1, tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func recordsEqual(a, b Record) bool {
	return a.Seq == b.Seq && a.Topic == b.Topic && bytes.Equal(a.Payload, b.Payload) &&
		a.QoS == b.QoS && a.Retain == b.Retain && a.Time.Equal(b.Time)
}

// FuzzDecodeRecord: decoding never panics, and a value that decodes
// re-encodes to the same bytes (the encoding is canonical). With reseal the
// input gets a valid CRC first, so that the fuzzer gets past the checksum
// to the fields.
func FuzzDecodeRecord(f *testing.F) {
	for _, r := range []Record{
		{Topic: "sensors/t1", Payload: []byte("21.5"), QoS: 1, Time: time.Unix(1700000000, 5)},
		{Topic: "", Payload: nil, Time: time.Unix(0, 0)},
		{Topic: "x", Payload: bytes.Repeat([]byte{0}, 100), QoS: 2, Retain: true, Time: time.Unix(0, -1)},
	} {
		f.Add(encodeRecord(r), false)
	}
	f.Add([]byte{}, false)
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0}, true)
	f.Add([]byte{1, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 'a', 0, 0, 0, 0}, true)
	f.Fuzz(func(t *testing.T, b []byte, reseal bool) {
		if reseal && len(b) >= crcLen {
			binary.BigEndian.PutUint32(b[len(b)-crcLen:], crc32.Checksum(b[:len(b)-crcLen], castagnoli))
		}
		r, err := decodeRecord(42, b)
		if err != nil {
			return
		}
		if r.Seq != 42 {
			t.Fatalf("Seq = %d", r.Seq)
		}
		if got := encodeRecord(r); !bytes.Equal(got, b) {
			t.Fatalf("round trip\n got %x\nwant %x", got, b)
		}
		if valueSize(b) != uint64(len(r.Topic)+len(r.Payload)) {
			t.Fatalf("valueSize %d, record size %d", valueSize(b), len(r.Topic)+len(r.Payload))
		}
		if !valueTime(b).Equal(r.Time) {
			t.Fatalf("valueTime %v, Time %v", valueTime(b), r.Time)
		}
		if len(r.Payload) > 0 && &r.Payload[0] == &b[recordHeader+len(r.Topic)] {
			t.Fatal("payload shares memory with the value")
		}
	})
}
