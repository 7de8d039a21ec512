package xbee

import "fmt"

// FrameType is the API identifier, the first byte of a frame's data.
type FrameType byte

// API identifiers of the Zigbee firmware that MQTT-SN over XBee uses.
const (
	TypeATCommand       FrameType = 0x08 // Local AT Command Request
	TypeTransmitRequest FrameType = 0x10 // Transmit Request
	TypeATResponse      FrameType = 0x88 // Local AT Command Response
	TypeModemStatus     FrameType = 0x8A // Modem Status
	TypeTransmitStatus  FrameType = 0x8B // Extended Transmit Status
	TypeReceive         FrameType = 0x90 // Receive Packet (AO=0)
	TypeExplicitReceive FrameType = 0x91 // Explicit Rx Indicator (AO=1)
)

// String returns Digi's name for the frame type and its identifier, e.g.
// "Receive Packet (0x90)".
func (t FrameType) String() string {
	name := "API frame"
	switch t {
	case TypeATCommand:
		name = "AT Command"
	case TypeTransmitRequest:
		name = "Transmit Request"
	case TypeATResponse:
		name = "AT Command Response"
	case TypeModemStatus:
		name = "Modem Status"
	case TypeTransmitStatus:
		name = "Transmit Status"
	case TypeReceive:
		name = "Receive Packet"
	case TypeExplicitReceive:
		name = "Explicit Rx Indicator"
	}
	return fmt.Sprintf("%s (0x%02X)", name, byte(t))
}

// Frame is one API frame. The concrete types are the pointer types of this
// package (*TransmitRequest, *Receive, ..., *Unknown); the interface is sealed
// so that every Frame can be both encoded and decoded.
type Frame interface {
	// Type returns the API identifier the frame is sent with.
	Type() FrameType

	size() int                  // length of the frame data, API identifier included
	appendData(b []byte) []byte // appends the frame data after the API identifier
	decode(d []byte) error      // parses the frame data after the API identifier; slices alias d
}

// newFrame returns an empty frame of a known type, or nil.
func newFrame(t FrameType) Frame {
	switch t {
	case TypeATCommand:
		return new(ATCommand)
	case TypeTransmitRequest:
		return new(TransmitRequest)
	case TypeATResponse:
		return new(ATResponse)
	case TypeModemStatus:
		return new(ModemStatus)
	case TypeTransmitStatus:
		return new(TransmitStatus)
	case TypeReceive:
		return new(Receive)
	case TypeExplicitReceive:
		return new(ExplicitReceive)
	}
	return nil
}

// Unknown is a frame of a type this package does not decode, kept whole so
// that it can be logged or passed on (and encoded again).
type Unknown struct {
	ID   FrameType
	Data []byte // the frame data after the API identifier
}

func (f *Unknown) Type() FrameType            { return f.ID }
func (f *Unknown) size() int                  { return 1 + len(f.Data) }
func (f *Unknown) appendData(b []byte) []byte { return append(b, f.Data...) }
func (f *Unknown) decode(d []byte) error      { f.Data = tail(d); return nil }
