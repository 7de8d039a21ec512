package mqttsn

// Advertise is broadcast by a gateway every Duration seconds (ADVERTISE, 0x00).
type Advertise struct {
	GatewayID uint8
	Duration  uint16 // seconds until the next ADVERTISE
}

func (*Advertise) Type() MsgType              { return TypeAdvertise }
func (*Advertise) size() int                  { return 3 }
func (p *Advertise) appendTo(b []byte) []byte { return append16(append(b, p.GatewayID), p.Duration) }
func (*Advertise) validate() error            { return nil }
func (p *Advertise) decode(v []byte) error {
	if err := needExactly(v, 3); err != nil {
		return err
	}
	p.GatewayID, p.Duration = v[0], be16(v[1:])
	return nil
}

// SearchGW is broadcast by a client looking for a gateway (SEARCHGW, 0x01).
type SearchGW struct {
	Radius uint8 // broadcast radius in hops; 0 = the whole network
}

func (*SearchGW) Type() MsgType              { return TypeSearchGW }
func (*SearchGW) size() int                  { return 1 }
func (p *SearchGW) appendTo(b []byte) []byte { return append(b, p.Radius) }
func (*SearchGW) validate() error            { return nil }
func (p *SearchGW) decode(v []byte) error {
	if err := needExactly(v, 1); err != nil {
		return err
	}
	p.Radius = v[0]
	return nil
}

// GWInfo answers a SEARCHGW (GWINFO, 0x02). A gateway leaves GatewayAddr
// empty; a client answering on a gateway's behalf fills in its address.
type GWInfo struct {
	GatewayID   uint8
	GatewayAddr []byte // network-specific; aliases the decoded buffer
}

func (*GWInfo) Type() MsgType              { return TypeGWInfo }
func (p *GWInfo) size() int                { return 1 + len(p.GatewayAddr) }
func (p *GWInfo) appendTo(b []byte) []byte { return append(append(b, p.GatewayID), p.GatewayAddr...) }
func (*GWInfo) validate() error            { return nil }
func (p *GWInfo) decode(v []byte) error {
	if err := needAtLeast(v, 1); err != nil {
		return err
	}
	p.GatewayID = v[0]
	p.GatewayAddr = nil
	if len(v) > 1 {
		p.GatewayAddr = v[1:]
	}
	return nil
}
