package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sngate/sngate/internal/mosquittotest"
)

// TestConnect: plain TCP, TLS with CA verification, mutual TLS, ALPN, and
// WebSockets (plain and TLS), each through one message end to end; and the
// refusals: an untrusted server, a missing or foreign client certificate.
func TestConnect(t *testing.T) {
	pki := mosquittotest.NewPKI(t)
	clientTLS := func(ca, cert, key string) func(*testing.T) *tls.Config {
		return func(t *testing.T) *tls.Config { return mosquittotest.ClientTLS(t, ca, cert, key) }
	}
	type tc struct {
		name   string
		broker mosquittotest.Config
		url    func(b *mosquittotest.Broker) string
		tls    func(*testing.T) *tls.Config
		fails  bool
	}
	tcpURL := func(b *mosquittotest.Broker) string { return b.URL() }
	wsURL := func(b *mosquittotest.Broker) string { return b.WSURL() }
	cases := []tc{
		{name: "plain", url: tcpURL},
		{name: "tcp-alias", url: func(b *mosquittotest.Broker) string { return "tcp://" + b.Addr() }},
		{name: "tls", broker: mosquittotest.Config{TLS: pki.ServerTLS(false)}, url: tcpURL, tls: clientTLS(pki.CAFile, "", "")},
		{name: "tls-alias-localhost-sni", broker: mosquittotest.Config{TLS: pki.ServerTLS(false)},
			url: func(b *mosquittotest.Broker) string { return "ssl://" + b.Addr() },
			tls: func(t *testing.T) *tls.Config {
				c := mosquittotest.ClientTLS(t, pki.CAFile, "", "")
				c.ServerName = "localhost"
				return c
			}},
		{name: "tls-untrusted-server", broker: mosquittotest.Config{TLS: pki.ServerTLS(false)}, url: tcpURL,
			tls: clientTLS(pki.OtherCAFile, "", ""), fails: true},
		{name: "mtls", broker: mosquittotest.Config{TLS: pki.ServerTLS(true)}, url: tcpURL,
			tls: clientTLS(pki.CAFile, pki.ClientCert, pki.ClientKey)},
		{name: "mtls-no-client-cert", broker: mosquittotest.Config{TLS: pki.ServerTLS(true)}, url: tcpURL,
			tls: clientTLS(pki.CAFile, "", ""), fails: true},
		{name: "mtls-foreign-client-cert", broker: mosquittotest.Config{TLS: pki.ServerTLS(true)}, url: tcpURL,
			tls: clientTLS(pki.CAFile, pki.OtherCert, pki.OtherKey), fails: true},
		{name: "mtls-alpn", broker: mosquittotest.Config{TLS: pki.ServerTLS(true)}, url: tcpURL,
			tls: func(t *testing.T) *tls.Config {
				c := mosquittotest.ClientTLS(t, pki.CAFile, pki.ClientCert, pki.ClientKey)
				c.NextProtos = []string{"x-amzn-mqtt-ca"} // AWS IoT's ALPN for MQTT on 443
				return c
			}},
		{name: "ws", broker: mosquittotest.Config{WebSockets: true}, url: wsURL},
		{name: "wss", broker: mosquittotest.Config{WebSockets: true, TLS: pki.ServerTLS(true)}, url: wsURL,
			tls: clientTLS(pki.CAFile, pki.ClientCert, pki.ClientKey)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := startBroker(t, c.broker)
			col := b.Collect(t, "connect/#", 1, "col")
			forEachProtocol(t, func(t *testing.T, p Protocol) {
				checkGoroutines(t)
				cfg := Config{URL: mustURL(t, c.url(b))}
				if c.tls != nil {
					cfg.TLS = c.tls(t)
				}
				cl := newClient(t, p, cfg)
				ctx, cancel := context.WithTimeout(context.Background(), wait)
				defer cancel()
				present, err := cl.Connect(ctx, nil)
				if c.fails {
					if err == nil {
						t.Fatal("Connect succeeded, want an error")
					}
					t.Logf("refused as it should be: %v", err)
					select {
					case <-cl.Lost():
					default:
						t.Error("Lost() open after a failed Connect")
					}
					return
				}
				if err != nil {
					t.Fatalf("Connect: %v", err)
				}
				if present {
					t.Error("first connection has a session present")
				}
				before := len(col.Messages())
				out := newOutcomes()
				payload := c.name + " " + string(p)
				if err := cl.Publish(ctx, Message{Topic: "connect/" + c.name, Payload: []byte(payload), QoS: 1}, out.onDone(0)); err != nil {
					t.Fatalf("Publish: %v", err)
				}
				if r := out.wait(t, 1); r[0].err != nil {
					t.Fatalf("onDone: %v", r[0].err)
				}
				got := col.WaitCount(t, before+1, wait)
				if m := got[before]; m.Payload != payload {
					t.Errorf("collector got %+v, want payload %q", m, payload)
				}
			})
		})
	}
}

// TestPublishInOrder: 1,000 messages published back to back at each QoS
// arrive in order, and onDone reports every one as acknowledged, in order.
// mosquitto's Receive Maximum (20) makes Publish wait for flow control.
func TestPublishInOrder(t *testing.T) {
	const n = 1000
	b := startBroker(t, mosquittotest.Config{Extra: []string{"log_type all"}})
	forEachProtocol(t, func(t *testing.T, p Protocol) {
		for qos := byte(0); qos <= 2; qos++ {
			t.Run(fmt.Sprint("qos", qos), func(t *testing.T) {
				checkGoroutines(t)
				topic := fmt.Sprintf("order/%s/%d", p, qos)
				col := b.Collect(t, topic, 2, "col-"+strings.ReplaceAll(topic, "/", "-"))
				cl := newClient(t, p, Config{URL: mustURL(t, b.URL())})
				connect(t, cl)
				out := newOutcomes()
				ctx, cancel := context.WithTimeout(context.Background(), wait)
				defer cancel()
				for i := range n {
					m := Message{Topic: topic, Payload: fmt.Appendf(nil, "%d", i), QoS: qos}
					if err := cl.Publish(ctx, m, out.onDone(i)); err != nil {
						t.Fatalf("Publish %d: %v", i, err)
					}
				}
				for i, r := range out.wait(t, n) {
					if r.id != i || r.err != nil {
						t.Fatalf("onDone #%d: message %d, %v; want message %d, nil", i, r.id, r.err, i)
					}
				}
				got := col.WaitCount(t, n, wait)
				if len(got) != n {
					t.Fatalf("collector got %d messages, want %d", len(got), n)
				}
				for i, m := range got {
					if m.Payload != fmt.Sprint(i) || m.Topic != topic || m.QoS != qos {
						t.Fatalf("collector message %d: %+v", i, m)
					}
				}
			})
		}
	})
}

// TestManualAck: a QoS 1 message is acknowledged upstream only when the
// caller acks: unacked, the upstream delivers it again on the resumed
// session; acked, it does not. Acks given out of order go upstream in
// receive order.
func TestManualAck(t *testing.T) {
	b := startBroker(t, mosquittotest.Config{Extra: []string{"log_type all"}})
	forEachProtocol(t, func(t *testing.T, p Protocol) {
		checkGoroutines(t)
		px := newProxy(t, b.Addr())
		in := newInbound()
		topic := "in/" + string(p)
		id := "ack-" + string(p)
		cl := newClient(t, p, Config{URL: mustURL(t, px.url("mqtt")), ClientID: id,
			SessionExpiry: sessionExpiry(p), OnMessage: in.onMessage})
		subs := []Subscription{{Filter: topic + "/#", QoS: 1}}
		if connect(t, cl, subs...) {
			t.Error("first connection has a session present")
		}

		b.Publish(t, topic+"/a", "one", 1, false)
		if r := in.next(t); string(r.m.Payload) != "one" || r.m.QoS != 1 {
			t.Fatalf("got %+v", r.m)
		} // not acked
		px.cut()
		waitLost(t, cl)
		if !connect(t, cl, subs...) {
			t.Fatal("second connection: no session present")
		}
		r := in.next(t)
		if string(r.m.Payload) != "one" {
			t.Fatalf("after reconnecting got %q, want the unacknowledged message again", r.m.Payload)
		}
		r.ack()
		r.ack() // a second call is a no-op

		// Three more, acknowledged last to first.
		var rs []received
		for _, s := range []string{"two", "three", "four"} {
			b.Publish(t, topic+"/b", s, 1, false)
			rs = append(rs, in.next(t))
		}
		for i := len(rs) - 1; i >= 0; i-- {
			rs[i].ack()
		}
		// The broker logs each PUBACK it gets: one for "one" and three more.
		b.WaitLog(t, "Received PUBACK from "+id, 4, wait)

		px.cut()
		waitLost(t, cl)
		if !connect(t, cl, subs...) {
			t.Fatal("third connection: no session present")
		}
		b.Publish(t, topic+"/c", "five", 1, false)
		if r := in.next(t); string(r.m.Payload) != "five" {
			t.Fatalf("got %q, want five: an acknowledged message came again", r.m.Payload)
		}
	})
}

func sessionExpiry(p Protocol) time.Duration {
	if p == MQTT5 {
		return time.Hour
	}
	return 0
}

// TestResumedSessionCompletesPending: QoS 1 and 2 messages in flight when
// the connection is cut are sent again on the next connection and their
// onDone reports them acknowledged (MQTT 5: the library retransmits on the
// resumed session; MQTT 3.1.1: from its store). Nothing is reported when the
// connection ends.
func TestResumedSessionCompletesPending(t *testing.T) {
	b := startBroker(t, mosquittotest.Config{})
	forEachProtocol(t, func(t *testing.T, p Protocol) {
		checkGoroutines(t)
		topic := "resume/" + string(p)
		col := b.Collect(t, topic+"/#", 2, "col-resume-"+string(p))
		px := newProxy(t, b.Addr())
		cl := newClient(t, p, Config{URL: mustURL(t, px.url("mqtt")), SessionExpiry: sessionExpiry(p)})
		connect(t, cl)
		out := newOutcomes()
		px.freeze()
		const n = 20
		publishN(t, cl, topic, 0, n, out)
		px.cut()
		px.thaw()
		waitLost(t, cl)
		t.Logf("lost: %v", cl.Err())
		if cl.Err() == nil {
			t.Error("Err() is nil after the connection was lost")
		}
		if got := out.snapshot(); len(got) != 0 {
			t.Fatalf("onDone called at connection loss: %+v", got)
		}
		if !connect(t, cl) {
			t.Error("no session present")
		}
		for _, r := range out.wait(t, n) {
			if r.err != nil {
				t.Errorf("message %d: %v", r.id, r.err)
			}
		}
		checkArrived(t, col, topic, n, false)
	})
}

// publishN publishes messages first..first+n-1: even ones at QoS 1 to
// topic/q1, odd ones at QoS 2 to topic/q2. MQTT orders messages per QoS
// only (mosquitto forwards a QoS 2 message on PUBREL, after QoS 1 messages
// published later).
func publishN(t *testing.T, cl Client, topic string, first, n int, out *outcomes) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for i := first; i < first+n; i++ {
		qos := byte(1 + i%2)
		m := Message{Topic: fmt.Sprintf("%s/q%d", topic, qos), Payload: fmt.Appendf(nil, "%d", i), QoS: qos}
		if err := cl.Publish(ctx, m, out.onDone(i)); err != nil {
			t.Fatalf("Publish %d: %v", i, err)
		}
	}
}

// checkArrived checks that publishN's messages 0..n-1 arrived at col
// (subscribed to topic/#), first deliveries in order per QoS; with
// exactlyOnce, without redeliveries.
func checkArrived(t *testing.T, col *mosquittotest.Collector, topic string, n int, exactlyOnce bool) {
	t.Helper()
	var got []mosquittotest.Received
	for deadline := time.Now().Add(wait); ; {
		got = mosquittotest.FirstOccurrences(col.WaitCount(t, len(got)+1, time.Until(deadline)))
		if len(got) >= n {
			break
		}
	}
	next := map[string]int{topic + "/q1": 0, topic + "/q2": 1}
	for _, m := range got {
		i, ok := next[m.Topic]
		if !ok || m.Payload != fmt.Sprint(i) {
			t.Fatalf("collector got %+v, want message %d on %s", m, i, m.Topic)
		}
		next[m.Topic] += 2
	}
	if all := col.Messages(); exactlyOnce && len(all) != len(got) {
		t.Errorf("collector got %d messages, %d distinct: QoS 2 delivered twice?", len(all), len(got))
	}
}

// TestQoS2PubrelResumed: QoS 2 messages whose PUBREC arrived but whose
// PUBREL did not reach the upstream when the connection was cut complete
// on the next connection, delivered exactly once (MQTT 5: paho sends the
// PUBREL again; MQTT 3.1.1: the library sends the PUBLISH again with DUP,
// which the upstream answers with PUBREC without delivering it twice).
func TestQoS2PubrelResumed(t *testing.T) {
	b := startBroker(t, mosquittotest.Config{})
	forEachProtocol(t, func(t *testing.T, p Protocol) {
		checkGoroutines(t)
		topic := "pubrel/" + string(p)
		col := b.Collect(t, topic+"/#", 2, "col-pubrel-"+string(p))
		px := newProxy(t, b.Addr())
		cl := newClient(t, p, Config{URL: mustURL(t, px.url("mqtt")), SessionExpiry: sessionExpiry(p)})
		connect(t, cl)
		px.swallowUp(6) // PUBREL
		out := newOutcomes()
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		const n = 10
		for i := range n {
			m := Message{Topic: topic + "/q2", Payload: fmt.Appendf(nil, "%d", 2*i+1), QoS: 2}
			if err := cl.Publish(ctx, m, out.onDone(i)); err != nil {
				t.Fatalf("Publish %d: %v", i, err)
			}
		}
		px.waitSwallowed(t, n)
		px.cut()
		px.swallowUp(0)
		waitLost(t, cl)
		if got := out.snapshot(); len(got) != 0 {
			t.Fatalf("onDone called at connection loss: %+v", got)
		}
		if !connect(t, cl) {
			t.Error("no session present")
		}
		for i, r := range out.wait(t, n) {
			if r.id != i || r.err != nil {
				t.Errorf("onDone #%d: message %d, %v", i, r.id, r.err)
			}
		}
		got := col.WaitCount(t, n, wait)
		for i, m := range got {
			if m.Payload != fmt.Sprint(2*i+1) {
				t.Errorf("collector message %d: %+v", i, m)
			}
		}
		// A sentinel after them shows nothing else is coming.
		b.Publish(t, topic+"/q2", "end", 2, false)
		if got := col.WaitCount(t, n+1, wait); len(got) != n+1 || got[n].Payload != "end" {
			t.Errorf("collector got %d messages, last %+v; want %d and the sentinel", len(got), got[len(got)-1], n+1)
		}
	})
}

// TestSessionNotResumed: when the upstream lost the session (mosquitto
// restarted without persistence), MQTT 5 reports the messages that were in
// flight as not acknowledged, before Connect returns; MQTT 3.1.1 sends them
// again from its store regardless, and reports them acknowledged.
func TestSessionNotResumed(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, p Protocol) {
		checkGoroutines(t)
		b := startBroker(t, mosquittotest.Config{})
		topic := "lost/" + string(p)
		col := b.Collect(t, topic+"/#", 2, "col-lost")
		px := newProxy(t, b.Addr())
		cl := newClient(t, p, Config{URL: mustURL(t, px.url("mqtt")), SessionExpiry: sessionExpiry(p)})
		connect(t, cl)
		out := newOutcomes()
		px.freeze()
		const n = 10
		publishN(t, cl, topic, 0, n, out)
		b.Stop()
		px.cut()
		px.thaw()
		waitLost(t, cl)
		if got := out.snapshot(); len(got) != 0 {
			t.Fatalf("onDone called at connection loss: %+v", got)
		}
		b.Start()
		if connect(t, cl) {
			t.Error("session present after a restart without persistence")
		}
		switch p {
		case MQTT5:
			got := out.snapshot() // complete: Connect returns after these onDone
			if len(got) != n {
				t.Fatalf("%d onDone calls when Connect returned, want %d", len(got), n)
			}
			for i, r := range got {
				if r.id != i || !isNotAcknowledged(r.err) {
					t.Errorf("onDone #%d: message %d, %v; want message %d, ErrNotAcknowledged", i, r.id, r.err, i)
				}
			}
		case MQTT311:
			for _, r := range out.wait(t, n) {
				if r.err != nil {
					t.Errorf("message %d: %v", r.id, r.err)
				}
			}
			checkArrived(t, col, topic, n, false)
		}
	})
}

// TestCleanSessionLoss: with clean sessions (MQTT 5: Session Expiry 0),
// messages in flight at a connection loss are reported not acknowledged
// before Lost is closed.
func TestCleanSessionLoss(t *testing.T) {
	b := startBroker(t, mosquittotest.Config{})
	forEachProtocol(t, func(t *testing.T, p Protocol) {
		checkGoroutines(t)
		px := newProxy(t, b.Addr())
		cl := newClient(t, p, Config{URL: mustURL(t, px.url("mqtt")), CleanStart: true})
		connect(t, cl)
		out := newOutcomes()
		px.freeze()
		const n = 10
		publishN(t, cl, "clean/"+string(p), 0, n, out)
		px.cut()
		px.thaw()
		waitLost(t, cl)
		got := out.snapshot()
		if len(got) != n {
			t.Fatalf("%d onDone calls when Lost was closed, want %d", len(got), n)
		}
		for i, r := range got {
			if r.id != i || !isNotAcknowledged(r.err) {
				t.Errorf("onDone #%d: message %d, %v; want message %d, ErrNotAcknowledged", i, r.id, r.err, i)
			}
		}
		if connect(t, cl) {
			t.Error("session present with clean start")
		}
		// The connection works, and nothing old comes back.
		out2 := newOutcomes()
		publishN(t, cl, "clean/"+string(p), 100, 2, out2)
		for _, r := range out2.wait(t, 2) {
			if r.err != nil {
				t.Errorf("message %d: %v", r.id, r.err)
			}
		}
		if got := len(out.snapshot()); got != n {
			t.Errorf("%d onDone calls for the old messages, want %d", got, n)
		}
	})
}

// TestCloseFailsPending: Close reports what is in flight as not
// acknowledged before it returns.
func TestCloseFailsPending(t *testing.T) {
	b := startBroker(t, mosquittotest.Config{})
	forEachProtocol(t, func(t *testing.T, p Protocol) {
		checkGoroutines(t)
		px := newProxy(t, b.Addr())
		cl := newClient(t, p, Config{URL: mustURL(t, px.url("mqtt")), SessionExpiry: sessionExpiry(p)})
		connect(t, cl)
		out := newOutcomes()
		px.freeze()
		const n = 10
		publishN(t, cl, "close/"+string(p), 0, n, out)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = cl.Close(ctx) // the DISCONNECT is held by the frozen proxy
		got := out.snapshot()
		if len(got) != n {
			t.Fatalf("%d onDone calls when Close returned, want %d", len(got), n)
		}
		for _, r := range got {
			if !isNotAcknowledged(r.err) {
				t.Errorf("message %d: %v, want ErrNotAcknowledged", r.id, r.err)
			}
		}
		waitLost(t, cl)
		if !errors.Is(cl.Err(), ErrClosed) {
			t.Errorf("Err() = %v, want ErrClosed", cl.Err())
		}
		if err := cl.Publish(ctx, Message{Topic: "x", QoS: 1}, nil); !errors.Is(err, ErrClosed) {
			t.Errorf("Publish after Close: %v, want ErrClosed", err)
		}
		if _, err := cl.Connect(ctx, nil); !errors.Is(err, ErrClosed) {
			t.Errorf("Connect after Close: %v, want ErrClosed", err)
		}
		px.thaw()
	})
}

// TestBrokerRestart: Lost is closed when mosquitto stops; the same Client
// connects again after it restarts, resuming the persisted session, and
// publishes.
//
// mosquitto 2.0.11 persists only sessions whose current connection has
// Clean Start 0, so the client reconnects once before the restart: the
// first connection of a run starts clean.
func TestBrokerRestart(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, p Protocol) {
		checkGoroutines(t)
		b := startBroker(t, mosquittotest.Config{Persistence: true})
		col := b.Collect(t, "restart/#", 2, "col-restart")
		px := newProxy(t, b.Addr())
		cl := newClient(t, p, Config{URL: mustURL(t, px.url("mqtt")), SessionExpiry: sessionExpiry(p)})
		connect(t, cl)
		px.cut()
		waitLost(t, cl)
		connect(t, cl)
		out := newOutcomes()
		publishN(t, cl, "restart", 0, 6, out)
		out.wait(t, 6)

		b.Stop()
		waitLost(t, cl)
		if cl.Err() == nil {
			t.Error("Err() nil after the broker stopped")
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := cl.Publish(ctx, Message{Topic: "restart/x", QoS: 1}, nil); !errors.Is(err, ErrNotConnected) {
			t.Errorf("Publish while disconnected: %v, want ErrNotConnected", err)
		}
		if _, err := cl.Connect(ctx, nil); err == nil {
			t.Fatal("Connect succeeded with the broker down")
		}
		b.Start()
		if !connect(t, cl) {
			t.Error("no session present after a restart with persistence")
		}
		publishN(t, cl, "restart", 6, 6, out)
		for _, r := range out.wait(t, 12) {
			if r.err != nil {
				t.Errorf("message %d: %v", r.id, r.err)
			}
		}
		checkArrived(t, col, "restart", 12, false)
	})
}

// TestFirstConnectionDiscardsSession: a session left by a previous run is
// not resumed by a new Client's first connection, whatever CleanStart says;
// later connections resume their own session.
func TestFirstConnectionDiscardsSession(t *testing.T) {
	b := startBroker(t, mosquittotest.Config{})
	forEachProtocol(t, func(t *testing.T, p Protocol) {
		checkGoroutines(t)
		id := "stale-" + string(p)
		cfg := Config{URL: mustURL(t, b.URL()), ClientID: id, SessionExpiry: sessionExpiry(p)}
		old := newClient(t, p, cfg)
		connect(t, old, Subscription{Filter: "stale/#", QoS: 1})
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := old.Close(ctx); err != nil {
			t.Fatal(err)
		}

		px := newProxy(t, b.Addr())
		cfg.URL = mustURL(t, px.url("mqtt"))
		cl := newClient(t, p, cfg)
		if connect(t, cl) {
			t.Error("the first connection resumed the previous run's session")
		}
		px.cut()
		waitLost(t, cl)
		if !connect(t, cl) {
			t.Error("the second connection did not resume the session")
		}
	})
}

// TestConnectFailures: nothing listening, and a server that never sends
// CONNACK (ConnectTimeout, and the caller's ctx), fail cleanly.
func TestConnectFailures(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, p Protocol) {
		t.Run("refused", func(t *testing.T) {
			checkGoroutines(t)
			cl := newClient(t, p, Config{URL: mustURL(t, "mqtt://"+closedPort(t))})
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			if _, err := cl.Connect(ctx, nil); err == nil {
				t.Fatal("Connect succeeded")
			} else {
				t.Log(err)
			}
			select {
			case <-cl.Lost():
			default:
				t.Error("Lost() open without a connection")
			}
			if err := cl.Publish(ctx, Message{Topic: "x"}, nil); !errors.Is(err, ErrNotConnected) {
				t.Errorf("Publish: %v, want ErrNotConnected", err)
			}
		})
		t.Run("no-connack-timeout", func(t *testing.T) {
			checkGoroutines(t)
			cl := newClient(t, p, Config{URL: mustURL(t, "mqtt://"+silentServer(t)), ConnectTimeout: 300 * time.Millisecond})
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			if _, err := cl.Connect(ctx, nil); err == nil {
				t.Fatal("Connect succeeded")
			} else {
				t.Log(err)
			}
		})
		t.Run("no-connack-ctx", func(t *testing.T) {
			checkGoroutines(t)
			cl := newClient(t, p, Config{URL: mustURL(t, "mqtt://"+silentServer(t))})
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			if _, err := cl.Connect(ctx, nil); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Connect: %v, want DeadlineExceeded", err)
			}
		})
		t.Run("close-aborts-connect", func(t *testing.T) {
			checkGoroutines(t)
			cl := newClient(t, p, Config{URL: mustURL(t, "mqtt://"+silentServer(t))})
			errc := make(chan error, 1)
			go func() {
				_, err := cl.Connect(context.Background(), nil)
				errc <- err
			}()
			// Close may run before Connect starts: either way Connect fails.
			if err := cl.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-errc:
				if err == nil {
					t.Fatal("Connect succeeded")
				}
			case <-time.After(wait):
				t.Fatal("Connect not aborted by Close")
			}
		})
	})
}

// TestPublishWhileDisconnected: before the first Connect.
func TestPublishWhileDisconnected(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, p Protocol) {
		cl := newClient(t, p, Config{URL: mustURL(t, "mqtt://127.0.0.1:1")})
		called := false
		err := cl.Publish(context.Background(), Message{Topic: "a", QoS: 1}, func(error) { called = true })
		if !errors.Is(err, ErrNotConnected) || called {
			t.Errorf("Publish: %v (onDone called: %v), want ErrNotConnected and no onDone", err, called)
		}
		if !errors.Is(cl.Err(), ErrNotConnected) {
			t.Errorf("Err() = %v", cl.Err())
		}
	})
}

// TestRefusals: messages no upstream takes are refused without being
// sent; MQTT 5 sends a message at the upstream's Maximum QoS if lower, and
// refuses one over its Maximum Packet Size.
func TestRefusals(t *testing.T) {
	b := startBroker(t, mosquittotest.Config{Extra: []string{"max_qos 1", "max_packet_size 2000"}})
	forEachProtocol(t, func(t *testing.T, p Protocol) {
		checkGoroutines(t)
		col := b.Collect(t, "ok/#", 1, "col-refusals-"+string(p))
		cl := newClient(t, p, Config{URL: mustURL(t, b.URL())})
		connect(t, cl)
		out := newOutcomes()
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		msgs := []Message{
			{Topic: "ok/+", QoS: 1},    // 0: wildcard
			{Topic: "", QoS: 1},        // 1: no topic
			{Topic: "ok/a", QoS: 3},    // 2: no such QoS
			{Topic: "ok/\x00", QoS: 1}, // 3: NUL
		}
		want := []string{"ok/end"}
		if p == MQTT5 {
			// mosquitto disconnects an MQTT 3.1.1 client for these: it
			// has no way to know the limits.
			msgs = append(msgs,
				Message{Topic: "ok/q2", QoS: 2},                               // 4: max_qos 1
				Message{Topic: "ok/big", QoS: 1, Payload: make([]byte, 3000)}, // 5: max_packet_size
			)
			want = []string{"ok/q2", "ok/end"}
		}
		msgs = append(msgs, Message{Topic: "ok/end", QoS: 1})
		for i, m := range msgs {
			if err := cl.Publish(ctx, m, out.onDone(i)); err != nil {
				t.Fatalf("Publish %d: %v", i, err)
			}
		}
		res := map[int]error{}
		for _, r := range out.wait(t, len(msgs)) {
			res[r.id] = r.err
		}
		for i := range 4 {
			if !errors.Is(res[i], ErrRefused) || errors.Is(res[i], ErrNotAcknowledged) {
				t.Errorf("message %d (%+v): %v, want ErrRefused", i, msgs[i], res[i])
			}
		}
		if p == MQTT5 {
			if res[4] != nil {
				t.Errorf("QoS 2 message to a max_qos 1 broker: %v", res[4])
			}
			var re *RefusedError
			if !errors.As(res[5], &re) || re.Reason != 0x95 {
				t.Errorf("oversized message: %v, want RefusedError 0x95", res[5])
			}
		}
		if err := res[len(msgs)-1]; err != nil {
			t.Errorf("last message: %v", err)
		}
		got := col.WaitCount(t, len(want), wait)
		for i, w := range want {
			if got[i].Topic != w || got[i].QoS != 1 {
				t.Errorf("collector message %d: %+v, want %s at QoS 1", i, got[i], w)
			}
		}
		select {
		case <-cl.Lost():
			t.Errorf("connection lost: %v", cl.Err())
		default:
		}
	})
}

// TestUpstreamRefusals: reason codes >= 0x80 in PUBACK and PUBREC (MQTT 5)
// are refusals, and a refused subscription fails Connect and closes the
// connection (both protocols), against a fake broker.
func TestUpstreamRefusals(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, p Protocol) {
		t.Run("publish", func(t *testing.T) {
			if p == MQTT311 {
				t.Skip("MQTT 3.1.1 acknowledgements carry no reason code")
			}
			checkGoroutines(t)
			addr := fakeBroker{proto: p, puback: 0x87}.start(t)
			cl := newClient(t, p, Config{URL: mustURL(t, "mqtt://"+addr)})
			connect(t, cl)
			out := newOutcomes()
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			for i, qos := range []byte{1, 2} {
				if err := cl.Publish(ctx, Message{Topic: "t", QoS: qos}, out.onDone(i)); err != nil {
					t.Fatal(err)
				}
			}
			for _, r := range out.wait(t, 2) {
				var re *RefusedError
				if !errors.As(r.err, &re) || re.Reason != 0x87 || !errors.Is(r.err, ErrRefused) {
					t.Errorf("message %d: %v, want RefusedError 0x87", r.id, r.err)
				}
			}
		})
		t.Run("subscribe", func(t *testing.T) {
			checkGoroutines(t)
			code := byte(0x87)
			if p == MQTT311 {
				code = 0x80
			}
			addr := fakeBroker{proto: p, suback: code}.start(t)
			cl := newClient(t, p, Config{URL: mustURL(t, "mqtt://"+addr), OnMessage: func(Message, func()) {}})
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			_, err := cl.Connect(ctx, []Subscription{{Filter: "a/#", QoS: 1}, {Filter: "b", QoS: 0}})
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("Connect: %v, want ErrRefused", err)
			}
			t.Log(err)
			select {
			case <-cl.Lost():
			default:
				t.Error("Lost() open after a refused subscription")
			}
			if err := cl.Publish(ctx, Message{Topic: "x"}, nil); !errors.Is(err, ErrNotConnected) {
				t.Errorf("Publish: %v, want ErrNotConnected", err)
			}
		})
	})
}

// TestAckOfMessageAtConnect: a message that arrives in the same segment as
// the CONNACK (as a resumed session's redelivery does) is acknowledged when
// the caller acks it, on each of many connections (paho.golang resets its
// acknowledgement tracker after it has started reading).
func TestAckOfMessageAtConnect(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, p Protocol) {
		checkGoroutines(t)
		pubacks := make(chan uint16, 100)
		addr := fakeBroker{proto: p, greet: pubacks}.start(t)
		px := newProxy(t, addr)
		in := newInbound()
		cl := newClient(t, p, Config{URL: mustURL(t, px.url("mqtt")), OnMessage: func(m Message, ack func()) {
			ack() // at once, on the library's goroutine
			in.onMessage(m, ack)
		}})
		for i := range 20 {
			connect(t, cl)
			if r := in.next(t); r.m.Topic != "greet" {
				t.Fatalf("connection %d: got %+v", i, r.m)
			}
			select {
			case id := <-pubacks:
				if id != 1 {
					t.Fatalf("connection %d: PUBACK for %d", i, id)
				}
			case <-time.After(wait):
				t.Fatalf("connection %d: no PUBACK", i)
			}
			px.cut()
			waitLost(t, cl)
		}
	})
}

// TestCredentials: user name and password reach the upstream (mosquitto
// with a password file); without them, or with a wrong password, the
// CONNACK refusal fails Connect with a RefusedError.
func TestCredentials(t *testing.T) {
	passwd, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		t.Skip("mosquitto_passwd not found (apt-get install mosquitto)")
	}
	pwfile := t.TempDir() + "/passwd"
	if out, err := exec.Command(passwd, "-c", "-b", pwfile, "bridge", "s3cret pass").CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd: %v: %s", err, out)
	}
	b := startBroker(t, mosquittotest.Config{Extra: []string{"allow_anonymous false", "password_file " + pwfile}})
	forEachProtocol(t, func(t *testing.T, p Protocol) {
		for _, c := range []struct {
			name, user, pass string
			reason           byte // 0: accepted
		}{
			{"ok", "bridge", "s3cret pass", 0},
			{"anonymous", "", "", map[Protocol]byte{MQTT5: 0x87, MQTT311: 0x05}[p]},
			// mosquitto answers "not authorized" here too.
			{"wrong-password", "bridge", "wrong", map[Protocol]byte{MQTT5: 0x87, MQTT311: 0x05}[p]},
		} {
			t.Run(c.name, func(t *testing.T) {
				checkGoroutines(t)
				cl := newClient(t, p, Config{URL: mustURL(t, b.URL()), Username: c.user, Password: c.pass})
				ctx, cancel := context.WithTimeout(context.Background(), wait)
				defer cancel()
				_, err := cl.Connect(ctx, nil)
				if c.reason == 0 {
					if err != nil {
						t.Fatalf("Connect: %v", err)
					}
					return
				}
				var re *RefusedError
				if !errors.As(err, &re) {
					t.Fatalf("Connect: %v, want a RefusedError", err)
				}
				t.Log(err)
				if re.Reason != c.reason {
					t.Errorf("reason 0x%02x, want 0x%02x", re.Reason, c.reason)
				}
			})
		}
	})
}

// TestSubscribeWhileConnected: Subscribe and Unsubscribe change what the
// current connection receives (rules reloaded while it is up); without a
// connection they fail with ErrNotConnected.
func TestSubscribeWhileConnected(t *testing.T) {
	b := startBroker(t, mosquittotest.Config{})
	forEachProtocol(t, func(t *testing.T, p Protocol) {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		in := newInbound()
		topic := "live/" + string(p)
		cl := newClient(t, p, Config{URL: mustURL(t, "mqtt://"+b.Addr()), ClientID: "live-" + string(p), OnMessage: in.onMessage})
		if err := cl.Subscribe(ctx, []Subscription{{Filter: topic + "/#", QoS: 1}}); !errors.Is(err, ErrNotConnected) {
			t.Fatalf("Subscribe before Connect: %v, want ErrNotConnected", err)
		}
		connect(t, cl, Subscription{Filter: topic + "/a", QoS: 1})
		if err := cl.Subscribe(ctx, []Subscription{{Filter: topic + "/b", QoS: 1}}); err != nil {
			t.Fatal(err)
		}
		b.Publish(t, topic+"/b", "b1", 1, false)
		if r := in.next(t); string(r.m.Payload) != "b1" {
			t.Fatalf("got %q, want b1 through the new subscription", r.m.Payload)
		} else {
			r.ack()
		}
		if err := cl.Unsubscribe(ctx, []string{topic + "/a"}); err != nil {
			t.Fatal(err)
		}
		b.Publish(t, topic+"/a", "a1", 1, false) // no longer subscribed
		b.Publish(t, topic+"/b", "b2", 1, false)
		if r := in.next(t); string(r.m.Payload) != "b2" {
			t.Fatalf("got %q, want b2: the unsubscribed filter still delivers", r.m.Payload)
		} else {
			r.ack()
		}
	})
}
