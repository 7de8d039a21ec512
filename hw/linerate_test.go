package hw

import (
	"context"
	"encoding/binary"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/hw/frame"
	"github.com/sngate/sngate/hw/serial/serialtest"
	"github.com/sngate/sngate/mqttsn"
)

// TestSerialLineRate measures what share of a 115200-baud line sngate
// carries, and the latency it adds per message: a sensor sends QoS 0
// PUBLISHes back to back, paced to the line rate (a pty pair has none of
// its own), for 5 s; the broker side timestamps their arrival. Run it with
// SNGATE_SERIAL_BENCH=1 go test -run TestSerialLineRate -v ./hw
func TestSerialLineRate(t *testing.T) {
	if os.Getenv("SNGATE_SERIAL_BENCH") == "" {
		t.Skip("set SNGATE_SERIAL_BENCH=1 to measure the serial line rate")
	}
	const (
		baud        = 115200
		bytesPerSec = baud / 10 // 8N1: 10 bits a byte
		duration    = 5 * time.Second
		payloadLen  = 32
	)
	for _, framing := range []string{FramingRaw, FramingSLIP} {
		t.Run(framing, func(t *testing.T) {
			pair := serialtest.NewPair(t)
			srv, _ := gatewayOnLine(t, pair.A, framing)
			var mu sync.Mutex
			var latencies []time.Duration
			got := 0
			lc, _, err := srv.Connect(broker.LocalConfig{ClientID: "app", CleanSession: true, OnMessage: func(d broker.Delivery) {
				now := time.Now()
				sent := time.Unix(0, int64(binary.BigEndian.Uint64(d.Message.Payload[8:])))
				mu.Lock()
				latencies = append(latencies, now.Sub(sent))
				got++
				mu.Unlock()
			}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := lc.Subscribe(t.Context(), broker.Subscription{Filter: "sr"}); err != nil {
				t.Fatal(err)
			}
			sensor := newSensorLine(t, pair.B, framing)
			c := mqttsn.NewClient(sensor, mqttsn.ClientConfig{ClientID: "fast", KeepAlive: time.Hour})
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), waitTime)
			defer cancel()
			if err := c.Connect(ctx); err != nil {
				t.Fatal(err)
			}

			// PUBLISH QoS 0 to the short topic "sr": no REGISTER needed.
			pub := &mqttsn.Publish{QoS: mqttsn.QoS0, TopicIDType: mqttsn.TopicShort, TopicID: uint16('s')<<8 | 'r', Data: make([]byte, payloadLen)}
			var msg, wire []byte
			start := time.Now()
			sentBytes, sent := 0, 0
			for time.Since(start) < duration {
				binary.BigEndian.PutUint64(pub.Data, uint64(sent))
				binary.BigEndian.PutUint64(pub.Data[8:], uint64(time.Now().UnixNano()))
				msg, _ = mqttsn.Append(msg[:0], pub)
				if framing == FramingSLIP {
					wire = frame.AppendSLIP(wire[:0], msg)
				} else {
					wire = frame.AppendRaw(wire[:0], msg)
				}
				sensor.raw(t, wire)
				sent++
				sentBytes += len(wire)
				// Pace to the line: the next message leaves when the line
				// would have finished this one.
				if wait := time.Until(start.Add(time.Duration(sentBytes) * time.Second / bytesPerSec)); wait > 0 {
					time.Sleep(wait)
				}
			}
			deadline := time.Now().Add(5 * time.Second)
			for {
				mu.Lock()
				n := got
				mu.Unlock()
				if n >= sent || time.Now().After(deadline) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			elapsed := time.Since(start)
			mu.Lock()
			defer mu.Unlock()
			slices.Sort(latencies)
			pct := func(p float64) time.Duration {
				if len(latencies) == 0 {
					return 0
				}
				return latencies[int(p*float64(len(latencies)-1))]
			}
			carried := float64(got) * float64(sentBytes) / float64(sent) // wire bytes of the messages that arrived
			t.Logf("%s: sent %d messages (%d wire bytes each) in %v; %d arrived; line rate %d B/s, offered %.0f B/s, carried %.0f B/s = %.1f%% of the line; latency p50 %v p99 %v max %v",
				framing, sent, len(wire), duration, got, bytesPerSec, float64(sentBytes)/duration.Seconds(),
				carried/elapsed.Seconds(), 100*carried/elapsed.Seconds()/bytesPerSec,
				pct(0.5).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), pct(1).Round(time.Microsecond))
			if got < sent {
				t.Errorf("%d of %d messages lost", sent-got, sent)
			}
		})
	}
}
