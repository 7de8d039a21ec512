package xbee

// AT command response statuses.
const (
	ATStatusOK               byte = 0x00
	ATStatusError            byte = 0x01
	ATStatusInvalidCommand   byte = 0x02
	ATStatusInvalidParameter byte = 0x03
	ATStatusTxFailure        byte = 0x04
)

// Modem statuses (the ones a gateway acts on).
const (
	ModemHardwareReset      byte = 0x00
	ModemWatchdogReset      byte = 0x01
	ModemJoined             byte = 0x02 // joined a network (router, end device)
	ModemDisassociated      byte = 0x03 // left the network
	ModemCoordinatorStarted byte = 0x06
)

// ATCommand (0x08) queries or sets a parameter of the local radio, e.g. "AP"
// (API mode), "SH"/"SL" (its own 64-bit address) or "AI" (join status). An
// empty Param queries.
//
//	0: 0x08 · 1: frame id · 2-3: command (two ASCII characters) · 4..: parameter
type ATCommand struct {
	FrameID byte
	Command [2]byte
	Param   []byte
}

func (*ATCommand) Type() FrameType { return TypeATCommand }
func (f *ATCommand) size() int     { return 4 + len(f.Param) }
func (f *ATCommand) appendData(b []byte) []byte {
	return append(append(b, f.FrameID, f.Command[0], f.Command[1]), f.Param...)
}
func (f *ATCommand) decode(d []byte) error {
	if err := need(TypeATCommand, d, 3, false); err != nil {
		return err
	}
	f.FrameID, f.Command, f.Param = d[0], [2]byte{d[1], d[2]}, tail(d[3:])
	return nil
}

// ATResponse (0x88) answers the ATCommand with the same FrameID.
//
//	0: 0x88 · 1: frame id · 2-3: command · 4: status · 5..: data
type ATResponse struct {
	FrameID byte
	Command [2]byte
	Status  byte // ATStatus*
	Data    []byte
}

func (*ATResponse) Type() FrameType { return TypeATResponse }
func (f *ATResponse) size() int     { return 5 + len(f.Data) }
func (f *ATResponse) appendData(b []byte) []byte {
	return append(append(b, f.FrameID, f.Command[0], f.Command[1], f.Status), f.Data...)
}
func (f *ATResponse) decode(d []byte) error {
	if err := need(TypeATResponse, d, 4, false); err != nil {
		return err
	}
	f.FrameID, f.Command, f.Status, f.Data = d[0], [2]byte{d[1], d[2]}, d[3], tail(d[4:])
	return nil
}

// ModemStatus (0x8A) is sent by the radio unasked: after a reset, when it
// joins or leaves the network. A gateway can log it and re-learn addresses.
//
//	0: 0x8A · 1: status
type ModemStatus struct {
	Status byte // Modem*
}

func (*ModemStatus) Type() FrameType              { return TypeModemStatus }
func (*ModemStatus) size() int                    { return 2 }
func (f *ModemStatus) appendData(b []byte) []byte { return append(b, f.Status) }
func (f *ModemStatus) decode(d []byte) error {
	if err := need(TypeModemStatus, d, 1, true); err != nil {
		return err
	}
	f.Status = d[0]
	return nil
}
