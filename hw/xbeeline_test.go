package hw

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/hw/serial"
	"github.com/sngate/sngate/hw/serial/serialtest"
	"github.com/sngate/sngate/hw/xbee"
	"github.com/sngate/sngate/mqttsn"
)

// radio simulates the XBee radio at the far end of the gateway's serial
// port: API mode 2 with escaping, answering AT commands (0x08 → 0x88) and
// transmit requests (0x10 → 0x8B), and carrying several remote sensors,
// each with its own 64-bit address.
type radio struct {
	t       testing.TB
	port    *serial.Port
	ap, ao  byte
	silent  bool        // answers nothing (a radio in the wrong mode, or dead)
	mute    atomic.Bool // stops answering, as a radio that hangs
	mu      sync.Mutex
	wbuf    []byte
	sensors map[uint64]sensorAt
	nextID  uint16
	txs     []xbee.TransmitRequest // every transmit request, in order
}

// sensorAt is a sensor behind the radio and its 16-bit address.
type sensorAt struct {
	*pipeEnd
	short uint16
}

func newRadio(t testing.TB, path string, ap, ao byte, silent bool) *radio {
	t.Helper()
	port, err := serial.Open(context.Background(), serial.Config{Path: path, Baud: 115200}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	r := &radio{t: t, port: port, ap: ap, ao: ao, silent: silent, sensors: map[uint64]sensorAt{}, nextID: 0x1000}
	t.Cleanup(func() { port.Close() })
	go r.run()
	return r
}

func (r *radio) send(f xbee.Frame) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, err := xbee.Append(r.wbuf[:0], f, true)
	if err != nil {
		return err
	}
	r.wbuf = b
	_, err = r.port.Write(b)
	return err
}

// raw writes bytes to the gateway as they are.
func (r *radio) raw(b []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.port.Write(b)
}

func (r *radio) run() {
	rd := xbee.NewReader(r.port, true)
	for {
		f, err := rd.ReadFrame()
		if err != nil {
			if err == serial.ErrClosed || strings.Contains(err.Error(), "closed") {
				return
			}
			continue
		}
		if r.silent || r.mute.Load() {
			continue
		}
		switch f := f.(type) {
		case *xbee.ATCommand:
			resp := &xbee.ATResponse{FrameID: f.FrameID, Command: f.Command}
			switch string(f.Command[:]) {
			case "AP":
				resp.Data = []byte{r.ap}
			case "AO":
				resp.Data = []byte{r.ao}
			default:
				resp.Status = 2 // invalid command
			}
			r.send(resp)
		case *xbee.TransmitRequest:
			r.send(&xbee.TransmitStatus{FrameID: f.FrameID, Short: f.Dest.Short})
			r.mu.Lock()
			r.txs = append(r.txs, *f)
			var to []sensorAt
			for long, s := range r.sensors {
				if f.Dest.IsBroadcast() || f.Dest.Long == long {
					to = append(to, s)
				}
			}
			r.mu.Unlock()
			for _, s := range to {
				select {
				case s.in <- f.Data:
				default:
				}
			}
		}
	}
}

// sensor adds a sensor behind the radio: its messages reach the gateway
// in Receive Packets from long and a fresh 16-bit address.
func (r *radio) sensor(long uint64) *pipeEnd {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.nextID++
	src := xbee.Address{Long: long, Short: r.nextID}
	s := newPipeEnd(func(b []byte) error { return r.send(&xbee.Receive{Src: src, Options: 0x01, Data: b}) })
	r.sensors[long] = sensorAt{s, src.Short}
	return s
}

// transmits returns the transmit requests the radio has read so far.
func (r *radio) transmits() []xbee.TransmitRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]xbee.TransmitRequest(nil), r.txs...)
}

// xbeeGateway runs a broker and a gateway serving an XBee on path.
func xbeeGateway(t *testing.T, path string) (*broker.Server, *XBee) {
	t.Helper()
	srv, gw, port := testGateway(t, path)
	x, err := NewXBee(t.Context(), "zb", port, XBeeConfig{APIMode: 2}, XBeeOptions{}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	go gw.Serve(x)
	return srv, x
}

// TestXBeeThreeSensors: three sensors behind one radio are three MQTT-SN
// clients, by 64-bit address; messages go both ways, every transmit is
// confirmed by a 0x8B, and a frame with a bad checksum is counted and
// skipped.
func TestXBeeThreeSensors(t *testing.T) {
	pair := serialtest.NewPair(t)
	rad := newRadio(t, pair.B, 2, 0, false)
	srv, x := xbeeGateway(t, pair.A)
	app := subscribeLocal(t, srv, "sensors/#")
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	defer cancel()

	longs := []uint64{0x0013A20040A1B2C3, 0x0013A20040A1B2C4, 0x0013A2004111137E} // the last needs escaping
	inboxes := make([]*sensorInbox, len(longs))
	for i, long := range longs {
		inboxes[i] = &sensorInbox{}
		c := mqttsn.NewClient(rad.sensor(long), mqttsn.ClientConfig{ClientID: "zb" + string(rune('a'+i)), RetryInterval: 500 * time.Millisecond, OnMessage: inboxes[i].add})
		defer c.Close()
		if err := c.Connect(ctx); err != nil {
			t.Fatalf("sensor %x: %v", long, err)
		}
		if _, err := c.Subscribe(ctx, mqttsn.TopicName("cmd/all"), mqttsn.QoS1); err != nil {
			t.Fatal(err)
		}
		if err := c.Publish(ctx, mqttsn.TopicName("sensors/zb"), []byte{byte(i)}, mqttsn.QoS1, false); err != nil {
			t.Fatal(err)
		}
		if err := c.Publish(ctx, mqttsn.TopicName("sensors/zb"), []byte{byte(i)}, mqttsn.QoS0, false); err != nil {
			t.Fatal(err)
		}
	}
	app.wait(t, 6)
	if err := app.lc.Publish(ctx, broker.Message{Topic: "cmd/all", Payload: []byte("go"), QoS: 1}); err != nil {
		t.Fatal(err)
	}
	for _, in := range inboxes {
		if got := in.wait(t, 1)[0]; string(got.Payload) != "go" {
			t.Fatalf("sensor got %q", got.Payload)
		}
	}
	// QoS 0 both ways.
	if err := app.lc.Publish(ctx, broker.Message{Topic: "cmd/all", Payload: []byte("q0")}); err != nil {
		t.Fatal(err)
	}
	for _, in := range inboxes {
		if got := in.wait(t, 2)[1]; string(got.Payload) != "q0" || got.QoS != mqttsn.QoS0 {
			t.Fatalf("sensor got %q at QoS %d", got.Payload, got.QoS)
		}
	}

	// A frame with a bad checksum: counted, skipped, the next one fine.
	before := x.Stats().Frames.ChecksumErrors
	// (good checksum 0x3B; this one is off by one)
	rad.raw([]byte{0x7E, 0x00, 0x0E, 0x90, 0, 0x12, 0xA2, 0, 0x40, 0xA1, 0xB2, 0xC3, 0x10, 0x01, 0x01, 0x02, 0x16, 0x3C})
	c := mqttsn.NewClient(rad.sensor(0x0013A20040FFFFFF), mqttsn.ClientConfig{ClientID: "late", RetryInterval: 500 * time.Millisecond})
	defer c.Close()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	st := x.Stats()
	if st.Frames.ChecksumErrors != before+1 {
		t.Errorf("checksum errors %d, want %d", st.Frames.ChecksumErrors, before+1)
	}
	if st.Delivered == 0 || st.Delivered+st.Undelivered > st.Sent {
		t.Errorf("transmit status not counted: %+v", st)
	}
	if n := srv.Stats().ClientsConnected; n < 5 {
		t.Errorf("%d clients on the broker, want the 4 radios' sensors and the app", n)
	}
	// Each message went to its sensor at the 16-bit address the sensor
	// was last heard from, in a frame whose status the radio sends.
	for _, tx := range rad.transmits() {
		if tx.FrameID == 0 {
			t.Errorf("transmit request with frame id 0 (no status): %+v", tx)
		}
		rad.mu.Lock()
		s, ok := rad.sensors[tx.Dest.Long]
		rad.mu.Unlock()
		if !ok || tx.Dest.Short != s.short {
			t.Errorf("transmit to %v, want a sensor's 64-bit address and its 16-bit one", tx.Dest)
		}
	}
}

// TestXBeeFrameIDsAndBroadcast: frame ids cycle 1..255 and never hit 0,
// broadcasts go to the broadcast address, and a message for a radio never
// heard from goes to its 64-bit address with the 16-bit one left for the
// radio to find.
func TestXBeeFrameIDsAndBroadcast(t *testing.T) {
	pair := serialtest.NewPair(t)
	rad := newRadio(t, pair.B, 2, 0, false)
	_, x := xbeeGateway(t, pair.A)
	const broadcasts = 300 // more than one cycle of frame ids
	for range broadcasts {
		if err := x.Broadcast([]byte{0x02, 0x17}); err != nil {
			t.Fatal(err)
		}
	}
	const stranger = 0x0013A20040C0FFEE
	if err := x.Send(addrOf(stranger), []byte{0x02, 0x17}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitTime)
	var txs []xbee.TransmitRequest
	for txs = rad.transmits(); len(txs) < broadcasts+1; txs = rad.transmits() {
		if time.Now().After(deadline) {
			t.Fatalf("the radio read %d transmit requests, want %d", len(txs), broadcasts+1)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i, tx := range txs {
		if tx.FrameID == 0 {
			t.Fatalf("transmit %d has frame id 0 (no status)", i)
		}
		if i > 0 && tx.FrameID != txs[i-1].FrameID%255+1 {
			t.Fatalf("transmit %d has frame id %d after %d", i, tx.FrameID, txs[i-1].FrameID)
		}
		want := xbee.Broadcast()
		if i == broadcasts {
			want = xbee.Address{Long: stranger, Short: xbee.UnknownShort}
		}
		if tx.Dest != want {
			t.Fatalf("transmit %d to %v, want %v", i, tx.Dest, want)
		}
	}
	for st := x.Stats(); st.Delivered < broadcasts+1; st = x.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("not every transmit status counted: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := x.Send("xbee:0013a20040", nil); err == nil {
		t.Error("Send to a cut address did not fail")
	}
}

// TestXBeeChecksTheRadio: a radio in another API mode, or one that does
// not answer, stops the start with a clear error.
func TestXBeeChecksTheRadio(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ap     byte
		silent bool
		want   string
	}{
		{"wrong mode", 1, false, "API mode"},
		{"silent", 2, true, "does not answer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pair := serialtest.NewPair(t)
			newRadio(t, pair.B, tc.ap, 0, tc.silent)
			port, err := serial.Open(context.Background(), serial.Config{Path: pair.A, Baud: 115200}, testLog(t))
			if err != nil {
				t.Fatal(err)
			}
			_, err = NewXBee(t.Context(), "zb", port, XBeeConfig{APIMode: 2}, XBeeOptions{}, testLog(t))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewXBee = %v, want an error about %q", err, tc.want)
			}
			t.Log(err)
		})
	}
}

// TestXBeeResetsARadioThatStopsAnswering: the reset line is pulsed at
// start, and again once the radio confirms none of the frames sent to it
// for two watch intervals.
func TestXBeeResetsARadioThatStopsAnswering(t *testing.T) {
	pair := serialtest.NewPair(t)
	rad := newRadio(t, pair.B, 2, 0, false)
	port, err := serial.Open(context.Background(), serial.Config{Path: pair.A, Baud: 115200}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	var pulses atomic.Int32
	released := false
	const interval = 200 * time.Millisecond
	x, err := NewXBee(t.Context(), "zb", port, XBeeConfig{APIMode: 2}, XBeeOptions{
		Reset:         func(context.Context) error { pulses.Add(1); return nil },
		Release:       func() error { released = true; return nil },
		WatchInterval: interval,
	}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	if pulses.Load() != 1 {
		t.Fatalf("%d reset pulses at start, want 1", pulses.Load())
	}
	// Answered traffic for three watch intervals, long enough for the two
	// ticks with frames sent that would reset a radio not answering them:
	// no reset.
	for end := time.Now().Add(3 * interval); time.Now().Before(end); {
		if err := x.Broadcast([]byte{0x02, 0x17}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st := x.Stats(); st.Delivered == 0 {
		t.Fatalf("the radio confirmed none of the broadcasts: %+v", st)
	}
	if pulses.Load() != 1 {
		t.Fatalf("reset while the radio answered: %d pulses", pulses.Load())
	}
	rad.mute.Store(true)
	deadline := time.Now().Add(waitTime)
	for pulses.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no reset of a radio that stopped answering: %+v", x.Stats())
		}
		x.Broadcast([]byte{0x02, 0x17})
		time.Sleep(20 * time.Millisecond)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	if !released {
		t.Error("Close did not release the reset line")
	}
	if st := x.Stats(); st.Resets < 2 {
		t.Errorf("resets counted %d, want at least 2", st.Resets)
	}
}
