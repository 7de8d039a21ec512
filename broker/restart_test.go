//go:build unix

package broker

// The hard restart: a broker process killed with SIGKILL while QoS 1
// messages for an offline persistent session pour in must, once started
// again on the same data directory, deliver every message it acknowledged.
// The broker runs in a child process, this test binary run again as
// TestHelperBroker, so that it can really be killed.

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sngate/sngate/broker/packets"
)

// Environment of the helper broker process.
const (
	helperDirEnv  = "SNGATE_TEST_HELPER_BROKER_DIR"  // data directory
	helperAddrEnv = "SNGATE_TEST_HELPER_BROKER_ADDR" // listener address
	helperReady   = "HELPER BROKER LISTENING ON"     // its first line on stdout, then the address
)

// helperLifetime is how long a helper broker lives if nobody kills it.
const helperLifetime = 2 * time.Minute

// TestHelperBroker is not a test: it is the broker process of
// TestHardRestart, run by it with the environment set.
func TestHelperBroker(t *testing.T) {
	dir, addr := os.Getenv(helperDirEnv), os.Getenv(helperAddrEnv)
	if dir == "" || addr == "" {
		t.Skip("helper process of TestHardRestart; runs only as its child")
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	s, err := New(Config{Listeners: []ListenerConfig{{Type: "tcp", Address: addr}}, SysInterval: -1},
		Options{DataDir: dir, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("%s %s\n", helperReady, s.Addrs()[0])
	time.Sleep(helperLifetime) // until killed
	t.Error("helper broker not killed within", helperLifetime)
}

// brokerChild is a running helper broker.
type brokerChild struct {
	*proc
	addr string
}

// startBrokerChild runs the helper broker on dir and addr and waits until
// it listens.
func startBrokerChild(t *testing.T, dir, addr string) *brokerChild {
	t.Helper()
	p := startProc(t, helperLifetime, []string{helperDirEnv + "=" + dir, helperAddrEnv + "=" + addr},
		os.Args[0], "-test.run=^TestHelperBroker$", "-test.count=1", "-test.timeout="+(helperLifetime+30*time.Second).String())
	deadline := time.Now().Add(4 * waitTime)
	for {
		for _, l := range p.output() {
			if a, ok := strings.CutPrefix(l, helperReady+" "); ok {
				return &brokerChild{proc: p, addr: a}
			}
		}
		if err, exited := p.waitExit(10 * time.Millisecond); exited {
			t.Fatalf("helper broker ended before listening: %v: %v", err, p)
		}
		if time.Now().After(deadline) {
			t.Fatalf("helper broker not listening after %v: %v", 4*waitTime, p)
		}
	}
}

// killHard ends the child with SIGKILL: no shutdown, no final commit.
func (c *brokerChild) killHard(t *testing.T) {
	t.Helper()
	c.kill()
	if err := c.mustExit(waitTime); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("helper broker: %v, want killed by SIGKILL: %v", err, c.proc)
	}
	t.Logf("helper broker killed; its log:\n%s", c.stderr.String())
}

// TestHardRestart checks that QoS 1 messages PUBACKed to their publisher
// survive a SIGKILL of the broker in their persistent subscriber's session:
// after a restart on the same data directory the subscriber, resuming its
// session, receives every one of them at least once. Retained messages,
// and their deletion, survive too.
func TestHardRestart(t *testing.T) {
	needMosquitto(t)
	const n = 200
	t.Run("mid-stream", func(t *testing.T) { hardRestart(t, n, killMidStream) })
	t.Run("after-the-last-ack", func(t *testing.T) { hardRestart(t, n, killAfterAll) })
	t.Run("subscriber-online", func(t *testing.T) { hardRestart(t, n, killSubscriberOnline) })
}

// When the broker is killed.
type killMode int

const (
	// Half-way through the stream, with a Go publisher that records each
	// PUBACK; the subscriber is offline.
	killMidStream killMode = iota
	// Right after mosquitto_pub got its last PUBACK; the subscriber is
	// offline. Retained messages are checked too.
	killAfterAll
	// As killAfterAll, but with the subscriber connected and not
	// acknowledging: a window of messages is in flight, the rest queued.
	killSubscriberOnline
)

func hardRestart(t *testing.T, n int, mode killMode) {
	dir := t.TempDir()
	child := startBrokerChild(t, dir, "127.0.0.1:0")
	addr := child.addr // the restarted broker listens on the same port
	hp := hostPort(t, addr)
	const subID, topic = "restart-sub", "restart/t"
	payload := func(i int) string { return fmt.Sprintf("msg-%03d", i) }

	// The persistent subscriber subscribes and leaves (SUBACK comes once
	// the subscription is durable).
	mosqOK(t, "", "mosquitto_sub", args(hp, []string{"-c", "-i", subID, "-q", "1", "-t", topic, "-E"})...)

	if mode == killAfterAll {
		mosqOK(t, "", "mosquitto_pub", args(hp, []string{"-i", "restart-ret", "-q", "1", "-r", "-t", "restart/ret/keep", "-m", "kept"})...)
		mosqOK(t, "", "mosquitto_pub", args(hp, []string{"-i", "restart-ret", "-q", "1", "-r", "-t", "restart/ret/gone", "-m", "deleted"})...)
		mosqOK(t, "", "mosquitto_pub", args(hp, []string{"-i", "restart-ret", "-q", "1", "-r", "-t", "restart/ret/gone", "-n"})...)
	}
	var inFlight *int64
	if mode == killSubscriberOnline {
		inFlight = holdMessages(t, child.addr, subID)
	}

	acked := make([]bool, n+1) // by message number
	if mode == killMidStream {
		acked = publishUntilKilled(t, child, n)
	} else {
		var in strings.Builder
		for i := 1; i <= n; i++ {
			fmt.Fprintln(&in, payload(i))
		}
		// With -l mosquitto_pub disconnects once the last message is
		// acknowledged; -d logs each PUBACK.
		r := mosqOK(t, in.String(), "mosquitto_pub", args(hp, []string{"-d", "-i", "restart-pub", "-q", "1", "-t", topic, "-l"})...)
		if got := strings.Count(r.stdout, "received PUBACK"); got != n {
			t.Fatalf("mosquitto_pub got %d PUBACKs, want %d: %v", got, n, r)
		}
		for i := 1; i <= n; i++ {
			acked[i] = true
		}
		if inFlight != nil {
			eventually(t, "the subscriber's window filled", func() bool { return atomic.LoadInt64(inFlight) >= DefaultMaxInflight })
			t.Logf("the subscriber holds %d messages unacknowledged", atomic.LoadInt64(inFlight))
		}
		child.killHard(t)
	}
	nAcked := 0
	for _, a := range acked {
		if a {
			nAcked++
		}
	}
	t.Logf("%d of %d messages acknowledged before the kill", nAcked, n)

	child = startBrokerChild(t, dir, addr)
	if mode == killAfterAll {
		// One SUBSCRIBE; the retained messages come filter by filter, so a
		// surviving deleted one would come first.
		r := mosqOK(t, "", "mosquitto_sub", args(hp, []string{"-i", "restart-ret", "-t", "restart/ret/gone", "-t", "restart/ret/keep", "-C", "1", "-F", "%r %t %p"})...)
		if got := strings.TrimSpace(r.stdout); got != "1 restart/ret/keep kept" {
			t.Errorf("retained after the restart: got %q, want %q only", got, "1 restart/ret/keep kept")
		}
	}
	sub := startMosq(t, "mosquitto_sub", args(hp, []string{"-c", "-i", subID, "-q", "1", "-t", topic, "-F", "%p"})...)
	got := map[string]int{}
	deadline := time.Now().Add(4 * waitTime)
	missing := func() []int {
		var m []int
		for i := 1; i <= n; i++ {
			if acked[i] && got[payload(i)] == 0 {
				m = append(m, i)
			}
		}
		return m
	}
	seen := 0
	for len(missing()) > 0 && time.Now().Before(deadline) {
		lines := sub.output()
		for _, l := range lines[seen:] {
			got[l]++
		}
		seen = len(lines)
		if err, exited := sub.waitExit(20 * time.Millisecond); exited {
			t.Fatalf("subscriber ended: %v: %v", err, sub)
		}
	}
	sub.kill()
	if m := missing(); len(m) > 0 {
		t.Fatalf("%d acknowledged messages lost in the restart: %v (received %d distinct)\nbroker log:\n%s",
			len(m), m, len(got), child.stderr.String())
	}
	dups, extra := 0, 0
	for i := 1; i <= n; i++ {
		if c := got[payload(i)]; c > 1 {
			dups += c - 1
		} else if c == 1 && !acked[i] {
			extra++
		}
	}
	t.Logf("all %d acknowledged messages delivered after the restart; %d duplicates, %d unacknowledged ones delivered too", nAcked, dups, extra)
}

// holdMessages connects a Go client to the persistent session id that
// reads its messages and never acknowledges them. It returns the count of
// messages received.
func holdMessages(t *testing.T, addr, id string) *int64 {
	nc, err := net.DialTimeout("tcp", addr, waitTime)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(4 * waitTime))
	if _, err := nc.Write((&packets.ConnectPacket{ProtocolName: "MQTT", ProtocolLevel: 4, ClientID: id, KeepAlive: 60}).Append(nil)); err != nil {
		t.Fatal(err)
	}
	r := packets.NewReader(nc, 1<<20)
	fh, body, err := r.ReadPacket()
	if err != nil {
		t.Fatal(err)
	}
	if p, err := packets.Decode(fh, body); err != nil || !p.(*packets.ConnackPacket).SessionPresent || p.(*packets.ConnackPacket).ReturnCode != 0 {
		t.Fatalf("CONNACK %+v %v, want session present", p, err)
	}
	var count int64
	go func() {
		for {
			fh, _, err := r.ReadPacket()
			if err != nil {
				return
			}
			if fh.Type == packets.TypePublish {
				atomic.AddInt64(&count, 1)
			}
		}
	}()
	return &count
}

// publishUntilKilled publishes messages 1..n at QoS 1 from a Go client,
// paced so that the broker is killed with SIGKILL half-way through, once
// n/2 are acknowledged. It returns which were acknowledged.
func publishUntilKilled(t *testing.T, child *brokerChild, n int) []bool {
	nc, err := net.DialTimeout("tcp", child.addr, waitTime)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(4 * waitTime))
	r := packets.NewReader(nc, 1<<20)
	if _, err := nc.Write((&packets.ConnectPacket{ProtocolName: "MQTT", ProtocolLevel: 4, ClientID: "restart-pub", CleanSession: true, KeepAlive: 60}).Append(nil)); err != nil {
		t.Fatal(err)
	}
	fh, body, err := r.ReadPacket()
	if err != nil {
		t.Fatal(err)
	}
	if p, err := packets.Decode(fh, body); err != nil || p.(*packets.ConnackPacket).ReturnCode != 0 {
		t.Fatalf("CONNACK %+v %v", p, err)
	}

	var mu sync.Mutex
	acked := make([]bool, n+1)
	half := make(chan struct{})
	readDone := make(chan error, 1)
	go func() {
		count := 0
		for {
			fh, body, err := r.ReadPacket()
			if err != nil {
				readDone <- err
				return
			}
			p, err := packets.Decode(fh, body)
			if err != nil {
				readDone <- err
				return
			}
			ack, ok := p.(*packets.PubackPacket)
			if !ok || ack.PacketID == 0 || int(ack.PacketID) > n {
				readDone <- fmt.Errorf("unexpected %T %+v", p, p)
				return
			}
			mu.Lock()
			acked[ack.PacketID] = true
			mu.Unlock()
			if count++; count == n/2 {
				close(half)
			}
		}
	}()
	go func() {
		for i := 1; i <= n; i++ {
			b := (&packets.PublishPacket{QoS: 1, PacketID: uint16(i), Topic: []byte("restart/t"), Payload: fmt.Appendf(nil, "msg-%03d", i)}).Append(nil)
			if _, err := nc.Write(b); err != nil {
				return // the broker is gone
			}
			time.Sleep(time.Millisecond)
		}
	}()
	select {
	case <-half:
	case err := <-readDone:
		t.Fatalf("publisher: %v before half the messages were acknowledged", err)
	case <-time.After(4 * waitTime):
		t.Fatal("half the messages not acknowledged in time")
	}
	child.killHard(t)
	if err := <-readDone; errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("publisher connection still open after the kill")
	}
	mu.Lock()
	defer mu.Unlock()
	return acked
}

// TestHardRestartQoS2InFlight: the state of a QoS 2 delivery in flight to
// a persistent session survives a SIGKILL of the broker. After the
// restart the resumed subscriber must get, with the original packet id
// (MQTT-4.4.0-1), the PUBREL again when it had sent PUBREC, or the PUBLISH
// again with DUP set (MQTT-3.3.1-1) when it had not: a new PUBLISH of a
// message whose PUBREC the broker had would be delivered twice at QoS 2.
func TestHardRestartQoS2InFlight(t *testing.T) {
	needMosquitto(t)
	for _, c := range []struct {
		name       string
		sendPubrec bool
	}{{"after-PUBREC", true}, {"before-PUBREC", false}} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			child := startBrokerChild(t, dir, "127.0.0.1:0")
			addr := child.addr
			const id, topic = "q2-sub", "q2/t"

			sub := dial(t, addr)
			if ack := sub.connect(&packets.ConnectPacket{ClientID: id, KeepAlive: 60}); ack.ReturnCode != 0 {
				t.Fatalf("CONNACK %d", ack.ReturnCode)
			}
			if ack := sub.subscribe(1, packets.Subscription{Filter: topic, QoS: 2}); ack.ReturnCodes[0] != 2 {
				t.Fatalf("SUBACK %+v", ack)
			}
			mosqOK(t, "", "mosquitto_pub", args(hostPort(t, addr), []string{"-i", "q2-pub", "-q", "2", "-t", topic, "-m", "exactly once"})...)
			p := expect[*packets.PublishPacket](sub)
			if p.QoS != 2 || string(p.Payload) != "exactly once" {
				t.Fatalf("delivered %+v", p)
			}
			pid := p.PacketID
			if c.sendPubrec {
				sub.send(&packets.PubrecPacket{PacketID: pid})
				if rel := expect[*packets.PubrelPacket](sub); rel.PacketID != pid {
					t.Fatalf("PUBREL %d, want %d", rel.PacketID, pid)
				}
			}
			child.killHard(t)
			sub.expectClosed()

			startBrokerChild(t, dir, addr)
			sub = dial(t, addr)
			if ack := sub.connect(&packets.ConnectPacket{ClientID: id, KeepAlive: 60}); ack.ReturnCode != 0 || !ack.SessionPresent {
				t.Fatalf("CONNACK %+v, want accepted with the session present", ack)
			}
			switch p := sub.recv().(type) {
			case *packets.PubrelPacket:
				if !c.sendPubrec || p.PacketID != pid {
					t.Fatalf("got PUBREL %d; want %s", p.PacketID, want(c.sendPubrec, pid))
				}
				sub.send(&packets.PubcompPacket{PacketID: pid})
			case *packets.PublishPacket:
				if c.sendPubrec || p.PacketID != pid || !p.Dup {
					t.Fatalf("got PUBLISH id %d dup %v %q; want %s", p.PacketID, p.Dup, p.Payload, want(c.sendPubrec, pid))
				}
			default:
				t.Fatalf("got %T; want %s", p, want(c.sendPubrec, pid))
			}
		})
	}
}

func want(pubrec bool, pid uint16) string {
	if pubrec {
		return fmt.Sprintf("PUBREL %d again, the message not again", pid)
	}
	return fmt.Sprintf("PUBLISH %d again with DUP set", pid)
}
