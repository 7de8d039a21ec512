package gateway

import (
	"fmt"
	"testing"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/broker/brokertest"
	"github.com/sngate/sngate/mqttsn"
)

// BenchmarkQoSMinus1Predefined: a QoS -1 PUBLISH to a predefined topic id,
// from decode to the broker, with 20 predefined topics configured.
func BenchmarkQoSMinus1Predefined(b *testing.B) {
	srv, _ := brokertest.NewServer(b, broker.Config{}, broker.Options{})
	var pre []PredefinedTopic
	for i := 1; i <= 20; i++ {
		pre = append(pre, PredefinedTopic{ID: uint16(i), Topic: fmt.Sprintf("meter/%d", i)})
	}
	g, err := New(Config{PredefinedTopics: pre}, srv, nil)
	if err != nil {
		b.Fatal(err)
	}
	p := &mqttsn.Publish{QoS: mqttsn.QoSMinus1, TopicIDType: mqttsn.TopicPredefined, TopicID: 7, Data: []byte("21.5")}
	b.ReportAllocs()
	for b.Loop() {
		g.handle(peer{addr: "192.0.2.1:1884"}, p)
	}
	if got := g.Stats().QoSMinus1; got == 0 {
		b.Fatal("no QoS -1 message published")
	}
}
