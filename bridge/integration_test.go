package bridge

// Tests against a real upstream: mosquitto (Debian) started by
// internal/mosquittotest on a free loopback port. Each runs once per
// upstream protocol (MQTT 5 through paho.golang, MQTT 3.1.1 through
// paho.mqtt.golang).

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/internal/mosquittotest"
)

// payloads returns the payloads of received messages.
func payloads(ms []mosquittotest.Received) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Payload
	}
	return out
}

// forEachProtocol runs f as a subtest per upstream protocol.
func forEachProtocol(t *testing.T, f func(t *testing.T, protocol string)) {
	for _, p := range protocols {
		t.Run(p, func(t *testing.T) { f(t, p) })
	}
}

// TestBridgeSteadyFlow: messages flow both ways with topic remapping, at
// QoS 0, 1 and 2, the retain flag passes where a rule says so, and a
// message brought in is never sent back out on the same connection.
func TestBridgeSteadyFlow(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, protocol string) {
		up := mosquittotest.Start(t, mosquittotest.Config{})
		got := up.Collect(t, "#", 2, "checker")
		l := startLocal(t, t.TempDir(), ConnectionConfig{
			Name: "cloud", URL: up.URL(), Protocol: protocol, ClientID: "gw1",
			Rules: []Rule{
				{Direction: DirOut, Topic: "sensors/#", QoS: 2, RemotePrefix: "gw1/"},
				{Direction: DirOut, Topic: "status/#", QoS: 1, RemotePrefix: "gw1/", Retain: true},
				{Direction: DirIn, Topic: "cmd/#", QoS: 2, LocalPrefix: "sn/", RemotePrefix: "gw1/"},
				{Direction: DirBoth, Topic: "echo/#", QoS: 1},
			},
		})
		l.waitStats(t, "cloud", "connection", func(s ConnectionStats) bool { return s.Connected })

		// Out, each QoS, remapped; the rule's QoS caps the message's.
		pub, in := l.client(t, "app")
		for qos := byte(0); qos <= 2; qos++ {
			m := broker.Message{Topic: "sensors/t" + strconv.Itoa(int(qos)), Payload: []byte("q" + strconv.Itoa(int(qos))), QoS: qos}
			if err := pub.Publish(t.Context(), m); err != nil {
				t.Fatal(err)
			}
		}
		if err := pub.Publish(t.Context(), broker.Message{Topic: "status/gw", Payload: []byte("up"), QoS: 2, Retain: true}); err != nil {
			t.Fatal(err)
		}
		if err := pub.Publish(t.Context(), broker.Message{Topic: "other/x", Payload: []byte("not bridged"), QoS: 1}); err != nil {
			t.Fatal(err)
		}
		ms := got.WaitCount(t, 4, waitTime)
		want := []mosquittotest.Received{
			{Topic: "gw1/sensors/t0", Payload: "q0", QoS: 0},
			{Topic: "gw1/sensors/t1", Payload: "q1", QoS: 1},
			{Topic: "gw1/sensors/t2", Payload: "q2", QoS: 2},
			// A live subscriber does not see the retain flag...
			{Topic: "gw1/status/gw", Payload: "up", QoS: 1},
		}
		// MQTT orders messages of one QoS; mosquitto passes a QoS 2
		// message on at PUBREL, after a QoS 1 one sent behind it.
		for _, w := range want {
			if !slices.Contains(ms[:4], w) {
				t.Errorf("upstream lacks %+v; got %+v", w, ms[:4])
			}
		}
		// ...a new one does: the rule passed it through.
		late := up.Collect(t, "gw1/+/+", 1, "late").WaitCount(t, 1, waitTime)
		if w := (mosquittotest.Received{Topic: "gw1/status/gw", Payload: "up", QoS: 1, Retain: true}); late[0] != w {
			t.Errorf("retained upstream: %+v, want %+v", late[0], w)
		}

		// In, remapped the other way.
		if _, err := pub.Subscribe(t.Context(), broker.Subscription{Filter: "sn/#", QoS: 2}, broker.Subscription{Filter: "echo/#", QoS: 1}); err != nil {
			t.Fatal(err)
		}
		up.Publish(t, "gw1/cmd/valve", "open", 1, false)
		d := in.wait(t, 1)[0]
		if d.Message.Topic != "sn/cmd/valve" || string(d.Message.Payload) != "open" || d.QoS != 1 {
			t.Fatalf("local got %q %q at QoS %d", d.Message.Topic, d.Message.Payload, d.QoS)
		}

		// Both ways on one rule: what comes in does not go back out.
		up.Publish(t, "echo/ping", "1", 1, false)
		in.wait(t, 2)
		if err := pub.Publish(t.Context(), broker.Message{Topic: "echo/pong", Payload: []byte("2"), QoS: 1}); err != nil {
			t.Fatal(err)
		}
		// Upstream now has the 4 above, cmd/valve and echo/ping from the
		// test, and echo/pong. An echo of ping would have been queued
		// before pong, so it would be here by now.
		ms = got.WaitCount(t, 7, waitTime)
		pings := 0
		for _, m := range ms {
			if m.Topic == "echo/ping" {
				pings++
			}
		}
		if pings != 1 || ms[len(ms)-1].Topic != "echo/pong" {
			t.Fatalf("upstream got echo/ping %d times and last %q; want once, then echo/pong: %+v", pings, ms[len(ms)-1].Topic, ms)
		}
	})
}

// startOutage starts an upstream (persistent, with a collector of gw1/#)
// and a bridge relaying sensors/# to gw1/sensors/# at QoS 1, then stops
// the upstream once the bridge is connected: an outage has begun.
func startOutage(t *testing.T, protocol string) (*mosquittotest.Broker, *mosquittotest.Collector, *local) {
	t.Helper()
	up := mosquittotest.Start(t, mosquittotest.Config{Persistence: true})
	got := up.Collect(t, "gw1/#", 1, "checker")
	l := startLocal(t, t.TempDir(), ConnectionConfig{
		Name: "cloud", URL: up.URL(), Protocol: protocol, ReconnectMax: 2e9,
		Rules: []Rule{{Direction: DirOut, Topic: "sensors/#", QoS: 1, RemotePrefix: "gw1/"}},
	})
	l.cutUpstream(t, "cloud", up)
	return up, got, l
}

// TestBridgeOutage: with the upstream stopped, 10,000 QoS 1 messages are
// acknowledged locally; once it is back, all arrive, in order.
func TestBridgeOutage(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, protocol string) {
		up, got, l := startOutage(t, protocol)

		const n = 10000
		publishNumbered(t, l.addr, "sensors/t", 1, 1, n)
		st := l.stats(t, "cloud")
		if wantBytes := n*int64(len("gw1/sensors/t")) + sumDigits(1, n); st.QueueMessages != n || st.QueueBytes != wantBytes {
			t.Fatalf("queue holds %d messages, %d bytes; want %d, %d", st.QueueMessages, st.QueueBytes, n, wantBytes)
		}

		up.Start()
		l.waitStats(t, "cloud", "drain", func(s ConnectionStats) bool { return s.QueueMessages == 0 && s.Sent >= n })
		ms := got.WaitCount(t, n, waitTime)
		if dups := checkNumbered(t, payloads(ms), 1, n); dups != 0 {
			t.Errorf("%d duplicates after a clean outage", dups)
		}
	})
}

// sumDigits is the payload bytes of the decimal numbers first..last.
func sumDigits(first, last int) int64 {
	var n int64
	for i := first; i <= last; i++ {
		n += int64(len(strconv.Itoa(i)))
	}
	return n
}

// TestBridgeDrainWhileLive: while a backlog drains, new messages are still
// accepted (their publisher is acknowledged) and queued behind it; neither
// starves the other and the order holds across both.
func TestBridgeDrainWhileLive(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, protocol string) {
		up, got, l := startOutage(t, protocol)
		const backlog, live = 20000, 5000
		publishNumbered(t, l.addr, "sensors/t", 1, 1, backlog)

		up.Start()
		l.waitStats(t, "cloud", "drain start", func(s ConnectionStats) bool { return s.Connected && s.Sent > 0 })
		// Hold the drain mid-backlog (the link stays up), so that the live
		// messages are surely accepted while it is under way.
		up.Freeze()
		publishNumbered(t, l.addr, "sensors/t", 1, backlog+1, backlog+live)
		if st := l.stats(t, "cloud"); !st.Connected || st.Sent >= backlog || st.QueueMessages < live {
			t.Fatalf("the live messages were not accepted during the drain: %+v", st)
		}
		up.Thaw()
		ms := got.WaitCount(t, backlog+live, waitTime)
		if dups := checkNumbered(t, payloads(ms), 1, backlog+live); dups != 0 {
			t.Errorf("%d duplicates", dups)
		}
	})
}

// TestBridgeStatusTopics: the state of each connection is published
// locally under $SYS/bridge/NAME/, retained.
func TestBridgeStatusTopics(t *testing.T) {
	up := mosquittotest.Start(t, mosquittotest.Config{})
	l := startLocal(t, t.TempDir(), ConnectionConfig{
		Name: "cloud", URL: up.URL(), ReconnectMax: 2e9,
		Rules: []Rule{{Direction: DirOut, Topic: "sensors/#", QoS: 1}},
	})
	l.cutUpstream(t, "cloud", up)
	publishNumbered(t, l.addr, "sensors/t", 1, 1, 3)

	watcher, in := l.client(t, "watcher")
	want := map[string]string{"connected": "0", "queue/messages": "3", "queue/bytes": "30", "reconnects": "0", "dropped": "0", "sent": "0"}
	deadline := time.Now().Add(waitTime)
	for {
		// Subscribe again for a fresh copy of the retained values.
		if _, err := watcher.Subscribe(t.Context(), broker.Subscription{Filter: "$SYS/bridge/cloud/#"}); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, d := range in.wait(t, 8) {
			got[strings.TrimPrefix(d.Message.Topic, "$SYS/bridge/cloud/")] = string(d.Message.Payload)
		}
		ok := true
		for k, v := range want {
			ok = ok && got[k] == v
		}
		if ok && got["queue/oldest_age"] != "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("$SYS/bridge/cloud/... = %v, want %v", got, want)
		}
		in.reset()
		time.Sleep(100 * time.Millisecond)
	}
}

// TestBridgeUpstreamLostMidDrain: the upstream stops while messages are in
// flight; once it is back, those are sent again and nothing is lost or
// reordered (duplicates at most the window).
func TestBridgeUpstreamLostMidDrain(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, protocol string) {
		up, got, l := startOutage(t, protocol)
		const n = 20000
		publishNumbered(t, l.addr, "sensors/t", 1, 1, n)

		up.Start()
		l.waitStats(t, "cloud", "drain start", func(s ConnectionStats) bool { return s.Connected && s.Sent > 0 })
		up.Stop() // with messages in flight
		l.waitStats(t, "cloud", "disconnection", func(s ConnectionStats) bool { return !s.Connected })
		if st := l.stats(t, "cloud"); st.QueueMessages == 0 {
			t.Logf("the backlog drained before the upstream stopped: %+v", st)
		}
		up.Start()
		l.waitStats(t, "cloud", "drain", func(s ConnectionStats) bool { return s.QueueMessages == 0 })
		ms := got.WaitCount(t, n, waitTime)
		if dups := checkNumbered(t, payloads(ms), 1, n); dups > DefaultInflight {
			t.Errorf("%d duplicates, more than the window of %d", dups, DefaultInflight)
		}
	})
}
