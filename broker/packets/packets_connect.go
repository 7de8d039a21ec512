package packets

import (
	"strconv"

	"github.com/sngate/sngate/internal/topic"
)

// ConnectPacket opens a session (CONNECT, §3.1). The flags say which of the
// optional payload fields are present; Decode keeps them exactly as sent and
// copies every field out of the body.
type ConnectPacket struct {
	ProtocolName  string // "MQTT", or "MQIsdp" for an MQTT 3.1 client
	ProtocolLevel byte   // 4, or 3 with "MQIsdp"
	CleanSession  bool
	KeepAlive     uint16 // seconds; 0 disables the keep-alive
	ClientID      string // may be empty: the broker decides (MQTT-3.1.3-6..8)
	WillFlag      bool
	WillQoS       byte
	WillRetain    bool
	WillTopic     string // present when WillFlag
	WillMessage   []byte // present when WillFlag; nil when empty
	UsernameFlag  bool
	Username      string // present when UsernameFlag
	PasswordFlag  bool
	Password      []byte // present when PasswordFlag; nil when empty
}

// Connect flags (§3.1.2.3).
const (
	connReserved     = 0x01
	connCleanSession = 0x02
	connWill         = 0x04
	connWillQoSShift = 3
	connWillRetain   = 0x20
	connPassword     = 0x40
	connUsername     = 0x80
)

func (*ConnectPacket) Type() Type { return TypeConnect }
func (*ConnectPacket) sealed()    {}

// Decode parses a CONNECT body. The protocol name and level are checked
// before anything else, so that a CONNECT of a later protocol version yields
// ErrUnsupportedLevel however its remaining fields look.
func (p *ConnectPacket) Decode(fh FixedHeader, body []byte) error {
	const t = TypeConnect
	if err := checkHeader(fh, body, t, 0); err != nil {
		return err
	}
	name, rest, err := readField(body, t, "protocol name")
	if err != nil {
		return err
	}
	if len(rest) < 1 {
		return truncated(t, "protocol level", 1, 0)
	}
	level := rest[0]
	rest = rest[1:]
	var c ConnectPacket
	switch view(name) {
	case ProtocolNameMQTT:
		c.ProtocolName = ProtocolNameMQTT
		if level != ProtocolLevelMQTT311 {
			return &Error{Type: t, Kind: ErrUnsupportedLevel,
				Detail: "protocol level " + strconv.Itoa(int(level)) + " for MQTT, only 4 is supported (MQTT-3.1.2-2)"}
		}
	case ProtocolNameMQIsdp:
		c.ProtocolName = ProtocolNameMQIsdp
		if level != ProtocolLevelMQTT31 {
			return &Error{Type: t, Kind: ErrUnsupportedLevel,
				Detail: "protocol level " + strconv.Itoa(int(level)) + " for MQIsdp, only 3 is supported"}
		}
	default:
		if len(name) > 32 {
			name = name[:32]
		}
		return &Error{Type: t, Kind: ErrBadProtocolName,
			Detail: "protocol name " + strconv.Quote(string(name)) + " (MQTT-3.1.2-1)"}
	}
	c.ProtocolLevel = level

	if len(rest) < 3 {
		return truncated(t, "connect flags and keep alive", 3, len(rest))
	}
	f := rest[0]
	c.KeepAlive = uint16(rest[1])<<8 | uint16(rest[2])
	rest = rest[3:]
	c.CleanSession = f&connCleanSession != 0
	c.WillFlag = f&connWill != 0
	c.WillQoS = f >> connWillQoSShift & 3
	c.WillRetain = f&connWillRetain != 0
	c.PasswordFlag = f&connPassword != 0
	c.UsernameFlag = f&connUsername != 0
	switch {
	case f&connReserved != 0:
		return malformed(t, "reserved connect flag (bit 0) set (MQTT-3.1.2-3)")
	case !c.WillFlag && c.WillQoS != 0:
		return malformedf(t, "will QoS %d without the will flag (MQTT-3.1.2-11, -13)", c.WillQoS)
	case !c.WillFlag && c.WillRetain:
		return malformed(t, "will retain without the will flag (MQTT-3.1.2-15)")
	case c.WillQoS == 3:
		return malformed(t, "will QoS 3 (MQTT-3.1.2-14)")
	case c.PasswordFlag && !c.UsernameFlag:
		return malformed(t, "password flag without the user name flag (MQTT-3.1.2-22)")
	}

	// The payload: its fields in this order, each present iff its flag says
	// so (MQTT-3.1.3-1).
	var v []byte
	if v, rest, err = readString(rest, t, "client identifier"); err != nil {
		return err
	}
	c.ClientID = string(v)
	if c.WillFlag {
		if v, rest, err = readField(rest, t, "will topic"); err != nil {
			return err
		}
		if err := topic.ValidateName(view(v)); err != nil {
			return invalidField(t, "will topic", err)
		}
		c.WillTopic = string(v)
		if v, rest, err = readField(rest, t, "will message"); err != nil {
			return err
		}
		c.WillMessage = clone(v)
	}
	if c.UsernameFlag {
		if v, rest, err = readString(rest, t, "user name"); err != nil {
			return err
		}
		c.Username = string(v)
	}
	if c.PasswordFlag {
		if v, rest, err = readField(rest, t, "password"); err != nil {
			return err
		}
		c.Password = clone(v)
	}
	if err := noTrailing(rest, t, "payload"); err != nil {
		return err
	}
	*p = c
	return nil
}

// readString reads a UTF-8 string field (MQTT-1.5.3-1, -2).
func readString(b []byte, t Type, field string) (v, rest []byte, err error) {
	if v, rest, err = readField(b, t, field); err != nil {
		return nil, nil, err
	}
	if err := topic.ValidateString(view(v)); err != nil {
		return nil, nil, invalidField(t, field, err)
	}
	return v, rest, nil
}

// clone copies b; empty becomes nil.
func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

// Append appends the CONNECT to dst. An empty ProtocolName is written as
// "MQTT", and a zero ProtocolLevel as the level of the name written (4 for
// "MQTT", 3 for "MQIsdp"), so a client need only fill in its own fields.
// Optional payload fields are written iff their flags are set.
func (p *ConnectPacket) Append(dst []byte) []byte {
	name, level := p.ProtocolName, p.ProtocolLevel
	if name == "" {
		name = ProtocolNameMQTT
	}
	if level == 0 {
		switch name {
		case ProtocolNameMQTT:
			level = ProtocolLevelMQTT311
		case ProtocolNameMQIsdp:
			level = ProtocolLevelMQTT31
		}
	}
	if p.WillQoS > 3 {
		panic("packets: CONNECT with will QoS > 3")
	}
	f := p.WillQoS << connWillQoSShift
	n := fieldLen(name, "protocol name") + 4 + fieldLen(p.ClientID, "client identifier")
	if p.CleanSession {
		f |= connCleanSession
	}
	if p.WillFlag {
		f |= connWill
		n += fieldLen(p.WillTopic, "will topic") + fieldLen(p.WillMessage, "will message")
	}
	if p.WillRetain {
		f |= connWillRetain
	}
	if p.UsernameFlag {
		f |= connUsername
		n += fieldLen(p.Username, "user name")
	}
	if p.PasswordFlag {
		f |= connPassword
		n += fieldLen(p.Password, "password")
	}
	dst = appendField(appendHeader(dst, TypeConnect, 0, n), name)
	dst = append16(append(dst, level, f), p.KeepAlive)
	dst = appendField(dst, p.ClientID)
	if p.WillFlag {
		dst = appendField(appendField(dst, p.WillTopic), p.WillMessage)
	}
	if p.UsernameFlag {
		dst = appendField(dst, p.Username)
	}
	if p.PasswordFlag {
		dst = appendField(dst, p.Password)
	}
	return dst
}

// ConnackPacket answers CONNECT (CONNACK, §3.2).
type ConnackPacket struct {
	SessionPresent bool
	ReturnCode     byte // ConnAccepted or a ConnRefused* code; 6-255 are reserved but decoded
}

func (*ConnackPacket) Type() Type { return TypeConnack }
func (*ConnackPacket) sealed()    {}

func (p *ConnackPacket) Decode(fh FixedHeader, body []byte) error {
	const t = TypeConnack
	if err := checkHeader(fh, body, t, 0); err != nil {
		return err
	}
	if len(body) != 2 {
		return malformedf(t, "body of %d bytes, must be 2", len(body))
	}
	if body[0]&^1 != 0 {
		return malformedf(t, "acknowledge flags 0x%02X: bits 7-1 are reserved", body[0])
	}
	sp := body[0] == 1
	if sp && body[1] != ConnAccepted {
		return protocolf(t, "session present with return code %d (MQTT-3.2.2-4)", body[1])
	}
	*p = ConnackPacket{SessionPresent: sp, ReturnCode: body[1]}
	return nil
}

func (p *ConnackPacket) Append(dst []byte) []byte {
	var f byte
	if p.SessionPresent {
		f = 1
	}
	return append(dst, byte(TypeConnack)<<4, 2, f, p.ReturnCode)
}

// PingreqPacket is a keep-alive probe (PINGREQ, §3.12).
type PingreqPacket struct{}

// PingrespPacket answers PINGREQ (PINGRESP, §3.13).
type PingrespPacket struct{}

// DisconnectPacket ends a connection cleanly (DISCONNECT, §3.14).
type DisconnectPacket struct{}

func (*PingreqPacket) Type() Type    { return TypePingreq }
func (*PingrespPacket) Type() Type   { return TypePingresp }
func (*DisconnectPacket) Type() Type { return TypeDisconnect }

func (*PingreqPacket) sealed()    {}
func (*PingrespPacket) sealed()   {}
func (*DisconnectPacket) sealed() {}

func (*PingreqPacket) Append(dst []byte) []byte    { return append(dst, byte(TypePingreq)<<4, 0) }
func (*PingrespPacket) Append(dst []byte) []byte   { return append(dst, byte(TypePingresp)<<4, 0) }
func (*DisconnectPacket) Append(dst []byte) []byte { return append(dst, byte(TypeDisconnect)<<4, 0) }

func (*PingreqPacket) Decode(fh FixedHeader, body []byte) error {
	return decodeEmpty(fh, body, TypePingreq)
}
func (*PingrespPacket) Decode(fh FixedHeader, body []byte) error {
	return decodeEmpty(fh, body, TypePingresp)
}
func (*DisconnectPacket) Decode(fh FixedHeader, body []byte) error {
	return decodeEmpty(fh, body, TypeDisconnect)
}

func decodeEmpty(fh FixedHeader, body []byte, t Type) error {
	if err := checkHeader(fh, body, t, 0); err != nil {
		return err
	}
	return noTrailing(body, t, "fixed header (the packet has no body)")
}
