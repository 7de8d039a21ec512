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

// freeAddr returns a loopback TCP address that nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// portsConfig writes a config whose broker listens on tcpPort and gateway
// on udpPort of the loopback, with data in a temporary directory; extra is
// more YAML.
func portsConfig(t *testing.T, tcpPort, udpPort int, extra string) string {
	t.Helper()
	return writeFile(t, "sngate.yaml", "broker:\n  listeners:\n    - address: 127.0.0.1:"+strconv.Itoa(tcpPort)+
		"\ngateway:\n  listen: 127.0.0.1:"+strconv.Itoa(udpPort)+"\ndata_dir: "+t.TempDir()+"\n"+extra)
}

// needMosquittoClients skips the test without mosquitto_sub and
// mosquitto_pub.
func needMosquittoClients(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"mosquitto_sub", "mosquitto_pub"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (Debian package mosquitto-clients)", tool)
		}
	}
}

// mosquittoSub starts mosquitto_sub on the broker at port for one QoS 1
// message on filter, which it prints as "topic payload" to out.
func mosquittoSub(ctx context.Context, t *testing.T, port int, filter string) (cmd *exec.Cmd, out *bytes.Buffer) {
	t.Helper()
	out = &bytes.Buffer{}
	cmd = exec.CommandContext(ctx, "mosquitto_sub", "-p", strconv.Itoa(port), "-t", filter, "-v", "-C", "1", "-q", "1")
	cmd.Stdout = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, out
}

// mosquittoPub publishes one QoS 1 message with mosquitto_pub to the broker
// at port; flags are more of its flags ("-r").
func mosquittoPub(ctx context.Context, t *testing.T, port int, topic, msg string, flags ...string) {
	t.Helper()
	args := append([]string{"-p", strconv.Itoa(port), "-t", topic, "-q", "1", "-m", msg}, flags...)
	if err := exec.CommandContext(ctx, "mosquitto_pub", args...).Run(); err != nil {
		t.Fatalf("mosquitto_pub: %v", err)
	}
}

// TestEndToEndSensorToMosquittoAndBack runs sngate, then: an MQTT-SN
// publisher (sngate pub) reaches mosquitto_sub on the broker, and
// mosquitto_pub reaches an MQTT-SN subscriber (sngate sub). The messages
// are retained, so neither side has to wait for the other to subscribe.
func TestEndToEndSensorToMosquittoAndBack(t *testing.T) {
	needMosquittoClients(t)
	tcpPort, udpPort := freePorts(t)
	cfg := portsConfig(t, tcpPort, udpPort, "")
	stderr, stop := startRun(t, "run", "-c", cfg)
	waitFor(t, stderr, "sngate started")
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// Sensor → broker.
	msub, out := mosquittoSub(ctx, t, tcpPort, "sensors/#")
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
	mosquittoPub(ctx, t, tcpPort, "cmd/valve", "open", "-r")
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
	cfg := portsConfig(t, tcpPort, udpPort, `
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
	msub, out := mosquittoSub(ctx, t, tcpPort, "cmd/#")
	mosquittoPub(ctx, t, tcpPort, "sensors/t1", "21.5")
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
	needMosquittoClients(t)
	pair := serialtest.NewPair(t)
	tcpPort, udpPort := freePorts(t)
	cfg := portsConfig(t, tcpPort, udpPort, `
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
	msub, out := mosquittoSub(ctx, t, tcpPort, "sensors/#")
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
	mosquittoPub(ctx, t, tcpPort, "cmd/uart", "reset")
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
