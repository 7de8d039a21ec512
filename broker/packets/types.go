package packets

import "strconv"

// Type is the MQTT control packet type, bits 7-4 of the fixed header.
type Type byte

// Control packet types of MQTT 3.1.1 (§2.2.1). 0 and 15 are reserved.
const (
	TypeConnect     Type = 1
	TypeConnack     Type = 2
	TypePublish     Type = 3
	TypePuback      Type = 4
	TypePubrec      Type = 5
	TypePubrel      Type = 6
	TypePubcomp     Type = 7
	TypeSubscribe   Type = 8
	TypeSuback      Type = 9
	TypeUnsubscribe Type = 10
	TypeUnsuback    Type = 11
	TypePingreq     Type = 12
	TypePingresp    Type = 13
	TypeDisconnect  Type = 14
)

var typeNames = [...]string{
	TypeConnect:     "CONNECT",
	TypeConnack:     "CONNACK",
	TypePublish:     "PUBLISH",
	TypePuback:      "PUBACK",
	TypePubrec:      "PUBREC",
	TypePubrel:      "PUBREL",
	TypePubcomp:     "PUBCOMP",
	TypeSubscribe:   "SUBSCRIBE",
	TypeSuback:      "SUBACK",
	TypeUnsubscribe: "UNSUBSCRIBE",
	TypeUnsuback:    "UNSUBACK",
	TypePingreq:     "PINGREQ",
	TypePingresp:    "PINGRESP",
	TypeDisconnect:  "DISCONNECT",
}

// String returns the standard's name of the type ("CONNECT"), or "type N"
// for a reserved value.
func (t Type) String() string {
	if int(t) < len(typeNames) && typeNames[t] != "" {
		return typeNames[t]
	}
	return "type " + strconv.Itoa(int(t))
}

// FixedHeader is the first byte of a packet, split into type and flags, and
// the Remaining Length that follows it.
type FixedHeader struct {
	Type      Type
	Flags     byte // bits 3-0 of the first byte
	Remaining int  // length of the body: variable header and payload
}

// Fixed-header flags (§2.2.2, §3.3.1) and field limits.
const (
	flagRetain   = 0x01 // PUBLISH
	flagDup      = 0x08 // PUBLISH
	flags0010    = 0x02 // PUBREL, SUBSCRIBE, UNSUBSCRIBE (MQTT-3.6.1-1, 3.8.1-1, 3.10.1-1)
	maxQoS       = 2
	maxFieldSize = 65535 // a string or binary field has a 2-byte length prefix
)

// CONNACK return codes (§3.2.2.3). 6-255 are reserved.
const (
	ConnAccepted                   byte = 0x00
	ConnRefusedProtocolLevel       byte = 0x01 // the answer to ErrUnsupportedLevel
	ConnRefusedIdentifierRejected  byte = 0x02
	ConnRefusedServerUnavailable   byte = 0x03
	ConnRefusedBadUsernamePassword byte = 0x04
	ConnRefusedNotAuthorized       byte = 0x05
)

// SubackFailure is the SUBACK return code for a refused filter (§3.9.3).
const SubackFailure byte = 0x80

// Protocol names and levels Decode accepts in CONNECT (§3.1.2.1-2).
const (
	ProtocolNameMQTT          = "MQTT"
	ProtocolLevelMQTT311 byte = 4
	ProtocolNameMQIsdp        = "MQIsdp" // MQTT 3.1
	ProtocolLevelMQTT31  byte = 3
)
