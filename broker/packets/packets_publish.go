package packets

import "github.com/sngate/sngate/internal/topic"

// PublishPacket carries an application message (PUBLISH, §3.3). After Decode,
// Topic and Payload alias the body: they are valid only as long as it is
// (for a Reader's body, until the next ReadPacket).
type PublishPacket struct {
	Dup      bool
	QoS      byte // 0, 1 or 2
	Retain   bool
	Topic    []byte // a topic name: no wildcards
	PacketID uint16 // present only when QoS > 0, and then not 0
	Payload  []byte // may be empty
}

func (*PublishPacket) Type() Type { return TypePublish }
func (*PublishPacket) sealed()    {}

// Decode parses a PUBLISH body into p without allocating. Topic and Payload
// alias body.
func (p *PublishPacket) Decode(fh FixedHeader, body []byte) error {
	const t = TypePublish
	if err := checkHeader(fh, body, t, 0); err != nil {
		return err
	}
	qos := fh.Flags >> 1 & 3
	if qos == 3 {
		return protocolf(t, "QoS bits 11 (MQTT-3.3.1-4)")
	}
	dup := fh.Flags&flagDup != 0
	if dup && qos == 0 {
		return protocolf(t, "DUP set on a QoS 0 message (MQTT-3.3.1-2)")
	}
	name, rest, err := readField(body, t, "topic name")
	if err != nil {
		return err
	}
	if err := topic.ValidateName(view(name)); err != nil {
		return invalidField(t, "topic name", err)
	}
	var id uint16
	if qos > 0 {
		if id, rest, err = readNonZeroID(rest, t); err != nil {
			return err
		}
	}
	*p = PublishPacket{Dup: dup, QoS: qos, Retain: fh.Flags&flagRetain != 0,
		Topic: name, PacketID: id, Payload: rest}
	return nil
}

// Append appends p to dst; see AppendPublish.
func (p *PublishPacket) Append(dst []byte) []byte {
	return appendPublish(dst, p.Dup, p.QoS, p.Retain, p.Topic, p.PacketID, p.Payload)
}

// AppendPublish appends a PUBLISH to dst. It allocates only when dst lacks
// capacity, so the broker's fan-out path can write each delivery into a
// reused buffer. The packet identifier is written only for QoS 1 and 2.
// It panics if qos > 2, len(topic) > 65535 or the packet would exceed
// MaxRemainingLength.
func AppendPublish(dst []byte, dup bool, qos byte, retain bool, topic string, packetID uint16, payload []byte) []byte {
	return appendPublish(dst, dup, qos, retain, topic, packetID, payload)
}

func appendPublish[T string | []byte](dst []byte, dup bool, qos byte, retain bool, topic T, packetID uint16, payload []byte) []byte {
	if qos > maxQoS {
		panic("packets: PUBLISH with QoS > 2")
	}
	n := fieldLen(topic, "topic name") + len(payload)
	flags := qos << 1
	if qos > 0 {
		n += 2
	}
	if dup {
		flags |= flagDup
	}
	if retain {
		flags |= flagRetain
	}
	dst = appendField(appendHeader(dst, TypePublish, flags, n), topic)
	if qos > 0 {
		dst = append16(dst, packetID)
	}
	return append(dst, payload...)
}

// PubackPacket acknowledges a QoS 1 PUBLISH (PUBACK, §3.4).
type PubackPacket struct{ PacketID uint16 }

// PubrecPacket is the first answer to a QoS 2 PUBLISH (PUBREC, §3.5).
type PubrecPacket struct{ PacketID uint16 }

// PubrelPacket releases a QoS 2 message (PUBREL, §3.6; flags 0010).
type PubrelPacket struct{ PacketID uint16 }

// PubcompPacket completes a QoS 2 exchange (PUBCOMP, §3.7).
type PubcompPacket struct{ PacketID uint16 }

// UnsubackPacket answers UNSUBSCRIBE (UNSUBACK, §3.11).
type UnsubackPacket struct{ PacketID uint16 }

func (*PubackPacket) Type() Type   { return TypePuback }
func (*PubrecPacket) Type() Type   { return TypePubrec }
func (*PubrelPacket) Type() Type   { return TypePubrel }
func (*PubcompPacket) Type() Type  { return TypePubcomp }
func (*UnsubackPacket) Type() Type { return TypeUnsuback }

func (*PubackPacket) sealed()   {}
func (*PubrecPacket) sealed()   {}
func (*PubrelPacket) sealed()   {}
func (*PubcompPacket) sealed()  {}
func (*UnsubackPacket) sealed() {}

func (p *PubackPacket) Append(dst []byte) []byte   { return AppendAck(dst, TypePuback, p.PacketID) }
func (p *PubrecPacket) Append(dst []byte) []byte   { return AppendAck(dst, TypePubrec, p.PacketID) }
func (p *PubrelPacket) Append(dst []byte) []byte   { return AppendAck(dst, TypePubrel, p.PacketID) }
func (p *PubcompPacket) Append(dst []byte) []byte  { return AppendAck(dst, TypePubcomp, p.PacketID) }
func (p *UnsubackPacket) Append(dst []byte) []byte { return AppendAck(dst, TypeUnsuback, p.PacketID) }

func (p *PubackPacket) Decode(fh FixedHeader, body []byte) error {
	return decodeAck(fh, body, TypePuback, &p.PacketID)
}
func (p *PubrecPacket) Decode(fh FixedHeader, body []byte) error {
	return decodeAck(fh, body, TypePubrec, &p.PacketID)
}
func (p *PubrelPacket) Decode(fh FixedHeader, body []byte) error {
	return decodeAck(fh, body, TypePubrel, &p.PacketID)
}
func (p *PubcompPacket) Decode(fh FixedHeader, body []byte) error {
	return decodeAck(fh, body, TypePubcomp, &p.PacketID)
}
func (p *UnsubackPacket) Decode(fh FixedHeader, body []byte) error {
	return decodeAck(fh, body, TypeUnsuback, &p.PacketID)
}

// decodeAck parses the body of a packet that holds only a packet identifier.
// Identifier 0 is accepted: an acknowledgement echoes whatever it answers,
// and the receiver finds nothing in flight under 0.
func decodeAck(fh FixedHeader, body []byte, t Type, id *uint16) error {
	var flags byte
	if t == TypePubrel {
		flags = flags0010
	}
	if err := checkHeader(fh, body, t, flags); err != nil {
		return err
	}
	v, rest, err := readID(body, t)
	if err != nil {
		return err
	}
	if err := noTrailing(rest, t, "packet identifier"); err != nil {
		return err
	}
	*id = v
	return nil
}

// AppendAck appends a PUBACK, PUBREC, PUBREL (with its flags 0010), PUBCOMP
// or UNSUBACK carrying packetID. It allocates only when dst lacks capacity,
// and panics for any other type.
func AppendAck(dst []byte, t Type, packetID uint16) []byte {
	var first byte
	switch t {
	case TypePuback, TypePubrec, TypePubcomp, TypeUnsuback:
		first = byte(t) << 4
	case TypePubrel:
		first = byte(t)<<4 | flags0010
	default:
		panic("packets: AppendAck of " + t.String())
	}
	return append(dst, first, 2, byte(packetID>>8), byte(packetID))
}
