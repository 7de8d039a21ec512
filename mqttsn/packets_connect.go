package mqttsn

import "github.com/sngate/sngate/internal/topic"

// Connect opens a session (CONNECT, 0x04). With Will set the gateway asks
// for the will topic and message before it answers CONNACK.
type Connect struct {
	Will         bool
	CleanSession bool
	KeepAlive    uint16 // the Duration field, in seconds
	ClientID     string
}

func (*Connect) Type() MsgType { return TypeConnect }
func (p *Connect) size() int   { return 4 + len(p.ClientID) }
func (p *Connect) appendTo(b []byte) []byte {
	var f byte
	if p.Will {
		f |= flagWill
	}
	if p.CleanSession {
		f |= flagCleanSession
	}
	b = append(b, f, ProtocolID)
	b = append16(b, p.KeepAlive)
	return append(b, p.ClientID...)
}
func (p *Connect) decode(v []byte) error {
	if err := needAtLeast(v, 5); err != nil {
		return err
	}
	switch v[1] {
	case ProtocolID:
	case 0x02:
		return invalidf("protocol id 0x02 is an MQTT-SN 2.0 draft client; only 0x01 (v1.2) is spoken")
	default:
		return invalidf("protocol id 0x%02X, want 0x01", v[1])
	}
	p.Will = v[0]&flagWill != 0
	p.CleanSession = v[0]&flagCleanSession != 0
	p.KeepAlive = be16(v[2:])
	p.ClientID = string(v[4:])
	return nil
}
func (p *Connect) validate() error {
	if p.ClientID == "" {
		return invalidf("empty client id")
	}
	if err := topic.ValidateString(p.ClientID); err != nil {
		return invalidf("client id: %v", err)
	}
	return nil
}

// Connack answers CONNECT (CONNACK, 0x05).
type Connack struct{ ReturnCode ReturnCode }

func (*Connack) Type() MsgType              { return TypeConnack }
func (*Connack) size() int                  { return 1 }
func (p *Connack) appendTo(b []byte) []byte { return append(b, byte(p.ReturnCode)) }
func (*Connack) validate() error            { return nil }
func (p *Connack) decode(v []byte) error {
	if err := needExactly(v, 1); err != nil {
		return err
	}
	p.ReturnCode = ReturnCode(v[0])
	return nil
}

// WillTopicReq asks a connecting client for its will topic (WILLTOPICREQ, 0x06).
type WillTopicReq struct{}

func (*WillTopicReq) Type() MsgType            { return TypeWillTopicReq }
func (*WillTopicReq) size() int                { return 0 }
func (*WillTopicReq) appendTo(b []byte) []byte { return b }
func (*WillTopicReq) validate() error          { return nil }
func (*WillTopicReq) decode(v []byte) error    { return needExactly(v, 0) }

// WillMsgReq asks a connecting client for its will message (WILLMSGREQ, 0x08).
type WillMsgReq struct{}

func (*WillMsgReq) Type() MsgType            { return TypeWillMsgReq }
func (*WillMsgReq) size() int                { return 0 }
func (*WillMsgReq) appendTo(b []byte) []byte { return b }
func (*WillMsgReq) validate() error          { return nil }
func (*WillMsgReq) decode(v []byte) error    { return needExactly(v, 0) }

// WillTopic answers WILLTOPICREQ (WILLTOPIC, 0x07). An empty Topic is the
// 2-byte form and means "no will"; QoS and Retain are then not sent and
// decode as zero.
type WillTopic struct {
	QoS    QoS
	Retain bool
	Topic  string
}

func (*WillTopic) Type() MsgType { return TypeWillTopic }
func (p *WillTopic) size() int {
	if p.Topic == "" {
		return 0
	}
	return 1 + len(p.Topic)
}
func (p *WillTopic) appendTo(b []byte) []byte {
	if p.Topic == "" {
		return b
	}
	f := p.QoS.flagBits()
	if p.Retain {
		f |= flagRetain
	}
	return append(append(b, f), p.Topic...)
}
func (p *WillTopic) decode(v []byte) error {
	*p = WillTopic{}
	if len(v) <= 1 { // the empty form; a lone Flags byte names no topic either
		return nil
	}
	p.QoS = qosFromFlags(v[0])
	p.Retain = v[0]&flagRetain != 0
	p.Topic = string(v[1:])
	return nil
}
func (p *WillTopic) validate() error {
	if p.Topic == "" {
		return nil
	}
	if p.QoS < 0 || p.QoS > 2 {
		return invalidf("will QoS %d, want 0, 1 or 2", p.QoS)
	}
	if err := topic.ValidateName(p.Topic); err != nil {
		return invalidf("will topic %q: %v", p.Topic, err)
	}
	return nil
}

// WillTopicUpd replaces the will topic of a live session (WILLTOPICUPD,
// 0x1A). It has the layout of WILLTOPIC; an empty Topic deletes both the will
// topic and the will message.
type WillTopicUpd WillTopic

func (*WillTopicUpd) Type() MsgType              { return TypeWillTopicUpd }
func (p *WillTopicUpd) size() int                { return (*WillTopic)(p).size() }
func (p *WillTopicUpd) appendTo(b []byte) []byte { return (*WillTopic)(p).appendTo(b) }
func (p *WillTopicUpd) decode(v []byte) error    { return (*WillTopic)(p).decode(v) }
func (p *WillTopicUpd) validate() error          { return (*WillTopic)(p).validate() }

// WillMsg answers WILLMSGREQ (WILLMSG, 0x09).
type WillMsg struct {
	Message []byte // aliases the decoded buffer
}

func (*WillMsg) Type() MsgType              { return TypeWillMsg }
func (p *WillMsg) size() int                { return len(p.Message) }
func (p *WillMsg) appendTo(b []byte) []byte { return append(b, p.Message...) }
func (*WillMsg) validate() error            { return nil }
func (p *WillMsg) decode(v []byte) error    { p.Message = v; return nil }

// WillMsgUpd replaces the will message of a live session (WILLMSGUPD, 0x1C).
type WillMsgUpd struct {
	Message []byte // aliases the decoded buffer
}

func (*WillMsgUpd) Type() MsgType              { return TypeWillMsgUpd }
func (p *WillMsgUpd) size() int                { return len(p.Message) }
func (p *WillMsgUpd) appendTo(b []byte) []byte { return append(b, p.Message...) }
func (*WillMsgUpd) validate() error            { return nil }
func (p *WillMsgUpd) decode(v []byte) error    { p.Message = v; return nil }

// WillTopicResp answers WILLTOPICUPD (WILLTOPICRESP, 0x1B). The v1.1 form
// without a return code is accepted and read as Accepted.
type WillTopicResp struct{ ReturnCode ReturnCode }

func (*WillTopicResp) Type() MsgType              { return TypeWillTopicResp }
func (*WillTopicResp) size() int                  { return 1 }
func (p *WillTopicResp) appendTo(b []byte) []byte { return append(b, byte(p.ReturnCode)) }
func (*WillTopicResp) validate() error            { return nil }
func (p *WillTopicResp) decode(v []byte) error    { return decodeOptionalCode(v, &p.ReturnCode) }

// WillMsgResp answers WILLMSGUPD (WILLMSGRESP, 0x1D). The v1.1 form without
// a return code is accepted and read as Accepted.
type WillMsgResp struct{ ReturnCode ReturnCode }

func (*WillMsgResp) Type() MsgType              { return TypeWillMsgResp }
func (*WillMsgResp) size() int                  { return 1 }
func (p *WillMsgResp) appendTo(b []byte) []byte { return append(b, byte(p.ReturnCode)) }
func (*WillMsgResp) validate() error            { return nil }
func (p *WillMsgResp) decode(v []byte) error    { return decodeOptionalCode(v, &p.ReturnCode) }

func decodeOptionalCode(v []byte, rc *ReturnCode) error {
	switch len(v) {
	case 0:
		*rc = Accepted
	case 1:
		*rc = ReturnCode(v[0])
	default:
		return &sizeError{need: 0, exact: true, or: 1} // 0 bytes: the v1.1 form
	}
	return nil
}
