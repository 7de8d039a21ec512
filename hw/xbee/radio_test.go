package xbee

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
)

// simRadio is the radio side of a conversation, as a gateway's tests simulate
// it: it decodes the gateway's Transmit Requests and AT Commands and answers
// with Transmit Status and AT Command Response frames, and it delivers the
// sensors' messages as Receive Packets.
type simRadio struct {
	in      *Reader   // from the gateway
	out     io.Writer // to the gateway
	escaped bool
	known   map[uint64]bool // sensors in the network
	sent    []*TransmitRequest
}

func (s *simRadio) write(t *testing.T, f Frame) {
	b, err := Append(nil, f, s.escaped)
	if err != nil {
		t.Error(err)
		return
	}
	if _, err := s.out.Write(b); err != nil {
		t.Error(err)
	}
}

// serve answers the gateway's frames until its side closes.
func (s *simRadio) serve(t *testing.T) {
	for {
		f, err := s.in.ReadFrame()
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrClosedPipe) {
				t.Error(err)
			}
			return
		}
		switch f := f.(type) {
		case *TransmitRequest:
			s.sent = append(s.sent, f)
			st := &TransmitStatus{FrameID: f.FrameID, Short: f.Dest.Short}
			if !f.Dest.IsBroadcast() && !s.known[f.Dest.Long] {
				st.Delivery, st.Retries = DeliveryAddressNotFound, 3
			}
			if f.FrameID != 0 {
				s.write(t, st)
			}
		case *ATCommand:
			resp := &ATResponse{FrameID: f.FrameID, Command: f.Command}
			if f.Command == [2]byte{'A', 'P'} {
				resp.Data = []byte{2}
			} else {
				resp.Status = ATStatusInvalidCommand
			}
			s.write(t, resp)
		default:
			t.Errorf("radio got an unexpected %s", dump(f))
		}
	}
}

// TestSimulatedRadio runs a gateway's side against a simulated radio with
// three sensors: it checks the API mode, hears a CONNECT from each sensor,
// answers each at the address it came from, and tries a sensor that left.
func TestSimulatedRadio(t *testing.T) {
	sensors := []Address{
		{0x0013A20040A1B2C1, 0x1001},
		{0x0013A20040A1B2C2, 0x7D7E}, // a 16-bit address that needs escaping
		{0x0013A2004011137E, 0x1003},
	}
	gwR, radioW := io.Pipe() // radio to gateway
	radioR, gwW := io.Pipe() // gateway to radio
	radio := &simRadio{in: NewReader(radioR, true), out: radioW, escaped: true, known: map[uint64]bool{}}
	for _, s := range sensors {
		radio.known[s.Long] = true
	}
	served := make(chan struct{})
	go func() { defer close(served); radio.serve(t) }()

	gw := NewReader(gwR, true)
	var ids FrameIDs
	send := func(f Frame) {
		t.Helper()
		b, err := Append(nil, f, true)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := gwW.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	read := func() Frame {
		t.Helper()
		f, err := gw.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		return f
	}

	// The gateway checks the radio is in API mode 2.
	id := ids.Next()
	send(&ATCommand{FrameID: id, Command: [2]byte{'A', 'P'}})
	if got, want := read(), (&ATResponse{FrameID: id, Command: [2]byte{'A', 'P'}, Data: []byte{2}}); !reflect.DeepEqual(got, want) {
		t.Fatalf("AP: %s, want %s", dump(got), dump(want))
	}

	// Each sensor sends CONNECT (client id "s<n>"); the radio passes it on.
	go func() {
		for i, s := range sensors {
			connect := []byte{0x08, 0x04, 0x04, 0x01, 0x00, 0x3C, 's', '1' + byte(i)}
			radio.write(t, &Receive{Src: s, Options: RxAcked, Data: connect})
		}
	}()
	var heard []Address
	for i := range sensors {
		rx, ok := read().(*Receive)
		if !ok {
			t.Fatalf("frame %d is not a Receive Packet", i)
		}
		if rx.Src != sensors[i] || !bytes.Equal(rx.Data[6:], []byte{'s', '1' + byte(i)}) {
			t.Fatalf("Receive %d: %s", i, dump(rx))
		}
		heard = append(heard, rx.Src)
	}
	// CONNACK to where each came from; the status has the same frame id.
	for _, src := range heard {
		id := ids.Next()
		send(&TransmitRequest{FrameID: id, Dest: src, Data: []byte{0x03, 0x05, 0x00}})
		if st, ok := read().(*TransmitStatus); !ok || st.FrameID != id || st.Delivery != DeliverySuccess {
			t.Fatalf("status of the CONNACK to %v: %v", src, st)
		}
	}

	// A sensor that left the network: the radio reports the failure.
	id = ids.Next()
	send(&TransmitRequest{FrameID: id, Dest: Address{0x0013A20040FFFFFF, 0xFFFE}, Data: []byte{0x02, 0x17}})
	if st, ok := read().(*TransmitStatus); !ok || st.FrameID != id || st.Delivery != DeliveryAddressNotFound {
		t.Fatalf("status of a send to an unknown sensor: %v", st)
	}

	gwW.Close()
	<-served
	if len(radio.sent) != 4 || radio.sent[1].Dest != sensors[1] {
		t.Fatalf("the radio got %d transmit requests", len(radio.sent))
	}
	if s := gw.Stats(); s.ChecksumErrors != 0 || s.BadFrames != 0 || s.Dropped != 0 {
		t.Fatalf("gateway reader stats %+v", s)
	}
}
