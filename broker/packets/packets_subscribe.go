package packets

import "github.com/sngate/sngate/internal/topic"

// Subscription is one topic filter of a SUBSCRIBE with its requested QoS.
type Subscription struct {
	Filter string
	QoS    byte // requested maximum QoS, 0-2
}

// SubscribePacket asks for one or more subscriptions (SUBSCRIBE, §3.8; flags
// 0010). Decode copies all filters into one string allocation.
type SubscribePacket struct {
	PacketID uint16 // not 0
	Filters  []Subscription
}

func (*SubscribePacket) Type() Type { return TypeSubscribe }
func (*SubscribePacket) sealed()    {}

func (p *SubscribePacket) Decode(fh FixedHeader, body []byte) error {
	const t = TypeSubscribe
	if err := checkHeader(fh, body, t, flags0010); err != nil {
		return err
	}
	id, payload, err := readNonZeroID(body, t)
	if err != nil {
		return err
	}
	n, err := scanFilters(t, payload, true)
	if err != nil {
		return err
	}
	subs := make([]Subscription, 0, n)
	eachFilter(string(payload), true, func(f string, qos byte) {
		subs = append(subs, Subscription{Filter: f, QoS: qos})
	})
	*p = SubscribePacket{PacketID: id, Filters: subs}
	return nil
}

// Append appends the SUBSCRIBE; each QoS byte is written as given.
func (p *SubscribePacket) Append(dst []byte) []byte {
	n := 2
	for _, s := range p.Filters {
		n += fieldLen(s.Filter, "topic filter") + 1
	}
	dst = append16(appendHeader(dst, TypeSubscribe, flags0010, n), p.PacketID)
	for _, s := range p.Filters {
		dst = append(appendField(dst, s.Filter), s.QoS)
	}
	return dst
}

// SubackPacket answers SUBSCRIBE (SUBACK, §3.9): one return code per filter,
// 0x00-0x02 for the granted QoS or SubackFailure (0x80).
type SubackPacket struct {
	PacketID    uint16
	ReturnCodes []byte
}

func (*SubackPacket) Type() Type { return TypeSuback }
func (*SubackPacket) sealed()    {}

func (p *SubackPacket) Decode(fh FixedHeader, body []byte) error {
	const t = TypeSuback
	if err := checkHeader(fh, body, t, 0); err != nil {
		return err
	}
	id, codes, err := readID(body, t)
	if err != nil {
		return err
	}
	if len(codes) == 0 {
		return malformed(t, "no return code")
	}
	for _, c := range codes {
		if c > maxQoS && c != SubackFailure {
			return malformedf(t, "return code 0x%02X, only 0x00-0x02 and 0x80 are allowed (MQTT-3.9.3-2)", c)
		}
	}
	*p = SubackPacket{PacketID: id, ReturnCodes: clone(codes)}
	return nil
}

// Append appends the SUBACK; the return codes are written as given.
func (p *SubackPacket) Append(dst []byte) []byte {
	dst = append16(appendHeader(dst, TypeSuback, 0, 2+len(p.ReturnCodes)), p.PacketID)
	return append(dst, p.ReturnCodes...)
}

// UnsubscribePacket removes subscriptions (UNSUBSCRIBE, §3.10; flags 0010).
// Decode copies all filters into one string allocation.
type UnsubscribePacket struct {
	PacketID uint16 // not 0
	Filters  []string
}

func (*UnsubscribePacket) Type() Type { return TypeUnsubscribe }
func (*UnsubscribePacket) sealed()    {}

func (p *UnsubscribePacket) Decode(fh FixedHeader, body []byte) error {
	const t = TypeUnsubscribe
	if err := checkHeader(fh, body, t, flags0010); err != nil {
		return err
	}
	id, payload, err := readNonZeroID(body, t)
	if err != nil {
		return err
	}
	n, err := scanFilters(t, payload, false)
	if err != nil {
		return err
	}
	filters := make([]string, 0, n)
	eachFilter(string(payload), false, func(f string, _ byte) { filters = append(filters, f) })
	*p = UnsubscribePacket{PacketID: id, Filters: filters}
	return nil
}

func (p *UnsubscribePacket) Append(dst []byte) []byte {
	n := 2
	for _, f := range p.Filters {
		n += fieldLen(f, "topic filter")
	}
	dst = append16(appendHeader(dst, TypeUnsubscribe, flags0010, n), p.PacketID)
	for _, f := range p.Filters {
		dst = appendField(dst, f)
	}
	return dst
}

// scanFilters checks the payload of a SUBSCRIBE (each filter followed by a
// requested QoS byte) or an UNSUBSCRIBE (filters alone) and counts its
// filters, so that decoding can then allocate once.
func scanFilters(t Type, payload []byte, withQoS bool) (int, error) {
	n := 0
	for rest := payload; len(rest) > 0; n++ {
		f, r, err := readField(rest, t, "topic filter")
		if err != nil {
			return 0, err
		}
		if err := topic.ValidateFilter(view(f)); err != nil {
			return 0, invalidField(t, "topic filter", err)
		}
		rest = r
		if !withQoS {
			continue
		}
		if len(rest) < 1 {
			return 0, truncated(t, "requested QoS", 1, 0)
		}
		if q := rest[0]; q > maxQoS {
			return 0, malformedf(t, "requested QoS byte 0x%02X: reserved bits must be 0 and QoS at most 2 (MQTT-3-8.3-4)", q)
		}
		rest = rest[1:]
	}
	if n == 0 {
		if withQoS {
			return 0, malformed(t, "no topic filter (MQTT-3.8.3-3)")
		}
		return 0, malformed(t, "no topic filter (MQTT-3.10.3-2)")
	}
	return n, nil
}

// eachFilter walks a payload scanFilters accepted, given as one string so
// that every filter shares its allocation.
func eachFilter(all string, withQoS bool, visit func(filter string, qos byte)) {
	for off := 0; off < len(all); {
		l := int(all[off])<<8 | int(all[off+1])
		off += 2
		var qos byte
		if withQoS {
			qos = all[off+l]
		}
		visit(all[off:off+l], qos)
		off += l
		if withQoS {
			off++
		}
	}
}
