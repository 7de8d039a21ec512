package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sngate/sngate/mqttsn"
	"github.com/sngate/sngate/mqttsn/mqttsntest"
)

// tool runs one sngate command in the background.
type tool struct {
	out, err syncBuffer
	code     chan int
}

func startTool(t *testing.T, stdin string, args ...string) *tool {
	t.Helper()
	tl := &tool{code: make(chan int, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { tl.code <- run(ctx, args, strings.NewReader(stdin), &tl.out, &tl.err) }()
	return tl
}

func (tl *tool) wait(t *testing.T) int {
	t.Helper()
	select {
	case code := <-tl.code:
		return code
	case <-time.After(3 * mqttsntest.DefaultTimeout):
		t.Fatalf("command did not exit; stderr: %s", tl.err.String())
		return -1
	}
}

// gwArgs points a tool at gw, with a short Tretry so that lost-packet paths
// finish quickly.
func gwArgs(gw *mqttsntest.Gateway, args ...string) []string {
	host, port, _ := net.SplitHostPort(gw.Addr())
	return append([]string{"-h", host, "-p", port, "-i", "tool", "--retry", "200ms"}, args...)
}

func TestPubQoS1ByName(t *testing.T) {
	gw := mqttsntest.NewGateway(t)
	tl := startTool(t, "", append([]string{"pub"}, gwArgs(gw, "-t", "a/b", "-q", "1", "-r", "-m", "hello")...)...)

	conn := gw.AcceptConnect()
	if conn.ClientID != "tool" || !conn.CleanSession || conn.KeepAlive != 60 {
		t.Errorf("CONNECT = %+v", conn)
	}
	reg := mqttsntest.Expect[*mqttsn.Register](gw)
	gw.Reply(&mqttsn.Regack{TopicID: 1, MsgID: reg.MsgID})
	pub := mqttsntest.Expect[*mqttsn.Publish](gw)
	if string(pub.Data) != "hello" || pub.QoS != 1 || !pub.Retain || pub.TopicID != 1 {
		t.Errorf("PUBLISH = %+v", pub)
	}
	gw.Reply(&mqttsn.Puback{TopicID: 1, MsgID: pub.MsgID})
	mqttsntest.Expect[*mqttsn.Disconnect](gw)
	gw.Reply(&mqttsn.Disconnect{})
	if code := tl.wait(t); code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, tl.err.String())
	}
}

func TestPubQoSMinus1ShortTopicDoesNotConnect(t *testing.T) {
	gw := mqttsntest.NewGateway(t)
	tl := startTool(t, "", append([]string{"pub"}, gwArgs(gw, "--short", "ab", "-q", "-1", "-m", "1")...)...)
	d, err := gw.Next(mqttsntest.DefaultTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{0x08, 0x0C, 0x62, 0x61, 0x62, 0x00, 0x00, 0x31}; !bytes.Equal(d.Raw, want) {
		t.Errorf("wire % X, want % X", d.Raw, want)
	}
	if code := tl.wait(t); code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, tl.err.String())
	}
	gw.ExpectNothing(200 * time.Millisecond)
}

func TestPubLinesFromStdin(t *testing.T) {
	gw := mqttsntest.NewGateway(t)
	tl := startTool(t, "one\ntwo\r\nthree", append([]string{"pub"}, gwArgs(gw, "--predefined", "7", "-l")...)...)
	gw.AcceptConnect()
	for _, want := range []string{"one", "two", "three"} {
		pub := mqttsntest.Expect[*mqttsn.Publish](gw)
		if string(pub.Data) != want || pub.TopicIDType != mqttsn.TopicPredefined || pub.TopicID != 7 || pub.QoS != 0 {
			t.Errorf("PUBLISH = %+v, want data %q", pub, want)
		}
	}
	mqttsntest.Expect[*mqttsn.Disconnect](gw)
	gw.Reply(&mqttsn.Disconnect{})
	if code := tl.wait(t); code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, tl.err.String())
	}
}

func TestPubMessageFromFileAndWholeStdin(t *testing.T) {
	path := filepath.Join(t.TempDir(), "msg.bin")
	if err := os.WriteFile(path, []byte{0, 1, 2, 0xFF}, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		want  []byte
	}{
		{"file", "", []string{"-f", path}, []byte{0, 1, 2, 0xFF}},
		{"stdin", "a\nb\n", []string{"-s"}, []byte("a\nb\n")},
		{"null", "", []string{"-n"}, []byte{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gw := mqttsntest.NewGateway(t)
			tl := startTool(t, tc.stdin, append([]string{"pub"}, gwArgs(gw, append([]string{"--short", "zz"}, tc.args...)...)...)...)
			gw.AcceptConnect()
			if pub := mqttsntest.Expect[*mqttsn.Publish](gw); !bytes.Equal(pub.Data, tc.want) {
				t.Errorf("data % X, want % X", pub.Data, tc.want)
			}
			mqttsntest.Expect[*mqttsn.Disconnect](gw)
			gw.Reply(&mqttsn.Disconnect{})
			if code := tl.wait(t); code != 0 {
				t.Fatalf("exit %d; stderr: %s", code, tl.err.String())
			}
		})
	}
}

func TestPubWithWill(t *testing.T) {
	gw := mqttsntest.NewGateway(t)
	tl := startTool(t, "", append([]string{"pub"}, gwArgs(gw, "-t", "x", "-m", "1", "-q", "0",
		"--will-topic", "dead/tool", "--will-payload", "bye", "--will-qos", "1", "--will-retain")...)...)
	if c := mqttsntest.Expect[*mqttsn.Connect](gw); !c.Will {
		t.Fatal("CONNECT without will flag")
	}
	gw.Reply(&mqttsn.WillTopicReq{})
	if w := mqttsntest.Expect[*mqttsn.WillTopic](gw); w.Topic != "dead/tool" || w.QoS != 1 || !w.Retain {
		t.Errorf("WILLTOPIC = %+v", w)
	}
	gw.Reply(&mqttsn.WillMsgReq{})
	if w := mqttsntest.Expect[*mqttsn.WillMsg](gw); string(w.Message) != "bye" {
		t.Errorf("WILLMSG = %+v", w)
	}
	gw.Reply(&mqttsn.Connack{})
	reg := mqttsntest.Expect[*mqttsn.Register](gw)
	gw.Reply(&mqttsn.Regack{TopicID: 2, MsgID: reg.MsgID})
	mqttsntest.Expect[*mqttsn.Publish](gw)
	mqttsntest.Expect[*mqttsn.Disconnect](gw)
	gw.Reply(&mqttsn.Disconnect{})
	if code := tl.wait(t); code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, tl.err.String())
	}
}

func TestPubNoGatewayExits1WithOneLine(t *testing.T) {
	// A port nobody listens on: take a free one and close it.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(pc.LocalAddr().(*net.UDPAddr).Port)
	pc.Close()
	tl := startTool(t, "", "pub", "-h", "127.0.0.1", "-p", port, "--retry", "100ms", "--retries", "1", "-t", "a", "-m", "x")
	if code := tl.wait(t); code != 1 {
		t.Fatalf("exit %d, want 1; stderr: %s", code, tl.err.String())
	}
	msg := tl.err.String()
	if strings.Count(msg, "\n") != 1 || !strings.HasPrefix(msg, "sngate pub: connect to 127.0.0.1:"+port) || !strings.Contains(msg, "no answer") {
		t.Errorf("stderr = %q, want one line naming the gateway and the failure", msg)
	}
}

func TestClientToolsUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"pub", "-m", "x"}, "give a topic"},
		{[]string{"pub", "-t", "a"}, "exactly one message source"},
		{[]string{"pub", "-t", "a", "-m", "x", "-n"}, "exactly one message source"},
		{[]string{"pub", "-t", "a", "--short", "ab", "-m", "x"}, "only one of"},
		{[]string{"pub", "--short", "abc", "-m", "x"}, "exactly two characters"},
		{[]string{"pub", "--predefined", "0", "-m", "x"}, "not a topic id"},
		{[]string{"pub", "--predefined", "65535", "-m", "x"}, "not a topic id"},
		{[]string{"pub", "--predefined", "x1", "-m", "x"}, "not a topic id"},
		{[]string{"pub", "-t", "a", "-m", "x", "-q", "3"}, "--qos 3"},
		{[]string{"pub", "-t", "a", "-m", "x", "-q", "-1"}, "QoS -1 needs"},
		{[]string{"pub", "-t", "a", "-m", "x", "-p", "70000"}, "--port 70000"},
		{[]string{"pub", "-t", "a", "-m", "x", "--will-qos", "1"}, "need --will-topic"},
		{[]string{"pub", "--bogus"}, "flag provided but not defined"},
		{[]string{"pub", "-t", "a", "-m", "x", "extra"}, "unexpected argument"},
		{[]string{"sub"}, "give a topic"},
		{[]string{"sub", "-t", "a", "-q", "-1"}, "--qos -1"},
		{[]string{"sub", "-t", "a", "--sleep", "500ms"}, "1 s resolution"},
		{[]string{"sub", "-t", "a", "-C", "-2"}, "--count -2"},
		{[]string{"discover", "--radius", "300"}, "--radius 300"},
		{[]string{"discover", "--timeout", "0s"}, "--timeout 0s"},
	}
	for _, tt := range tests {
		var out, errb bytes.Buffer
		code := run(context.Background(), tt.args, strings.NewReader(""), &out, &errb)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2", tt.args, code)
		}
		if !strings.Contains(errb.String(), tt.want) || !strings.Contains(errb.String(), "Usage: sngate "+tt.args[0]) {
			t.Errorf("%v: stderr %q, want %q and the usage", tt.args, errb.String(), tt.want)
		}
	}
}

func TestClientToolsHelp(t *testing.T) {
	for _, cmd := range []string{"pub", "sub", "discover"} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), []string{cmd, "--help"}, strings.NewReader(""), &out, &errb); code != 0 {
			t.Errorf("%s --help: exit %d", cmd, code)
		}
		if !strings.Contains(out.String(), "Usage: sngate "+cmd) {
			t.Errorf("%s --help printed %q", cmd, out.String())
		}
	}
}

func TestSubVerboseCount(t *testing.T) {
	gw := mqttsntest.NewGateway(t)
	tl := startTool(t, "", append([]string{"sub"}, gwArgs(gw, "-t", "s/#", "-q", "1", "-v", "-C", "2")...)...)
	gw.AcceptConnect()
	sub := mqttsntest.Expect[*mqttsn.Subscribe](gw)
	if sub.TopicName != "s/#" || sub.QoS != 1 {
		t.Fatalf("SUBSCRIBE = %+v", sub)
	}
	gw.Reply(&mqttsn.Suback{QoS: 1, MsgID: sub.MsgID})
	gw.Reply(&mqttsn.Register{TopicID: 5, MsgID: 1, TopicName: "s/t1"})
	mqttsntest.Expect[*mqttsn.Regack](gw)
	gw.Reply(&mqttsn.Publish{QoS: 1, TopicID: 5, MsgID: 2, Data: []byte("20.5")})
	mqttsntest.Expect[*mqttsn.Puback](gw)
	gw.Reply(&mqttsn.Publish{TopicIDType: mqttsn.TopicPredefined, TopicID: 9, Data: []byte("x")})
	gw.Reply(&mqttsn.Publish{TopicID: 5, Data: []byte("beyond the count")})
	for {
		d := gw.Receive()
		if _, ok := d.(*mqttsn.Disconnect); ok {
			break
		}
	}
	gw.Reply(&mqttsn.Disconnect{})
	if code := tl.wait(t); code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, tl.err.String())
	}
	if got, want := tl.out.String(), "s/t1 20.5\npredefined:9 x\n"; got != want {
		t.Errorf("output %q, want %q", got, want)
	}
}

func TestSubGatewayGoneExits1(t *testing.T) {
	gw := mqttsntest.NewGateway(t)
	tl := startTool(t, "", append([]string{"sub"}, gwArgs(gw, "-t", "a")...)...)
	gw.AcceptConnect()
	sub := mqttsntest.Expect[*mqttsn.Subscribe](gw)
	gw.Reply(&mqttsn.Suback{MsgID: sub.MsgID})
	gw.Reply(&mqttsn.Disconnect{}) // the gateway drops the client
	if code := tl.wait(t); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if got := tl.err.String(); strings.Count(got, "\n") != 1 || !strings.Contains(got, "sngate sub: ") || !strings.Contains(got, "connection to the gateway lost") {
		t.Errorf("stderr %q, want one line saying the connection was lost", got)
	}
}

func TestSubSleepsAndWakes(t *testing.T) {
	gw := mqttsntest.NewGateway(t)
	tl := startTool(t, "", append([]string{"sub"}, gwArgs(gw, "--short", "tt", "--sleep", "1s", "-C", "1")...)...)
	gw.AcceptConnect()
	sub := mqttsntest.Expect[*mqttsn.Subscribe](gw)
	gw.Reply(&mqttsn.Suback{MsgID: sub.MsgID})
	d := mqttsntest.Expect[*mqttsn.Disconnect](gw)
	if !d.HasDuration || d.Duration != 1 {
		t.Fatalf("DISCONNECT = %+v, want sleep 1 s", d)
	}
	gw.Reply(&mqttsn.Disconnect{})
	ping := mqttsntest.Expect[*mqttsn.Pingreq](gw)
	if ping.ClientID != "tool" {
		t.Fatalf("wake PINGREQ = %+v", ping)
	}
	id, _ := mqttsn.ShortTopicID("tt")
	gw.Reply(&mqttsn.Publish{TopicIDType: mqttsn.TopicShort, TopicID: id, Data: []byte("buffered")})
	gw.Reply(&mqttsn.Pingresp{})
	mqttsntest.Expect[*mqttsn.Disconnect](gw)
	gw.Reply(&mqttsn.Disconnect{})
	if code := tl.wait(t); code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, tl.err.String())
	}
	if got := tl.out.String(); got != "buffered\n" {
		t.Errorf("output %q", got)
	}
}

func TestDiscoverPrintsGateways(t *testing.T) {
	gw := mqttsntest.NewGateway(t)
	tl := startTool(t, "", "discover", "--to", gw.Addr(), "--listen", "127.0.0.1:0", "--radius", "1", "--timeout", "1s")
	if s := mqttsntest.Expect[*mqttsn.SearchGW](gw); s.Radius != 1 {
		t.Errorf("SEARCHGW = %+v", s)
	}
	gw.Reply(&mqttsn.GWInfo{GatewayID: 3})
	gw.Reply(&mqttsn.Advertise{GatewayID: 3, Duration: 900})
	if code := tl.wait(t); code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, tl.err.String())
	}
	out := tl.out.String()
	if !strings.Contains(out, "GWINFO gateway 3 from "+gw.Addr()) || !strings.Contains(out, "ADVERTISE gateway 3 from "+gw.Addr()+", next in 15m0s") {
		t.Errorf("output %q", out)
	}
}

func TestDiscoverNothingHeardExits1(t *testing.T) {
	gw := mqttsntest.NewGateway(t) // hears SEARCHGW, never answers
	tl := startTool(t, "", "discover", "--to", gw.Addr(), "--listen", "127.0.0.1:0", "--timeout", "300ms")
	if code := tl.wait(t); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if got := tl.err.String(); got != "sngate discover: no gateway answered within 300ms\n" {
		t.Errorf("stderr %q", got)
	}
}
