package hw

import (
	"context"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/broker/brokertest"
	"github.com/sngate/sngate/gateway"
	"github.com/sngate/sngate/hw/frame"
	"github.com/sngate/sngate/hw/serial"
	"github.com/sngate/sngate/hw/serial/serialtest"
	"github.com/sngate/sngate/mqttsn"
)

// waitTime bounds every wait of these tests; nothing is timed.
const waitTime = 30 * time.Second

func testLog(t testing.TB) *slog.Logger {
	level := slog.LevelInfo
	if os.Getenv("SNGATE_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// sensorLine is the sensor's end of a serial line: an mqttsn.Transport
// writing and reading the line's framing, on a port that reopens itself.
type sensorLine struct {
	port    *serial.Port
	framing string
	reader  frameReader
	mu      sync.Mutex
	buf     []byte
}

func newSensorLine(t testing.TB, path, framing string) *sensorLine {
	t.Helper()
	port, err := serial.Open(context.Background(), serial.Config{Path: path, Baud: 115200}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	s := &sensorLine{port: port, framing: framing}
	if framing == FramingSLIP {
		s.reader = frame.NewSLIPReader(port)
	} else {
		s.reader = frame.NewRawReader(port, frame.RawOptions{})
	}
	t.Cleanup(func() { port.Close() })
	return s
}

func (s *sensorLine) Read(b []byte) (int, error) {
	for {
		n, err := s.reader.ReadFrame(b)
		if err != nil || n > 0 {
			return n, err
		}
	}
}

func (s *sensorLine) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.framing == FramingSLIP {
		s.buf = frame.AppendSLIP(s.buf[:0], b)
	} else {
		s.buf = frame.AppendRaw(s.buf[:0], b)
	}
	if _, err := s.port.Write(s.buf); err != nil {
		return 0, err
	}
	return len(b), nil
}

// raw writes bytes to the line as they are: garbage, cut frames.
func (s *sensorLine) raw(t testing.TB, b []byte) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.port.Write(b); err != nil {
		t.Fatal(err)
	}
}

func (s *sensorLine) Close() error { return s.port.Close() }

// testGateway runs a broker and a gateway, and opens the gateway's end
// of the tty at path.
func testGateway(t *testing.T, path string) (*broker.Server, *gateway.Gateway, *serial.Port) {
	t.Helper()
	srv, _ := brokertest.NewServer(t, broker.Config{}, broker.Options{})
	gw, err := gateway.New(gateway.Config{RetryInterval: time.Second}, srv, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		gw.Shutdown(ctx)
	})
	port, err := serial.Open(context.Background(), serial.Config{Path: path, Baud: 115200}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	return srv, gw, port
}

// gatewayOnLine runs a broker and a gateway serving the line at path.
func gatewayOnLine(t *testing.T, path, framing string) (*broker.Server, *Line) {
	t.Helper()
	srv, gw, port := testGateway(t, path)
	line, err := NewLine("s1", port, framing)
	if err != nil {
		t.Fatal(err)
	}
	go gw.Serve(line)
	return srv, line
}

// localInbox collects what a local broker client receives.
type localInbox struct {
	mu  sync.Mutex
	got []broker.Delivery
	lc  *broker.LocalClient
}

func subscribeLocal(t *testing.T, srv *broker.Server, filter string) *localInbox {
	t.Helper()
	in := &localInbox{}
	lc, _, err := srv.Connect(broker.LocalConfig{ClientID: "app", CleanSession: true, OnMessage: func(d broker.Delivery) {
		in.mu.Lock()
		in.got = append(in.got, d)
		in.mu.Unlock()
		if d.PacketID != 0 {
			go in.lc.Ack(d.PacketID)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	in.lc = lc
	if _, err := lc.Subscribe(t.Context(), broker.Subscription{Filter: filter, QoS: 1}); err != nil {
		t.Fatal(err)
	}
	return in
}

func (in *localInbox) wait(t *testing.T, n int) []broker.Delivery {
	t.Helper()
	deadline := time.Now().Add(waitTime)
	for {
		in.mu.Lock()
		got := append([]broker.Delivery(nil), in.got...)
		in.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("broker side got %d messages, want %d", len(got), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sensorInbox collects what the MQTT-SN client receives.
type sensorInbox struct {
	mu  sync.Mutex
	got []mqttsn.Message
}

func (in *sensorInbox) add(m mqttsn.Message) {
	in.mu.Lock()
	in.got = append(in.got, m)
	in.mu.Unlock()
}

func (in *sensorInbox) wait(t *testing.T, n int) []mqttsn.Message {
	t.Helper()
	deadline := time.Now().Add(waitTime)
	for {
		in.mu.Lock()
		got := append([]mqttsn.Message(nil), in.got...)
		in.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("sensor got %d messages, want %d", len(got), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLineFlows runs an MQTT-SN sensor over a real tty pair in each
// framing: QoS 0 and 1 both ways, garbage and a cut frame on the line,
// sleep and wake, and the line unplugged and plugged back mid-stream.
func TestLineFlows(t *testing.T) {
	for _, framing := range []string{FramingRaw, FramingSLIP} {
		t.Run(framing, func(t *testing.T) {
			pair := serialtest.NewPair(t)
			srv, line := gatewayOnLine(t, pair.A, framing)
			app := subscribeLocal(t, srv, "sensors/#")
			sensor := newSensorLine(t, pair.B, framing)
			in := &sensorInbox{}
			c := mqttsn.NewClient(sensor, mqttsn.ClientConfig{ClientID: "s1", RetryInterval: 500 * time.Millisecond, MaxRetries: 10, OnMessage: in.add})
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), waitTime)
			defer cancel()
			if err := c.Connect(ctx); err != nil {
				t.Fatal(err)
			}

			// Up, QoS 0 and 1.
			for i, qos := range []mqttsn.QoS{mqttsn.QoS0, mqttsn.QoS1} {
				if err := c.Publish(ctx, mqttsn.TopicName("sensors/t"), []byte{'0' + byte(i)}, qos, false); err != nil {
					t.Fatal(err)
				}
			}
			app.wait(t, 2)

			// Down, QoS 0 and 1.
			if _, err := c.Subscribe(ctx, mqttsn.TopicName("cmd/#"), mqttsn.QoS1); err != nil {
				t.Fatal(err)
			}
			for qos := byte(0); qos <= 1; qos++ {
				if err := app.lc.Publish(ctx, broker.Message{Topic: "cmd/valve", Payload: []byte{'a' + qos}, QoS: qos}); err != nil {
					t.Fatal(err)
				}
			}
			in.wait(t, 2)

			// Garbage, then a cut frame: the next message still gets through.
			before := line.Stats().Frame
			sensor.raw(t, []byte{0x00, 0xFF, 0x13, 0x7E, 0xC0, 0xDB, 0x42})
			sensor.raw(t, []byte{0x0A, 0x0C, 0x02}) // the start of a PUBLISH, never finished
			time.Sleep(2 * frame.DefaultGap)        // the line goes quiet: the cut frame ends here
			if err := c.Publish(ctx, mqttsn.TopicName("sensors/t"), []byte("after garbage"), mqttsn.QoS1, false); err != nil {
				t.Fatal(err)
			}
			if got := app.wait(t, 3)[2]; string(got.Message.Payload) != "after garbage" {
				t.Fatalf("after garbage the broker got %q", got.Message.Payload)
			}
			if after := line.Stats().Frame; after == before {
				t.Errorf("garbage left no trace in the line's counters: %+v", after)
			} else {
				// The reader dropped what it could not frame (raw: after
				// hunting past bad headers, and the cut frame at the gap;
				// SLIP: the frame with a bad escape) and no more.
				if after.BadFrames <= before.BadFrames || after.Dropped <= before.Dropped {
					t.Errorf("garbage not dropped: before %+v, after %+v", before, after)
				}
				if framing == FramingRaw && after.Resyncs <= before.Resyncs {
					t.Errorf("no resync after garbage: before %+v, after %+v", before, after)
				}
			}

			// Sleep: what is published meanwhile waits for the wake.
			if err := c.Sleep(ctx, time.Minute); err != nil {
				t.Fatal(err)
			}
			if err := app.lc.Publish(ctx, broker.Message{Topic: "cmd/valve", Payload: []byte("while asleep"), QoS: 1}); err != nil {
				t.Fatal(err)
			}
			if err := c.Wake(ctx); err != nil {
				t.Fatal(err)
			}
			if got := in.wait(t, 3)[2]; string(got.Payload) != "while asleep" {
				t.Fatalf("on wake the sensor got %q", got.Payload)
			}

			// Unplug and plug the line back: both ends reopen, the session
			// carries on.
			pair.Unplug()
			pair.Replug()
			deadline := time.Now().Add(waitTime)
			for {
				err := c.Publish(ctx, mqttsn.TopicName("sensors/t"), []byte("after replug"), mqttsn.QoS1, false)
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no publish after the replug: %v", err)
				}
				if !c.Connected() {
					if err := c.Connect(ctx); err != nil {
						time.Sleep(100 * time.Millisecond) // the port is reopening
					}
				}
			}
			got := app.wait(t, 4)
			if last := got[len(got)-1]; string(last.Message.Payload) != "after replug" {
				t.Fatalf("after the replug the broker got %q", last.Message.Payload)
			}
			if st := line.Stats().Port; st.Reopens == 0 {
				t.Errorf("the gateway's port was not reopened: %+v", st)
			}
		})
	}
}

// forwarder plays a serial forwarder (as mqtt-sn-tools' serial bridge with
// --fe): several sensors share the line, each message wrapped in a 0xFE
// encapsulation with the sensor's node id.
type forwarder struct {
	line  *sensorLine
	mu    sync.Mutex
	nodes map[string]chan []byte
}

func newForwarder(line *sensorLine) *forwarder {
	f := &forwarder{line: line, nodes: map[string]chan []byte{}}
	go f.demux()
	return f
}

// demux hands each message from the gateway to its node.
func (f *forwarder) demux() {
	buf := make([]byte, mqttsn.MaxMessageLen)
	for {
		n, err := f.line.Read(buf)
		if err != nil {
			return
		}
		p, err := mqttsn.Decode(buf[:n])
		e, ok := p.(*mqttsn.Encapsulated)
		if err != nil || !ok {
			continue
		}
		inner, _ := mqttsn.Marshal(e.Message)
		f.mu.Lock()
		ch := f.nodes[string(e.NodeID)]
		f.mu.Unlock()
		if ch != nil {
			ch <- inner
		}
	}
}

// pipeEnd is a sensor's end of a shared medium, as an mqttsn.Transport:
// what reaches the sensor comes over in, what it sends goes out through
// write. A node behind a forwarder, a remote behind a radio.
type pipeEnd struct {
	in     chan []byte
	write  func([]byte) error
	closed chan struct{}
	once   sync.Once
}

func newPipeEnd(write func([]byte) error) *pipeEnd {
	return &pipeEnd{in: make(chan []byte, 16), write: write, closed: make(chan struct{})}
}

func (p *pipeEnd) Read(b []byte) (int, error) {
	select {
	case m := <-p.in:
		return copy(b, m), nil
	case <-p.closed:
		return 0, net.ErrClosed
	}
}

func (p *pipeEnd) Write(b []byte) (int, error) {
	if err := p.write(b); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (p *pipeEnd) Close() error {
	p.once.Do(func() { close(p.closed) })
	return nil
}

// node is one sensor behind the forwarder: its messages go out wrapped
// in an encapsulation with its node id.
func (f *forwarder) node(id string) *pipeEnd {
	n := newPipeEnd(func(b []byte) error {
		inner, err := mqttsn.Decode(b)
		if err != nil {
			return err
		}
		wrapped, err := mqttsn.Marshal(&mqttsn.Encapsulated{NodeID: []byte(id), Message: inner})
		if err != nil {
			return err
		}
		_, err = f.line.Write(wrapped)
		return err
	})
	f.mu.Lock()
	f.nodes[id] = n.in
	f.mu.Unlock()
	return n
}

// TestLineForwarder: a line carrying forwarder encapsulations is many
// peers, told apart by node id.
func TestLineForwarder(t *testing.T) {
	pair := serialtest.NewPair(t)
	srv, _ := gatewayOnLine(t, pair.A, FramingRaw)
	app := subscribeLocal(t, srv, "sensors/#")
	f := newForwarder(newSensorLine(t, pair.B, FramingRaw))
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	defer cancel()
	inboxes := map[string]*sensorInbox{}
	for _, id := range []string{"n1", "n2", "n3"} {
		inboxes[id] = &sensorInbox{}
		c := mqttsn.NewClient(f.node(id), mqttsn.ClientConfig{ClientID: "sensor-" + id, RetryInterval: 500 * time.Millisecond, OnMessage: inboxes[id].add})
		defer c.Close()
		if err := c.Connect(ctx); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if _, err := c.Subscribe(ctx, mqttsn.TopicName("cmd/"+id), mqttsn.QoS1); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if err := c.Publish(ctx, mqttsn.TopicName("sensors/"+id), []byte(id), mqttsn.QoS1, false); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
	}
	got := app.wait(t, 3)
	for i, id := range []string{"n1", "n2", "n3"} {
		if got[i].Message.Topic != "sensors/"+id {
			t.Errorf("message %d on %q, want sensors/%s", i, got[i].Message.Topic, id)
		}
	}
	if n := srv.Stats().ClientsConnected; n < 4 { // 3 sensors + the app
		t.Errorf("%d clients on the broker, want the 3 sensors as separate sessions", n)
	}
	// Down: each node gets what its own session subscribed to, in an
	// encapsulation with its node id, and nothing of the others'.
	for _, id := range []string{"n3", "n1"} {
		if err := app.lc.Publish(ctx, broker.Message{Topic: "cmd/" + id, Payload: []byte("to " + id), QoS: 1}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"n1", "n3"} {
		if got := inboxes[id].wait(t, 1); len(got) != 1 || string(got[0].Payload) != "to "+id {
			t.Errorf("%s got %d messages, first %q; want only %q", id, len(got), got[0].Payload, "to "+id)
		}
	}
	inboxes["n2"].mu.Lock()
	defer inboxes["n2"].mu.Unlock()
	if len(inboxes["n2"].got) != 0 {
		t.Errorf("n2 got %d messages meant for the others", len(inboxes["n2"].got))
	}
}

// TestLineIsNotRateLimited: a serial line is paced by its baud rate, not
// by the gateway's packets_per_second (100 by default, bursts of 200):
// 500 QoS 0 messages sent back to back all arrive.
func TestLineIsNotRateLimited(t *testing.T) {
	pair := serialtest.NewPair(t)
	srv, _ := gatewayOnLine(t, pair.A, FramingSLIP)
	app := subscribeLocal(t, srv, "sr")
	sensor := newSensorLine(t, pair.B, FramingSLIP)
	c := mqttsn.NewClient(sensor, mqttsn.ClientConfig{ClientID: "fast"})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 500
	for i := range n {
		if err := c.Publish(ctx, mqttsn.Topic{Type: mqttsn.TopicShort, Name: "sr"}, []byte{byte(i)}, mqttsn.QoS0, false); err != nil {
			t.Fatal(err)
		}
	}
	app.wait(t, n)
}
