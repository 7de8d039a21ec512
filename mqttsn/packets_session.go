package mqttsn

import "github.com/sngate/sngate/internal/topic"

// Pingreq is a keep-alive probe (PINGREQ, 0x16). A sleeping client that wakes
// to collect its buffered messages puts its ClientID in it; otherwise it is
// empty.
type Pingreq struct{ ClientID string }

func (*Pingreq) Type() MsgType              { return TypePingreq }
func (p *Pingreq) size() int                { return len(p.ClientID) }
func (p *Pingreq) appendTo(b []byte) []byte { return append(b, p.ClientID...) }
func (p *Pingreq) decode(v []byte) error    { p.ClientID = string(v); return nil }
func (p *Pingreq) validate() error {
	if err := topic.ValidateString(p.ClientID); err != nil {
		return invalidf("client id: %v", err)
	}
	return nil
}

// Pingresp answers PINGREQ (PINGRESP, 0x17); to a waking client it also says
// "no more buffered messages".
type Pingresp struct{}

func (*Pingresp) Type() MsgType            { return TypePingresp }
func (*Pingresp) size() int                { return 0 }
func (*Pingresp) appendTo(b []byte) []byte { return b }
func (*Pingresp) validate() error          { return nil }
func (*Pingresp) decode(v []byte) error    { return needExactly(v, 0) }

// Disconnect ends a session's connection (DISCONNECT, 0x18). A client that
// sends a Duration goes to sleep for that many seconds instead; a gateway's
// DISCONNECT never carries one.
type Disconnect struct {
	HasDuration bool
	Duration    uint16 // sleep time in seconds, when HasDuration
}

func (*Disconnect) Type() MsgType { return TypeDisconnect }
func (p *Disconnect) size() int {
	if p.HasDuration {
		return 2
	}
	return 0
}
func (p *Disconnect) appendTo(b []byte) []byte {
	if p.HasDuration {
		return append16(b, p.Duration)
	}
	return b
}
func (*Disconnect) validate() error { return nil }
func (p *Disconnect) decode(v []byte) error {
	switch len(v) {
	case 0:
		*p = Disconnect{}
	case 2:
		*p = Disconnect{HasDuration: true, Duration: be16(v)}
	default:
		return &sizeError{need: 0, exact: true, or: 2} // 2 bytes: a sleep duration
	}
	return nil
}
