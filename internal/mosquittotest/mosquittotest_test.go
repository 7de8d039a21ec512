package mosquittotest

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/coder/websocket"
)

const wait = 20 * time.Second

// TestRestartKeepsPortAndSession: after Stop and Start the broker is on the
// same port, the Collector is subscribed again, and with persistence the
// messages published before and after arrive in order.
func TestRestartKeepsPortAndSession(t *testing.T) {
	b := Start(t, Config{Persistence: true})
	c := b.Collect(t, "mt/#", 1, "mt-col")
	for i := range 3 {
		b.Publish(t, "mt/a", fmt.Sprint("m", i), 1, false)
	}
	c.WaitCount(t, 3, wait)
	addr := b.Addr()
	b.Stop()
	b.Stop() // idempotent
	if b.Running() {
		t.Fatal("running after Stop")
	}
	b.Start()
	if b.Addr() != addr {
		t.Fatalf("restarted on %s, want %s", b.Addr(), addr)
	}
	for i := 3; i < 5; i++ {
		b.Publish(t, "mt/a", fmt.Sprint("m", i), 1, false)
	}
	// QoS 1 is at least once: the last message before the stop may come
	// again after the restart if the broker had not seen its PUBACK.
	got := FirstOccurrences(c.WaitCount(t, 5, wait))
	if len(got) != 5 {
		t.Fatalf("got %d distinct messages, want 5: %+v", len(got), got)
	}
	for i, m := range got {
		if want := (Received{Topic: "mt/a", Payload: fmt.Sprint("m", i), QoS: 1}); m != want {
			t.Errorf("message %d = %+v, want %+v", i, m, want)
		}
	}
}

// TestKillAndStart: a killed broker starts again on its port.
func TestKillAndStart(t *testing.T) {
	b := Start(t, Config{})
	b.Kill()
	if b.Running() {
		t.Fatal("running after Kill")
	}
	b.Start()
	c, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// TestPayloadsAndRetain: payloads with spaces, newlines and none at all,
// topics with spaces, and the retain flag survive the Collector's parsing.
func TestPayloadsAndRetain(t *testing.T) {
	b := Start(t, Config{})
	c := b.Collect(t, "p/#", 2, "p-col")
	want := []Received{
		{Topic: "p/a b", Payload: "hello world", QoS: 2},
		{Topic: "p/nl", Payload: "line1\nline2", QoS: 1},
		{Topic: "p/empty", Payload: "", QoS: 0},
	}
	for _, m := range want {
		b.Publish(t, m.Topic, m.Payload, m.QoS, false)
	}
	// Messages of different QoS are not ordered with each other.
	byTopic := map[string]Received{}
	for _, m := range c.WaitCount(t, len(want), wait) {
		byTopic[m.Topic] = m
	}
	for _, w := range want {
		if byTopic[w.Topic] != w {
			t.Errorf("got %+v, want %+v", byTopic[w.Topic], w)
		}
	}

	b.Publish(t, "r/kept", "retained", 1, true)
	r := b.Collect(t, "r/#", 1, "r-col").WaitCount(t, 1, wait)
	if w := (Received{Topic: "r/kept", Payload: "retained", QoS: 1, Retain: true}); r[0] != w {
		t.Errorf("retained message = %+v, want %+v", r[0], w)
	}
}

// TestMutualTLS: the helper's own clients use the PKI through a listener
// that requires client certificates, and a Go client is verified against
// the CA with the server's IP and DNS SANs.
func TestMutualTLS(t *testing.T) {
	pki := NewPKI(t)
	b := Start(t, Config{TLS: pki.ServerTLS(true)})
	if got := b.URL(); got != "mqtts://"+b.Addr() {
		t.Errorf("URL() = %s", got)
	}
	c := b.Collect(t, "tls/#", 1, "tls-col")
	b.Publish(t, "tls/x", "secure", 1, false)
	c.WaitCount(t, 1, wait)

	for _, name := range []string{"127.0.0.1", "localhost"} {
		cfg := ClientTLS(t, pki.CAFile, pki.ClientCert, pki.ClientKey)
		cfg.ServerName = name
		conn, err := tls.Dial("tcp", b.Addr(), cfg)
		if err != nil {
			t.Fatalf("ServerName %s: %v", name, err)
		}
		conn.Close()
	}
	if conn, err := tls.Dial("tcp", b.Addr(), ClientTLS(t, pki.OtherCAFile, "", "")); err == nil {
		conn.Close()
		t.Error("a client trusting another CA accepted the server")
	}
}

// TestWebSockets: the websockets listener speaks the "mqtt" subprotocol.
func TestWebSockets(t *testing.T) {
	b := Start(t, Config{WebSockets: true})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, _, err := websocket.Dial(ctx, b.WSURL(), &websocket.DialOptions{Subprotocols: []string{"mqtt"}})
	if err != nil {
		t.Fatalf("dial %s: %v", b.WSURL(), err)
	}
	defer c.CloseNow()
	if c.Subprotocol() != "mqtt" {
		t.Errorf("subprotocol %q, want mqtt", c.Subprotocol())
	}
}
