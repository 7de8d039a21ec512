package xbee

// Receive options of Receive and ExplicitReceive frames (bits).
const (
	RxAcked         byte = 0x01 // the packet was acknowledged
	RxBroadcast     byte = 0x02 // the packet was a broadcast
	RxAPSEncrypted  byte = 0x20
	RxFromEndDevice byte = 0x40 // sent by an end device (a sleepy sensor)
)

// Receive (0x90) carries data a remote node sent to this radio, with AO=0
// (the mode the Paho gateway requires). Data is one MQTT-SN message; Src is
// how the gateway tells sensors apart.
//
//	0: 0x90 · 1-8: source 64-bit · 9-10: source 16-bit · 11: options · 12..: data
type Receive struct {
	Src     Address
	Options byte // Rx* bits
	Data    []byte
}

func (*Receive) Type() FrameType { return TypeReceive }
func (f *Receive) size() int     { return 12 + len(f.Data) }
func (f *Receive) appendData(b []byte) []byte {
	return append(append(appendAddress(b, f.Src), f.Options), f.Data...)
}
func (f *Receive) decode(d []byte) error {
	if err := need(TypeReceive, d, 11, false); err != nil {
		return err
	}
	f.Src, f.Options, f.Data = readAddress(d), d[10], tail(d[11:])
	return nil
}

// ExplicitReceive (0x91) is Receive with the Zigbee application addressing
// (endpoints, cluster, profile) the radio reports when AO=1. The gateway
// treats it like a Receive, so either AO setting works.
//
//	0: 0x91 · 1-8: src 64 · 9-10: src 16 · 11: src endpoint · 12: dst endpoint ·
//	13-14: cluster · 15-16: profile · 17: options · 18..: data
type ExplicitReceive struct {
	Src         Address
	SrcEndpoint byte
	DstEndpoint byte
	Cluster     uint16
	Profile     uint16
	Options     byte // Rx* bits
	Data        []byte
}

func (*ExplicitReceive) Type() FrameType { return TypeExplicitReceive }
func (f *ExplicitReceive) size() int     { return 18 + len(f.Data) }
func (f *ExplicitReceive) appendData(b []byte) []byte {
	b = append(appendAddress(b, f.Src), f.SrcEndpoint, f.DstEndpoint)
	b = append16(append16(b, f.Cluster), f.Profile)
	return append(append(b, f.Options), f.Data...)
}
func (f *ExplicitReceive) decode(d []byte) error {
	if err := need(TypeExplicitReceive, d, 17, false); err != nil {
		return err
	}
	f.Src, f.SrcEndpoint, f.DstEndpoint = readAddress(d), d[10], d[11]
	f.Cluster, f.Profile, f.Options, f.Data = be16(d[12:]), be16(d[14:]), d[16], tail(d[17:])
	return nil
}
