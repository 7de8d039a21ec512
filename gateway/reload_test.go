package gateway

import (
	"strings"
	"testing"

	"github.com/sngate/sngate/mqttsn"
)

// TestSetPredefinedTopicsLive: a new predefined table applies to a client
// that stays connected (an id moved, one added, one removed) and to QoS -1
// publishers; a bad table changes nothing.
func TestSetPredefinedTopicsLive(t *testing.T) {
	g, b, addr := startGateway(t, Config{PredefinedTopics: []PredefinedTopic{
		{ID: 1, Topic: "old/one"}, {ID: 2, Topic: "old/two"},
	}})
	col := brokerSubscriber(t, b, "#")
	r := dialRaw(t, addr)
	r.connect("sensor", 60)
	publish := func(id, msgID uint16, data string) mqttsn.ReturnCode {
		r.send(&mqttsn.Publish{QoS: 1, TopicIDType: mqttsn.TopicPredefined, TopicID: id, MsgID: msgID, Data: []byte(data)})
		return expectSN[*mqttsn.Puback](r).ReturnCode
	}
	if rc := publish(1, 1, "before"); rc != mqttsn.Accepted {
		t.Fatalf("PUBACK %v before the reload", rc)
	}

	err := g.SetPredefinedTopics([]PredefinedTopic{{ID: 1, Topic: "new/one"}, {ID: 3, Topic: "new/three"}})
	if err != nil {
		t.Fatal(err)
	}
	if rc := publish(1, 2, "moved"); rc != mqttsn.Accepted {
		t.Fatalf("PUBACK %v for id 1 after the reload", rc)
	}
	if rc := publish(3, 3, "added"); rc != mqttsn.Accepted {
		t.Fatalf("PUBACK %v for the added id 3", rc)
	}
	if rc := publish(2, 4, "removed"); rc != mqttsn.RejectedInvalidID {
		t.Fatalf("PUBACK %v for the removed id 2, want invalid topic id", rc)
	}
	anon := dialRaw(t, addr)
	anon.send(&mqttsn.Publish{QoS: mqttsn.QoSMinus1, TopicIDType: mqttsn.TopicPredefined, TopicID: 3, Data: []byte("qos-1")})
	got := col.wait(t, 4)
	want := []string{"old/one before", "new/one moved", "new/three added", "new/three qos-1"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("broker got %q, want %q", got, want)
	}

	if err := g.SetPredefinedTopics([]PredefinedTopic{{ID: 0xFFFF, Topic: "x"}}); err == nil ||
		!strings.Contains(err.Error(), "predefined_topics.0.id") {
		t.Fatalf("bad table: %v, want an error naming predefined_topics.0.id", err)
	}
	if rc := publish(1, 5, "kept"); rc != mqttsn.Accepted {
		t.Fatalf("PUBACK %v after a refused table: the running one must stay", rc)
	}
}
