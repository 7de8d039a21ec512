package mqttsn

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// unhex decodes a hex string; spaces and '|' (used to mark where an
// encapsulated message starts) are ignored.
func unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(strings.NewReplacer(" ", "", "|", "").Replace(s))
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

// hx spells b as hex, for wire strings with long payloads.
func hx(b []byte) string { return hex.EncodeToString(b) }

// canon returns a copy of p in which empty byte slices are nil, so that a
// payload that decoded as an empty (non-nil) slice of the input compares equal
// to one written as nil.
func canon(p Packet) Packet {
	v := reflect.ValueOf(p)
	if p == nil || v.Kind() != reflect.Pointer || v.IsNil() {
		return p
	}
	c := reflect.New(v.Elem().Type())
	c.Elem().Set(v.Elem())
	e := c.Elem()
	for i := range e.NumField() {
		f := e.Field(i)
		switch f.Kind() {
		case reflect.Slice:
			if f.Len() == 0 {
				f.SetZero()
			}
		case reflect.Interface:
			if inner, ok := f.Interface().(Packet); ok {
				f.Set(reflect.ValueOf(canon(inner)))
			}
		}
	}
	return c.Interface().(Packet)
}

// equalPackets is reflect.DeepEqual that treats nil and empty slices alike.
func equalPackets(a, b Packet) bool { return reflect.DeepEqual(canon(a), canon(b)) }

// dump formats a packet for failure messages, inner message included.
func dump(p Packet) string {
	if p == nil {
		return "<nil>"
	}
	if e, ok := p.(*Encapsulated); ok && e != nil {
		return fmt.Sprintf("&Encapsulated{Radius:%d NodeID:%x Message:%s}", e.Radius, e.NodeID, dump(e.Message))
	}
	v := reflect.ValueOf(p)
	if v.Kind() == reflect.Pointer && !v.IsNil() {
		return fmt.Sprintf("%T%+v", p, v.Elem())
	}
	return fmt.Sprintf("%#v", p)
}

type wireCase struct {
	name string
	wire string // the canonical encoding, as Marshal writes it
	pkt  Packet
}

// payload300 is the 300-byte payload of the §1.6 long-form example.
var payload300 = seq(300)

// wireTable holds one or more canonical encodings of every message type. The
// rows marked §1.6 are the worked examples of the reference, verbatim (the
// predefined-id example leaves its data open; it is "1" here).
var wireTable = []wireCase{
	// Discovery.
	{"ADVERTISE GwId 1, 900 s (§1.6)", "05 00 01 03 84", &Advertise{GatewayID: 1, Duration: 900}},
	{"ADVERTISE GwId 255, 65535 s", "05 00 FF FF FF", &Advertise{GatewayID: 255, Duration: 65535}},
	{"SEARCHGW radius 1 (§1.6)", "03 01 01", &SearchGW{Radius: 1}},
	{"SEARCHGW radius 0", "03 01 00", &SearchGW{}},
	{"GWINFO from GW 1 (§1.6)", "03 02 01", &GWInfo{GatewayID: 1}},
	{"GWINFO from a client, GwAdd 12 34", "05 02 07 12 34", &GWInfo{GatewayID: 7, GatewayAddr: []byte{0x12, 0x34}}},

	// Connection and will.
	{"CONNECT id abc, clean, KA 60 (§1.6)", "09 04 04 01 00 3C 61 62 63", &Connect{CleanSession: true, KeepAlive: 60, ClientID: "abc"}},
	{"CONNECT will, KA 0, id sensor-1", "0E 04 08 01 00 00 73 65 6E 73 6F 72 2D 31", &Connect{Will: true, ClientID: "sensor-1"}},
	{"CONNECT will+clean, KA 65535, id c", "07 04 0C 01 FF FF 63", &Connect{Will: true, CleanSession: true, KeepAlive: 65535, ClientID: "c"}},
	{"CONNECT UTF-8 id", "08 04 04 01 00 0A C3 BC", &Connect{CleanSession: true, KeepAlive: 10, ClientID: "ü"}},
	{"CONNACK accepted (§1.6)", "03 05 00", &Connack{ReturnCode: Accepted}},
	{"CONNACK congestion", "03 05 01", &Connack{ReturnCode: RejectedCongestion}},
	{"CONNACK not supported", "03 05 03", &Connack{ReturnCode: RejectedUnsupported}},
	{"CONNACK reserved code 0x04", "03 05 04", &Connack{ReturnCode: 4}},
	{"WILLTOPICREQ (§1.6)", "02 06", &WillTopicReq{}},
	{"WILLTOPIC QoS1 w (§1.6)", "04 07 20 77", &WillTopic{QoS: QoS1, Topic: "w"}},
	{"WILLTOPIC empty (§1.6)", "02 07", &WillTopic{}},
	{"WILLTOPIC QoS0 w", "04 07 00 77", &WillTopic{Topic: "w"}},
	{"WILLTOPIC QoS2 retain a/b", "06 07 50 61 2F 62", &WillTopic{QoS: QoS2, Retain: true, Topic: "a/b"}},
	{"WILLMSGREQ (§1.6)", "02 08", &WillMsgReq{}},
	{"WILLMSG x (§1.6)", "03 09 78", &WillMsg{Message: []byte("x")}},
	{"WILLMSG empty", "02 09", &WillMsg{}},
	{"WILLMSG binary", "05 09 00 FF 10", &WillMsg{Message: []byte{0x00, 0xFF, 0x10}}},

	// Registration.
	{"REGISTER C->GW a/b MsgId 1 (§1.6)", "09 0A 00 00 00 01 61 2F 62", &Register{MsgID: 1, TopicName: "a/b"}},
	{"REGISTER GW->C id 42 MsgId 7 t/x/y", "0B 0A 00 2A 00 07 74 2F 78 2F 79", &Register{TopicID: 42, MsgID: 7, TopicName: "t/x/y"}},
	{"REGACK id 1 MsgId 1 accepted (§1.6)", "07 0B 00 01 00 01 00", &Regack{TopicID: 1, MsgID: 1, ReturnCode: Accepted}},
	{"REGACK congestion", "07 0B 00 00 00 01 01", &Regack{MsgID: 1, ReturnCode: RejectedCongestion}},

	// PUBLISH at every QoS with every topic id type (QoS -1 has no normal id).
	{"PUBLISH QoS1 normal id 1 MsgId 2 hi (§1.6)", "09 0C 20 00 01 00 02 68 69", &Publish{QoS: QoS1, TopicID: 1, MsgID: 2, Data: []byte("hi")}},
	{"PUBLISH QoS-1 short ab data 1 (§1.6)", "08 0C 62 61 62 00 00 31", &Publish{QoS: QoSMinus1, TopicIDType: TopicShort, TopicID: 0x6162, Data: []byte("1")}},
	{"PUBLISH QoS-1 predefined id 5 (§1.6)", "08 0C 61 00 05 00 00 31", &Publish{QoS: QoSMinus1, TopicIDType: TopicPredefined, TopicID: 5, Data: []byte("1")}},
	{"PUBLISH QoS-1 predefined retain, MsgId kept", "08 0C 71 00 05 12 34 31", &Publish{QoS: QoSMinus1, Retain: true, TopicIDType: TopicPredefined, TopicID: 5, MsgID: 0x1234, Data: []byte("1")}},
	{"PUBLISH QoS0 normal", "09 0C 00 00 01 00 00 68 69", &Publish{TopicID: 1, Data: []byte("hi")}},
	{"PUBLISH QoS0 predefined", "08 0C 01 00 05 00 00 31", &Publish{TopicIDType: TopicPredefined, TopicID: 5, Data: []byte("1")}},
	{"PUBLISH QoS0 short", "08 0C 02 61 62 00 00 31", &Publish{TopicIDType: TopicShort, TopicID: 0x6162, Data: []byte("1")}},
	{"PUBLISH QoS0 empty data", "07 0C 00 00 01 00 00", &Publish{TopicID: 1}},
	{"PUBLISH QoS0 non-zero MsgId kept", "08 0C 00 00 01 12 34 31", &Publish{TopicID: 1, MsgID: 0x1234, Data: []byte("1")}},
	{"PUBLISH QoS1 predefined", "08 0C 21 00 05 00 03 31", &Publish{QoS: QoS1, TopicIDType: TopicPredefined, TopicID: 5, MsgID: 3, Data: []byte("1")}},
	{"PUBLISH QoS1 short", "08 0C 22 61 62 00 03 31", &Publish{QoS: QoS1, TopicIDType: TopicShort, TopicID: 0x6162, MsgID: 3, Data: []byte("1")}},
	{"PUBLISH QoS2 normal DUP retain", "09 0C D0 00 01 00 04 68 69", &Publish{DUP: true, QoS: QoS2, Retain: true, TopicID: 1, MsgID: 4, Data: []byte("hi")}},
	{"PUBLISH QoS2 predefined", "08 0C 41 00 05 00 05 31", &Publish{QoS: QoS2, TopicIDType: TopicPredefined, TopicID: 5, MsgID: 5, Data: []byte("1")}},
	{"PUBLISH QoS2 short", "08 0C 42 61 62 00 06 31", &Publish{QoS: QoS2, TopicIDType: TopicShort, TopicID: 0x6162, MsgID: 6, Data: []byte("1")}},
	{"PUBLISH long form, 300-byte payload (§1.6)", "01 01 35 0C 20 00 01 00 02" + hx(payload300), &Publish{QoS: QoS1, TopicID: 1, MsgID: 2, Data: payload300}},
	{"PUBACK accepted (§1.6)", "07 0D 00 01 00 02 00", &Puback{TopicID: 1, MsgID: 2, ReturnCode: Accepted}},
	{"PUBACK invalid topic id (§1.6)", "07 0D 00 01 00 02 02", &Puback{TopicID: 1, MsgID: 2, ReturnCode: RejectedInvalidID}},
	{"PUBREC (§1.6)", "04 0F 00 02", &Pubrec{MsgID: 2}},
	{"PUBREL (§1.6)", "04 10 00 02", &Pubrel{MsgID: 2}},
	{"PUBCOMP (§1.6)", "04 0E 00 02", &Pubcomp{MsgID: 2}},
	{"PUBREC MsgId 65535", "04 0F FF FF", &Pubrec{MsgID: 0xFFFF}},

	// Subscriptions.
	{"SUBSCRIBE QoS1 s/# MsgId 3 (§1.6)", "08 12 20 00 03 73 2F 23", &Subscribe{QoS: QoS1, MsgID: 3, TopicName: "s/#"}},
	{"SUBSCRIBE QoS2 +/t", "08 12 40 00 07 2B 2F 74", &Subscribe{QoS: QoS2, MsgID: 7, TopicName: "+/t"}},
	{"SUBSCRIBE QoS0 #", "06 12 00 00 08 23", &Subscribe{MsgID: 8, TopicName: "#"}},
	{"SUBSCRIBE QoS0 predefined 5", "07 12 01 00 05 00 05", &Subscribe{TopicIDType: TopicPredefined, MsgID: 5, TopicID: 5}},
	{"SUBSCRIBE QoS1 DUP short ab", "07 12 A2 00 06 61 62", &Subscribe{DUP: true, QoS: QoS1, TopicIDType: TopicShort, MsgID: 6, TopicID: 0x6162}},
	{"SUBACK QoS1 id 0 accepted (§1.6)", "08 13 20 00 00 00 03 00", &Suback{QoS: QoS1, MsgID: 3, ReturnCode: Accepted}},
	{"SUBACK QoS2 id 5", "08 13 40 00 05 00 05 00", &Suback{QoS: QoS2, TopicID: 5, MsgID: 5}},
	{"SUBACK rejected", "08 13 00 00 00 00 06 02", &Suback{MsgID: 6, ReturnCode: RejectedInvalidID}},
	{"UNSUBSCRIBE s/# MsgId 4 (§1.6)", "08 14 00 00 04 73 2F 23", &Unsubscribe{MsgID: 4, TopicName: "s/#"}},
	{"UNSUBSCRIBE predefined 5", "07 14 01 00 05 00 05", &Unsubscribe{TopicIDType: TopicPredefined, MsgID: 5, TopicID: 5}},
	{"UNSUBSCRIBE short ab", "07 14 02 00 06 61 62", &Unsubscribe{TopicIDType: TopicShort, MsgID: 6, TopicID: 0x6162}},
	{"UNSUBACK (§1.6)", "04 15 00 04", &Unsuback{MsgID: 4}},

	// Keep-alive, sleep and disconnect.
	{"PINGREQ (§1.6)", "02 16", &Pingreq{}},
	{"PINGREQ id abc (§1.6)", "05 16 61 62 63", &Pingreq{ClientID: "abc"}},
	{"PINGREQ id sensor-1", "0A 16 73 65 6E 73 6F 72 2D 31", &Pingreq{ClientID: "sensor-1"}},
	{"PINGRESP (§1.6)", "02 17", &Pingresp{}},
	{"DISCONNECT (§1.6)", "02 18", &Disconnect{}},
	{"DISCONNECT sleep 300 s (§1.6)", "04 18 01 2C", &Disconnect{HasDuration: true, Duration: 300}},
	{"DISCONNECT sleep 0 s", "04 18 00 00", &Disconnect{HasDuration: true}},

	// Will update.
	{"WILLTOPICUPD empty (§1.6)", "02 1A", &WillTopicUpd{}},
	{"WILLTOPICUPD QoS1 retain w", "04 1A 30 77", &WillTopicUpd{QoS: QoS1, Retain: true, Topic: "w"}},
	{"WILLTOPICRESP ok (§1.6)", "03 1B 00", &WillTopicResp{ReturnCode: Accepted}},
	{"WILLTOPICRESP not supported", "03 1B 03", &WillTopicResp{ReturnCode: RejectedUnsupported}},
	{"WILLMSGUPD x (§1.6)", "03 1C 78", &WillMsgUpd{Message: []byte("x")}},
	{"WILLMSGUPD empty", "02 1C", &WillMsgUpd{}},
	{"WILLMSGRESP ok (§1.6)", "03 1D 00", &WillMsgResp{ReturnCode: Accepted}},
	{"WILLMSGRESP congestion", "03 1D 01", &WillMsgResp{ReturnCode: RejectedCongestion}},

	// Forwarder encapsulation.
	{"ENCAPSULATED PINGREQ, Ctrl 0, node 00 01 (§1.6)", "05 FE 00 00 01 | 02 16", &Encapsulated{NodeID: []byte{0x00, 0x01}, Message: &Pingreq{}}},
	{"ENCAPSULATED CONNECT, radius 1, node 07", "04 FE 01 07 | 09 04 04 01 00 3C 61 62 63", &Encapsulated{Radius: 1, NodeID: []byte{7}, Message: &Connect{CleanSession: true, KeepAlive: 60, ClientID: "abc"}}},
	{"ENCAPSULATED PUBLISH, radius 2, 8-byte node id", "0B FE 02 00 13 A2 00 40 B5 C3 12 | 09 0C 20 00 01 00 02 68 69",
		&Encapsulated{Radius: 2, NodeID: []byte{0x00, 0x13, 0xA2, 0x00, 0x40, 0xB5, 0xC3, 0x12}, Message: &Publish{QoS: QoS1, TopicID: 1, MsgID: 2, Data: []byte("hi")}}},
	{"ENCAPSULATED CONNACK, empty node id, radius 3", "03 FE 03 | 03 05 00", &Encapsulated{Radius: 3, Message: &Connack{}}},
	{"ENCAPSULATED long-form PUBLISH", "05 FE 00 00 01 | 01 01 35 0C 20 00 01 00 02" + hx(payload300),
		&Encapsulated{NodeID: []byte{0x00, 0x01}, Message: &Publish{QoS: QoS1, TopicID: 1, MsgID: 2, Data: payload300}}},
}

// nonCanonical holds encodings that Decode accepts but Marshal never writes:
// the 3-byte Length form for short messages, the v1.1 responses without a
// return code, and flag bits that are not used by the message type.
var nonCanonical = []struct {
	name  string
	wire  string
	pkt   Packet
	canon string // what Marshal writes for pkt
}{
	{"PINGREQ long form", "01 00 04 16", &Pingreq{}, "02 16"},
	{"PINGREQ id abc long form", "01 00 07 16 61 62 63", &Pingreq{ClientID: "abc"}, "05 16 61 62 63"},
	{"CONNACK long form", "01 00 05 05 00", &Connack{}, "03 05 00"},
	{"PUBLISH long form, 2-byte payload", "01 00 0B 0C 20 00 01 00 02 68 69", &Publish{QoS: QoS1, TopicID: 1, MsgID: 2, Data: []byte("hi")}, "09 0C 20 00 01 00 02 68 69"},
	{"PUBLISH long form, no payload", "01 00 09 0C 00 00 01 00 00", &Publish{TopicID: 1}, "07 0C 00 00 01 00 00"},
	{"DISCONNECT long form with duration", "01 00 06 18 01 2C", &Disconnect{HasDuration: true, Duration: 300}, "04 18 01 2C"},
	{"WILLTOPICRESP v1.1 without return code", "02 1B", &WillTopicResp{}, "03 1B 00"},
	{"WILLMSGRESP v1.1 without return code", "02 1D", &WillMsgResp{}, "03 1D 00"},
	{"WILLTOPIC lone flags byte is the empty form", "03 07 20", &WillTopic{}, "02 07"},
	{"WILLTOPICUPD lone flags byte is the empty form", "03 1A 30", &WillTopicUpd{}, "02 1A"},
	{"CONNECT unused flag bits ignored", "09 04 F3 01 00 3C 61 62 63", &Connect{ClientID: "abc", KeepAlive: 60}, "09 04 00 01 00 3C 61 62 63"},
	{"WILLTOPIC unused flag bits ignored", "04 07 AF 77", &WillTopic{QoS: QoS1, Topic: "w"}, "04 07 20 77"},
	{"SUBACK unused flag bits ignored", "08 13 B3 00 00 00 03 00", &Suback{QoS: QoS1, MsgID: 3}, "08 13 20 00 00 00 03 00"},
	{"SUBSCRIBE unused flag bits ignored", "08 12 3C 00 03 73 2F 23", &Subscribe{QoS: QoS1, MsgID: 3, TopicName: "s/#"}, "08 12 20 00 03 73 2F 23"},
	{"UNSUBSCRIBE DUP and QoS bits ignored", "08 14 E0 00 04 73 2F 23", &Unsubscribe{MsgID: 4, TopicName: "s/#"}, "08 14 00 00 04 73 2F 23"},
	{"PUBLISH unused flag bits ignored", "08 0C 3D 00 05 00 03 31", &Publish{QoS: QoS1, Retain: true, TopicIDType: TopicPredefined, TopicID: 5, MsgID: 3, Data: []byte("1")}, "08 0C 31 00 05 00 03 31"},
	{"ENCAPSULATED reserved Ctrl bits ignored", "05 FE FD 00 01 | 02 16", &Encapsulated{Radius: 1, NodeID: []byte{0, 1}, Message: &Pingreq{}}, "05 FE 01 00 01 | 02 16"},
	{"ENCAPSULATED long-form inner", "05 FE 00 00 01 | 01 00 04 16", &Encapsulated{NodeID: []byte{0, 1}, Message: &Pingreq{}}, "05 FE 00 00 01 | 02 16"},
}

func TestWireTableCoversEveryType(t *testing.T) {
	seen := map[MsgType]bool{}
	for _, tt := range wireTable {
		seen[tt.pkt.Type()] = true
	}
	for i := range 256 {
		typ := MsgType(i)
		if newPacket(typ) != nil && !seen[typ] {
			t.Errorf("no wire example for %v", typ)
		}
	}
}

func TestDecodeWire(t *testing.T) {
	for _, tt := range wireTable {
		t.Run(tt.name, func(t *testing.T) {
			wire := unhex(t, tt.wire)
			got, err := Decode(wire)
			if err != nil {
				t.Fatalf("Decode(% X): %v", wire, err)
			}
			if got.Type() != tt.pkt.Type() {
				t.Errorf("Type() = %v, want %v", got.Type(), tt.pkt.Type())
			}
			if !equalPackets(got, tt.pkt) {
				t.Errorf("Decode(% X)\n got %s\nwant %s", wire, dump(got), dump(tt.pkt))
			}

			into := newPacket(tt.pkt.Type())
			if err := Unmarshal(wire, into); err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if !equalPackets(into, tt.pkt) {
				t.Errorf("Unmarshal(% X)\n got %s\nwant %s", wire, dump(into), dump(tt.pkt))
			}
		})
	}
}

func TestMarshalWire(t *testing.T) {
	for _, tt := range wireTable {
		t.Run(tt.name, func(t *testing.T) {
			want := unhex(t, tt.wire)
			got, err := Marshal(tt.pkt)
			if err != nil {
				t.Fatalf("Marshal(%s): %v", dump(tt.pkt), err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Marshal(%s)\n got % X\nwant % X", dump(tt.pkt), got, want)
			}
			if n := Len(tt.pkt); n != len(want) {
				t.Errorf("Len = %d, want %d", n, len(want))
			}

			prefix := []byte{0xAA, 0xBB}
			app, err := Append(prefix, tt.pkt)
			if err != nil {
				t.Fatalf("Append: %v", err)
			}
			if !bytes.Equal(app, append([]byte{0xAA, 0xBB}, want...)) {
				t.Errorf("Append after 2 bytes\n got % X\nwant AA BB % X", app, want)
			}
		})
	}
}

func TestDecodeNonCanonical(t *testing.T) {
	for _, tt := range nonCanonical {
		t.Run(tt.name, func(t *testing.T) {
			wire := unhex(t, tt.wire)
			got, err := Decode(wire)
			if err != nil {
				t.Fatalf("Decode(% X): %v", wire, err)
			}
			if !equalPackets(got, tt.pkt) {
				t.Errorf("Decode(% X)\n got %s\nwant %s", wire, dump(got), dump(tt.pkt))
			}
			enc, err := Marshal(got)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if want := unhex(t, tt.canon); !bytes.Equal(enc, want) {
				t.Errorf("Marshal(%s)\n got % X\nwant % X", dump(got), enc, want)
			}
		})
	}
}

// TestUnmarshalReuse decodes every example into a packet that already holds
// another message of the same type: no field of the old one may survive.
func TestUnmarshalReuse(t *testing.T) {
	for _, prev := range wireTable {
		for _, tt := range wireTable {
			if prev.pkt.Type() != tt.pkt.Type() {
				continue
			}
			p := newPacket(tt.pkt.Type())
			if err := Unmarshal(unhex(t, prev.wire), p); err != nil {
				t.Fatalf("%s: %v", prev.name, err)
			}
			if err := Unmarshal(unhex(t, tt.wire), p); err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if !equalPackets(p, tt.pkt) {
				t.Errorf("%s after %s:\n got %s\nwant %s", tt.name, prev.name, dump(p), dump(tt.pkt))
			}
		}
	}
}

// TestDecodeAliasesInput pins down the documented contract: byte slices in a
// decoded packet share the input's memory.
func TestDecodeAliasesInput(t *testing.T) {
	wire := unhex(t, "09 0C 20 00 01 00 02 68 69")
	p, err := Decode(wire)
	if err != nil {
		t.Fatal(err)
	}
	wire[7] = 'H'
	if got := string(p.(*Publish).Data); got != "Hi" {
		t.Errorf("Data after changing the input = %q, want %q (aliasing the input)", got, "Hi")
	}

	wire = unhex(t, "07 0C 00 00 01 00 00")
	p, err = Decode(wire)
	if err != nil {
		t.Fatal(err)
	}
	if d := p.(*Publish).Data; d == nil || len(d) != 0 {
		t.Errorf("empty payload decoded as %#v, want an empty non-nil slice", d)
	}
}

func roundTrip(t *testing.T, p Packet) []byte {
	t.Helper()
	wire, err := Marshal(p)
	if err != nil {
		t.Fatalf("Marshal(%s): %v", dump(p), err)
	}
	if len(wire) != Len(p) {
		t.Errorf("Marshal(%s) wrote %d bytes, Len says %d", dump(p), len(wire), Len(p))
	}
	got, err := Decode(wire)
	if err != nil {
		t.Fatalf("Decode(Marshal(%s)) = % X: %v", dump(p), wire, err)
	}
	if !equalPackets(got, p) {
		t.Errorf("round trip\n got %s\nwant %s\nwire % X", dump(got), dump(p), wire)
	}
	return wire
}

func TestRoundTrip(t *testing.T) {
	for _, tt := range wireTable {
		roundTrip(t, tt.pkt)
	}

	// PUBLISH: every legal flag combination.
	for _, qos := range []QoS{QoSMinus1, QoS0, QoS1, QoS2} {
		for _, tid := range []TopicIDType{TopicNormal, TopicPredefined, TopicShort} {
			if qos == QoSMinus1 && tid == TopicNormal {
				continue
			}
			for _, dup := range []bool{false, true} {
				for _, retain := range []bool{false, true} {
					p := &Publish{DUP: dup, QoS: qos, Retain: retain, TopicIDType: tid, TopicID: 0xBEEF, MsgID: 0xCAFE, Data: []byte{0, 1, 2}}
					wire := roundTrip(t, p)
					var want byte
					if dup {
						want |= 0x80
					}
					want |= map[QoS]byte{QoSMinus1: 0x60, QoS0: 0, QoS1: 0x20, QoS2: 0x40}[qos]
					if retain {
						want |= 0x10
					}
					want |= byte(tid)
					if wire[2] != want {
						t.Errorf("%s: flags 0x%02X, want 0x%02X", dump(p), wire[2], want)
					}
				}
			}
		}
	}

	// SUBSCRIBE and UNSUBSCRIBE in each of their topic forms.
	for _, qos := range []QoS{QoS0, QoS1, QoS2} {
		roundTrip(t, &Subscribe{QoS: qos, MsgID: 1, TopicName: "a/+/c/#"})
		roundTrip(t, &Subscribe{DUP: true, QoS: qos, TopicIDType: TopicPredefined, MsgID: 2, TopicID: 0xFFFE})
		roundTrip(t, &Subscribe{QoS: qos, TopicIDType: TopicShort, MsgID: 3, TopicID: 0x7A7A})
		roundTrip(t, &Suback{QoS: qos, TopicID: 9, MsgID: 4, ReturnCode: RejectedCongestion})
	}
	roundTrip(t, &Unsubscribe{MsgID: 1, TopicName: "+"})
	roundTrip(t, &Unsubscribe{TopicIDType: TopicPredefined, MsgID: 2, TopicID: 1})
	roundTrip(t, &Unsubscribe{TopicIDType: TopicShort, MsgID: 3, TopicID: 0x6162})

	// Wills at every QoS.
	for _, qos := range []QoS{QoS0, QoS1, QoS2} {
		roundTrip(t, &WillTopic{QoS: qos, Retain: true, Topic: "dead/" + qos2str(qos)})
		roundTrip(t, &WillTopicUpd{QoS: qos, Topic: "x"})
	}

	// Every message type encapsulated.
	for _, tt := range wireTable {
		if tt.pkt.Type() == TypeEncapsulated {
			continue
		}
		roundTrip(t, &Encapsulated{Radius: 2, NodeID: []byte{0xAB, 0xCD}, Message: tt.pkt})
		roundTrip(t, &Encapsulated{NodeID: seq(MaxNodeIDLen), Message: tt.pkt})
	}
}

func qos2str(q QoS) string { return fmt.Sprint(int(q)) }

// TestLengthBoundary checks the switch between the 1- and 3-byte Length
// forms: a body (MsgType + variable part) of 254 bytes still fits the short
// form (total 255), one of 255 bytes needs the long form (total 258).
func TestLengthBoundary(t *testing.T) {
	tests := []struct {
		body   int    // MsgType + variable part
		total  int    // encoded length
		header string // first bytes of the encoding
	}{
		{1, 2, "02"},
		{253, 254, "FE"},
		{254, 255, "FF"},
		{255, 258, "01 01 02"},
		{256, 259, "01 01 03"},
		{MaxMessageLen - 3, MaxMessageLen, "01 FF FF"},
	}
	for _, tt := range tests {
		pkts := []Packet{
			&WillMsg{Message: seq(tt.body - 1)},
			&Pingreq{ClientID: strings.Repeat("c", tt.body-1)},
		}
		if tt.body >= 6 {
			pkts = append(pkts,
				&Publish{QoS: QoS1, TopicID: 1, MsgID: 2, Data: seq(tt.body - 6)},
				&Register{TopicID: 1, MsgID: 2, TopicName: strings.Repeat("t", tt.body-5)},
			)
		}
		for _, p := range pkts {
			wire := roundTrip(t, p)
			if len(wire) != tt.total {
				t.Errorf("%v with a %d-byte body: %d bytes, want %d", p.Type(), tt.body, len(wire), tt.total)
				continue
			}
			want := append(unhex(t, tt.header), byte(p.Type()))
			if !bytes.HasPrefix(wire, want) {
				t.Errorf("%v with a %d-byte body starts % X, want % X", p.Type(), tt.body, wire[:len(want)], want)
			}
		}
	}
}

func TestTooLong(t *testing.T) {
	// Total 65535 is the largest that fits; one byte more is refused.
	ok := &Publish{TopicIDType: TopicPredefined, TopicID: 1, Data: seq(MaxMessageLen - 9)}
	if wire := roundTrip(t, ok); !bytes.HasPrefix(wire, unhex(t, "01 FF FF 0C")) {
		t.Errorf("65535-byte PUBLISH starts % X", wire[:4])
	}

	tests := []struct {
		p   Packet
		msg string
	}{
		{&Publish{TopicIDType: TopicPredefined, TopicID: 1, Data: seq(MaxMessageLen - 8)}, "mqttsn: PUBLISH: 65536 bytes, at most 65535 fit the length field"},
		{&WillMsg{Message: seq(MaxMessageLen - 3)}, "mqttsn: WILLMSG: 65536 bytes, at most 65535 fit the length field"},
		{&WillMsgUpd{Message: seq(100000)}, "mqttsn: WILLMSGUPD: 100004 bytes, at most 65535 fit the length field"},
		{&GWInfo{GatewayAddr: seq(MaxMessageLen)}, ""},
		{&Encapsulated{NodeID: []byte{1}, Message: &WillMsg{Message: seq(MaxMessageLen)}}, "mqttsn: WILLMSG: 65539 bytes, at most 65535 fit the length field"},
	}
	for _, tt := range tests {
		dst := []byte{0xAA}
		out, err := Append(dst, tt.p)
		if !errors.Is(err, ErrTooLong) {
			t.Errorf("Append(%v) = %v, want ErrTooLong", tt.p.Type(), err)
			continue
		}
		if tt.msg != "" && err.Error() != tt.msg {
			t.Errorf("Append(%v) error %q, want %q", tt.p.Type(), err, tt.msg)
		}
		if !bytes.Equal(out, dst) {
			t.Errorf("Append(%v) failed but returned % X, want dst unchanged", tt.p.Type(), out)
		}
		if b, err := Marshal(tt.p); !errors.Is(err, ErrTooLong) || len(b) != 0 {
			t.Errorf("Marshal(%v) = %d bytes, %v; want ErrTooLong", tt.p.Type(), len(b), err)
		}
	}

	// The encapsulation Length covers only its header, so an encapsulated
	// 65535-byte message is fine.
	roundTrip(t, &Encapsulated{NodeID: []byte{1, 2}, Message: ok})
}

type errCase struct {
	name string
	wire string
	kind error
	msg  string // exact Error() text, when given
}

// decodeErrors are malformed messages with the kind of error Decode must
// return.
var decodeErrors = []errCase{
	// Header (§1.1, §1.8 item 1-2).
	{"empty", "", ErrTooShort, "mqttsn: 0 bytes, need at least 2 for a header"},
	{"1 byte", "02", ErrTooShort, ""},
	{"1 byte 0x01", "01", ErrTooShort, ""},
	{"length byte 0x00", "00 0C", ErrLength, "mqttsn: length byte 0x00 is not valid"},
	{"length byte 0x00, longer", "00 0C 00 00 01 00 00", ErrLength, ""},
	{"3-byte form cut after 2 bytes", "01 0C", ErrTooShort, "mqttsn: 2 bytes, need at least 4 for a 3-byte length header"},
	{"3-byte form cut after 3 bytes", "01 00 0C", ErrTooShort, ""},
	{"3-byte length 0", "01 00 00 16", ErrLength, ""},
	{"3-byte length 1", "01 00 01 16", ErrLength, ""},
	{"3-byte length 3", "01 00 03 16", ErrLength, "mqttsn: 3-byte length field says 3, less than its own header"},
	{"length > datagram", "03 05", ErrLength, "mqttsn: CONNACK: length field says 3 bytes, datagram has 2"},
	{"length < datagram", "03 05 00 00", ErrLength, "mqttsn: CONNACK: length field says 3 bytes, datagram has 4"},
	{"length 255, datagram 9", "FF 0C 20 00 01 00 02 68 69", ErrLength, ""},
	{"length 8, datagram 9", "08 0C 20 00 01 00 02 68 69", ErrLength, ""},
	{"3-byte length > datagram", "01 00 0C 0C 20 00 01 00 02 68 69", ErrLength, "mqttsn: PUBLISH: length field says 12 bytes, datagram has 11"},
	{"3-byte length < datagram", "01 00 0A 0C 20 00 01 00 02 68 69", ErrLength, ""},
	{"3-byte length 65535, datagram 4", "01 FF FF 16", ErrLength, ""},

	// Reserved types.
	{"type 0x03", "02 03", ErrUnknownType, "mqttsn: type 0x03: reserved message type"},
	{"type 0x11", "02 11", ErrUnknownType, "mqttsn: type 0x11: reserved message type"},
	{"type 0x19", "04 19 00 00", ErrUnknownType, "mqttsn: type 0x19: reserved message type"},
	{"type 0x1E", "02 1E", ErrUnknownType, "mqttsn: type 0x1E: reserved message type"},
	{"type 0x80", "02 80", ErrUnknownType, ""},
	{"type 0xFD", "02 FD", ErrUnknownType, ""},
	{"type 0xFF", "02 FF", ErrUnknownType, "mqttsn: type 0xFF: reserved message type"},
	{"type 0x11 long form", "01 00 04 11", ErrUnknownType, ""},

	// Per-type sizes (table 1.2; §1.8 item 3).
	{"ADVERTISE 4 bytes", "04 00 01 03", ErrSize, "mqttsn: ADVERTISE: 4 bytes, need exactly 5"},
	{"ADVERTISE 6 bytes", "06 00 01 03 84 00", ErrSize, ""},
	{"SEARCHGW 2 bytes", "02 01", ErrSize, "mqttsn: SEARCHGW: 2 bytes, need exactly 3"},
	{"SEARCHGW 4 bytes", "04 01 01 00", ErrSize, ""},
	{"GWINFO 2 bytes", "02 02", ErrTooShort, "mqttsn: GWINFO: 2 bytes, need at least 3"},
	{"CONNECT 2 bytes", "02 04", ErrTooShort, ""},
	{"CONNECT without client id", "06 04 04 01 00 3C", ErrTooShort, "mqttsn: CONNECT: 6 bytes, need at least 7"},
	{"CONNACK 2 bytes", "02 05", ErrSize, "mqttsn: CONNACK: 2 bytes, need exactly 3"},
	{"CONNACK 4 bytes", "04 05 00 00", ErrSize, "mqttsn: CONNACK: 4 bytes, need exactly 3"},
	{"CONNACK long form 6 bytes", "01 00 06 05 00 00", ErrSize, "mqttsn: CONNACK: 6 bytes, need exactly 5"},
	{"WILLTOPICREQ 3 bytes", "03 06 00", ErrSize, "mqttsn: WILLTOPICREQ: 3 bytes, need exactly 2"},
	{"WILLMSGREQ 3 bytes", "03 08 00", ErrSize, ""},
	{"REGISTER 6 bytes", "06 0A 00 00 00 01", ErrTooShort, "mqttsn: REGISTER: 6 bytes, need at least 7"},
	{"REGISTER 3 bytes", "03 0A 00", ErrTooShort, ""},
	{"REGACK 6 bytes", "06 0B 00 01 00 01", ErrSize, "mqttsn: REGACK: 6 bytes, need exactly 7"},
	{"REGACK 8 bytes", "08 0B 00 01 00 01 00 00", ErrSize, ""},
	{"PUBLISH 5 bytes", "05 0C 20 00 01", ErrTooShort, "mqttsn: PUBLISH: 5 bytes, need at least 7"},
	{"PUBLISH 6 bytes", "06 0C 20 00 01 00", ErrTooShort, ""},
	{"PUBLISH 2 bytes", "02 0C", ErrTooShort, ""},
	{"PUBLISH long form 6 bytes", "01 00 06 0C 20 00", ErrTooShort, "mqttsn: PUBLISH: 6 bytes, need at least 9"},
	{"PUBACK 6 bytes", "06 0D 00 01 00 02", ErrSize, "mqttsn: PUBACK: 6 bytes, need exactly 7"},
	{"PUBACK 8 bytes", "08 0D 00 01 00 02 00 00", ErrSize, ""},
	{"PUBCOMP 3 bytes", "03 0E 00", ErrSize, "mqttsn: PUBCOMP: 3 bytes, need exactly 4"},
	{"PUBCOMP 5 bytes", "05 0E 00 02 00", ErrSize, ""},
	{"PUBREC 3 bytes", "03 0F 00", ErrSize, "mqttsn: PUBREC: 3 bytes, need exactly 4"},
	{"PUBREC 2 bytes", "02 0F", ErrSize, ""},
	{"PUBREL 5 bytes", "05 10 00 02 00", ErrSize, "mqttsn: PUBREL: 5 bytes, need exactly 4"},
	{"SUBSCRIBE 5 bytes", "05 12 20 00 03", ErrTooShort, "mqttsn: SUBSCRIBE: 5 bytes, need at least 6"},
	{"SUBSCRIBE predefined, 1-byte id", "06 12 21 00 03 05", ErrSize, "mqttsn: SUBSCRIBE: 6 bytes, need exactly 7"},
	{"SUBSCRIBE predefined, 3-byte id", "08 12 21 00 03 00 05 00", ErrSize, "mqttsn: SUBSCRIBE: 8 bytes, need exactly 7"},
	{"SUBSCRIBE short, 1 char", "06 12 22 00 03 61", ErrSize, ""},
	{"SUBACK 7 bytes", "07 13 20 00 00 00 03", ErrSize, "mqttsn: SUBACK: 7 bytes, need exactly 8"},
	{"SUBACK 9 bytes", "09 13 20 00 00 00 03 00 00", ErrSize, ""},
	{"UNSUBSCRIBE 5 bytes", "05 14 00 00 04", ErrTooShort, "mqttsn: UNSUBSCRIBE: 5 bytes, need at least 6"},
	{"UNSUBSCRIBE short, 3 chars", "08 14 02 00 04 61 62 63", ErrSize, ""},
	{"UNSUBACK 3 bytes", "03 15 00", ErrSize, "mqttsn: UNSUBACK: 3 bytes, need exactly 4"},
	{"UNSUBACK 5 bytes", "05 15 00 04 00", ErrSize, ""},
	{"PINGRESP 3 bytes", "03 17 00", ErrSize, "mqttsn: PINGRESP: 3 bytes, need exactly 2"},
	{"DISCONNECT 1-byte body", "03 18 00", ErrSize, "mqttsn: DISCONNECT: 3 bytes, need exactly 2 or 4"},
	{"DISCONNECT 3-byte body", "05 18 00 00 00", ErrSize, "mqttsn: DISCONNECT: 5 bytes, need exactly 2 or 4"},
	{"WILLTOPICRESP 4 bytes", "04 1B 00 00", ErrSize, "mqttsn: WILLTOPICRESP: 4 bytes, need exactly 2 or 3"},
	{"WILLMSGRESP 4 bytes", "04 1D 00 00", ErrSize, "mqttsn: WILLMSGRESP: 4 bytes, need exactly 2 or 3"},

	// Field rules (§1.3, §1.4, §1.8 items 5-6).
	{"CONNECT protocol id 0x02", "09 04 04 02 00 3C 61 62 63", ErrInvalid, "mqttsn: CONNECT: protocol id 0x02 is an MQTT-SN 2.0 draft client; only 0x01 (v1.2) is spoken"},
	{"CONNECT protocol id 0x00", "09 04 04 00 00 3C 61 62 63", ErrInvalid, "mqttsn: CONNECT: protocol id 0x00, want 0x01"},
	{"CONNECT client id with NUL", "09 04 04 01 00 3C 61 00 63", ErrInvalid, "mqttsn: CONNECT: client id: contains U+0000"},
	{"CONNECT client id bad UTF-8", "09 04 04 01 00 3C 61 FF 63", ErrInvalid, "mqttsn: CONNECT: client id: not well-formed UTF-8"},
	{"CONNECT client id encoded surrogate", "09 04 04 01 00 3C ED A0 80", ErrInvalid, ""},
	{"PUBLISH QoS -1 normal id", "07 0C 60 00 01 00 00", ErrInvalid, "mqttsn: PUBLISH: QoS -1 needs a predefined topic id or a short topic name, not a normal topic id"},
	{"PUBLISH topic id type 0b11", "07 0C 03 00 01 00 00", ErrInvalid, "mqttsn: PUBLISH: reserved topic id type 0b11"},
	{"PUBLISH QoS -1 topic id type 0b11", "08 0C 63 00 01 00 00 31", ErrInvalid, ""},
	{"SUBSCRIBE QoS -1 name", "08 12 60 00 03 73 2F 23", ErrInvalid, "mqttsn: SUBSCRIBE: requested QoS -1, want 0, 1 or 2"},
	{"SUBSCRIBE QoS -1 predefined", "07 12 61 00 03 00 05", ErrInvalid, ""},
	{"SUBSCRIBE topic id type 0b11", "07 12 23 00 03 00 05", ErrInvalid, "mqttsn: SUBSCRIBE: reserved topic id type 0b11"},
	{"SUBSCRIBE filter a/#/b", "0A 12 20 00 03 61 2F 23 2F 62", ErrInvalid, `mqttsn: SUBSCRIBE: topic filter "a/#/b": + and # must fill a whole level, and # must be the last`},
	{"SUBSCRIBE filter a+", "07 12 20 00 03 61 2B", ErrInvalid, `mqttsn: SUBSCRIBE: topic filter "a+": + and # must fill a whole level, and # must be the last`},
	{"SUBSCRIBE filter a/b#", "09 12 20 00 03 61 2F 62 23", ErrInvalid, ""},
	{"SUBSCRIBE filter with NUL", "07 12 20 00 03 61 00", ErrInvalid, ""},
	{"SUBSCRIBE filter bad UTF-8", "06 12 20 00 03 C3", ErrInvalid, ""},
	{"UNSUBSCRIBE topic id type 0b11", "07 14 03 00 04 00 05", ErrInvalid, "mqttsn: UNSUBSCRIBE: reserved topic id type 0b11"},
	{"UNSUBSCRIBE filter a/#/b", "0A 14 00 00 04 61 2F 23 2F 62", ErrInvalid, ""},
	{"UNSUBSCRIBE filter a+", "07 14 00 00 04 61 2B", ErrInvalid, ""},
	{"REGISTER wildcard +", "09 0A 00 00 00 01 61 2F 2B", ErrInvalid, `mqttsn: REGISTER: topic name "a/+": a topic name may not contain + or #`},
	{"REGISTER wildcard #", "07 0A 00 00 00 01 23", ErrInvalid, ""},
	{"REGISTER name with NUL", "09 0A 00 00 00 01 61 00 62", ErrInvalid, `mqttsn: REGISTER: topic name "a\x00b": contains U+0000`},
	{"REGISTER name bad UTF-8", "07 0A 00 00 00 01 FF", ErrInvalid, ""},
	{"WILLTOPIC QoS -1", "04 07 60 77", ErrInvalid, "mqttsn: WILLTOPIC: will QoS -1, want 0, 1 or 2"},
	{"WILLTOPIC wildcard", "06 07 20 61 2F 23", ErrInvalid, ""},
	{"WILLTOPIC with NUL", "04 07 00 00", ErrInvalid, ""},
	{"WILLTOPICUPD wildcard", "06 1A 20 61 2F 2B", ErrInvalid, ""},
	{"WILLTOPICUPD QoS -1", "04 1A 60 77", ErrInvalid, ""},
	{"PINGREQ client id bad UTF-8", "03 16 FF", ErrInvalid, "mqttsn: PINGREQ: client id: not well-formed UTF-8"},
	{"PINGREQ client id NUL", "03 16 00", ErrInvalid, ""},

	// Encapsulation (§1.7).
	{"ENCAPSULATED nested", "05 FE 00 00 01 | 05 FE 00 00 01 | 02 16", ErrInvalid, "mqttsn: ENCAPSULATED: an encapsulated message may not hold another"},
	{"ENCAPSULATED nested, long-form inner header", "05 FE 00 00 01 | 01 00 05 FE 00 | 02 16", ErrInvalid, ""},
	{"ENCAPSULATED without inner message", "05 FE 00 00 01", ErrTooShort, "mqttsn: ENCAPSULATED: 5 bytes, header alone takes 5 and an inner message must follow"},
	{"ENCAPSULATED header longer than datagram", "09 FE 00 00 01 | 02 16", ErrTooShort, ""},
	{"ENCAPSULATED header length 2", "02 FE | 02 16", ErrTooShort, "mqttsn: ENCAPSULATED: header length 2, need at least 3"},
	{"ENCAPSULATED 2 bytes", "02 FE", ErrTooShort, ""},
	{"ENCAPSULATED 3-byte length form", "01 00 06 FE 00 01 | 02 16", ErrLength, "mqttsn: ENCAPSULATED: the encapsulation header has a 1-byte length field"},
	{"ENCAPSULATED inner length > rest", "05 FE 00 00 01 | 03 16", ErrLength, "mqttsn: PINGREQ: length field says 3 bytes, datagram has 2"},
	{"ENCAPSULATED inner length < rest", "05 FE 00 00 01 | 02 16 00", ErrLength, "mqttsn: PINGREQ: length field says 2 bytes, datagram has 3"},
	{"ENCAPSULATED 1-byte inner", "05 FE 00 00 01 | 02", ErrTooShort, ""},
	{"ENCAPSULATED inner length byte 0x00", "05 FE 00 00 01 | 00 16", ErrLength, ""},
	{"ENCAPSULATED inner reserved type", "05 FE 00 00 01 | 02 03", ErrUnknownType, "mqttsn: type 0x03: reserved message type"},
	{"ENCAPSULATED inner too short", "05 FE 00 00 01 | 05 0C 20 00 01", ErrTooShort, "mqttsn: PUBLISH: 5 bytes, need at least 7"},
	{"ENCAPSULATED inner invalid field", "05 FE 00 00 01 | 07 0C 60 00 01 00 00", ErrInvalid, ""},
}

func TestDecodeErrors(t *testing.T) {
	for _, tt := range decodeErrors {
		t.Run(tt.name, func(t *testing.T) {
			wire := unhex(t, tt.wire)
			p, err := Decode(wire)
			checkError(t, err, tt.kind, tt.msg)
			if p != nil {
				t.Errorf("Decode(% X) returned %s with its error", wire, dump(p))
			}
			// Unmarshal into the right type fails the same way.
			if _, _, typ, herr := ParseHeader(wire); herr == nil && newPacket(typ) != nil {
				checkError(t, Unmarshal(wire, newPacket(typ)), tt.kind, tt.msg)
			}
		})
	}
}

// checkError checks that err is an *Error of the given kind, with message msg
// unless msg is empty.
func checkError(t *testing.T, err error, kind error, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v", kind)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Errorf("error %T %q is not an *Error", err, err)
	}
	if !errors.Is(err, kind) {
		t.Errorf("error %q is not %q", err, kind)
	}
	if msg != "" && err.Error() != msg {
		t.Errorf("error\n got %q\nwant %q", err, msg)
	}
}

func TestEncodeErrors(t *testing.T) {
	tests := []struct {
		name string
		pkt  Packet
		kind error
		msg  string
	}{
		{"CONNECT empty client id", &Connect{}, ErrInvalid, "mqttsn: CONNECT: empty client id"},
		{"CONNECT client id with NUL", &Connect{ClientID: "a\x00"}, ErrInvalid, "mqttsn: CONNECT: client id: contains U+0000"},
		{"CONNECT client id bad UTF-8", &Connect{ClientID: "\xc3"}, ErrInvalid, ""},
		{"PUBLISH QoS -1 normal id", &Publish{QoS: QoSMinus1, TopicID: 1}, ErrInvalid, "mqttsn: PUBLISH: QoS -1 needs a predefined topic id or a short topic name, not a normal topic id"},
		{"PUBLISH QoS 3", &Publish{QoS: 3, TopicIDType: TopicPredefined}, ErrInvalid, "mqttsn: PUBLISH: QoS 3"},
		{"PUBLISH QoS -2", &Publish{QoS: -2, TopicIDType: TopicPredefined}, ErrInvalid, ""},
		{"PUBLISH topic id type 0b11", &Publish{TopicIDType: 3}, ErrInvalid, "mqttsn: PUBLISH: reserved topic id type 0b11"},
		{"PUBLISH topic id type 7", &Publish{TopicIDType: 7}, ErrInvalid, ""},
		{"REGISTER empty name", &Register{MsgID: 1}, ErrInvalid, `mqttsn: REGISTER: topic name "": empty`},
		{"REGISTER wildcard", &Register{TopicName: "a/#"}, ErrInvalid, ""},
		{"REGISTER bad UTF-8", &Register{TopicName: "a\xff"}, ErrInvalid, ""},
		{"SUBSCRIBE QoS -1", &Subscribe{QoS: QoSMinus1, TopicName: "a"}, ErrInvalid, "mqttsn: SUBSCRIBE: requested QoS -1, want 0, 1 or 2"},
		{"SUBSCRIBE QoS 3", &Subscribe{QoS: 3, TopicName: "a"}, ErrInvalid, ""},
		{"SUBSCRIBE empty filter", &Subscribe{}, ErrInvalid, `mqttsn: SUBSCRIBE: topic filter "": empty`},
		{"SUBSCRIBE filter a+", &Subscribe{TopicName: "a+"}, ErrInvalid, ""},
		{"SUBSCRIBE filter a/#/b", &Subscribe{TopicName: "a/#/b"}, ErrInvalid, ""},
		{"SUBSCRIBE topic id type 0b11", &Subscribe{TopicIDType: 3, TopicID: 1}, ErrInvalid, "mqttsn: SUBSCRIBE: reserved topic id type 0b11"},
		{"UNSUBSCRIBE empty filter", &Unsubscribe{}, ErrInvalid, ""},
		{"UNSUBSCRIBE topic id type 0b11", &Unsubscribe{TopicIDType: 3}, ErrInvalid, ""},
		{"SUBACK QoS 3", &Suback{QoS: 3}, ErrInvalid, "mqttsn: SUBACK: granted QoS 3"},
		{"WILLTOPIC QoS -1", &WillTopic{QoS: QoSMinus1, Topic: "w"}, ErrInvalid, "mqttsn: WILLTOPIC: will QoS -1, want 0, 1 or 2"},
		{"WILLTOPIC wildcard", &WillTopic{Topic: "w/+"}, ErrInvalid, ""},
		{"WILLTOPICUPD QoS 5", &WillTopicUpd{QoS: 5, Topic: "w"}, ErrInvalid, "mqttsn: WILLTOPICUPD: will QoS 5, want 0, 1 or 2"},
		{"PINGREQ bad UTF-8", &Pingreq{ClientID: "\xff"}, ErrInvalid, "mqttsn: PINGREQ: client id: not well-formed UTF-8"},
		{"ENCAPSULATED without message", &Encapsulated{NodeID: []byte{1}}, ErrInvalid, "mqttsn: ENCAPSULATED: no inner message"},
		{"ENCAPSULATED nested", &Encapsulated{Message: &Encapsulated{Message: &Pingreq{}}}, ErrInvalid, "mqttsn: ENCAPSULATED: an encapsulated message may not hold another"},
		{"ENCAPSULATED node id 253 bytes", &Encapsulated{NodeID: seq(MaxNodeIDLen + 1), Message: &Pingreq{}}, ErrInvalid, "mqttsn: ENCAPSULATED: node id of 253 bytes, at most 252 fit"},
		{"ENCAPSULATED radius 4", &Encapsulated{Radius: 4, Message: &Pingreq{}}, ErrInvalid, "mqttsn: ENCAPSULATED: radius 4 does not fit 2 bits"},
		{"ENCAPSULATED invalid inner", &Encapsulated{NodeID: []byte{1}, Message: &Publish{QoS: QoSMinus1}}, ErrInvalid, "mqttsn: PUBLISH: QoS -1 needs a predefined topic id or a short topic name, not a normal topic id"},
		{"ENCAPSULATED inner too long", &Encapsulated{Message: &WillMsg{Message: seq(MaxMessageLen)}}, ErrTooLong, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := make([]byte, 3, 1024)
			out, err := Append(dst, tt.pkt)
			checkError(t, err, tt.kind, tt.msg)
			if len(out) != len(dst) {
				t.Errorf("failed Append returned % X, want dst (% X) unchanged", out, dst)
			}
			b, err := Marshal(tt.pkt)
			checkError(t, err, tt.kind, tt.msg)
			if len(b) != 0 {
				t.Errorf("failed Marshal returned % X", b)
			}
		})
	}
}

func TestUnmarshalWrongType(t *testing.T) {
	tests := []struct {
		wire string
		into Packet
		msg  string
	}{
		{"02 16", &Publish{}, "mqttsn: PINGREQ: cannot be decoded as PUBLISH"},
		{"09 0C 20 00 01 00 02 68 69", &Puback{}, "mqttsn: PUBLISH: cannot be decoded as PUBACK"},
		{"04 0F 00 02", &Pubrel{}, "mqttsn: PUBREC: cannot be decoded as PUBREL"},
		{"02 1A", &WillTopic{}, "mqttsn: WILLTOPICUPD: cannot be decoded as WILLTOPIC"},
		{"05 FE 00 00 01 02 16", &Pingreq{}, "mqttsn: ENCAPSULATED: cannot be decoded as PINGREQ"},
		{"02 16", &Encapsulated{}, "mqttsn: PINGREQ: cannot be decoded as ENCAPSULATED"},
		{"02 03", &Pingreq{}, "mqttsn: type 0x03: cannot be decoded as PINGREQ"},
	}
	for _, tt := range tests {
		err := Unmarshal(unhex(t, tt.wire), tt.into)
		if err == nil {
			t.Errorf("Unmarshal(%s into %T) succeeded", tt.wire, tt.into)
			continue
		}
		checkError(t, err, ErrInvalid, tt.msg)
	}
	// Header errors come first.
	checkError(t, Unmarshal(nil, &Publish{}), ErrTooShort, "")
}

func TestParseHeader(t *testing.T) {
	tests := []struct {
		in         string
		total, hdr int
		typ        MsgType
	}{
		{"02 16", 2, 2, TypePingreq},
		{"09 0C 20", 9, 2, TypePublish}, // a stream may hold only part of the message
		{"03 05 00 02 16", 3, 2, TypeConnack},
		{"FF 0C", 255, 2, TypePublish},
		{"01 00 04 16", 4, 4, TypePingreq},
		{"01 01 35 0C 20", 309, 4, TypePublish},
		{"01 FF FF 09", 65535, 4, TypeWillMsg},
		{"05 FE 00 00 01 02 16", 5, 2, TypeEncapsulated}, // the header only
		{"02 03", 2, 2, 0x03},                            // reserved types are reported, not refused
	}
	for _, tt := range tests {
		total, hdr, typ, err := ParseHeader(unhex(t, tt.in))
		if err != nil || total != tt.total || hdr != tt.hdr || typ != tt.typ {
			t.Errorf("ParseHeader(%s) = %d, %d, %v, %v; want %d, %d, %v", tt.in, total, hdr, typ, err, tt.total, tt.hdr, tt.typ)
		}
	}
	for _, in := range []string{"", "02", "00 16", "01", "01 00", "01 00 04", "01 00 03 16", "01 00 00 16"} {
		_, _, _, err := ParseHeader(unhex(t, in))
		var e *Error
		if !errors.As(err, &e) || e.HasType {
			t.Errorf("ParseHeader(%s) = %v, want a header *Error", in, err)
		}
	}
}

func TestStrings(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{TypePubcomp.String(), "PUBCOMP"},
		{TypeWillMsgResp.String(), "WILLMSGRESP"},
		{TypeEncapsulated.String(), "ENCAPSULATED"},
		{MsgType(0x03).String(), "type 0x03"},
		{MsgType(0x1E).String(), "type 0x1E"},
		{MsgType(0xFF).String(), "type 0xFF"},
		{RejectedInvalidID.String(), "rejected: invalid topic ID"},
		{ReturnCode(0x04).String(), "return code 0x04"},
		{TopicShort.String(), "short"},
		{TopicIDType(3).String(), "reserved"},
		{ShortTopicName(0x6162), "ab"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
	if id, ok := ShortTopicID("ab"); !ok || id != 0x6162 {
		t.Errorf(`ShortTopicID("ab") = %#x, %v`, id, ok)
	}
	for _, name := range []string{"", "a", "abc"} {
		if _, ok := ShortTopicID(name); ok {
			t.Errorf("ShortTopicID(%q) accepted", name)
		}
	}
	for i := range 256 {
		typ := MsgType(i)
		if (newPacket(typ) == nil) != strings.HasPrefix(typ.String(), "type 0x") {
			t.Errorf("MsgType(0x%02X).String() = %q disagrees with newPacket", i, typ)
		}
	}
}

// TestErrorHeaderOnly checks an *Error from before the type was known.
func TestErrorHeaderOnly(t *testing.T) {
	_, err := Decode(nil)
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Decode(nil) = %v", err)
	}
	if e.HasType || e.Kind != ErrTooShort || e.Unwrap() != ErrTooShort {
		t.Errorf("Decode(nil) error = %+v", e)
	}
}
