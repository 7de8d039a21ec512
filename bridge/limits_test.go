package bridge

import (
	"crypto/tls"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/sngate/sngate/broker"

	"github.com/sngate/sngate/internal/mosquittotest"
)

// TestBridgeQueueLimits: with a small byte cap during an outage,
// drop-oldest keeps the newest messages and counts the drops; refuse-new
// keeps the oldest and counts the refusals. Either way the local
// publisher is acknowledged.
func TestBridgeQueueLimits(t *testing.T) {
	const n, keep = 100, 10
	// Every message is "gw1/t" (5 bytes) + a 3-digit payload.
	const size = 5 + 3
	for _, tc := range []struct {
		policy      string
		first, last int
	}{
		{"drop-oldest", 100 + n - keep + 1, 100 + n},
		{"refuse-new", 101, 100 + keep},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			forEachProtocol(t, func(t *testing.T, protocol string) {
				up := mosquittotest.Start(t, mosquittotest.Config{Persistence: true})
				got := up.Collect(t, "gw1/#", 1, "checker")
				l := startLocal(t, t.TempDir(), ConnectionConfig{
					Name: "cloud", URL: up.URL(), Protocol: protocol, ReconnectMax: 2e9,
					Queue: QueueConfig{MaxBytes: keep * size, Policy: tc.policy},
					Rules: []Rule{{Direction: DirOut, Topic: "t", QoS: 1, RemotePrefix: "gw1/"}},
				})
				l.cutUpstream(t, "cloud", up)

				publishNumbered(t, l.addr, "t", 1, 101, 100+n) // 3 digits each
				st := l.stats(t, "cloud")
				if st.QueueMessages != keep || st.QueueBytes != keep*size {
					t.Fatalf("queue holds %d messages, %d bytes; want %d, %d", st.QueueMessages, st.QueueBytes, keep, keep*size)
				}
				dropped := st.DroppedOldest
				if tc.policy == "refuse-new" {
					dropped = st.Refused
				}
				if dropped != n-keep || st.Dropped != n-keep {
					t.Fatalf("%s counted %d (dropped %d), want %d: %+v", tc.policy, dropped, st.Dropped, n-keep, st)
				}

				up.Start()
				l.waitStats(t, "cloud", "drain", func(s ConnectionStats) bool { return s.QueueMessages == 0 && s.Sent >= keep })
				ms := got.WaitCount(t, keep, waitTime)
				if dups := checkNumbered(t, payloads(ms), tc.first, tc.last); dups != 0 {
					t.Errorf("%d duplicates", dups)
				}
				if len(ms) != keep {
					t.Errorf("upstream got %d messages, want %d", len(ms), keep)
				}
			})
		})
	}
}

// TestBridgeTLS: an mqtts:// upstream that requires client certificates,
// with ALPN set as for AWS IoT on port 443; a bridge that does not trust
// the upstream's CA never connects.
func TestBridgeTLS(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, protocol string) {
		pki := mosquittotest.NewPKI(t)
		up := mosquittotest.Start(t, mosquittotest.Config{TLS: &mosquittotest.TLS{
			CertFile: pki.ServerCert, KeyFile: pki.ServerKey, CAFile: pki.CAFile, RequireClientCert: true,
			ClientCertFile: pki.ClientCert, ClientKeyFile: pki.ClientKey,
		}})
		got := up.Collect(t, "gw1/#", 1, "checker")
		good := ConnectionConfig{
			Name: "cloud", URL: up.URL(), Protocol: protocol,
			TLS:   TLSConfig{CAFile: pki.CAFile, CertFile: pki.ClientCert, KeyFile: pki.ClientKey, ALPN: []string{"x-amzn-mqtt-ca"}},
			Rules: []Rule{{Direction: DirOut, Topic: "sensors/#", QoS: 1, RemotePrefix: "gw1/"}},
		}
		stranger := good
		stranger.Name = "stranger"
		stranger.ClientID = "stranger"
		stranger.TLS.CAFile = pki.OtherCAFile
		l := startLocal(t, t.TempDir(), good, stranger)
		l.waitStats(t, "cloud", "connection", func(s ConnectionStats) bool { return s.Connected })

		pub, _ := l.client(t, "app")
		for i := range 5 {
			if err := pub.Publish(t.Context(), brokerMessage("sensors/t", strconv.Itoa(i+1), 1)); err != nil {
				t.Fatal(err)
			}
		}
		ms := got.WaitCount(t, 5, waitTime)
		if dups := checkNumbered(t, payloads(ms), 1, 5); dups != 0 {
			t.Errorf("%d duplicates", dups)
		}
		st := l.waitStats(t, "stranger", "failed attempt", func(s ConnectionStats) bool { return s.LastError != "" })
		if st.Connected || st.QueueMessages != 5 {
			t.Fatalf("a bridge that does not trust the upstream: %+v", st)
		}
		t.Logf("stranger: %s", st.LastError)
	})
}

// TestBridgeTLSSendsALPN: the tls.alpn of a connection reaches the
// upstream in the ClientHello (mosquitto ignores ALPN, so TestBridgeTLS
// cannot tell).
func TestBridgeTLSSendsALPN(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, protocol string) {
		pki := mosquittotest.NewPKI(t)
		cert, err := tls.LoadX509KeyPair(pki.ServerCert, pki.ServerKey)
		if err != nil {
			t.Fatal(err)
		}
		hellos := make(chan []string, 16)
		ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
			Certificates: []tls.Certificate{cert},
			GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
				select {
				case hellos <- slices.Clone(h.SupportedProtos):
				default:
				}
				return nil, nil
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				_ = c.(*tls.Conn).Handshake() // then no MQTT: the attempt fails
				c.Close()
			}
		}()
		startLocal(t, t.TempDir(), ConnectionConfig{
			Name: "cloud", URL: "mqtts://" + ln.Addr().(*net.TCPAddr).String(), Protocol: protocol,
			TLS:   TLSConfig{CAFile: pki.CAFile, CertFile: pki.ClientCert, KeyFile: pki.ClientKey, ALPN: []string{"x-amzn-mqtt-ca"}},
			Rules: []Rule{{Direction: DirOut, Topic: "sensors/#", QoS: 1, RemotePrefix: "gw1/"}},
		})
		select {
		case protos := <-hellos:
			if !slices.Equal(protos, []string{"x-amzn-mqtt-ca"}) {
				t.Fatalf("ClientHello ALPN = %q, want [x-amzn-mqtt-ca]", protos)
			}
		case <-time.After(waitTime):
			t.Fatal("no TLS ClientHello from the bridge")
		}
	})
}

func brokerMessage(topic, payload string, qos byte) broker.Message {
	return broker.Message{Topic: topic, Payload: []byte(payload), QoS: qos}
}

// TestBridgeQoS0: QoS 0 messages are dropped (and counted) while the
// upstream is away, unless their rule queues them on disk.
func TestBridgeQoS0(t *testing.T) {
	up := mosquittotest.Start(t, mosquittotest.Config{Persistence: true})
	got := up.Collect(t, "gw1/#", 1, "checker")
	l := startLocal(t, t.TempDir(), ConnectionConfig{
		Name: "cloud", URL: up.URL(), ReconnectMax: 2e9,
		Rules: []Rule{
			{Direction: DirOut, Topic: "live/#", QoS: 1, RemotePrefix: "gw1/"},
			{Direction: DirOut, Topic: "kept/#", QoS: 1, RemotePrefix: "gw1/", QueueQoS0: true},
		},
	})
	l.cutUpstream(t, "cloud", up)

	const n = 50
	publishNumbered(t, l.addr, "live/t", 0, 1, n)
	publishNumbered(t, l.addr, "kept/t", 0, 1, n)
	st := l.waitStats(t, "cloud", "queued QoS 0", func(s ConnectionStats) bool { return s.QueueMessages == n })
	if st.DroppedQoS0 != n {
		t.Fatalf("dropped %d QoS 0 messages, want %d: %+v", st.DroppedQoS0, n, st)
	}
	up.Start()
	ms := got.WaitCount(t, n, waitTime)
	for _, m := range ms {
		if m.Topic != "gw1/kept/t" || m.QoS != 0 {
			t.Fatalf("upstream got %+v, want only gw1/kept/t at QoS 0", m)
		}
	}
	checkNumbered(t, payloads(ms), 1, n)
}
