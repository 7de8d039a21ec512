package main

import (
	"bytes"
	"context"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sngate/sngate/hw/frame"
	hwserial "github.com/sngate/sngate/hw/serial"
	"github.com/sngate/sngate/hw/serial/serialtest"
	"github.com/sngate/sngate/internal/mosquittotest"
	"github.com/sngate/sngate/mqttsn"
)

// freePorts returns a free loopback TCP port and a free UDP port.
func freePorts(t *testing.T) (tcp, udp int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return ln.Addr().(*net.TCPAddr).Port, pc.LocalAddr().(*net.UDPAddr).Port
}

// TestEndToEndSensorToMosquittoAndBack runs sngate, then: an MQTT-SN
// publisher (sngate pub) reaches mosquitto_sub on the broker, and
// mosquitto_pub reaches an MQTT-SN subscriber (sngate sub). The messages
// are retained, so neither side has to wait for the other to subscribe.
func TestEndToEndSensorToMosquittoAndBack(t *testing.T) {
	for _, tool := range []string{"mosquitto_sub", "mosquitto_pub"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (Debian package mosquitto-clients)", tool)
		}
	}
	tcpPort, udpPort := freePorts(t)
	cfg := writeFile(t, "sngate.yaml", "broker:\n  listeners:\n    - address: 127.0.0.1:"+strconv.Itoa(tcpPort)+
		"\ngateway:\n  listen: 127.0.0.1:"+strconv.Itoa(udpPort)+"\ndata_dir: "+t.TempDir()+"\n")
	stderr, stop := startRun(t, "run", "-c", cfg)
	waitFor(t, stderr, "sngate started")
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// Sensor → broker.
	msub := exec.CommandContext(ctx, "mosquitto_sub", "-p", strconv.Itoa(tcpPort), "-t", "sensors/#", "-v", "-C", "1", "-q", "1")
	var out bytes.Buffer
	msub.Stdout = &out
	if err := msub.Start(); err != nil {
		t.Fatal(err)
	}
	gw := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(udpPort), "--retry", "500ms"}
	if code, _, errOut := sngate(t, append(append([]string{"pub"}, gw...), "-t", "sensors/t1", "-q", "1", "-r", "-m", "21.5")...); code != 0 {
		t.Fatalf("sngate pub: exit %d: %s", code, errOut)
	}
	if err := msub.Wait(); err != nil {
		t.Fatalf("mosquitto_sub: %v", err)
	}
	if got := strings.TrimSpace(out.String()); got != "sensors/t1 21.5" {
		t.Fatalf("mosquitto_sub got %q", got)
	}

	// Broker → sensor.
	sub := startTool(t, "", append(append([]string{"sub"}, gw...), "-t", "cmd/#", "-q", "1", "-v", "-C", "1")...)
	if err := exec.CommandContext(ctx, "mosquitto_pub", "-p", strconv.Itoa(tcpPort), "-t", "cmd/valve", "-q", "1", "-r", "-m", "open").Run(); err != nil {
		t.Fatal(err)
	}
	if code := sub.wait(t); code != 0 {
		t.Fatalf("sngate sub: exit %d: %s", code, sub.err.String())
	}
	if got := sub.out.String(); got != "cmd/valve open\n" {
		t.Fatalf("sngate sub printed %q", got)
	}
}

// TestEndToEndBridge: `sngate run` with a bridge section relays a local
// MQTT publish and an MQTT-SN sensor's to an upstream mosquitto, and a
// message from it back.
func TestEndToEndBridge(t *testing.T) {
	up := mosquittotest.Start(t, mosquittotest.Config{})
	got := up.Collect(t, "gw1/#", 1, "checker")
	tcpPort, udpPort := freePorts(t)
	cfg := writeFile(t, "sngate.yaml", "broker:\n  listeners:\n    - address: 127.0.0.1:"+strconv.Itoa(tcpPort)+
		"\ngateway:\n  listen: 127.0.0.1:"+strconv.Itoa(udpPort)+"\ndata_dir: "+t.TempDir()+`
bridge:
  connections:
    - name: cloud
      url: `+up.URL()+`
      rules:
        - {direction: out, topic: sensors/#, qos: 1, remote_prefix: gw1/}
        - {direction: in, topic: cmd/#, qos: 1, remote_prefix: gw1/}
`)
	stderr, stop := startRun(t, "run", "-c", cfg)
	defer stop()
	waitFor(t, stderr, "upstream connected")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	msub := exec.CommandContext(ctx, "mosquitto_sub", "-p", strconv.Itoa(tcpPort), "-t", "cmd/#", "-v", "-C", "1", "-q", "1")
	var out bytes.Buffer
	msub.Stdout = &out
	if err := msub.Start(); err != nil {
		t.Fatal(err)
	}
	if err := exec.CommandContext(ctx, "mosquitto_pub", "-p", strconv.Itoa(tcpPort), "-t", "sensors/t1", "-q", "1", "-m", "21.5").Run(); err != nil {
		t.Fatal(err)
	}
	if ms := got.WaitCount(t, 1, 20*time.Second); ms[0].Topic != "gw1/sensors/t1" || ms[0].Payload != "21.5" {
		t.Fatalf("upstream got %+v", ms[0])
	}
	// An MQTT-SN sensor's reading goes the same way.
	gw := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(udpPort), "--retry", "500ms"}
	if code, _, errOut := sngate(t, append(append([]string{"pub"}, gw...), "-t", "sensors/t2", "-q", "1", "-m", "19.0")...); code != 0 {
		t.Fatalf("sngate pub: exit %d: %s", code, errOut)
	}
	if ms := got.WaitCount(t, 2, 20*time.Second); ms[1].Topic != "gw1/sensors/t2" || ms[1].Payload != "19.0" {
		t.Fatalf("upstream got %+v from the MQTT-SN sensor", ms[1])
	}
	// mosquitto_sub has subscribed by now or soon: publish until it has
	// the message (bounded by ctx).
	exited := make(chan error, 1)
	go func() { exited <- msub.Wait() }()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for waiting := true; waiting; {
		up.Publish(t, "gw1/cmd/valve", "open", 1, false)
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("mosquitto_sub: %v", err)
			}
			waiting = false
		case <-tick.C:
		}
	}
	if got := strings.TrimSpace(out.String()); got != "cmd/valve open" {
		t.Fatalf("local mosquitto_sub got %q", got)
	}
}

// TestEndToEndSerial: `sngate run` with a serial port in SLIP framing; a
// sensor on the other end of a real tty pair reaches mosquitto_sub on the
// broker, and mosquitto_pub reaches the sensor.
func TestEndToEndSerial(t *testing.T) {
	for _, tool := range []string{"mosquitto_sub", "mosquitto_pub"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (Debian package mosquitto-clients)", tool)
		}
	}
	pair := serialtest.NewPair(t)
	tcpPort, udpPort := freePorts(t)
	cfg := writeFile(t, "sngate.yaml", "broker:\n  listeners:\n    - address: 127.0.0.1:"+strconv.Itoa(tcpPort)+
		"\ngateway:\n  listen: 127.0.0.1:"+strconv.Itoa(udpPort)+"\ndata_dir: "+t.TempDir()+`
serial:
  - {name: uart0, path: `+pair.A+`, baud: 115200, framing: slip}
`)
	stderr, stop := startRun(t, "run", "-c", cfg)
	defer stop()
	waitFor(t, stderr, "sngate started")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	port, err := hwserial.Open(ctx, hwserial.Config{Path: pair.B, Baud: 115200}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	sensor := &slipTransport{port: port, r: frame.NewSLIPReader(port)}
	in := make(chan mqttsn.Message, 4)
	c := mqttsn.NewClient(sensor, mqttsn.ClientConfig{ClientID: "uart-sensor", RetryInterval: 500 * time.Millisecond,
		OnMessage: func(m mqttsn.Message) { in <- m }})
	defer c.Close()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	msub := exec.CommandContext(ctx, "mosquitto_sub", "-p", strconv.Itoa(tcpPort), "-t", "sensors/#", "-v", "-C", "1", "-q", "1")
	var out bytes.Buffer
	msub.Stdout = &out
	if err := msub.Start(); err != nil {
		t.Fatal(err)
	}
	// Retained, so that mosquitto_sub gets it whenever it subscribes.
	if err := c.Publish(ctx, mqttsn.TopicName("sensors/uart"), []byte("7.5"), mqttsn.QoS1, true); err != nil {
		t.Fatal(err)
	}
	if err := msub.Wait(); err != nil {
		t.Fatalf("mosquitto_sub: %v", err)
	}
	if got := strings.TrimSpace(out.String()); got != "sensors/uart 7.5" {
		t.Fatalf("mosquitto_sub got %q", got)
	}
	if _, err := c.Subscribe(ctx, mqttsn.TopicName("cmd/uart"), mqttsn.QoS1); err != nil {
		t.Fatal(err)
	}
	if err := exec.CommandContext(ctx, "mosquitto_pub", "-p", strconv.Itoa(tcpPort), "-t", "cmd/uart", "-q", "1", "-m", "reset").Run(); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-in:
		if string(m.Payload) != "reset" {
			t.Fatalf("sensor got %q", m.Payload)
		}
	case <-ctx.Done():
		t.Fatal("the sensor got nothing from mosquitto_pub")
	}
}

// slipTransport is a sensor's SLIP-framed serial port as an
// mqttsn.Transport.
type slipTransport struct {
	port *hwserial.Port
	r    *frame.SLIPReader
}

func (s *slipTransport) Read(b []byte) (int, error) {
	for {
		n, err := s.r.ReadFrame(b)
		if err != nil || n > 0 {
			return n, err
		}
	}
}

func (s *slipTransport) Write(b []byte) (int, error) {
	if _, err := s.port.Write(frame.AppendSLIP(nil, b)); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (s *slipTransport) Close() error { return s.port.Close() }
