package xbee

// Transmit options of a TransmitRequest (Zigbee firmware).
const (
	TxDisableRetries  byte = 0x01 // no retries or route repair
	TxAPSEncryption   byte = 0x20 // end-to-end APS encryption (if EE=1)
	TxExtendedTimeout byte = 0x40 // for destinations that are sleeping end devices
)

// Delivery statuses of a TransmitStatus (the common ones; see Digi's manual
// for the rest).
const (
	DeliverySuccess           byte = 0x00
	DeliveryMACACKFailure     byte = 0x01
	DeliveryCCAFailure        byte = 0x02
	DeliveryNetworkACKFailure byte = 0x21 // the destination did not acknowledge
	DeliveryNotJoined         byte = 0x22
	DeliveryAddressNotFound   byte = 0x24
	DeliveryRouteNotFound     byte = 0x25
	DeliveryPayloadTooLarge   byte = 0x74
)

// TransmitRequest (0x10) asks the local radio to send Data (one MQTT-SN
// message) to Dest. FrameID 0 tells the radio not to answer with a
// TransmitStatus; use FrameIDs to number requests.
//
//	0: 0x10 · 1: frame id · 2-9: dest 64-bit · 10-11: dest 16-bit · 12: radius · 13: options · 14..: data
type TransmitRequest struct {
	FrameID byte
	Dest    Address
	Radius  byte // broadcast radius in hops; 0 = the network maximum
	Options byte // Tx* bits
	Data    []byte
}

func (*TransmitRequest) Type() FrameType { return TypeTransmitRequest }
func (f *TransmitRequest) size() int     { return 14 + len(f.Data) }
func (f *TransmitRequest) appendData(b []byte) []byte {
	b = appendAddress(append(b, f.FrameID), f.Dest)
	return append(append(b, f.Radius, f.Options), f.Data...)
}
func (f *TransmitRequest) decode(d []byte) error {
	if err := need(TypeTransmitRequest, d, 13, false); err != nil {
		return err
	}
	f.FrameID, f.Dest = d[0], readAddress(d[1:])
	f.Radius, f.Options, f.Data = d[11], d[12], tail(d[13:])
	return nil
}

// TransmitStatus (0x8B) reports the outcome of the TransmitRequest with the
// same FrameID. Delivery 0 is success; anything else is a failed send.
//
//	0: 0x8B · 1: frame id · 2-3: dest 16-bit · 4: retries · 5: delivery status · 6: discovery status
type TransmitStatus struct {
	FrameID   byte
	Short     uint16 // the 16-bit address the frame went to
	Retries   byte   // transmit retry count
	Delivery  byte   // Delivery* status
	Discovery byte   // discovery status (0 = no discovery overhead)
}

func (*TransmitStatus) Type() FrameType { return TypeTransmitStatus }
func (*TransmitStatus) size() int       { return 7 }
func (f *TransmitStatus) appendData(b []byte) []byte {
	return append(append16(append(b, f.FrameID), f.Short), f.Retries, f.Delivery, f.Discovery)
}
func (f *TransmitStatus) decode(d []byte) error {
	if err := need(TypeTransmitStatus, d, 6, true); err != nil {
		return err
	}
	f.FrameID, f.Short, f.Retries, f.Delivery, f.Discovery = d[0], be16(d[1:]), d[3], d[4], d[5]
	return nil
}
