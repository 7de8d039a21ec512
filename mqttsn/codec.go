package mqttsn

import (
	"encoding/binary"
	"strconv"
)

// Packet is one MQTT-SN message. The concrete types are the pointer types of
// this package (*Publish, *Connect, ...); the interface is sealed so that
// every Packet can be encoded and decoded.
type Packet interface {
	// Type returns the MsgType byte the message is sent with.
	Type() MsgType

	size() int                // length of the variable part
	appendTo(b []byte) []byte // appends the variable part
	decode(v []byte) error    // parses the variable part
	validate() error          // field rules checked on both encode and decode
}

// maxShortBody is the longest body (MsgType plus variable part) that fits the
// 1-byte Length form: 1 length byte + 254 = 255. A 255-byte body needs the
// 3-byte form (the boundary Paho got wrong until PR #187).
const maxShortBody = 254

// MaxMessageLen is the largest total length the 3-byte Length form can carry.
const MaxMessageLen = 65535

// ParseHeader reads the Length field and MsgType at the start of b. It returns
// the total message length the Length field announces (for an encapsulated
// message: the length of the encapsulation header only), the header length
// (2 for the 1-byte form, 4 for the 3-byte form) and the type. It does not
// require b to hold the whole message, so stream transports can use it to
// find message boundaries.
func ParseHeader(b []byte) (total, hdr int, t MsgType, err error) {
	if len(b) < 2 {
		return 0, 0, 0, headerError(ErrTooShort, "%d bytes, need at least 2 for a header", len(b))
	}
	switch b[0] {
	case 0x00:
		return 0, 0, 0, headerError(ErrLength, "length byte 0x00 is not valid")
	case 0x01:
		if len(b) < 4 {
			return 0, 0, 0, headerError(ErrTooShort, "%d bytes, need at least 4 for a 3-byte length header", len(b))
		}
		total = int(binary.BigEndian.Uint16(b[1:3]))
		if total < 4 {
			return 0, 0, 0, headerError(ErrLength, "3-byte length field says %d, less than its own header", total)
		}
		return total, 4, MsgType(b[3]), nil
	default:
		return int(b[0]), 2, MsgType(b[1]), nil
	}
}

// Decode parses one whole MQTT-SN message, as received in one datagram. The
// Length field must match len(b) exactly. Byte slices in the result alias b.
func Decode(b []byte) (Packet, error) {
	_, _, t, err := ParseHeader(b)
	if err != nil {
		return nil, err
	}
	p := newPacket(t)
	if p == nil {
		return nil, &Error{Type: t, HasType: true, Kind: ErrUnknownType, Detail: "reserved message type"}
	}
	if err := Unmarshal(b, p); err != nil {
		return nil, err
	}
	return p, nil
}

// Unmarshal decodes the whole message b into p, which must be of the message's
// type. It lets a hot path reuse one packet value: decoding a PUBLISH into an
// existing *Publish allocates nothing. Byte slices in p alias b.
func Unmarshal(b []byte, p Packet) error {
	total, hdr, t, err := ParseHeader(b)
	if err != nil {
		return err
	}
	if t != p.Type() {
		return &Error{Type: t, HasType: true, Kind: ErrInvalid, Detail: "cannot be decoded as " + p.Type().String()}
	}
	if t == TypeEncapsulated {
		return p.(*Encapsulated).decodeWhole(b, total, hdr)
	}
	if total != len(b) {
		return &Error{Type: t, HasType: true, Kind: ErrLength,
			Detail: lengthMismatch(total, len(b))}
	}
	v := b[hdr:]
	if err := p.decode(v); err != nil {
		return packetError(t, hdr, len(v), err)
	}
	if err := p.validate(); err != nil {
		return packetError(t, hdr, len(v), err)
	}
	return nil
}

func lengthMismatch(total, got int) string {
	return "length field says " + strconv.Itoa(total) + " bytes, datagram has " + strconv.Itoa(got)
}

// Append appends the wire form of p to dst and returns the extended slice. It
// allocates only when dst lacks capacity. The 1-byte Length form is used
// whenever the message fits it.
func Append(dst []byte, p Packet) ([]byte, error) {
	if p == nil {
		return dst, &Error{Kind: ErrInvalid, Detail: "no message to encode"}
	}
	if err := p.validate(); err != nil {
		return dst, packetError(p.Type(), 2, p.size(), err)
	}
	if e, ok := p.(*Encapsulated); ok {
		return e.appendWhole(dst)
	}
	body := 1 + p.size()
	if body <= maxShortBody {
		dst = append(dst, byte(body+1), byte(p.Type()))
	} else {
		total := body + 3
		if total > MaxMessageLen {
			return dst, &Error{Type: p.Type(), HasType: true, Kind: ErrTooLong,
				Detail: strconv.Itoa(total) + " bytes, at most 65535 fit the length field"}
		}
		dst = append(dst, 0x01, byte(total>>8), byte(total), byte(p.Type()))
	}
	return p.appendTo(dst), nil
}

// Marshal returns the wire form of p in a new slice.
func Marshal(p Packet) ([]byte, error) {
	if p == nil {
		return Append(nil, p)
	}
	return Append(make([]byte, 0, 4+p.size()), p)
}

// Len returns the total encoded length of p.
func Len(p Packet) int {
	if e, ok := p.(*Encapsulated); ok {
		if e.Message == nil {
			return e.headerLen()
		}
		return e.headerLen() + Len(e.Message)
	}
	body := 1 + p.size()
	if body <= maxShortBody {
		return body + 1
	}
	return body + 3
}

// newPacket returns an empty packet of type t, or nil for a reserved type.
func newPacket(t MsgType) Packet {
	switch t {
	case TypeAdvertise:
		return new(Advertise)
	case TypeSearchGW:
		return new(SearchGW)
	case TypeGWInfo:
		return new(GWInfo)
	case TypeConnect:
		return new(Connect)
	case TypeConnack:
		return new(Connack)
	case TypeWillTopicReq:
		return new(WillTopicReq)
	case TypeWillTopic:
		return new(WillTopic)
	case TypeWillMsgReq:
		return new(WillMsgReq)
	case TypeWillMsg:
		return new(WillMsg)
	case TypeRegister:
		return new(Register)
	case TypeRegack:
		return new(Regack)
	case TypePublish:
		return new(Publish)
	case TypePuback:
		return new(Puback)
	case TypePubcomp:
		return new(Pubcomp)
	case TypePubrec:
		return new(Pubrec)
	case TypePubrel:
		return new(Pubrel)
	case TypeSubscribe:
		return new(Subscribe)
	case TypeSuback:
		return new(Suback)
	case TypeUnsubscribe:
		return new(Unsubscribe)
	case TypeUnsuback:
		return new(Unsuback)
	case TypePingreq:
		return new(Pingreq)
	case TypePingresp:
		return new(Pingresp)
	case TypeDisconnect:
		return new(Disconnect)
	case TypeWillTopicUpd:
		return new(WillTopicUpd)
	case TypeWillTopicResp:
		return new(WillTopicResp)
	case TypeWillMsgUpd:
		return new(WillMsgUpd)
	case TypeWillMsgResp:
		return new(WillMsgResp)
	case TypeEncapsulated:
		return new(Encapsulated)
	}
	return nil
}

func be16(b []byte) uint16 { return binary.BigEndian.Uint16(b) }

func append16(b []byte, v uint16) []byte { return append(b, byte(v>>8), byte(v)) }
