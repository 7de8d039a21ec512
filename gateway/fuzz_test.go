package gateway

import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/mqttsn"
)

const (
	fuzzSockets      = 3  // sources of fuzz datagrams; the last one plays a forwarder
	fuzzMaxDatagrams = 32 // per input
)

// splitDatagrams cuts a fuzz input into datagrams by their Length fields,
// so that a seed of one wire message is one datagram and a concatenation
// of messages is several; a Length that does not fit is clamped.
func splitDatagrams(data []byte) [][]byte {
	var out [][]byte
	for len(data) > 0 && len(out) < fuzzMaxDatagrams {
		n := int(data[0])
		if data[0] == 0x01 && len(data) >= 3 {
			n = int(binary.BigEndian.Uint16(data[1:3]))
		}
		n = min(max(n, 1), len(data))
		out = append(out, data[:n])
		data = data[n:]
	}
	return out
}

// encapsulate wraps any bytes, well-formed or not, as a forwarder would.
func encapsulate(node byte, msg []byte) []byte {
	return append([]byte{4, byte(mqttsn.TypeEncapsulated), 0, node}, msg...)
}

// FuzzGateway throws each input at a running gateway as datagrams from
// several sources, some encapsulated by a forwarder, while a well-behaved
// client publishes through it: nothing may panic, and the good client's
// next QoS 1 message must reach a broker subscriber after every input.
//
// Every run is a few loopback round trips, and with the gateway's own
// goroutines coverage is not deterministic, so minimizing is slow: run it
// with a short -fuzzminimizetime, e.g.
//
//	go test -run '^$' -fuzz FuzzGateway -fuzztime 60s -fuzzminimizetime 2s -parallel 1 ./gateway
func FuzzGateway(f *testing.F) {
	// One gateway for the whole run: the fuzz inputs pile up state in it
	// (sessions, topic ids, wills, sleepers) as an attacker's would.
	_, b, gw := startGateway(f, Config{PacketsPerSecond: new(0), MaxClients: 1000,
		PredefinedTopics: []PredefinedTopic{{ID: 1, Topic: "pre/one"}}})
	seen := make(chan string, 1000)
	var sub *broker.LocalClient
	sub, _, err := b.Connect(broker.LocalConfig{ClientID: "fuzz-watcher", CleanSession: true,
		OnMessage: func(d broker.Delivery) {
			if d.Message.Topic == "good/t" {
				seen <- string(d.Message.Payload)
			}
			if d.QoS > 0 {
				go sub.Ack(d.PacketID)
			}
		}})
	if err != nil {
		f.Fatal(err)
	}
	if _, err := sub.Subscribe(bg(), broker.Subscription{Filter: "#", QoS: 1}); err != nil {
		f.Fatal(err)
	}
	good, err := mqttsn.Dial(bg(), gw, mqttsn.ClientConfig{ClientID: "good-client-5f3a9c",
		CleanSession: true, KeepAlive: time.Hour, RetryInterval: 500 * time.Millisecond})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { good.Close() })
	if err := good.Connect(bg()); err != nil {
		f.Fatal(err)
	}
	var peers [fuzzSockets]*rawPeer
	for i := range peers {
		peers[i] = dialRaw(f, gw)
	}
	seq := 0

	f.Fuzz(func(t *testing.T, data []byte) {
		for i, d := range splitDatagrams(data) {
			k := i % fuzzSockets
			if k == fuzzSockets-1 {
				d = encapsulate(byte(i/fuzzSockets), d)
			}
			peers[k].write(d)
		}
		seq++
		want := fmt.Sprint(seq)
		ctx, cancel := context.WithTimeout(bg(), waitTime)
		defer cancel()
		if err := good.Publish(ctx, mqttsn.TopicName("good/t"), []byte(want), mqttsn.QoS1, false); err != nil {
			t.Fatalf("the well-behaved client's publish %s failed: %v\n%s", want, err, goroutines())
		}
		deadline := time.After(waitTime)
		for {
			select {
			case got := <-seen:
				if got == want {
					return
				}
			case <-deadline:
				t.Fatalf("the well-behaved client's publish %s did not reach the subscriber\n%s", want, goroutines())
			}
		}
	})
}

// goroutines is a dump of every goroutine, for a failure that may be a
// deadlock.
func goroutines() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}
