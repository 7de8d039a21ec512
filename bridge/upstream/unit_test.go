package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

func TestParseEndpoint(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"mqtt://broker", "mqtt://broker:1883"},
		{"tcp://broker:1884", "mqtt://broker:1884"},
		{"MQTTS://broker", "mqtts://broker:8883"},
		{"ssl://broker", "mqtts://broker:8883"},
		{"tls://[::1]", "mqtts://[::1]:8883"},
		{"mqtt://broker/ignored?x=1", "mqtt://broker:1883"},
		{"ws://broker/mqtt", "ws://broker:80/mqtt"},
		{"wss://a.iot.example.com/mqtt?x-amz=1", "wss://a.iot.example.com:443/mqtt?x-amz=1"},
	} {
		u, err := url.Parse(c.in)
		if err != nil {
			t.Fatal(err)
		}
		ep, err := parseEndpoint(u)
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if ep.String() != c.want {
			t.Errorf("%s: %s, want %s", c.in, ep, c.want)
		}
	}
	for _, in := range []string{"http://broker", "mqtt://", "mqtt://user:secret@broker", "broker:1883"} {
		u, err := url.Parse(in)
		if err != nil {
			continue
		}
		if _, err := parseEndpoint(u); err == nil {
			t.Errorf("%s: no error", in)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: the error shows the password: %v", in, err)
		}
	}
}

func TestNewValidates(t *testing.T) {
	u, _ := url.Parse("mqtt://broker")
	us, _ := url.Parse("mqtts://broker")
	ok := Config{Protocol: MQTT5, URL: u, ClientID: "c"}
	for _, c := range []struct {
		name string
		edit func(*Config)
	}{
		{"no protocol", func(c *Config) { c.Protocol = "" }},
		{"unknown protocol", func(c *Config) { c.Protocol = "mqtt4" }},
		{"no URL", func(c *Config) { c.URL = nil }},
		{"no client ID", func(c *Config) { c.ClientID = "" }},
		{"TLS for a plain URL", func(c *Config) { c.TLS = &tls.Config{} }},
		{"keep alive too short", func(c *Config) { c.KeepAlive = time.Millisecond }},
		{"keep alive too long", func(c *Config) { c.KeepAlive = 70000 * time.Second }},
		{"negative session expiry", func(c *Config) { c.SessionExpiry = -time.Second }},
		{"max inflight for MQTT 5", func(c *Config) { c.MaxInflight = 5 }},
		{"session expiry for MQTT 3.1.1", func(c *Config) { c.Protocol, c.SessionExpiry = MQTT311, time.Hour }},
		{"password without user for MQTT 3.1.1", func(c *Config) { c.Protocol, c.Password = MQTT311, "pw" }},
	} {
		cfg := ok
		c.edit(&cfg)
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
	for _, cfg := range []Config{
		ok,
		{Protocol: MQTT311, URL: us, ClientID: "c", TLS: &tls.Config{}, Username: "u", Password: "p", MaxInflight: 100},
		{Protocol: MQTT5, URL: us, ClientID: "c", Password: "token-only", SessionExpiry: time.Hour, CleanStart: true},
	} {
		c, err := New(cfg)
		if err != nil {
			t.Errorf("%+v: %v", cfg, err)
			continue
		}
		if err := c.Close(context.Background()); err != nil {
			t.Errorf("Close of a never connected client: %v", err)
		}
	}
}

// TestInOrderAcks: acknowledgements are sent in receive order, whatever the
// order (and goroutines) the caller acks in, each once.
func TestInOrderAcks(t *testing.T) {
	var a inOrderAcks
	var mu sync.Mutex
	var sent []int
	const n = 1000
	acks := make([]func(), n)
	for i := range n {
		acks[i] = a.add(func() {
			mu.Lock()
			sent = append(sent, i)
			mu.Unlock()
		})
	}
	order := rand.Perm(n)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for j := w; j < n; j += 4 {
				acks[order[j]]()
				acks[order[j]]() // no-op
			}
		})
	}
	wg.Wait()
	if !slices.Equal(sent, func() []int {
		s := make([]int, n)
		for i := range s {
			s[i] = i
		}
		return s
	}()) {
		t.Fatalf("sent in order %v...", sent[:min(20, len(sent))])
	}
	if a.waiting() != 0 {
		t.Errorf("%d still waiting", a.waiting())
	}

	// A gap holds back later acknowledgements.
	var b inOrderAcks
	var got []int
	first := b.add(func() { got = append(got, 1) })
	second := b.add(func() { got = append(got, 2) })
	second()
	if len(got) != 0 || b.waiting() != 2 {
		t.Fatalf("sent %v before the first was acked", got)
	}
	first()
	if !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("sent %v", got)
	}
}

// TestNotifier: callbacks run one at a time in post order; barrier waits
// for what was posted before it; close runs what is queued; after close,
// post runs at once.
func TestNotifier(t *testing.T) {
	n := newNotifier()
	var got []int
	n.post(func() { got = append(got, 0) }) // not started: runs at once
	n.start()
	var wg sync.WaitGroup
	var mu sync.Mutex
	next := 1
	for range 4 {
		wg.Go(func() {
			for range 250 {
				mu.Lock() // posts in a known order from several goroutines
				i := next
				next++
				n.post(func() { got = append(got, i) })
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := n.barrier(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1001 {
		t.Fatalf("%d callbacks ran before the barrier, want 1001", len(got))
	}
	for i, v := range got {
		if v != i {
			t.Fatalf("callback %d ran as #%d", v, i)
		}
	}
	block := make(chan struct{})
	n.post(func() { <-block })
	n.post(func() { got = append(got, -1) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := n.barrier(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("barrier behind a blocked callback: %v", err)
	}
	close(block)
	if err := n.close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got[len(got)-1] != -1 {
		t.Error("close did not run the queued callback")
	}
	ran := false
	n.post(func() { ran = true })
	if !ran {
		t.Error("post after close did not run the callback")
	}
}

// TestStore311: the store reports a PUBLISH acknowledged when the library
// deletes it, fails what Reset wipes in publish order, and keeps All in
// Put order.
func TestStore311(t *testing.T) {
	n := newNotifier()
	s := newStore311(n)
	var got []string
	pub := func(id uint16, qos byte) {
		p := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
		p.MessageID, p.Qos = id, qos
		s.setSlot(func(err error) { got = append(got, fmt.Sprintf("%d:%v", id, err)) })
		s.Put(fmt.Sprintf("o.%d", id), p)
		if !s.takeSlot() {
			t.Fatalf("PUBLISH %d did not take the slot", id)
		}
	}
	for _, id := range []uint16{7, 3, 9, 1} {
		pub(id, 1+byte(id%2))
	}
	// An inbound message and its acknowledgement do not count.
	in := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	in.MessageID, in.Qos = 3, 1
	s.Put("i.3", in)
	s.Del("i.3")
	if want := []string{"o.7", "o.3", "o.9", "o.1"}; !slices.Equal(s.All(), want) {
		t.Errorf("All() = %v, want %v", s.All(), want)
	}
	s.Del("o.3")
	if !slices.Equal(got, []string{"3:<nil>"}) {
		t.Fatalf("after the acknowledgement of 3: %v", got)
	}
	if s.pendingCount() != 3 {
		t.Errorf("pendingCount = %d", s.pendingCount())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := s.waitRoom(ctx, 3, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waitRoom with 3 of 3 in flight: %v", err)
	}
	s.Reset()
	want := []string{"3:<nil>"}
	for _, id := range []int{7, 9, 1} {
		want = append(want, fmt.Sprintf("%d:%v", id, fmt.Errorf("%w: new clean session", ErrNotAcknowledged)))
	}
	if !slices.Equal(got, want) {
		t.Errorf("after Reset: %v, want %v", got, want)
	}
	if err := s.waitRoom(context.Background(), 1, nil); err != nil {
		t.Errorf("waitRoom on an empty store: %v", err)
	}
	// A QoS 0 PUBLISH does not take the slot.
	p := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	s.setSlot(func(error) {})
	s.Put("o.5", p)
	if s.takeSlot() {
		t.Error("QoS 0 PUBLISH took the slot")
	}
}

// TestRefusedError: refusals match ErrRefused and not ErrNotAcknowledged.
func TestRefusedError(t *testing.T) {
	err := fmt.Errorf("wrapped: %w", &RefusedError{Reason: 0x87, Text: "not authorized"})
	if !errors.Is(err, ErrRefused) || errors.Is(err, ErrNotAcknowledged) {
		t.Errorf("%v", err)
	}
	if got := err.Error(); got != "wrapped: refused: reason code 0x87: not authorized" {
		t.Errorf("%q", got)
	}
	if checkMessage(Message{Topic: "a/b", QoS: 2}) != nil {
		t.Error("a valid message was refused")
	}
}

// TestLibraryLogs: both libraries' logs go to slog at debug level (for
// paho.mqtt.golang through its process-wide loggers), and the password
// stays out of them.
func TestLibraryLogs(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, p Protocol) {
		var buf lockedBuffer
		logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
		if p == MQTT311 {
			SetMQTT311LibraryLogger(logger)
			defer func() {
				mqtt.ERROR, mqtt.CRITICAL, mqtt.WARN, mqtt.DEBUG = mqtt.NOOPLogger{}, mqtt.NOOPLogger{}, mqtt.NOOPLogger{}, mqtt.NOOPLogger{}
			}()
		}
		checkGoroutines(t)
		addr := fakeBroker{proto: p}.start(t)
		cl := newClient(t, p, Config{URL: mustURL(t, "mqtt://"+addr), Username: "u", Password: "hunter2-secret", Logger: logger})
		connect(t, cl)
		if err := cl.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		lib := map[Protocol]string{MQTT5: "lib=paho.golang", MQTT311: "lib=paho.mqtt.golang"}[p]
		if !strings.Contains(out, "level=DEBUG") || !strings.Contains(out, lib) {
			t.Errorf("no library debug logs:\n%s", out)
		}
		if strings.Contains(out, "hunter2-secret") {
			t.Error("the password was logged")
		}
	})
}
