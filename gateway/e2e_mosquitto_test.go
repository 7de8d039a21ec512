package gateway

// End-to-end tests: the project's MQTT-SN client (or a scripted raw UDP
// peer) on one side of the gateway, the real mosquitto_sub and
// mosquitto_pub command-line clients on the broker's TCP side.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/broker/brokertest"
	"github.com/sngate/sngate/mqttsn"
)

// e2eProcTimeout bounds every mosquitto process.
const e2eProcTimeout = 15 * time.Second

// needMosquitto skips the test without the mosquitto command-line clients.
func needMosquitto(t *testing.T) {
	t.Helper()
	for _, name := range []string{"mosquitto_sub", "mosquitto_pub"} {
		if _, err := exec.LookPath(name); err != nil {
			t.Skipf("%s not found (install Debian mosquitto-clients): %v", name, err)
		}
	}
}

// startE2E is startGateway keeping the broker's TCP address.
func startE2E(t *testing.T, cfg Config) (gwAddr, brokerAddr string) {
	t.Helper()
	b, baddr := brokertest.NewServer(t, broker.Config{}, broker.Options{})
	_, gwAddr = serveGateway(t, cfg, b, nil)
	return gwAddr, baddr
}

func hostPort(t *testing.T, addr string) (string, string) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return h, p
}

// mosqPub runs mosquitto_pub against the broker at addr; each of lines is
// one message (read with -l on a single connection, so in order).
func mosqPub(t *testing.T, addr string, lines []string, args ...string) {
	t.Helper()
	h, p := hostPort(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), e2eProcTimeout)
	defer cancel()
	all := append([]string{"-h", h, "-p", p}, args...)
	if lines != nil {
		all = append(all, "-l")
	}
	cmd := exec.CommandContext(ctx, "mosquitto_pub", all...)
	if lines != nil {
		cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	}
	cmd.WaitDelay = time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_pub %q: %v\n%s", all, err, out)
	}
}

// mosqSubscriber is a running mosquitto_sub -v whose lines ("topic
// payload") go to a collector.
type mosqSubscriber struct {
	*collector
	ready string // the line of the retained readiness message
}

// mosqSub starts mosquitto_sub -v on filters and returns once it is
// subscribed: a retained message on a private topic, subscribed along with
// the filters (in the same SUBSCRIBE), has come back. count is the number
// of messages expected besides it (-C count+1+spare); the process stops
// after -W seconds or at the end of the test.
func mosqSub(t *testing.T, addr string, qos, count int, filters ...string) *mosqSubscriber {
	t.Helper()
	h, p := hostPort(t, addr)
	readyTopic := "e2e-ready/" + strings.NewReplacer("/", "_", "#", "_").Replace(t.Name())
	mosqPub(t, addr, nil, "-r", "-q", "1", "-t", readyTopic, "-m", "ready")

	args := []string{"-h", h, "-p", p, "-v", "-q", strconv.Itoa(qos),
		"-W", strconv.Itoa(int(e2eProcTimeout / time.Second)), "-C", strconv.Itoa(count + 2), "-t", readyTopic}
	for _, f := range filters {
		args = append(args, "-t", f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), e2eProcTimeout+5*time.Second)
	cmd := exec.CommandContext(ctx, "mosquitto_sub", args...)
	cmd.WaitDelay = time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	s := &mosqSubscriber{ready: readyTopic + " ready"}
	readyCh := make(chan struct{})
	all := newCollector() // every line, the readiness message included
	s.collector = newCollector()
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		first := true
		for sc.Scan() {
			line := sc.Text()
			all.add(line)
			if first && line == s.ready {
				first = false
				close(readyCh)
				continue
			}
			s.add(line)
		}
		if first {
			close(readyCh)
		}
		_ = cmd.Wait()
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	select {
	case <-readyCh:
		all.mu.Lock()
		got := slices.Clone(all.got)
		all.mu.Unlock()
		if len(got) == 0 || got[0] != s.ready {
			t.Fatalf("mosquitto_sub %q did not get ready: lines %q, stderr %q", args, got, stderr.String())
		}
	case <-time.After(waitTime):
		t.Fatalf("mosquitto_sub %q not subscribed after %v; stderr %q", args, waitTime, stderr.String())
	}
	return s
}

// exactly waits for want (in order), then for settle more, and fails on any
// further or different line.
func (c *collector) exactly(t *testing.T, settle time.Duration, want ...string) {
	t.Helper()
	c.wait(t, len(want))
	time.Sleep(settle)
	c.mu.Lock()
	got := slices.Clone(c.got)
	c.mu.Unlock()
	if !slices.Equal(got, want) {
		t.Fatalf("got %d messages %q, want exactly %q", len(got), got, want)
	}
}

func unlimited() *int { return new(0) }

// 1. A client that stops sending is lost after its keep-alive; mosquitto_sub
// gets its will.
func TestE2EWillOnKeepAliveExpiry(t *testing.T) {
	needMosquitto(t)
	t.Parallel()
	gw, br := startE2E(t, Config{})
	sub := mosqSub(t, br, 1, 1, "status/#")
	c := snClient(t, gw, mqttsn.ClientConfig{ClientID: "e2e-s9", CleanSession: true, KeepAlive: time.Second,
		Will: &mqttsn.Will{Topic: "status/e2e-s9", Message: []byte("lost"), QoS: 1}})
	if err := c.Connect(bg()); err != nil {
		t.Fatal(err)
	}
	c.Close() // no more PINGREQ
	sub.exactly(t, 0, "status/e2e-s9 lost")
}

// 2. A sleeping client collects, on waking, what mosquitto_pub published
// while it slept.
func TestE2ESleepingClientCollectsMosquittoPublishes(t *testing.T) {
	needMosquitto(t)
	t.Parallel()
	gw, br := startE2E(t, Config{})
	col := newCollector()
	c := snClient(t, gw, mqttsn.ClientConfig{ClientID: "e2e-sleeper", CleanSession: true,
		OnMessage: func(m mqttsn.Message) { col.add(m.Topic + " " + string(m.Payload)) }})
	if err := c.Connect(bg()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Subscribe(bg(), mqttsn.TopicName("sleepy/in"), 1); err != nil {
		t.Fatal(err)
	}
	if err := c.Sleep(bg(), time.Minute); err != nil {
		t.Fatal(err)
	}
	mosqPub(t, br, []string{"first", "second"}, "-q", "1", "-t", "sleepy/in")
	time.Sleep(100 * time.Millisecond) // room for a wrongful delivery to show
	col.mu.Lock()
	early := slices.Clone(col.got)
	col.mu.Unlock()
	if len(early) != 0 {
		t.Fatalf("a sleeping client was sent %q", early)
	}
	// mosquitto_pub's PUBACKs come from the broker, which hands the messages
	// on to the gateway asynchronously: wake until both are there.
	deadline := time.Now().Add(waitTime)
	for {
		if err := c.Wake(bg()); err != nil {
			t.Fatal(err)
		}
		col.mu.Lock()
		n := len(col.got)
		col.mu.Unlock()
		if n >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	col.exactly(t, 100*time.Millisecond, "sleepy/in first", "sleepy/in second")
}

// 3. A wildcard subscription: the gateway registers each topic mosquitto_pub
// publishes on, and the client sees the names.
func TestE2EWildcardSubscriptionGatewayRegisters(t *testing.T) {
	needMosquitto(t)
	t.Parallel()
	gw, br := startE2E(t, Config{})
	var mu sync.Mutex
	ids := map[string]uint16{}
	col := newCollector()
	c := snClient(t, gw, mqttsn.ClientConfig{ClientID: "e2e-wild", CleanSession: true,
		OnMessage: func(m mqttsn.Message) {
			mu.Lock()
			ids[m.Topic] = m.TopicID
			mu.Unlock()
			col.add(fmt.Sprintf("%s %s %v", m.Topic, m.Payload, m.TopicIDType))
		}})
	if err := c.Connect(bg()); err != nil {
		t.Fatal(err)
	}
	if q, err := c.Subscribe(bg(), mqttsn.TopicName("cmd/#"), 1); err != nil || q != 1 {
		t.Fatalf("Subscribe: %v %v", q, err)
	}
	mosqPub(t, br, nil, "-q", "1", "-t", "cmd/a", "-m", "A")
	mosqPub(t, br, nil, "-q", "1", "-t", "cmd/b", "-m", "B")
	mosqPub(t, br, nil, "-q", "1", "-t", "other", "-m", "not for it")
	n := mqttsn.TopicNormal
	col.exactly(t, 200*time.Millisecond, fmt.Sprintf("cmd/a A %v", n), fmt.Sprintf("cmd/b B %v", n))
	mu.Lock()
	defer mu.Unlock()
	if ids["cmd/a"] == 0 || ids["cmd/b"] == 0 || ids["cmd/a"] == ids["cmd/b"] {
		t.Fatalf("topic ids %v, want two distinct registered ids", ids)
	}
}

// lossyRelay forwards datagrams between one client and the gateway,
// dropping every third in each direction.
type lossyRelay struct {
	front *net.UDPConn // the client's side
	back  *net.UDPConn // connected to the gateway

	mu      sync.Mutex
	client  *net.UDPAddr
	dropped [2]int
}

func startLossyRelay(t *testing.T, gw string) *lossyRelay {
	t.Helper()
	ga, err := net.ResolveUDPAddr("udp", gw)
	if err != nil {
		t.Fatal(err)
	}
	front, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	back, err := net.DialUDP("udp", nil, ga)
	if err != nil {
		front.Close()
		t.Fatal(err)
	}
	r := &lossyRelay{front: front, back: back}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // client → gateway
		defer wg.Done()
		buf := make([]byte, mqttsn.MaxMessageLen)
		for n := 1; ; n++ {
			k, from, err := front.ReadFromUDP(buf)
			if err != nil {
				return
			}
			r.mu.Lock()
			r.client = from
			drop := n%3 == 0
			if drop {
				r.dropped[0]++
			}
			r.mu.Unlock()
			if !drop {
				_, _ = back.Write(buf[:k])
			}
		}
	}()
	go func() { // gateway → client
		defer wg.Done()
		buf := make([]byte, mqttsn.MaxMessageLen)
		for n := 1; ; n++ {
			k, err := back.Read(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue // e.g. ICMP port unreachable after the client left
			}
			r.mu.Lock()
			to := r.client
			drop := n%3 == 0
			if drop {
				r.dropped[1]++
			}
			r.mu.Unlock()
			if !drop && to != nil {
				_, _ = front.WriteToUDP(buf[:k], to)
			}
		}
	}()
	t.Cleanup(func() {
		front.Close()
		back.Close()
		wg.Wait()
	})
	return r
}

func (r *lossyRelay) addr() string { return r.front.LocalAddr().String() }

func (r *lossyRelay) drops() [2]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dropped
}

func tenMessages() []string {
	var m []string
	for i := range 10 {
		m = append(m, fmt.Sprintf("m%d", i))
	}
	return m
}

// 4. QoS 2 is exactly once both ways although a third of the datagrams
// between the client and the gateway are lost.
func TestE2EQoS2ExactlyOnceThroughLossyLink(t *testing.T) {
	needMosquitto(t)
	t.Parallel()
	lossyClient := func(t *testing.T, gw, id string, col *collector) *mqttsn.Client {
		relay := startLossyRelay(t, gw)
		t.Cleanup(func() { t.Logf("datagrams dropped (up, down): %v", relay.drops()) })
		cfg := mqttsn.ClientConfig{ClientID: id, CleanSession: true, RetryInterval: 200 * time.Millisecond, MaxRetries: 8}
		if col != nil {
			cfg.OnMessage = func(m mqttsn.Message) { col.add(m.Topic + " " + string(m.Payload)) }
		}
		c := snClient(t, relay.addr(), cfg)
		ctx, cancel := context.WithTimeout(bg(), 20*time.Second)
		t.Cleanup(cancel)
		if err := c.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		return c
	}
	cfg := Config{PacketsPerSecond: unlimited(), MaxRetries: 8}

	t.Run("upstream", func(t *testing.T) {
		t.Parallel()
		gw, br := startE2E(t, cfg)
		sub := mosqSub(t, br, 2, 10, "lossy/up")
		c := lossyClient(t, gw, "e2e-up2", nil)
		var want []string
		for _, m := range tenMessages() {
			ctx, cancel := context.WithTimeout(bg(), 10*time.Second)
			err := c.Publish(ctx, mqttsn.TopicName("lossy/up"), []byte(m), mqttsn.QoS2, false)
			cancel()
			if err != nil {
				t.Fatalf("Publish %s: %v", m, err)
			}
			want = append(want, "lossy/up "+m)
		}
		sub.exactly(t, time.Second, want...) // a second: five retry intervals for a late duplicate
	})

	t.Run("downstream", func(t *testing.T) {
		t.Parallel()
		gw, br := startE2E(t, cfg)
		col := newCollector()
		c := lossyClient(t, gw, "e2e-down2", col)
		ctx, cancel := context.WithTimeout(bg(), 10*time.Second)
		defer cancel()
		if q, err := c.Subscribe(ctx, mqttsn.TopicName("lossy/down"), mqttsn.QoS2); err != nil || q != mqttsn.QoS2 {
			t.Fatalf("Subscribe: %v %v", q, err)
		}
		mosqPub(t, br, tenMessages(), "-q", "2", "-t", "lossy/down")
		var want []string
		for _, m := range tenMessages() {
			want = append(want, "lossy/down "+m)
		}
		deadline := time.Now().Add(20 * time.Second) // ten messages, each maybe resent
		for {
			col.mu.Lock()
			n := len(col.got)
			col.mu.Unlock()
			if n >= len(want) || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		col.exactly(t, time.Second, want...)
	})
}

// 5. A persistent client's subscription, queued message and registered
// topic id survive a restart of the gateway and the broker.
func TestE2EPersistentSessionAcrossRestart(t *testing.T) {
	needMosquitto(t)
	t.Parallel()
	s := startSite(t, t.TempDir(), "127.0.0.1:0", "127.0.0.1:0")
	col := newCollector()
	c := snClient(t, s.udp, mqttsn.ClientConfig{ClientID: "e2e-p5", CleanSession: false,
		OnMessage: func(m mqttsn.Message) { col.add(m.Topic + " " + string(m.Payload)) }})
	if err := c.Connect(bg()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Subscribe(bg(), mqttsn.TopicName("cmd/p5"), 1); err != nil {
		t.Fatal(err)
	}
	id, err := c.Register(bg(), "data/p5")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Disconnect(bg()); err != nil {
		t.Fatal(err)
	}
	waitRecords(t, s.b, "e2e-p5")

	s = s.restart()
	// The client is still away: the broker keeps the message for it.
	mosqPub(t, s.tcp, nil, "-q", "1", "-t", "cmd/p5", "-m", "while away")
	sub := mosqSub(t, s.tcp, 1, 1, "data/#")

	if err := c.Connect(bg()); err != nil { // CleanSession false again
		t.Fatal(err)
	}
	col.exactly(t, 100*time.Millisecond, "cmd/p5 while away")

	if err := c.Publish(bg(), mqttsn.TopicName("data/p5"), []byte("old id"), 1, false); err != nil {
		t.Fatal(err)
	}
	sub.exactly(t, 100*time.Millisecond, "data/p5 old id")
	if n := s.rec.count(false, mqttsn.TypeRegister); n != 0 {
		t.Fatalf("the client registered again (%d REGISTER) instead of publishing on id %d", n, id)
	}
	if n := s.rec.count(false, mqttsn.TypePublish); n != 1 {
		t.Fatalf("%d PUBLISH received, want 1 on the old id %d", n, id)
	}
}

// 6. A forwarder wraps a node's messages; mosquitto_sub gets the node's
// publish.
func TestE2EForwarderEncapsulation(t *testing.T) {
	needMosquitto(t)
	t.Parallel()
	gw, br := startE2E(t, Config{})
	sub := mosqSub(t, br, 1, 1, "fwd/#")
	fwd := dialRaw(t, gw)
	node := []byte{0x12, 0x34, 0x56}
	fwd.forward(node, &mqttsn.Connect{CleanSession: true, KeepAlive: 60, ClientID: "e2e-node"})
	if ack, ok := fwd.recvFor(node).(*mqttsn.Connack); !ok || ack.ReturnCode != mqttsn.Accepted {
		t.Fatalf("CONNECT answered with %+v", ack)
	}
	fwd.forward(node, &mqttsn.Register{MsgID: 1, TopicName: "fwd/node"})
	ra, ok := fwd.recvFor(node).(*mqttsn.Regack)
	if !ok || ra.ReturnCode != mqttsn.Accepted || ra.MsgID != 1 || ra.TopicID == 0 {
		t.Fatalf("REGISTER answered with %+v", ra)
	}
	fwd.forward(node, &mqttsn.Publish{QoS: mqttsn.QoS1, TopicID: ra.TopicID, MsgID: 2, Data: []byte("via forwarder")})
	pa, ok := fwd.recvFor(node).(*mqttsn.Puback)
	if !ok || pa.ReturnCode != mqttsn.Accepted || pa.MsgID != 2 || pa.TopicID != ra.TopicID {
		t.Fatalf("PUBLISH answered with %+v", pa)
	}
	sub.exactly(t, 100*time.Millisecond, "fwd/node via forwarder")
}

// 7. A client over IPv6 publishes; mosquitto_sub on the broker gets it.
func TestE2EIPv6Client(t *testing.T) {
	needMosquitto(t)
	if pc, err := net.ListenPacket("udp", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	} else {
		pc.Close()
	}
	t.Parallel()
	gw, br := startE2E(t, Config{Listen: "[::1]:0"})
	if h, _ := hostPort(t, gw); h != "::1" {
		t.Fatalf("gateway on %s, want [::1]", gw)
	}
	sub := mosqSub(t, br, 1, 1, "six/#")
	c := snClient(t, gw, mqttsn.ClientConfig{ClientID: "e2e-v6", CleanSession: true})
	if err := c.Connect(bg()); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(bg(), mqttsn.TopicName("six/one"), []byte("over ::1"), 1, false); err != nil {
		t.Fatal(err)
	}
	sub.exactly(t, 100*time.Millisecond, "six/one over ::1")
}
