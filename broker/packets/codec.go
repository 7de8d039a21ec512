package packets

import (
	"io"
	"strconv"
	"unsafe"
)

// Packet is one MQTT control packet. The concrete types are the pointer types
// of this package (*ConnectPacket, *PublishPacket, ...); the interface is
// sealed.
type Packet interface {
	// Type returns the control packet type.
	Type() Type
	// Append appends the whole packet, fixed header included, to dst.
	Append(dst []byte) []byte
	// Decode parses a body of this type, replacing the packet's fields. On
	// error the packet is left unchanged; a header of another type is
	// refused with ErrMalformed.
	Decode(fh FixedHeader, body []byte) error

	sealed()
}

// Decode parses the body of a packet whose fixed header is fh into a new
// packet of the matching type, checking every rule in the package
// documentation. Only PUBLISH aliases body (Topic and Payload); every other
// packet copies what it keeps.
func Decode(fh FixedHeader, body []byte) (Packet, error) {
	p := newPacket(fh.Type)
	if p == nil {
		return nil, protocolf(fh.Type, "reserved packet type %d", fh.Type)
	}
	if err := p.Decode(fh, body); err != nil {
		return nil, err
	}
	return p, nil
}

// newPacket returns an empty packet of type t, or nil for a reserved type.
func newPacket(t Type) Packet {
	switch t {
	case TypeConnect:
		return new(ConnectPacket)
	case TypeConnack:
		return new(ConnackPacket)
	case TypePublish:
		return new(PublishPacket)
	case TypePuback:
		return new(PubackPacket)
	case TypePubrec:
		return new(PubrecPacket)
	case TypePubrel:
		return new(PubrelPacket)
	case TypePubcomp:
		return new(PubcompPacket)
	case TypeSubscribe:
		return new(SubscribePacket)
	case TypeSuback:
		return new(SubackPacket)
	case TypeUnsubscribe:
		return new(UnsubscribePacket)
	case TypeUnsuback:
		return new(UnsubackPacket)
	case TypePingreq:
		return new(PingreqPacket)
	case TypePingresp:
		return new(PingrespPacket)
	case TypeDisconnect:
		return new(DisconnectPacket)
	}
	return nil
}

// checkHeader checks what every packet's Decode checks first: the type, the
// body length against the fixed header and, unless it is PUBLISH, the
// fixed-header flags (MQTT-2.2.2-1, -2).
func checkHeader(fh FixedHeader, body []byte, want Type, flags byte) error {
	if fh.Type != want {
		return malformed(fh.Type, "cannot be decoded as "+want.String())
	}
	if len(body) != fh.Remaining {
		return malformedf(want, "remaining length %d, but a body of %d bytes", fh.Remaining, len(body))
	}
	if want != TypePublish && fh.Flags != flags {
		return protocolf(want, "fixed-header flags %04b, must be %04b", fh.Flags, flags)
	}
	return nil
}

// MaxRemainingLength is the largest Remaining Length: four bytes of 7 bits.
const MaxRemainingLength = 268435455

// MaxPacketSize is the largest whole packet: the first byte, a 4-byte
// Remaining Length and the longest body.
const MaxPacketSize = 1 + 4 + MaxRemainingLength

// RemainingLengthSize returns how many bytes (1 to 4) AppendRemainingLength
// writes for n. It panics unless 0 <= n <= MaxRemainingLength.
func RemainingLengthSize(n int) int {
	switch {
	case n < 0:
	case n < 1<<7:
		return 1
	case n < 1<<14:
		return 2
	case n < 1<<21:
		return 3
	case n <= MaxRemainingLength:
		return 4
	}
	panic(lengthPanic(n))
}

// AppendRemainingLength appends the minimal encoding of n as a Remaining
// Length (§2.2.3). It panics unless 0 <= n <= MaxRemainingLength.
func AppendRemainingLength(dst []byte, n int) []byte {
	if n < 0 || n > MaxRemainingLength {
		panic(lengthPanic(n))
	}
	for n >= 0x80 {
		dst = append(dst, byte(n)|0x80)
		n >>= 7
	}
	return append(dst, byte(n))
}

func lengthPanic(n int) string {
	return "packets: remaining length " + strconv.Itoa(n) + " outside 0.." + strconv.Itoa(MaxRemainingLength)
}

// DecodeRemainingLength decodes the Remaining Length at the start of b and
// returns its value and how many bytes it took. Encodings longer than needed
// (80 00 for 0) are accepted: MQTT 3.1.1 does not forbid them. If b ends
// before the last byte it returns io.ErrUnexpectedEOF; if the fourth byte
// still has its continuation bit set, an *Error of kind ErrMalformed.
func DecodeRemainingLength(b []byte) (value, n int, err error) {
	value, n, st := parseRemainingLength(b)
	switch st {
	case rlIncomplete:
		return 0, 0, io.ErrUnexpectedEOF
	case rlTooLong:
		return 0, 0, errRemainingTooLong(0)
	}
	return value, n, nil
}

const (
	rlOK = iota
	rlIncomplete
	rlTooLong
)

func parseRemainingLength(b []byte) (value, n, status int) {
	for i := 0; i < 4; i++ {
		if i == len(b) {
			return 0, 0, rlIncomplete
		}
		value |= int(b[i]&0x7F) << (7 * i)
		if b[i] < 0x80 {
			return value, i + 1, rlOK
		}
	}
	return 0, 0, rlTooLong
}

func errRemainingTooLong(t Type) error {
	return malformed(t, "remaining length: continuation bit set in its fourth byte")
}

// appendHeader appends the first byte and the Remaining Length.
func appendHeader(dst []byte, t Type, flags byte, remaining int) []byte {
	return AppendRemainingLength(append(dst, byte(t)<<4|flags), remaining)
}

// view returns b as a string without copying, for validation functions that
// do not keep their argument.
func view(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// readField reads a field with a 2-byte length prefix (a UTF-8 string or
// binary data) from the start of b. The field's capacity ends where it does.
func readField(b []byte, t Type, field string) (v, rest []byte, err error) {
	if len(b) < 2 {
		return nil, nil, truncated(t, field+" length", 2, len(b))
	}
	n := int(b[0])<<8 | int(b[1])
	if len(b)-2 < n {
		return nil, nil, truncated(t, field, n, len(b)-2)
	}
	return b[2 : 2+n : 2+n], b[2+n:], nil
}

// readID reads a 2-byte packet identifier from the start of b.
func readID(b []byte, t Type) (id uint16, rest []byte, err error) {
	if len(b) < 2 {
		return 0, nil, truncated(t, "packet identifier", 2, len(b))
	}
	return uint16(b[0])<<8 | uint16(b[1]), b[2:], nil
}

// readNonZeroID reads a packet identifier that must not be 0 (MQTT-2.3.1-1).
func readNonZeroID(b []byte, t Type) (id uint16, rest []byte, err error) {
	id, rest, err = readID(b, t)
	if err == nil && id == 0 {
		return 0, nil, malformed(t, "packet identifier 0 (MQTT-2.3.1-1)")
	}
	return id, rest, err
}

func noTrailing(b []byte, t Type, after string) error {
	if len(b) != 0 {
		return malformedf(t, "%d trailing bytes after the %s", len(b), after)
	}
	return nil
}

// fieldLen returns 2+len(s) for a string or binary field, and panics if s
// is too long for its length prefix.
func fieldLen[T string | []byte](s T, field string) int {
	if len(s) > maxFieldSize {
		panic("packets: " + field + " of " + strconv.Itoa(len(s)) + " bytes does not fit a 2-byte length")
	}
	return 2 + len(s)
}

// appendField appends a length-prefixed field; fieldLen checked its length.
func appendField[T string | []byte](dst []byte, s T) []byte {
	return append(append(dst, byte(len(s)>>8), byte(len(s))), s...)
}

func append16(dst []byte, v uint16) []byte { return append(dst, byte(v>>8), byte(v)) }
