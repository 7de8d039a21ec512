package mqttsn

// Publish carries an application message (PUBLISH, 0x0C). The topic is a
// registered id, a predefined id or a two-character short name, as
// TopicIDType says; ShortTopicName and ShortTopicID convert short names.
type Publish struct {
	DUP         bool
	QoS         QoS
	Retain      bool
	TopicIDType TopicIDType
	TopicID     uint16
	MsgID       uint16 // 0 for QoS 0 and -1; a non-zero one is accepted and kept
	Data        []byte // aliases the decoded buffer
}

func (*Publish) Type() MsgType { return TypePublish }
func (p *Publish) size() int   { return 5 + len(p.Data) }
func (p *Publish) appendTo(b []byte) []byte {
	f := p.QoS.flagBits() | byte(p.TopicIDType)&flagTopicIDMask
	if p.DUP {
		f |= flagDUP
	}
	if p.Retain {
		f |= flagRetain
	}
	b = append16(append16(append(b, f), p.TopicID), p.MsgID)
	return append(b, p.Data...)
}
func (p *Publish) decode(v []byte) error {
	if len(v) < 5 {
		return &sizeError{need: 5}
	}
	f := v[0]
	p.DUP = f&flagDUP != 0
	p.QoS = qosFromFlags(f)
	p.Retain = f&flagRetain != 0
	p.TopicIDType = TopicIDType(f & flagTopicIDMask)
	p.TopicID = be16(v[1:])
	p.MsgID = be16(v[3:])
	p.Data = v[5:]
	return nil
}
func (p *Publish) validate() error {
	if !p.QoS.Valid() {
		return invalidf("QoS %d", p.QoS)
	}
	if p.TopicIDType > TopicShort {
		return invalidf("reserved topic id type 0b11")
	}
	if p.QoS == QoSMinus1 && p.TopicIDType == TopicNormal {
		return invalidf("QoS -1 needs a predefined topic id or a short topic name, not a normal topic id")
	}
	return nil
}

// Puback acknowledges a QoS 1 PUBLISH, or rejects a PUBLISH at any QoS with a
// non-zero ReturnCode (PUBACK, 0x0D).
type Puback struct {
	TopicID    uint16
	MsgID      uint16
	ReturnCode ReturnCode
}

func (*Puback) Type() MsgType { return TypePuback }
func (*Puback) size() int     { return 5 }
func (p *Puback) appendTo(b []byte) []byte {
	return append(append16(append16(b, p.TopicID), p.MsgID), byte(p.ReturnCode))
}
func (*Puback) validate() error { return nil }
func (p *Puback) decode(v []byte) error {
	if err := needExactly(v, 5); err != nil {
		return err
	}
	p.TopicID, p.MsgID, p.ReturnCode = be16(v), be16(v[2:]), ReturnCode(v[4])
	return nil
}

// Pubrec is the first answer to a QoS 2 PUBLISH (PUBREC, 0x0F).
type Pubrec struct{ MsgID uint16 }

// Pubrel releases a QoS 2 message after PUBREC (PUBREL, 0x10).
type Pubrel struct{ MsgID uint16 }

// Pubcomp completes a QoS 2 exchange (PUBCOMP, 0x0E).
type Pubcomp struct{ MsgID uint16 }

// Unsuback answers UNSUBSCRIBE (UNSUBACK, 0x15); it carries no return code.
type Unsuback struct{ MsgID uint16 }

func (*Pubrec) Type() MsgType   { return TypePubrec }
func (*Pubrel) Type() MsgType   { return TypePubrel }
func (*Pubcomp) Type() MsgType  { return TypePubcomp }
func (*Unsuback) Type() MsgType { return TypeUnsuback }

func (*Pubrec) size() int   { return 2 }
func (*Pubrel) size() int   { return 2 }
func (*Pubcomp) size() int  { return 2 }
func (*Unsuback) size() int { return 2 }

func (p *Pubrec) appendTo(b []byte) []byte   { return append16(b, p.MsgID) }
func (p *Pubrel) appendTo(b []byte) []byte   { return append16(b, p.MsgID) }
func (p *Pubcomp) appendTo(b []byte) []byte  { return append16(b, p.MsgID) }
func (p *Unsuback) appendTo(b []byte) []byte { return append16(b, p.MsgID) }

func (p *Pubrec) decode(v []byte) error   { return decodeMsgID(v, &p.MsgID) }
func (p *Pubrel) decode(v []byte) error   { return decodeMsgID(v, &p.MsgID) }
func (p *Pubcomp) decode(v []byte) error  { return decodeMsgID(v, &p.MsgID) }
func (p *Unsuback) decode(v []byte) error { return decodeMsgID(v, &p.MsgID) }

func (*Pubrec) validate() error   { return nil }
func (*Pubrel) validate() error   { return nil }
func (*Pubcomp) validate() error  { return nil }
func (*Unsuback) validate() error { return nil }

func decodeMsgID(v []byte, id *uint16) error {
	if err := needExactly(v, 2); err != nil {
		return err
	}
	*id = be16(v)
	return nil
}
