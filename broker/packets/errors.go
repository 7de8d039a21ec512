package packets

import (
	"errors"
	"fmt"
	"strconv"
)

// Kinds of codec failure. Every error from Decode and from a packet's Decode
// method, and every framing error from Reader.ReadPacket, is an *Error that
// wraps one of these, so the broker can choose its reaction with errors.Is.
// Apart from ErrUnsupportedLevel, all of them mean: close the connection
// without answering (MQTT-3.1.4-1, 4.8.0-1).
var (
	// ErrMalformed: the packet cannot be parsed, or a field breaks a rule
	// of its format: a truncated or trailing field, bad UTF-8, an invalid
	// topic name or filter, a reserved bit in a variable header.
	ErrMalformed = errors.New("malformed packet")
	// ErrProtocol: a rule violation in the fixed header, such as reserved
	// flags (MQTT-2.2.2-2) or a reserved packet type.
	ErrProtocol = errors.New("protocol violation")
	// ErrTooLarge: the packet is longer than the Reader's maxPacketSize.
	ErrTooLarge = errors.New("packet too large")
	// ErrUnsupportedLevel: a CONNECT for "MQTT" (or "MQIsdp") with a level
	// this codec does not speak. The broker answers CONNACK
	// ConnRefusedProtocolLevel and then closes (MQTT-3.1.2-2).
	ErrUnsupportedLevel = errors.New("unsupported protocol level")
	// ErrBadProtocolName: a CONNECT whose protocol name is neither "MQTT"
	// nor "MQIsdp": close without CONNACK (MQTT-3.1.2-1).
	ErrBadProtocolName = errors.New("unknown protocol name")
)

// Error describes why a packet was refused, for example
// "mqtt: PUBLISH: topic name: contains U+0000".
type Error struct {
	Type   Type   // the packet type from the fixed header; 0 when unknown
	Kind   error  // one of the Err* kinds above
	Detail string // what exactly is wrong, naming the field
}

func (e *Error) Error() string {
	if e.Type == 0 {
		return "mqtt: " + e.Detail
	}
	return "mqtt: " + e.Type.String() + ": " + e.Detail
}

// Unwrap returns the kind, for errors.Is.
func (e *Error) Unwrap() error { return e.Kind }

func malformed(t Type, detail string) error {
	return &Error{Type: t, Kind: ErrMalformed, Detail: detail}
}

func malformedf(t Type, format string, args ...any) error {
	return &Error{Type: t, Kind: ErrMalformed, Detail: fmt.Sprintf(format, args...)}
}

func protocolf(t Type, format string, args ...any) error {
	return &Error{Type: t, Kind: ErrProtocol, Detail: fmt.Sprintf(format, args...)}
}

// invalidField reports a field that was read whole but breaks a rule, such
// as a topic.ValidateName error.
func invalidField(t Type, field string, err error) error {
	return &Error{Type: t, Kind: ErrMalformed, Detail: field + ": " + err.Error()}
}

// truncated reports a field the body ends in the middle of.
func truncated(t Type, field string, need, left int) error {
	return &Error{Type: t, Kind: ErrMalformed,
		Detail: field + ": needs " + strconv.Itoa(need) + " bytes, " + strconv.Itoa(left) + " left in the packet"}
}
