package mqttsn

import "fmt"

// MsgType is the MsgType byte of an MQTT-SN message.
type MsgType uint8

// Message types of MQTT-SN v1.2 (specification table 3). Note that the QoS 2
// acknowledgements are numbered differently from MQTT: PUBCOMP < PUBREC < PUBREL.
const (
	TypeAdvertise     MsgType = 0x00
	TypeSearchGW      MsgType = 0x01
	TypeGWInfo        MsgType = 0x02
	TypeConnect       MsgType = 0x04
	TypeConnack       MsgType = 0x05
	TypeWillTopicReq  MsgType = 0x06
	TypeWillTopic     MsgType = 0x07
	TypeWillMsgReq    MsgType = 0x08
	TypeWillMsg       MsgType = 0x09
	TypeRegister      MsgType = 0x0A
	TypeRegack        MsgType = 0x0B
	TypePublish       MsgType = 0x0C
	TypePuback        MsgType = 0x0D
	TypePubcomp       MsgType = 0x0E
	TypePubrec        MsgType = 0x0F
	TypePubrel        MsgType = 0x10
	TypeSubscribe     MsgType = 0x12
	TypeSuback        MsgType = 0x13
	TypeUnsubscribe   MsgType = 0x14
	TypeUnsuback      MsgType = 0x15
	TypePingreq       MsgType = 0x16
	TypePingresp      MsgType = 0x17
	TypeDisconnect    MsgType = 0x18
	TypeWillTopicUpd  MsgType = 0x1A
	TypeWillTopicResp MsgType = 0x1B
	TypeWillMsgUpd    MsgType = 0x1C
	TypeWillMsgResp   MsgType = 0x1D
	TypeEncapsulated  MsgType = 0xFE
)

var typeNames = [...]string{
	TypeAdvertise:     "ADVERTISE",
	TypeSearchGW:      "SEARCHGW",
	TypeGWInfo:        "GWINFO",
	TypeConnect:       "CONNECT",
	TypeConnack:       "CONNACK",
	TypeWillTopicReq:  "WILLTOPICREQ",
	TypeWillTopic:     "WILLTOPIC",
	TypeWillMsgReq:    "WILLMSGREQ",
	TypeWillMsg:       "WILLMSG",
	TypeRegister:      "REGISTER",
	TypeRegack:        "REGACK",
	TypePublish:       "PUBLISH",
	TypePuback:        "PUBACK",
	TypePubcomp:       "PUBCOMP",
	TypePubrec:        "PUBREC",
	TypePubrel:        "PUBREL",
	TypeSubscribe:     "SUBSCRIBE",
	TypeSuback:        "SUBACK",
	TypeUnsubscribe:   "UNSUBSCRIBE",
	TypeUnsuback:      "UNSUBACK",
	TypePingreq:       "PINGREQ",
	TypePingresp:      "PINGRESP",
	TypeDisconnect:    "DISCONNECT",
	TypeWillTopicUpd:  "WILLTOPICUPD",
	TypeWillTopicResp: "WILLTOPICRESP",
	TypeWillMsgUpd:    "WILLMSGUPD",
	TypeWillMsgResp:   "WILLMSGRESP",
}

// String returns the specification's name of the type, or "type 0xNN" for a
// reserved code.
func (t MsgType) String() string {
	if t == TypeEncapsulated {
		return "ENCAPSULATED"
	}
	if int(t) < len(typeNames) && typeNames[t] != "" {
		return typeNames[t]
	}
	return fmt.Sprintf("type 0x%02X", uint8(t))
}

// QoS is an MQTT-SN quality of service level. MQTT-SN adds QoS -1 ("publish
// without connection") to MQTT's 0, 1 and 2.
type QoS int8

// The QoS levels and their Flags bits (0x60 mask).
const (
	QoSMinus1 QoS = -1
	QoS0      QoS = 0
	QoS1      QoS = 1
	QoS2      QoS = 2
)

// Valid reports whether q is one of -1, 0, 1 or 2.
func (q QoS) Valid() bool { return q >= -1 && q <= 2 }

func (q QoS) flagBits() byte {
	if q == QoSMinus1 {
		return 0x60
	}
	return byte(q) << 5 & 0x60
}

func qosFromFlags(f byte) QoS {
	b := (f & flagQoSMask) >> 5
	if b == 3 {
		return QoSMinus1
	}
	return QoS(b)
}

// TopicIDType says how the 2-byte TopicId field (or, in SUBSCRIBE and
// UNSUBSCRIBE, the topic field) is to be read.
type TopicIDType uint8

// TopicIdType values (Flags bits 1-0). In SUBSCRIBE and UNSUBSCRIBE the value
// 0 means a topic name (or filter) follows instead of an id.
const (
	TopicNormal     TopicIDType = 0 // a registered topic id; in SUBSCRIBE: a topic name
	TopicPredefined TopicIDType = 1 // an id both ends know in advance
	TopicShort      TopicIDType = 2 // two characters of topic name in the id field
	topicReserved   TopicIDType = 3
)

func (t TopicIDType) String() string {
	switch t {
	case TopicNormal:
		return "normal"
	case TopicPredefined:
		return "predefined"
	case TopicShort:
		return "short"
	}
	return "reserved"
}

// ReturnCode is the result carried by CONNACK, REGACK, PUBACK, SUBACK,
// WILLTOPICRESP and WILLMSGRESP.
type ReturnCode uint8

// Return codes of specification table 5. Values above 0x03 are reserved but
// decoded as they are, so that a newer peer's code can be logged.
const (
	Accepted            ReturnCode = 0x00
	RejectedCongestion  ReturnCode = 0x01
	RejectedInvalidID   ReturnCode = 0x02
	RejectedUnsupported ReturnCode = 0x03
)

func (rc ReturnCode) String() string {
	switch rc {
	case Accepted:
		return "accepted"
	case RejectedCongestion:
		return "rejected: congestion"
	case RejectedInvalidID:
		return "rejected: invalid topic ID"
	case RejectedUnsupported:
		return "rejected: not supported"
	}
	return fmt.Sprintf("return code 0x%02X", uint8(rc))
}

// Flags byte masks (specification §5.3.4).
const (
	flagDUP          = 0x80
	flagQoSMask      = 0x60
	flagRetain       = 0x10
	flagWill         = 0x08
	flagCleanSession = 0x04
	flagTopicIDMask  = 0x03
)

// ProtocolID is the only protocol id of MQTT-SN v1.2 (CONNECT byte 3).
const ProtocolID = 0x01

// ShortTopicID packs a two-character short topic name into the TopicId field.
// It reports false unless name is exactly two bytes long.
func ShortTopicID(name string) (uint16, bool) {
	if len(name) != 2 {
		return 0, false
	}
	return uint16(name[0])<<8 | uint16(name[1]), true
}

// ShortTopicName returns the two-character short topic name held in id.
func ShortTopicName(id uint16) string {
	return string([]byte{byte(id >> 8), byte(id)})
}
