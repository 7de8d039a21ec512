package mqttsn

import "strconv"

// MaxNodeIDLen is the longest Wireless Node Id an encapsulation header can
// carry in its 1-byte Length field.
const MaxNodeIDLen = 252

// Encapsulated is a message relayed by a forwarder (0xFE, specification §5.5).
// Its Length field counts only the encapsulation header; the inner message
// follows with a Length of its own. A gateway keys the client on (forwarder
// address, NodeID) and answers with the same NodeID.
type Encapsulated struct {
	Radius  uint8  // Ctrl bits 1-0: broadcast radius, gateway to forwarder only
	NodeID  []byte // Wireless Node Id, opaque; aliases the decoded buffer
	Message Packet // the inner message; never itself encapsulated
}

func (*Encapsulated) Type() MsgType { return TypeEncapsulated }

func (p *Encapsulated) headerLen() int { return 3 + len(p.NodeID) }

// size, appendTo and decode describe the header's variable part only; the
// codec calls appendWhole and decodeWhole, which add the inner message.
func (p *Encapsulated) size() int { return 1 + len(p.NodeID) }
func (p *Encapsulated) appendTo(b []byte) []byte {
	return append(append(b, p.Radius&0x03), p.NodeID...)
}
func (p *Encapsulated) decode(v []byte) error {
	if err := needAtLeast(v, 1); err != nil {
		return err
	}
	p.Radius = v[0] & 0x03 // bits 7-2 are reserved
	p.NodeID = v[1:]
	return nil
}

func (p *Encapsulated) validate() error {
	if p.Radius > 3 {
		return invalidf("radius %d does not fit 2 bits", p.Radius)
	}
	if len(p.NodeID) > MaxNodeIDLen {
		return invalidf("node id of %d bytes, at most %d fit", len(p.NodeID), MaxNodeIDLen)
	}
	if p.Message == nil {
		return invalidf("no inner message")
	}
	if p.Message.Type() == TypeEncapsulated {
		return invalidf("an encapsulated message may not hold another")
	}
	return nil
}

func (p *Encapsulated) appendWhole(dst []byte) ([]byte, error) {
	b := p.appendTo(append(dst, byte(p.headerLen()), byte(TypeEncapsulated)))
	b, err := Append(b, p.Message)
	if err != nil {
		return dst, err // like every other failed Append: dst without a partial header
	}
	return b, nil
}

// decodeWhole parses an encapsulation header of total bytes (header length
// hdr) and the complete inner message after it.
func (p *Encapsulated) decodeWhole(b []byte, total, hdr int) error {
	if hdr != 2 {
		return &Error{Type: TypeEncapsulated, HasType: true, Kind: ErrLength,
			Detail: "the encapsulation header has a 1-byte length field"}
	}
	if total < 3 {
		return &Error{Type: TypeEncapsulated, HasType: true, Kind: ErrTooShort,
			Detail: "header length " + strconv.Itoa(total) + ", need at least 3"}
	}
	if total >= len(b) {
		return &Error{Type: TypeEncapsulated, HasType: true, Kind: ErrTooShort,
			Detail: strconv.Itoa(len(b)) + " bytes, header alone takes " + strconv.Itoa(total) + " and an inner message must follow"}
	}
	if err := p.decode(b[hdr:total]); err != nil {
		return packetError(TypeEncapsulated, hdr, total-hdr, err)
	}
	inner := b[total:]
	if _, _, t, err := ParseHeader(inner); err == nil && t == TypeEncapsulated {
		return &Error{Type: TypeEncapsulated, HasType: true, Kind: ErrInvalid,
			Detail: "an encapsulated message may not hold another"}
	}
	m, err := Decode(inner)
	if err != nil {
		return err
	}
	p.Message = m
	return nil
}
