package xbee

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"testing/iotest"
)

var (
	sensorA = Address{Long: 0x0013A20040A1B2C3, Short: 0x7D84}
	sensorB = Address{Long: 0x0013A200408B1A2C, Short: 0x1234}
)

// wireTable pairs every frame type with its wire bytes in API mode 1 and 2.
// The checksums were computed independently of this package.
var wireTable = []struct {
	name  string
	frame Frame
	mode1 string
	mode2 string
}{
	{
		// The reference's worked example (§4.4): PINGRESP to 0013A200 40A1B2C3,
		// frame id 1. The 0x13 of the address is escaped in mode 2.
		name:  "Transmit Request, reference example",
		frame: &TransmitRequest{FrameID: 1, Dest: Address{0x0013A20040A1B2C3, 0xFFFE}, Data: []byte{0x02, 0x17}},
		mode1: "7E 00 10 | 10 01 00 13 A2 00 40 A1 B2 C3 FF FE 00 00 02 17 | CD",
		mode2: "7E 00 10 | 10 01 00 7D 33 A2 00 40 A1 B2 C3 FF FE 00 00 02 17 | CD",
	},
	{
		// Length 0x13 is escaped too.
		name:  "Transmit Request, broadcast ADVERTISE",
		frame: &TransmitRequest{FrameID: 0x2A, Dest: Broadcast(), Data: []byte{0x05, 0x00, 0x01, 0x03, 0x84}},
		mode1: "7E 00 13 | 10 2A 00 00 00 00 00 00 FF FF FF FE 00 00 05 00 01 03 84 | 3D",
		mode2: "7E 00 7D 33 | 10 2A 00 00 00 00 00 00 FF FF FF FE 00 00 05 00 01 03 84 | 3D",
	},
	{
		name:  "Transmit Request, frame id 0x7E, options, escaped 16-bit address",
		frame: &TransmitRequest{FrameID: 0x7E, Dest: sensorA, Radius: 1, Options: TxAPSEncryption | TxExtendedTimeout, Data: []byte{0x04, 0x18, 0x01, 0x2C}},
		mode1: "7E 00 12 | 10 7E 00 13 A2 00 40 A1 B2 C3 7D 84 01 60 04 18 01 2C | BB",
		mode2: "7E 00 12 | 10 7D 5E 00 7D 33 A2 00 40 A1 B2 C3 7D 5D 84 01 60 04 18 01 2C | BB",
	},
	{
		name:  "Transmit Status, success",
		frame: &TransmitStatus{FrameID: 1, Short: 0x7D84},
		mode1: "7E 00 07 | 8B 01 7D 84 00 00 00 | 72",
		mode2: "7E 00 07 | 8B 01 7D 5D 84 00 00 00 | 72",
	},
	{
		name:  "Transmit Status, network ACK failure",
		frame: &TransmitStatus{FrameID: 2, Short: 0xFFFE, Retries: 2, Delivery: DeliveryNetworkACKFailure, Discovery: 2},
		mode1: "7E 00 07 | 8B 02 FF FE 02 21 02 | 50",
		mode2: "7E 00 07 | 8B 02 FF FE 02 21 02 | 50",
	},
	{
		name:  "Receive Packet, CONNECT",
		frame: &Receive{Src: sensorA, Options: RxAcked, Data: []byte{0x09, 0x04, 0x04, 0x01, 0x00, 0x3C, 0x61, 0x62, 0x63}},
		mode1: "7E 00 15 | 90 00 13 A2 00 40 A1 B2 C3 7D 84 01 09 04 04 01 00 3C 61 62 63 | EE",
		mode2: "7E 00 15 | 90 00 7D 33 A2 00 40 A1 B2 C3 7D 5D 84 01 09 04 04 01 00 3C 61 62 63 | EE",
	},
	{
		name:  "Receive Packet, XON in the data",
		frame: &Receive{Src: Address{0x0013A20040A1B2C3, 0x1234}, Options: RxBroadcast, Data: []byte{0x03, 0x09, 0x11}},
		mode1: "7E 00 0F | 90 00 13 A2 00 40 A1 B2 C3 12 34 02 03 09 11 | FF",
		mode2: "7E 00 0F | 90 00 7D 33 A2 00 40 A1 B2 C3 12 34 02 03 09 7D 31 | FF",
	},
	{
		name:  "Receive Packet, escaped length",
		frame: &Receive{Src: Address{0x0013A20040A1B2C4, 0x0001}, Options: RxFromEndDevice | RxAcked, Data: []byte{0x07, 0x0D, 0x00, 0x01, 0x00, 0x02, 0x00}},
		mode1: "7E 00 13 | 90 00 13 A2 00 40 A1 B2 C4 00 01 41 07 0D 00 01 00 02 00 | 0A",
		mode2: "7E 00 7D 33 | 90 00 7D 33 A2 00 40 A1 B2 C4 00 01 41 07 0D 00 01 00 02 00 | 0A",
	},
	{
		name: "Explicit Rx Indicator",
		frame: &ExplicitReceive{Src: sensorB, SrcEndpoint: 0xE8, DstEndpoint: 0xE8, Cluster: 0x0011, Profile: 0xC105,
			Options: RxAcked, Data: []byte{0x02, 0x16}},
		mode1: "7E 00 14 | 91 00 13 A2 00 40 8B 1A 2C 12 34 E8 E8 00 11 C1 05 01 02 16 | A2",
		mode2: "7E 00 14 | 91 00 7D 33 A2 00 40 8B 1A 2C 12 34 E8 E8 00 7D 31 C1 05 01 02 16 | A2",
	},
	{
		// Digi's manual example: query NJ with frame id 0x52.
		name:  "AT Command, query",
		frame: &ATCommand{FrameID: 0x52, Command: [2]byte{'N', 'J'}},
		mode1: "7E 00 04 | 08 52 4E 4A | 0D",
		mode2: "7E 00 04 | 08 52 4E 4A | 0D",
	},
	{
		name:  "AT Command, set AP=2",
		frame: &ATCommand{FrameID: 3, Command: [2]byte{'A', 'P'}, Param: []byte{0x02}},
		mode1: "7E 00 05 | 08 03 41 50 02 | 61",
		mode2: "7E 00 05 | 08 03 41 50 02 | 61",
	},
	{
		name:  "AT Command Response, AP",
		frame: &ATResponse{FrameID: 1, Command: [2]byte{'A', 'P'}, Data: []byte{0x02}},
		mode1: "7E 00 06 | 88 01 41 50 00 02 | E3",
		mode2: "7E 00 06 | 88 01 41 50 00 02 | E3",
	},
	{
		// The checksum is 0x7E, escaped in mode 2.
		name:  "AT Command Response, SL, escaped checksum",
		frame: &ATResponse{FrameID: 4, Command: [2]byte{'S', 'L'}, Data: []byte{0x40, 0xA1, 0xB2, 0xC3}},
		mode1: "7E 00 09 | 88 04 53 4C 00 40 A1 B2 C3 | 7E",
		mode2: "7E 00 09 | 88 04 53 4C 00 40 A1 B2 C3 | 7D 5E",
	},
	{
		name:  "AT Command Response, invalid command",
		frame: &ATResponse{FrameID: 5, Command: [2]byte{'X', 'X'}, Status: ATStatusInvalidCommand},
		mode1: "7E 00 05 | 88 05 58 58 02 | C0",
		mode2: "7E 00 05 | 88 05 58 58 02 | C0",
	},
	{
		// Digi's manual example.
		name:  "Modem Status, coordinator started",
		frame: &ModemStatus{Status: ModemCoordinatorStarted},
		mode1: "7E 00 02 | 8A 06 | 6F",
		mode2: "7E 00 02 | 8A 06 | 6F",
	},
	{
		name:  "Modem Status, joined",
		frame: &ModemStatus{Status: ModemJoined},
		mode1: "7E 00 02 | 8A 02 | 73",
		mode2: "7E 00 02 | 8A 02 | 73",
	},
	{
		name:  "unknown type (Node Identification)",
		frame: &Unknown{ID: 0x95, Data: []byte{0x01, 0x02}},
		mode1: "7E 00 03 | 95 01 02 | 67",
		mode2: "7E 00 03 | 95 01 02 | 67",
	},
	{
		// The reference's escaping example (§4.4).
		name:  "unknown type, reference escaping example",
		frame: &Unknown{ID: 0x23, Data: []byte{0x11}},
		mode1: "7E 00 02 | 23 11 | CB",
		mode2: "7E 00 02 | 23 7D 31 | CB",
	},
}

func TestAppend(t *testing.T) {
	for _, tt := range wireTable {
		t.Run(tt.name, func(t *testing.T) {
			for _, m := range []struct {
				escaped bool
				wire    string
			}{{false, tt.mode1}, {true, tt.mode2}} {
				want := unhex(t, m.wire)
				got, err := Append([]byte{0xAA}, tt.frame, m.escaped)
				if err != nil {
					t.Fatalf("escaped=%v: Append: %v", m.escaped, err)
				}
				if !bytes.Equal(got, append([]byte{0xAA}, want...)) {
					t.Fatalf("escaped=%v: Append = % X\nwant AA % X", m.escaped, got, want)
				}
			}
		})
	}
}

func TestReadWire(t *testing.T) {
	for _, tt := range wireTable {
		t.Run(tt.name, func(t *testing.T) {
			for _, m := range []struct {
				escaped bool
				wire    string
			}{{false, tt.mode1}, {true, tt.mode2}} {
				wire := unhex(t, m.wire)
				for _, one := range []bool{false, true} {
					r := NewReader(iotestWrap(bytes.NewReader(wire), one), m.escaped)
					got := readFrames(t, r)
					if len(got) != 1 || !reflect.DeepEqual(got[0], tt.frame) {
						t.Fatalf("escaped=%v one-byte=%v: read %s, want %s", m.escaped, one, dumpAll(got), dump(tt.frame))
					}
					if s := r.Stats(); s != (Stats{Frames: 1}) {
						t.Fatalf("escaped=%v one-byte=%v: stats %+v", m.escaped, one, s)
					}
				}
			}
		})
	}
}

// TestDecode checks Decode and Unmarshal on each table frame's data (the
// mode 1 wire without start byte, length and checksum).
func TestDecode(t *testing.T) {
	for _, tt := range wireTable {
		t.Run(tt.name, func(t *testing.T) {
			wire := unhex(t, tt.mode1)
			data := wire[3 : len(wire)-1]
			f, err := Decode(data)
			if err != nil || !reflect.DeepEqual(f, tt.frame) {
				t.Fatalf("Decode(% X) = %s, %v; want %s", data, dump(f), err, dump(tt.frame))
			}
			into := reflect.New(reflect.TypeOf(tt.frame).Elem()).Interface().(Frame)
			if err := Unmarshal(data, into); err != nil || !reflect.DeepEqual(into, tt.frame) {
				t.Fatalf("Unmarshal(% X) = %s, %v", data, dump(into), err)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		data string
		kind error
	}{
		{"empty", "", ErrTooShort},
		{"Transmit Request without RF data bytes but short", "10 01 00 13 A2 00 40 A1 B2 C3 FF FE 00", ErrTooShort},
		{"Transmit Status short", "8B 01 FF FE 00 00", ErrSize},
		{"Transmit Status long", "8B 01 FF FE 00 00 00 00", ErrSize},
		{"Receive short", "90 00 13 A2 00 40 A1 B2 C3 FF FE", ErrTooShort},
		{"Explicit Rx short", "91 00 13 A2 00 40 A1 B2 C3 FF FE E8 E8 00 11 C1 05", ErrTooShort},
		{"AT Command short", "08 01 41", ErrTooShort},
		{"AT Response short", "88 01 41 50", ErrTooShort},
		{"Modem Status empty", "8A", ErrSize},
		{"Modem Status long", "8A 00 00", ErrSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := unhex(t, tt.data)
			f, err := Decode(data)
			var e *Error
			if f != nil || !errors.As(err, &e) || !errors.Is(err, tt.kind) {
				t.Fatalf("Decode(% X) = %s, %v; want an *Error of kind %v", data, dump(f), err, tt.kind)
			}
			if len(data) > 0 && (!e.HasType || e.Type != FrameType(data[0])) {
				t.Fatalf("error %q does not name type 0x%02X", err, data[0])
			}
		})
	}
}

func TestDecodeEmptyTails(t *testing.T) {
	// Minimal frames: the variable part decodes as nil, so that frames
	// compare equal to ones written with Data: nil.
	for _, data := range []string{"10 01 00 13 A2 00 40 A1 B2 C3 FF FE 00 00", "90 00 13 A2 00 40 A1 B2 C3 FF FE 00", "08 01 41 50", "88 01 41 50 00", "A1"} {
		f, err := Decode(unhex(t, data))
		if err != nil {
			t.Fatalf("Decode(%s): %v", data, err)
		}
		v := reflect.ValueOf(f).Elem()
		for i := range v.NumField() {
			if fv := v.Field(i); fv.Kind() == reflect.Slice && !fv.IsNil() {
				t.Fatalf("Decode(%s) = %s: field %s is empty but not nil", data, dump(f), v.Type().Field(i).Name)
			}
		}
	}
}

func TestUnmarshalWrongType(t *testing.T) {
	err := Unmarshal(unhex(t, "8A 02"), new(Receive))
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("Unmarshal(Modem Status into *Receive) = %v, want ErrInvalid", err)
	}
	if err := Unmarshal(unhex(t, "8A 02"), nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Unmarshal into nil = %v", err)
	}
	var u Unknown
	if err := Unmarshal(unhex(t, "8A 02"), &u); err != nil || u.ID != TypeModemStatus || !bytes.Equal(u.Data, []byte{2}) {
		t.Fatalf("Unmarshal into *Unknown = %+v, %v", u, err)
	}
}

func TestAppendErrors(t *testing.T) {
	if _, err := Append(nil, nil, false); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Append(nil frame) = %v", err)
	}
	// 14 + 498 = 512 bytes of frame data fit; one more does not.
	ok := &TransmitRequest{FrameID: 1, Dest: Broadcast(), Data: make([]byte, MaxFrameLen-14)}
	b, err := Append(nil, ok, true)
	if err != nil || len(b) != 1+2+MaxFrameLen+1 {
		t.Fatalf("Append of %d bytes of frame data: %d bytes, %v", MaxFrameLen, len(b), err)
	}
	long := &TransmitRequest{FrameID: 1, Dest: Broadcast(), Data: make([]byte, MaxFrameLen-13)}
	dst := []byte{0xAA}
	got, err := Append(dst, long, true)
	if !errors.Is(err, ErrTooLong) || !bytes.Equal(got, dst) {
		t.Fatalf("Append of %d bytes = % X, %v; want dst unchanged and ErrTooLong", MaxFrameLen+1, got, err)
	}
}

func TestFrameTypeString(t *testing.T) {
	for ft, want := range map[FrameType]string{
		TypeTransmitRequest: "Transmit Request (0x10)",
		TypeReceive:         "Receive Packet (0x90)",
		0xA1:                "API frame (0xA1)",
	} {
		if got := ft.String(); got != want {
			t.Errorf("FrameType(0x%02X).String() = %q, want %q", byte(ft), got, want)
		}
	}
}

func TestAddress(t *testing.T) {
	if got := sensorA.String(); got != "0013A20040A1B2C3/7D84" {
		t.Fatalf("String = %q", got)
	}
	if b := Broadcast(); !b.IsBroadcast() || b.Short != 0xFFFE || b.String() != "000000000000FFFF/FFFE" {
		t.Fatalf("Broadcast() = %v", b)
	}
	if sensorA.IsBroadcast() {
		t.Fatal("a sensor's address is not a broadcast")
	}
}

func iotestWrap(r *bytes.Reader, oneByte bool) interface{ Read([]byte) (int, error) } {
	if oneByte {
		return iotest.OneByteReader(r)
	}
	return r
}
