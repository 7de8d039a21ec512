package broker

import (
	"fmt"
	"testing"
)

// BenchmarkRouteFanOutQoS0 publishes one QoS 0 message to 100 in-process
// subscribers: the routing and delivery path without the network.
func BenchmarkRouteFanOutQoS0(b *testing.B) {
	s, _ := startBroker(b, Config{}, "")
	for i := range 100 {
		c, _, _ := s.Connect(LocalConfig{ClientID: fmt.Sprint("sub", i), CleanSession: true, OnMessage: func(Delivery) {}})
		if _, err := c.Subscribe(bg(), Subscription{Filter: "sensors/+/t"}); err != nil {
			b.Fatal(err)
		}
	}
	pub, _, _ := s.Connect(LocalConfig{ClientID: "pub", CleanSession: true})
	msg := Message{Topic: "sensors/1/t", Payload: make([]byte, 32)}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := pub.Publish(bg(), msg); err != nil {
			b.Fatal(err)
		}
	}
}
