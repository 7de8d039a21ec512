package mqttsn

import "github.com/sngate/sngate/internal/topic"

// Register binds a topic name to a topic id (REGISTER, 0x0A). A client sends
// TopicID 0 and the gateway assigns one in REGACK; a gateway sends the id it
// will use in the PUBLISH that follows.
type Register struct {
	TopicID   uint16
	MsgID     uint16
	TopicName string
}

func (*Register) Type() MsgType { return TypeRegister }
func (p *Register) size() int   { return 4 + len(p.TopicName) }
func (p *Register) appendTo(b []byte) []byte {
	return append(append16(append16(b, p.TopicID), p.MsgID), p.TopicName...)
}
func (p *Register) decode(v []byte) error {
	if err := needAtLeast(v, 5); err != nil {
		return err
	}
	p.TopicID, p.MsgID = be16(v), be16(v[2:])
	p.TopicName = string(v[4:])
	return nil
}
func (p *Register) validate() error {
	if err := topic.ValidateName(p.TopicName); err != nil {
		return invalidf("topic name %q: %v", p.TopicName, err)
	}
	return nil
}

// Regack answers REGISTER (REGACK, 0x0B).
type Regack struct {
	TopicID    uint16
	MsgID      uint16
	ReturnCode ReturnCode
}

func (*Regack) Type() MsgType { return TypeRegack }
func (*Regack) size() int     { return 5 }
func (p *Regack) appendTo(b []byte) []byte {
	return append(append16(append16(b, p.TopicID), p.MsgID), byte(p.ReturnCode))
}
func (*Regack) validate() error { return nil }
func (p *Regack) decode(v []byte) error {
	if err := needExactly(v, 5); err != nil {
		return err
	}
	p.TopicID, p.MsgID, p.ReturnCode = be16(v), be16(v[2:]), ReturnCode(v[4])
	return nil
}
