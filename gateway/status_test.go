package gateway

import (
	"strings"
	"testing"
	"time"

	"github.com/sngate/sngate/mqttsn"
)

// TestClientsReportsStates: Clients lists each connected client with its
// state, transport and topics, then the lost ones; a lost client that comes
// back leaves the lost list.
func TestClientsReportsStates(t *testing.T) {
	g, _, addr := startGateway(t, Config{})
	active := snClient(t, addr, mqttsn.ClientConfig{ClientID: "active-1", CleanSession: true})
	if err := active.Connect(bg()); err != nil {
		t.Fatal(err)
	}
	if _, err := active.Register(bg(), "sensors/t"); err != nil {
		t.Fatal(err)
	}
	sleeper := snClient(t, addr, mqttsn.ClientConfig{ClientID: "asleep-1", CleanSession: true})
	if err := sleeper.Connect(bg()); err != nil {
		t.Fatal(err)
	}
	if err := sleeper.Sleep(bg(), time.Minute); err != nil {
		t.Fatal(err)
	}
	lost := snClient(t, addr, mqttsn.ClientConfig{ClientID: "lost-1", CleanSession: true, KeepAlive: time.Second})
	if err := lost.Connect(bg()); err != nil {
		t.Fatal(err)
	}
	lost.Close() // silent from now on: lost after 1.5 s

	var cs []ClientInfo
	deadline := time.Now().Add(waitTime)
	for {
		cs = g.Clients()
		if len(cs) == 3 && cs[2].State == StateLost {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("clients %+v, want lost-1 lost", cs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	want := []struct{ id, state string }{{"active-1", StateActive}, {"asleep-1", StateAsleep}, {"lost-1", StateLost}}
	for i, w := range want {
		c := cs[i]
		if c.ID != w.id || c.State != w.state {
			t.Errorf("client %d is %s %s, want %s %s", i, c.ID, c.State, w.id, w.state)
		}
		if !strings.HasPrefix(c.Transport, "udp ") || c.Address == "" || c.Since.IsZero() {
			t.Errorf("client %s: transport %q address %q since %v", c.ID, c.Transport, c.Address, c.Since)
		}
	}
	if got := cs[0].Topics; len(got) != 1 || got[0] != "sensors/t" || cs[0].LastHeard.IsZero() {
		t.Errorf("active-1: topics %q, last heard %v", got, cs[0].LastHeard)
	}
	if cs[1].SleepFor != time.Minute {
		t.Errorf("asleep-1 sleeps for %v, want 1m", cs[1].SleepFor)
	}
	if cs[2].Reason != "timer expired" || !cs[2].LastHeard.IsZero() {
		t.Errorf("lost-1: reason %q, last heard %v", cs[2].Reason, cs[2].LastHeard)
	}

	back := snClient(t, addr, mqttsn.ClientConfig{ClientID: "lost-1", CleanSession: true})
	if err := back.Connect(bg()); err != nil {
		t.Fatal(err)
	}
	cs = g.Clients()
	if len(cs) != 3 || cs[2].ID != "lost-1" || cs[2].State != StateActive {
		t.Fatalf("after lost-1 came back: %+v", cs)
	}
}

// TestLostClientsAreBounded: churn cannot grow the lost list past keepLost.
func TestLostClientsAreBounded(t *testing.T) {
	g, _, _ := startGateway(t, Config{})
	for i := 0; i < keepLost+10; i++ {
		c := &client{g: g, id: "c" + strings.Repeat("x", i), state: stActive}
		g.mu.Lock()
		g.byID[c.id] = c
		g.mu.Unlock()
		c.lose("test")
	}
	cs := g.Clients()
	if len(cs) != keepLost {
		t.Fatalf("%d clients listed, want %d", len(cs), keepLost)
	}
	if newest := "c" + strings.Repeat("x", keepLost+9); cs[0].ID != newest {
		t.Errorf("first lost client %q, want the latest", cs[0].ID)
	}
}

// TestPacketsCountedByType: Stats splits the messages in and out by type.
func TestPacketsCountedByType(t *testing.T) {
	g, _, addr := startGateway(t, Config{})
	c := snClient(t, addr, mqttsn.ClientConfig{ClientID: "p", CleanSession: true})
	if err := c.Connect(bg()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := c.Publish(bg(), mqttsn.TopicName("a/b"), []byte("x"), 1, false); err != nil {
			t.Fatal(err)
		}
	}
	st := g.Stats()
	in, out := st.PacketsIn, st.PacketsOut
	if in["CONNECT"] != 1 || in["REGISTER"] != 1 || in["PUBLISH"] != 3 {
		t.Errorf("in %v, want 1 CONNECT, 1 REGISTER, 3 PUBLISH", in)
	}
	if out["CONNACK"] != 1 || out["REGACK"] != 1 || out["PUBACK"] != 3 {
		t.Errorf("out %v, want 1 CONNACK, 1 REGACK, 3 PUBACK", out)
	}
	var sum int64
	for _, n := range in {
		sum += n
	}
	if sum != st.Received {
		t.Errorf("by type %d in, received %d", sum, st.Received)
	}
}
