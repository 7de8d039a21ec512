package mqttsn

import "github.com/sngate/sngate/internal/topic"

// The topic part of SUBSCRIBE and UNSUBSCRIBE: a topic name or filter when
// the TopicIdType is TopicNormal, otherwise a predefined id or a short name
// in the 2-byte id field.

func subTopicSize(t TopicIDType, name string) int {
	if t == TopicNormal {
		return len(name)
	}
	return 2
}

func appendSubTopic(b []byte, t TopicIDType, name string, id uint16) []byte {
	if t == TopicNormal {
		return append(b, name...)
	}
	return append16(b, id)
}

// decodeSubTopic parses the topic part v that follows 3 bytes of Flags and
// MsgId.
func decodeSubTopic(flags byte, v []byte) (t TopicIDType, name string, id uint16, err error) {
	t = TopicIDType(flags & flagTopicIDMask)
	switch t {
	case TopicNormal:
		if len(v) < 1 {
			return t, "", 0, &sizeError{need: 3 + 1}
		}
		return t, string(v), 0, nil
	case TopicPredefined, TopicShort:
		if len(v) != 2 {
			return t, "", 0, &sizeError{need: 3 + 2, exact: true}
		}
		return t, "", be16(v), nil
	}
	return t, "", 0, invalidf("reserved topic id type 0b11")
}

func validateSubTopic(t TopicIDType, name string) error {
	switch t {
	case TopicNormal:
		if err := topic.ValidateFilter(name); err != nil {
			return invalidf("topic filter %q: %v", name, err)
		}
	case TopicPredefined, TopicShort:
	default:
		return invalidf("reserved topic id type 0b11")
	}
	return nil
}

// Subscribe asks for messages on a topic filter, a predefined id or a short
// name (SUBSCRIBE, 0x12). QoS is the highest QoS wanted.
type Subscribe struct {
	DUP         bool
	QoS         QoS
	TopicIDType TopicIDType // TopicNormal: TopicName holds a name or filter
	MsgID       uint16
	TopicName   string // when TopicIDType is TopicNormal
	TopicID     uint16 // when TopicIDType is TopicPredefined or TopicShort
}

func (*Subscribe) Type() MsgType { return TypeSubscribe }
func (p *Subscribe) size() int   { return 3 + subTopicSize(p.TopicIDType, p.TopicName) }
func (p *Subscribe) appendTo(b []byte) []byte {
	f := p.QoS.flagBits() | byte(p.TopicIDType)&flagTopicIDMask
	if p.DUP {
		f |= flagDUP
	}
	return appendSubTopic(append16(append(b, f), p.MsgID), p.TopicIDType, p.TopicName, p.TopicID)
}
func (p *Subscribe) decode(v []byte) error {
	if err := needAtLeast(v, 4); err != nil {
		return err
	}
	p.DUP = v[0]&flagDUP != 0
	p.QoS = qosFromFlags(v[0])
	p.MsgID = be16(v[1:])
	var err error
	p.TopicIDType, p.TopicName, p.TopicID, err = decodeSubTopic(v[0], v[3:])
	return err
}
func (p *Subscribe) validate() error {
	if p.QoS < 0 || p.QoS > 2 {
		return invalidf("requested QoS %d, want 0, 1 or 2", p.QoS)
	}
	return validateSubTopic(p.TopicIDType, p.TopicName)
}

// Suback answers SUBSCRIBE (SUBACK, 0x13). TopicID is the id the gateway will
// publish a plain topic name with, the predefined id, or 0 for a wildcard.
type Suback struct {
	QoS        QoS // granted
	TopicID    uint16
	MsgID      uint16
	ReturnCode ReturnCode
}

func (*Suback) Type() MsgType { return TypeSuback }
func (*Suback) size() int     { return 6 }
func (p *Suback) appendTo(b []byte) []byte {
	b = append16(append16(append(b, p.QoS.flagBits()), p.TopicID), p.MsgID)
	return append(b, byte(p.ReturnCode))
}
func (p *Suback) validate() error {
	if !p.QoS.Valid() {
		return invalidf("granted QoS %d", p.QoS)
	}
	return nil
}
func (p *Suback) decode(v []byte) error {
	if err := needExactly(v, 6); err != nil {
		return err
	}
	p.QoS = qosFromFlags(v[0])
	p.TopicID, p.MsgID, p.ReturnCode = be16(v[1:]), be16(v[3:]), ReturnCode(v[5])
	return nil
}

// Unsubscribe ends a subscription (UNSUBSCRIBE, 0x14). A topic filter is
// compared with the subscribed one character by character.
type Unsubscribe struct {
	TopicIDType TopicIDType // TopicNormal: TopicName holds a name or filter
	MsgID       uint16
	TopicName   string // when TopicIDType is TopicNormal
	TopicID     uint16 // when TopicIDType is TopicPredefined or TopicShort
}

func (*Unsubscribe) Type() MsgType { return TypeUnsubscribe }
func (p *Unsubscribe) size() int   { return 3 + subTopicSize(p.TopicIDType, p.TopicName) }
func (p *Unsubscribe) appendTo(b []byte) []byte {
	f := byte(p.TopicIDType) & flagTopicIDMask
	return appendSubTopic(append16(append(b, f), p.MsgID), p.TopicIDType, p.TopicName, p.TopicID)
}
func (p *Unsubscribe) decode(v []byte) error {
	if err := needAtLeast(v, 4); err != nil {
		return err
	}
	p.MsgID = be16(v[1:])
	var err error
	p.TopicIDType, p.TopicName, p.TopicID, err = decodeSubTopic(v[0], v[3:])
	return err
}
func (p *Unsubscribe) validate() error { return validateSubTopic(p.TopicIDType, p.TopicName) }
