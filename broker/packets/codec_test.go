package packets

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// unhex decodes a hex string; spaces are ignored.
func unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		tb.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// seq returns n bytes 00 01 02 ... (wrapping at 0xFF).
func seq(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func hx(b []byte) string { return hex.EncodeToString(b) }

// canon returns a copy of p in which empty byte slices are nil, so that an
// empty payload aliasing the body compares equal to one written as nil.
func canon(p Packet) Packet {
	v := reflect.ValueOf(p)
	if p == nil || v.Kind() != reflect.Pointer || v.IsNil() {
		return p
	}
	c := reflect.New(v.Elem().Type())
	c.Elem().Set(v.Elem())
	e := c.Elem()
	for i := range e.NumField() {
		if f := e.Field(i); f.Kind() == reflect.Slice && f.Len() == 0 {
			f.SetZero()
		}
	}
	return c.Interface().(Packet)
}

func equalPackets(a, b Packet) bool { return reflect.DeepEqual(canon(a), canon(b)) }

// dump formats a packet for failure messages, byte slices in hex.
func dump(p Packet) string {
	if p == nil {
		return "<nil>"
	}
	v := reflect.ValueOf(p)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return fmt.Sprintf("%#v", p)
	}
	return fmt.Sprintf("%T%+v", p, v.Elem().Interface())
}

// readOne cuts wire into exactly one packet with a Reader.
func readOne(tb testing.TB, wire []byte) (FixedHeader, []byte) {
	tb.Helper()
	r := NewReader(bytes.NewReader(wire), 0)
	fh, body, err := r.ReadPacket()
	if err != nil {
		tb.Fatalf("ReadPacket(% X): %v", wire, err)
	}
	body = bytes.Clone(body)
	if _, _, err := r.ReadPacket(); err != io.EOF {
		tb.Fatalf("% X is not exactly one packet: after it, %v", wire, err)
	}
	return fh, body
}

// decodeWire reads and decodes the single packet in wire.
func decodeWire(tb testing.TB, wire []byte) (Packet, error) {
	tb.Helper()
	fh, body := readOne(tb, wire)
	return Decode(fh, body)
}

// wireTable holds canonical encodings: Decode gives pkt, pkt.Append gives wire.
var wireTable = []struct {
	name string
	wire string
	pkt  Packet
}{
	{"CONNECT minimal", "10 0C 0004 4D515454 04 02 003C 0000",
		&ConnectPacket{ProtocolName: "MQTT", ProtocolLevel: 4, CleanSession: true, KeepAlive: 60}},
	{"CONNECT every field", "10 1F 0004 4D515454 04 EE 003C 0002 6331 0003 772F74 0003 627965 0001 75 0002 0102",
		&ConnectPacket{ProtocolName: "MQTT", ProtocolLevel: 4, CleanSession: true, KeepAlive: 60, ClientID: "c1",
			WillFlag: true, WillQoS: 1, WillRetain: true, WillTopic: "w/t", WillMessage: []byte("bye"),
			UsernameFlag: true, Username: "u", PasswordFlag: true, Password: []byte{1, 2}}},
	{"CONNECT MQIsdp (3.1)", "10 10 0006 4D5149736470 03 02 000A 0002 6331",
		&ConnectPacket{ProtocolName: "MQIsdp", ProtocolLevel: 3, CleanSession: true, KeepAlive: 10, ClientID: "c1"}},
	{"CONNECT will QoS 2, empty will message, empty user name", "10 14 0004 4D515454 04 94 0000 0001 61 0001 74 0000 0000",
		&ConnectPacket{ProtocolName: "MQTT", ProtocolLevel: 4, ClientID: "a", WillFlag: true, WillQoS: 2,
			WillTopic: "t", UsernameFlag: true}},
	{"CONNECT empty password", "10 11 0004 4D515454 04 C2 FFFF 0000 0001 75 0000",
		&ConnectPacket{ProtocolName: "MQTT", ProtocolLevel: 4, CleanSession: true, KeepAlive: 65535,
			UsernameFlag: true, Username: "u", PasswordFlag: true}},

	{"CONNACK accepted", "20 02 00 00", &ConnackPacket{}},
	{"CONNACK session present", "20 02 01 00", &ConnackPacket{SessionPresent: true}},
	{"CONNACK not authorized", "20 02 00 05", &ConnackPacket{ReturnCode: ConnRefusedNotAuthorized}},
	{"CONNACK reserved return code", "20 02 00 FF", &ConnackPacket{ReturnCode: 0xFF}},

	{"PUBLISH QoS 0", "30 0A 0003 612F62 68656C6C6F",
		&PublishPacket{Topic: []byte("a/b"), Payload: []byte("hello")}},
	{"PUBLISH QoS 1 dup retain", "3B 09 0003 612F62 000A 6869",
		&PublishPacket{Dup: true, QoS: 1, Retain: true, Topic: []byte("a/b"), PacketID: 10, Payload: []byte("hi")}},
	{"PUBLISH QoS 2 empty payload", "34 07 0003 612F62 0001",
		&PublishPacket{QoS: 2, Topic: []byte("a/b"), PacketID: 1}},
	{"PUBLISH QoS 0 retain binary payload", "31 05 0001 61 FF00",
		&PublishPacket{Retain: true, Topic: []byte("a"), Payload: []byte{0xFF, 0}}},
	{"PUBLISH UTF-8 topic", "30 04 0002 C3A9", &PublishPacket{Topic: []byte("é")}},
	{"PUBLISH topic with BOM", "30 06 0004 EFBBBF61", &PublishPacket{Topic: []byte("\uFEFFa")}},
	{"PUBLISH $SYS topic", "30 0C 0008 245359532F782F79 2A2A", &PublishPacket{Topic: []byte("$SYS/x/y"), Payload: []byte("**")}},
	{"PUBLISH 2-byte remaining length", "32 CD01 0001 61 FFFF" + hx(seq(200)),
		&PublishPacket{QoS: 1, Topic: []byte("a"), PacketID: 0xFFFF, Payload: seq(200)}},

	{"PUBACK", "40 02 0001", &PubackPacket{PacketID: 1}},
	{"PUBACK id 0", "40 02 0000", &PubackPacket{}},
	{"PUBREC", "50 02 0002", &PubrecPacket{PacketID: 2}},
	{"PUBREL", "62 02 0003", &PubrelPacket{PacketID: 3}},
	{"PUBCOMP", "70 02 FFFF", &PubcompPacket{PacketID: 0xFFFF}},

	{"SUBSCRIBE two filters", "82 0C 0001 0003 612F2B 01 0001 23 02",
		&SubscribePacket{PacketID: 1, Filters: []Subscription{{"a/+", 1}, {"#", 2}}}},
	{"SUBSCRIBE $SYS", "82 0B FFFF 0006 245359532F23 00",
		&SubscribePacket{PacketID: 0xFFFF, Filters: []Subscription{{"$SYS/#", 0}}}},
	{"SUBSCRIBE + levels", "82 10 0102 0007 2B2F2B2F612F23 01 0001 2B 00",
		&SubscribePacket{PacketID: 0x0102, Filters: []Subscription{{"+/+/a/#", 1}, {"+", 0}}}},
	{"SUBACK one code", "90 03 0001 00", &SubackPacket{PacketID: 1, ReturnCodes: []byte{0}}},
	{"SUBACK every code", "90 06 0002 00 01 02 80", &SubackPacket{PacketID: 2, ReturnCodes: []byte{0, 1, 2, 0x80}}},

	{"UNSUBSCRIBE two filters", "A2 0A 0001 0003 612F2B 0001 23",
		&UnsubscribePacket{PacketID: 1, Filters: []string{"a/+", "#"}}},
	{"UNSUBACK", "B0 02 0005", &UnsubackPacket{PacketID: 5}},

	{"PINGREQ", "C0 00", &PingreqPacket{}},
	{"PINGRESP", "D0 00", &PingrespPacket{}},
	{"DISCONNECT", "E0 00", &DisconnectPacket{}},
}

// nonCanonical holds encodings Decode accepts that Append writes otherwise.
var nonCanonical = []struct {
	name, wire, canonical string
	pkt                   Packet
}{
	{"PINGREQ remaining length 80 00", "C0 80 00", "C0 00", &PingreqPacket{}},
	{"PINGREQ remaining length 80 80 80 00", "C0 80 80 80 00", "C0 00", &PingreqPacket{}},
	{"PUBLISH remaining length 86 80 00", "30 86 80 00 0001 61 414243", "30 06 0001 61 414243",
		&PublishPacket{Topic: []byte("a"), Payload: []byte("ABC")}},
	{"PUBACK remaining length 82 00", "40 82 00 0007", "40 02 0007", &PubackPacket{PacketID: 7}},
}

func TestWireTable(t *testing.T) {
	for _, tt := range wireTable {
		t.Run(tt.name, func(t *testing.T) {
			wire := unhex(t, tt.wire)
			p, err := decodeWire(t, wire)
			if err != nil {
				t.Fatalf("Decode(% X): %v", wire, err)
			}
			if !equalPackets(p, tt.pkt) {
				t.Fatalf("Decode(% X) = %s, want %s", wire, dump(p), dump(tt.pkt))
			}
			if p.Type() != tt.pkt.Type() || p.Type() != Type(wire[0]>>4) {
				t.Fatalf("Type() = %v", p.Type())
			}
			if got := tt.pkt.Append(nil); !bytes.Equal(got, wire) {
				t.Fatalf("Append(%s) = % X, want % X", dump(tt.pkt), got, wire)
			}
			// Append appends.
			prefix := []byte{0xAA, 0xBB}
			if got := tt.pkt.Append(prefix); !bytes.Equal(got, append([]byte{0xAA, 0xBB}, wire...)) {
				t.Fatalf("Append to a prefix = % X", got)
			}
			// The type's own Decode agrees with Decode.
			q := newPacket(p.Type())
			fh, body := readOne(t, wire)
			if err := q.Decode(fh, body); err != nil || !equalPackets(p, q) {
				t.Fatalf("%T.Decode = %s, %v", q, dump(q), err)
			}
		})
	}
}

func TestNonCanonical(t *testing.T) {
	for _, tt := range nonCanonical {
		t.Run(tt.name, func(t *testing.T) {
			wire, canonical := unhex(t, tt.wire), unhex(t, tt.canonical)
			p, err := decodeWire(t, wire)
			if err != nil || !equalPackets(p, tt.pkt) {
				t.Fatalf("Decode(% X) = %s, %v; want %s", wire, dump(p), err, dump(tt.pkt))
			}
			if got := tt.pkt.Append(nil); !bytes.Equal(got, canonical) {
				t.Fatalf("Append(%s) = % X, want % X", dump(tt.pkt), got, canonical)
			}
		})
	}
}

// TestConnectAppendDefaults: a client need not spell out the protocol.
func TestConnectAppendDefaults(t *testing.T) {
	cases := []struct {
		pkt  *ConnectPacket
		wire string
	}{
		{&ConnectPacket{CleanSession: true, KeepAlive: 60}, "10 0C 0004 4D515454 04 02 003C 0000"},
		{&ConnectPacket{ProtocolName: "MQIsdp", ClientID: "c1", CleanSession: true, KeepAlive: 10},
			"10 10 0006 4D5149736470 03 02 000A 0002 6331"},
		{&ConnectPacket{ProtocolLevel: 3, KeepAlive: 1}, "10 0C 0004 4D515454 03 00 0001 0000"},
	}
	for _, c := range cases {
		if got := c.pkt.Append(nil); !bytes.Equal(got, unhex(t, c.wire)) {
			t.Errorf("Append(%s) = % X, want %s", dump(c.pkt), got, c.wire)
		}
	}
}

// TestAppendPublishMatchesPacket checks the fan-out helpers against the packet
// types they shortcut.
func TestAppendPublishMatchesPacket(t *testing.T) {
	for _, tt := range wireTable {
		switch p := tt.pkt.(type) {
		case *PublishPacket:
			got := AppendPublish(nil, p.Dup, p.QoS, p.Retain, string(p.Topic), p.PacketID, p.Payload)
			if want := unhex(t, tt.wire); !bytes.Equal(got, want) {
				t.Errorf("%s: AppendPublish = % X, want % X", tt.name, got, want)
			}
		case *PubackPacket, *PubrecPacket, *PubrelPacket, *PubcompPacket, *UnsubackPacket:
			id := reflect.ValueOf(p).Elem().Field(0).Interface().(uint16)
			if got, want := AppendAck(nil, p.Type(), id), unhex(t, tt.wire); !bytes.Equal(got, want) {
				t.Errorf("%s: AppendAck = % X, want % X", tt.name, got, want)
			}
		}
	}
	// QoS 0: the packet id is not written, whatever it is.
	if got, want := AppendPublish(nil, false, 0, false, "t", 9, nil), unhex(t, "30 03 0001 74"); !bytes.Equal(got, want) {
		t.Errorf("AppendPublish QoS 0 with an id = % X, want % X", got, want)
	}
}

func TestAppendPanics(t *testing.T) {
	long := strings.Repeat("x", 65536)
	cases := []struct {
		name string
		f    func()
	}{
		{"AppendAck of PUBLISH", func() { AppendAck(nil, TypePublish, 1) }},
		{"AppendPublish QoS 3", func() { AppendPublish(nil, false, 3, false, "t", 1, nil) }},
		{"AppendPublish long topic", func() { AppendPublish(nil, false, 0, false, long, 0, nil) }},
		{"SUBSCRIBE too large", func() {
			// 4097 filters of 65535 bytes, sharing one string, need
			// 268,509,188 bytes: more than a Remaining Length holds.
			subs := make([]Subscription, 4097)
			for i := range subs {
				subs[i].Filter = long[1:]
			}
			(&SubscribePacket{Filters: subs}).Append(nil)
		}},
		{"CONNECT will QoS 4", func() { (&ConnectPacket{WillQoS: 4}).Append(nil) }},
		{"CONNECT long client id", func() { (&ConnectPacket{ClientID: long}).Append(nil) }},
		{"SUBSCRIBE long filter", func() { (&SubscribePacket{Filters: []Subscription{{Filter: long}}}).Append(nil) }},
		{"AppendRemainingLength -1", func() { AppendRemainingLength(nil, -1) }},
		{"AppendRemainingLength max+1", func() { AppendRemainingLength(nil, MaxRemainingLength+1) }},
		{"RemainingLengthSize max+1", func() { RemainingLengthSize(MaxRemainingLength + 1) }},
		{"RemainingLengthSize -1", func() { RemainingLengthSize(-1) }},
	}
	for _, c := range cases {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", c.name)
				}
			}()
			c.f()
		}()
	}
}

// remainingLengths are the boundaries of the 1- to 4-byte forms (§2.2.3).
var remainingLengths = []struct {
	n    int
	wire string
}{
	{0, "00"},
	{127, "7F"},
	{128, "80 01"},
	{16383, "FF 7F"},
	{16384, "80 80 01"},
	{2097151, "FF FF 7F"},
	{2097152, "80 80 80 01"},
	{268435455, "FF FF FF 7F"},
}

func TestRemainingLength(t *testing.T) {
	for _, tt := range remainingLengths {
		want := unhex(t, tt.wire)
		if got := AppendRemainingLength([]byte{0x30}, tt.n); !bytes.Equal(got[1:], want) || got[0] != 0x30 {
			t.Errorf("AppendRemainingLength(%d) = % X, want % X", tt.n, got[1:], want)
		}
		if got := RemainingLengthSize(tt.n); got != len(want) {
			t.Errorf("RemainingLengthSize(%d) = %d, want %d", tt.n, got, len(want))
		}
		v, n, err := DecodeRemainingLength(append(want, 0xEE))
		if v != tt.n || n != len(want) || err != nil {
			t.Errorf("DecodeRemainingLength(% X) = %d, %d, %v", want, v, n, err)
		}
		if _, _, err := DecodeRemainingLength(want[:len(want)-1]); err != io.ErrUnexpectedEOF {
			t.Errorf("DecodeRemainingLength(% X) = %v, want io.ErrUnexpectedEOF", want[:len(want)-1], err)
		}
	}
	for _, s := range []string{"80 80 80 80 01", "FF FF FF FF 7F", "80 80 80 80"} {
		_, _, err := DecodeRemainingLength(unhex(t, s))
		var e *Error
		if !errors.As(err, &e) || !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeRemainingLength(%s) = %v, want ErrMalformed", s, err)
		}
	}
	for _, s := range []string{"80 00", "80 80 00", "80 80 80 00", "FF 00"} {
		v, n, err := DecodeRemainingLength(unhex(t, s))
		if err != nil || n != len(unhex(t, s)) || v != int(unhex(t, s)[0]&0x7F) {
			t.Errorf("DecodeRemainingLength(%s) = %d, %d, %v (non-minimal forms are accepted)", s, v, n, err)
		}
	}
}

// TestRemainingLengthPackets reads whole packets at each boundary: a PINGREQ
// for 0 and PUBLISHes of the boundary sizes, up to 2097152. The largest
// boundary is read as a header only (see TestReaderMaxRemainingLength).
func TestRemainingLengthPackets(t *testing.T) {
	for _, tt := range remainingLengths {
		if tt.n > 2097152 {
			continue
		}
		var wire []byte
		var want Packet
		if tt.n == 0 {
			want = &PingreqPacket{}
		} else {
			want = &PublishPacket{Topic: []byte("a"), Payload: seq(tt.n - 3)}
		}
		wire = want.Append(nil)
		if h := unhex(t, tt.wire); !bytes.Equal(wire[1:1+len(h)], h) {
			t.Fatalf("remaining %d: header % X, want % X", tt.n, wire[:1+len(h)], h)
		}
		for _, oneByte := range []bool{false, true} {
			var src io.Reader = bytes.NewReader(wire)
			if oneByte && tt.n < 20000 {
				src = iotest.OneByteReader(src)
			}
			r := NewReader(src, 0)
			fh, body, err := r.ReadPacket()
			if err != nil || fh.Remaining != tt.n || len(body) != tt.n {
				t.Fatalf("remaining %d: ReadPacket = %+v, %d bytes, %v", tt.n, fh, len(body), err)
			}
			p, err := Decode(fh, body)
			if err != nil || !equalPackets(p, want) {
				t.Fatalf("remaining %d: Decode: %v", tt.n, err)
			}
		}
	}
}

func TestTypeString(t *testing.T) {
	want := []string{"type 0", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP",
		"SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT", "type 15"}
	for i, w := range want {
		if got := Type(i).String(); got != w {
			t.Errorf("Type(%d).String() = %q, want %q", i, got, w)
		}
	}
	if TypeConnect != 1 || TypeDisconnect != 14 {
		t.Error("type numbering")
	}
}

// decodeErrors are refusals that are not a rule of their own: truncated and
// trailing fields, each named in the detail.
var decodeErrors = []struct {
	name, wire string
	kind       error
	detail     string
}{
	{"reserved type 0", "00 00", ErrProtocol, "reserved packet type 0"},
	{"reserved type 15", "F0 00", ErrProtocol, "reserved packet type 15"},

	{"CONNECT empty", "10 00", ErrMalformed, "protocol name length"},
	{"CONNECT name length cut", "10 01 00", ErrMalformed, "protocol name length"},
	{"CONNECT name cut", "10 04 0004 4D51", ErrMalformed, "protocol name: needs 4 bytes, 2 left"},
	{"CONNECT no level", "10 06 0004 4D515454", ErrMalformed, "protocol level"},
	{"CONNECT no flags", "10 07 0004 4D515454 04", ErrMalformed, "connect flags and keep alive"},
	{"CONNECT keep alive cut", "10 09 0004 4D515454 04 02 00", ErrMalformed, "connect flags and keep alive"},
	{"CONNECT no client id", "10 0A 0004 4D515454 04 02 003C", ErrMalformed, "client identifier length"},
	{"CONNECT client id cut", "10 0F 0004 4D515454 04 02 003C 0005 6162 63", ErrMalformed, "client identifier: needs 5 bytes, 3 left"},
	{"CONNECT trailing byte", "10 0D 0004 4D515454 04 02 003C 0000 00", ErrMalformed, "1 trailing bytes after the payload"},
	{"CONNECT trailing after password", "10 15 0004 4D515454 04 C2 003C 0000 0001 75 0002 0102 EEEE", ErrMalformed, "2 trailing bytes"},

	{"CONNACK short", "20 01 00", ErrMalformed, "body of 1 bytes, must be 2"},
	{"CONNACK long", "20 03 00 00 00", ErrMalformed, "body of 3 bytes, must be 2"},

	{"PUBLISH empty", "30 00", ErrMalformed, "topic name length"},
	{"PUBLISH topic length cut", "30 01 00", ErrMalformed, "topic name length"},
	{"PUBLISH topic cut", "30 03 0005 61", ErrMalformed, "topic name: needs 5 bytes, 1 left"},
	{"PUBLISH QoS 1 no packet id", "32 05 0003 612F62", ErrMalformed, "packet identifier: needs 2 bytes, 0 left"},
	{"PUBLISH QoS 2 packet id cut", "34 06 0003 612F62 00", ErrMalformed, "packet identifier: needs 2 bytes, 1 left"},

	{"PUBACK empty", "40 00", ErrMalformed, "packet identifier"},
	{"PUBACK short", "40 01 00", ErrMalformed, "packet identifier"},
	{"PUBACK trailing", "40 03 0001 00", ErrMalformed, "1 trailing bytes after the packet identifier"},
	{"PUBREC trailing", "50 04 0001 0000", ErrMalformed, "2 trailing bytes"},
	{"PUBREL short", "62 00", ErrMalformed, "packet identifier"},
	{"PUBCOMP short", "70 01 01", ErrMalformed, "packet identifier"},
	{"UNSUBACK trailing", "B0 03 0001 00", ErrMalformed, "trailing"},

	{"SUBSCRIBE empty", "82 00", ErrMalformed, "packet identifier"},
	{"SUBSCRIBE filter length cut", "82 03 0001 00", ErrMalformed, "topic filter length"},
	{"SUBSCRIBE filter cut", "82 05 0001 0005 23", ErrMalformed, "topic filter: needs 5 bytes, 1 left"},
	{"SUBSCRIBE no QoS", "82 05 0001 0001 23", ErrMalformed, "requested QoS: needs 1 bytes, 0 left"},
	{"SUBSCRIBE second filter cut", "82 08 0001 0001 23 00 0001", ErrMalformed, "topic filter: needs 1 bytes, 0 left"},

	{"SUBACK empty", "90 00", ErrMalformed, "packet identifier"},
	{"SUBACK no codes", "90 02 0001", ErrMalformed, "no return code"},

	{"UNSUBSCRIBE empty", "A2 00", ErrMalformed, "packet identifier"},
	{"UNSUBSCRIBE filter cut", "A2 04 0001 0001", ErrMalformed, "topic filter: needs 1 bytes, 0 left"},
	{"UNSUBSCRIBE filter length cut", "A2 06 0001 0001 23 00", ErrMalformed, "topic filter length"},

	{"PINGREQ with body", "C0 01 00", ErrMalformed, "1 trailing bytes after the fixed header"},
	{"PINGRESP with body", "D0 02 0000", ErrMalformed, "2 trailing bytes"},
	{"DISCONNECT with body", "E0 01 00", ErrMalformed, "trailing"},
}

// checkDecodeError decodes wire and checks the error's kind and detail.
func checkDecodeError(t *testing.T, wire []byte, kind error, detail string) {
	t.Helper()
	fh, body := readOne(t, wire)
	p, err := Decode(fh, body)
	if err == nil {
		t.Fatalf("Decode(% X) = %s, want %v", wire, dump(p), kind)
	}
	if p != nil {
		t.Fatalf("Decode(% X) returned %s with error %v", wire, dump(p), err)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Decode(% X): %T %v is not an *Error", wire, err, err)
	}
	if !errors.Is(err, kind) {
		t.Fatalf("Decode(% X) = %v, kind %v, want %v", wire, err, e.Kind, kind)
	}
	if e.Type != fh.Type {
		t.Fatalf("Decode(% X): error type %v, header says %v", wire, e.Type, fh.Type)
	}
	if !strings.Contains(e.Detail, detail) {
		t.Fatalf("Decode(% X) = %q, want a detail containing %q", wire, err, detail)
	}
	// The type's own Decode refuses it the same way, and leaves the packet
	// unchanged.
	if q := newPacket(fh.Type); q != nil {
		before := dump(q)
		if err2 := q.Decode(fh, body); err2 == nil || err2.Error() != err.Error() {
			t.Fatalf("%T.Decode(% X) = %v, Decode said %v", q, wire, err2, err)
		}
		if dump(q) != before {
			t.Fatalf("%T.Decode(% X) failed but changed the packet to %s", q, wire, dump(q))
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tt := range decodeErrors {
		t.Run(tt.name, func(t *testing.T) {
			checkDecodeError(t, unhex(t, tt.wire), tt.kind, tt.detail)
		})
	}
}

func TestErrorString(t *testing.T) {
	_, err := decodeWire(t, unhex(t, "30 05 0003 610062"))
	if got, want := err.Error(), "mqtt: PUBLISH: topic name: contains U+0000"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	_, _, err = DecodeRemainingLength(unhex(t, "FF FF FF FF"))
	if got, want := err.Error(), "mqtt: remaining length: continuation bit set in its fourth byte"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestDecodeHeaderMismatch(t *testing.T) {
	body := unhex(t, "0003 612F62 0001")
	_, err := Decode(FixedHeader{Type: TypePublish, Flags: 2, Remaining: 9}, body)
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "remaining length 9, but a body of 7 bytes") {
		t.Errorf("Decode with a wrong Remaining: %v", err)
	}
	var ack PubackPacket
	err = ack.Decode(FixedHeader{Type: TypePubrec, Remaining: 2}, []byte{0, 1})
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "cannot be decoded as PUBACK") {
		t.Errorf("PUBREC into a PubackPacket: %v", err)
	}
}

// TestDecodeCopies checks that only PUBLISH aliases the body.
func TestDecodeCopies(t *testing.T) {
	for _, tt := range wireTable {
		wire := unhex(t, tt.wire)
		fh, body := readOne(t, wire)
		p, err := Decode(fh, body)
		if err != nil {
			t.Fatal(err)
		}
		for i := range body {
			body[i] ^= 0xFF
		}
		if _, ok := p.(*PublishPacket); ok {
			continue
		}
		if !equalPackets(p, tt.pkt) {
			t.Errorf("%s: changing the body changed the packet to %s", tt.name, dump(p))
		}
	}
}
