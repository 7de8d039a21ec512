package bridge

import (
	"strings"
	"testing"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/internal/mosquittotest"
)

// TestBridgeReloadRules: new rules apply to a running connection without
// a reconnect: an out rule removed stops relaying, one added starts, an in
// rule added brings messages in over the live link. Changed connection
// settings, added or removed connections are reported for a restart and
// leave the running connection as it was.
func TestBridgeReloadRules(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, protocol string) {
		up := mosquittotest.Start(t, mosquittotest.Config{})
		got := up.Collect(t, "gw1/#", 1, "checker")
		conn := ConnectionConfig{
			Name: "cloud", URL: up.URL(), Protocol: protocol,
			Rules: []Rule{{Direction: DirOut, Topic: "old/#", QoS: 1, RemotePrefix: "gw1/"}},
		}
		l := startLocal(t, t.TempDir(), conn)
		l.waitStats(t, "cloud", "connection", func(s ConnectionStats) bool { return s.Connected })
		pub, in := l.client(t, "app")
		publish := func(topic, payload string) {
			t.Helper()
			if err := pub.Publish(t.Context(), broker.Message{Topic: topic, Payload: []byte(payload), QoS: 1}); err != nil {
				t.Fatal(err)
			}
		}
		publish("old/a", "1")
		got.WaitCount(t, 1, waitTime)

		next := conn
		next.Rules = []Rule{
			{Direction: DirOut, Topic: "new/#", QoS: 1, RemotePrefix: "gw1/"},
			{Direction: DirIn, Topic: "cmd/#", QoS: 1, LocalPrefix: "sn/", RemotePrefix: "gw1/"},
		}
		restart, err := l.br.Reload(Config{Connections: []ConnectionConfig{next}})
		if err != nil || len(restart) != 0 {
			t.Fatalf("Reload: restart %q, err %v; want it applied live", restart, err)
		}
		publish("old/a", "2") // no longer relayed
		publish("new/b", "3")
		if _, err := pub.Subscribe(t.Context(), broker.Subscription{Filter: "sn/#", QoS: 1}); err != nil {
			t.Fatal(err)
		}
		up.Publish(t, "gw1/cmd/valve", "open", 1, false)
		if d := in.wait(t, 1)[0]; d.Message.Topic != "sn/cmd/valve" || string(d.Message.Payload) != "open" {
			t.Fatalf("local got %q %q through the new in rule", d.Message.Topic, d.Message.Payload)
		}
		publish("new/b", "4")
		ms := got.WaitCount(t, 4, waitTime) // the test's own gw1/cmd/valve is one
		var seen []string
		for _, m := range ms {
			if !strings.HasPrefix(m.Topic, "gw1/cmd/") {
				seen = append(seen, m.Topic+"="+m.Payload)
			}
		}
		if want := "gw1/old/a=1 gw1/new/b=3 gw1/new/b=4"; strings.Join(seen, " ") != want {
			t.Fatalf("upstream got %s, want %s", strings.Join(seen, " "), want)
		}
		if st := l.stats(t, "cloud"); st.Reconnects != 0 || !st.Connected {
			t.Errorf("the reload reconnected: %+v", st)
		}

		// What a reload cannot apply is named, and nothing changes.
		moved := next
		moved.URL = "mqtt://127.0.0.1:1"
		extra := ConnectionConfig{Name: "backup", URL: up.URL(), Rules: next.Rules}
		restart, err = l.br.Reload(Config{Connections: []ConnectionConfig{moved, extra}})
		if err != nil {
			t.Fatal(err)
		}
		if want := "cloud (connection settings changed),backup (new connection)"; strings.Join(restart, ",") != want {
			t.Errorf("restart %q, want %s", restart, want)
		}
		restart, _ = l.br.Reload(Config{})
		if len(restart) != 1 || restart[0] != "cloud (removed)" {
			t.Errorf("restart %q, want cloud (removed)", restart)
		}
		publish("new/b", "5")
		got.WaitCount(t, 5, waitTime)
		if st := l.stats(t, "cloud"); !st.Connected {
			t.Errorf("after refused reloads: %+v", st)
		}
	})
}

// TestBridgeReloadQueueChange: a connection cannot gain its first out
// rule live, since that opens its disk queue; the error says so and the
// old rules stay.
func TestBridgeReloadQueueChange(t *testing.T) {
	conn := ConnectionConfig{Name: "cloud", URL: "mqtt://127.0.0.1:1",
		Rules: []Rule{{Direction: DirIn, Topic: "cmd/#", QoS: 1}}}
	l := startLocal(t, t.TempDir(), conn)
	next := conn
	next.Rules = []Rule{{Direction: DirOut, Topic: "s/#", QoS: 1}}
	if _, err := l.br.Reload(Config{Connections: []ConnectionConfig{next}}); err == nil || !strings.Contains(err.Error(), "needs a restart") {
		t.Fatalf("Reload: %v, want a needs-a-restart error", err)
	}
	c := l.br.conns[0]
	if rs := c.rules.Load(); len(rs.out) != 0 || len(rs.in) != 1 {
		t.Errorf("rules after a refused reload: %+v", rs)
	}
	bad := Config{Connections: []ConnectionConfig{{Name: "cloud"}}}
	if _, err := l.br.Reload(bad); err == nil {
		t.Error("an invalid config was accepted")
	}
}
