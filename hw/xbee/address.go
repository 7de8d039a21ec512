package xbee

import "fmt"

// Address is a Zigbee node's address pair: the 64-bit IEEE address, fixed in
// the radio, and the 16-bit network address, assigned when it joins (and
// changed when it rejoins). A gateway identifies a sensor by both, as the Paho
// gateway does, and answers to the pair it last heard from.
type Address struct {
	Long  uint64
	Short uint16
}

// Special address values.
const (
	BroadcastLong   uint64 = 0x000000000000FFFF // 64-bit broadcast address
	CoordinatorLong uint64 = 0x0000000000000000 // 64-bit address that reaches the coordinator
	UnknownShort    uint16 = 0xFFFE             // 16-bit address when unknown, and for broadcasts
)

// Broadcast returns the address of a broadcast transmission (64-bit
// 0x000000000000FFFF, 16-bit 0xFFFE). A function rather than a variable so
// that no package-level state can be changed by accident.
func Broadcast() Address { return Address{Long: BroadcastLong, Short: UnknownShort} }

// IsBroadcast reports whether a is the 64-bit broadcast address.
func (a Address) IsBroadcast() bool { return a.Long == BroadcastLong }

// String formats a as "0013A20040A1B2C3/FFFE".
func (a Address) String() string { return fmt.Sprintf("%016X/%04X", a.Long, a.Short) }

func appendAddress(b []byte, a Address) []byte {
	l := a.Long
	return append(b, byte(l>>56), byte(l>>48), byte(l>>40), byte(l>>32),
		byte(l>>24), byte(l>>16), byte(l>>8), byte(l), byte(a.Short>>8), byte(a.Short))
}

// readAddress reads the 10 address bytes at the start of b (len(b) >= 10).
func readAddress(b []byte) Address {
	var l uint64
	for _, c := range b[:8] {
		l = l<<8 | uint64(c)
	}
	return Address{Long: l, Short: be16(b[8:])}
}

func be16(b []byte) uint16 { return uint16(b[0])<<8 | uint16(b[1]) }

func append16(b []byte, v uint16) []byte { return append(b, byte(v>>8), byte(v)) }

// tail returns b, or nil when it is empty, so that a decoded frame without
// data compares equal to one built with Data: nil.
func tail(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}
