package broker

import (
	"testing"
	"time"
)

// TestSysTopicsFollowTheCounters: the $SYS/broker topics are published
// every sys_interval, retained, with the current counters.
func TestSysTopicsFollowTheCounters(t *testing.T) {
	s, _ := startBroker(t, Config{SysInterval: 20 * time.Millisecond}, "")
	in := newLocalInbox()
	watcher, _, _ := s.Connect(LocalConfig{ClientID: "watcher", CleanSession: true, OnMessage: in.deliver})
	if _, err := watcher.Subscribe(bg(), Subscription{Filter: "$SYS/broker/#"}); err != nil {
		t.Fatal(err)
	}
	pub, _, _ := s.Connect(LocalConfig{ClientID: "pub", CleanSession: true})
	for range 3 {
		pub.Publish(bg(), Message{Topic: "x", Payload: []byte("1")})
	}
	want := map[string]string{
		"$SYS/broker/clients/connected":       "2",
		"$SYS/broker/messages/received":       "3",
		"$SYS/broker/retained messages/count": "",
		"$SYS/broker/version":                 "sngate ",
	}
	deadline := time.Now().Add(waitTime)
	for n := 1; ; n++ {
		got := map[string]string{}
		for _, d := range in.wait(t, n) {
			got[d.Message.Topic] = string(d.Message.Payload)
		}
		ok := true
		for topic, payload := range want {
			if payload != "" && got[topic] != payload {
				ok = false
			}
			if _, seen := got[topic]; !seen {
				ok = false
			}
		}
		if ok {
			if u := got["$SYS/broker/uptime"]; u == "" {
				t.Errorf("no uptime")
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("$SYS topics %v, want %v", got, want)
		}
	}
}
