package observe

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sngate/sngate/bridge"
	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/gateway"
	"github.com/sngate/sngate/internal/storage"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestMetricsAndHealth(t *testing.T) {
	var failing atomic.Pointer[error]
	src := Sources{
		Broker: func() broker.Stats { return broker.Stats{ClientsConnected: 4, MessagesIn: 10, DroppedQueueFull: 2} },
		Store:  func() storage.Stats { return storage.Stats{Commits: 8, CommitTime: 40 * time.Millisecond} },
		Gateway: func() gateway.Stats {
			return gateway.Stats{Received: 4, Sent: 5, ClientsConnected: 3, ClientsLost: 1, Malformed: 1,
				PacketsIn:  map[string]int64{"CONNECT": 2, "PUBLISH": 1},
				PacketsOut: map[string]int64{"CONNACK": 2, "PUBLISH": 3}}
		},
		Clients: func() []gateway.ClientInfo {
			return []gateway.ClientInfo{
				{ID: "a", Transport: "udp [::]:1884", State: gateway.StateActive},
				{ID: "b", Transport: "udp [::]:1884", State: gateway.StateAsleep},
				{ID: "c", Transport: "serial uart0", State: gateway.StateActive},
				{ID: "d", Transport: "serial uart0", State: gateway.StateLost},
			}
		},
		Bridges: func() []bridge.ConnectionStats {
			return []bridge.ConnectionStats{{Name: "cloud", Connected: false, QueueMessages: 5, QueueBytes: 120, OldestAge: 90 * time.Second, DroppedOldest: 7}}
		},
		Ports: func() []PortStats {
			return []PortStats{{Name: "uart0", Framing: "slip", Up: true, Frames: 12, BadFrames: 1}}
		},
	}
	h := Health{
		Checks: map[string]Check{
			"broker": func(context.Context) error {
				if e := failing.Load(); e != nil {
					return *e
				}
				return nil
			},
			"gateway": func(context.Context) error { return nil },
		},
		Degraded: func() []string { return []string{"bridge cloud: not connected"} },
	}
	srv, err := Listen(Config{Listen: "127.0.0.1:0"}, Handler(src, h, Status{}), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	base := "http://" + srv.Addr()

	code, body := get(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		"sngate_broker_clients_connected 4",
		`sngate_broker_messages_total{direction="in"} 10`,
		`sngate_broker_dropped_total{reason="queue_full"} 2`,
		"sngate_store_commits_total 8",
		"sngate_store_commit_seconds_total 0.04",
		`sngate_gateway_packets_total{direction="in",type="CONNECT"} 2`,
		`sngate_gateway_packets_total{direction="in",type="PUBLISH"} 1`,
		`sngate_gateway_packets_total{direction="out",type="PUBLISH"} 3`,
		`sngate_gateway_clients{state="active",transport="udp [::]:1884"} 1`,
		`sngate_gateway_clients{state="asleep",transport="udp [::]:1884"} 1`,
		`sngate_gateway_clients{state="awake",transport="udp [::]:1884"} 0`,
		`sngate_gateway_clients{state="active",transport="serial uart0"} 1`,
		`sngate_gateway_clients{state="asleep",transport="serial uart0"} 0`,
		"sngate_gateway_clients_lost_total 1",
		`sngate_gateway_dropped_total{reason="malformed"} 1`,
		`sngate_bridge_connected{bridge="cloud"} 0`,
		`sngate_bridge_queue_messages{bridge="cloud"} 5`,
		`sngate_bridge_queue_oldest_age_seconds{bridge="cloud"} 90`,
		`sngate_bridge_dropped_total{bridge="cloud",reason="drop_oldest"} 7`,
		`sngate_serial_port_up{framing="slip",port="uart0"} 1`,
		`sngate_serial_frames_total{port="uart0",result="bad"} 1`,
		"go_goroutines",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	for _, unwanted := range []string{
		`sngate_gateway_packets_total{direction="in"}`, // no unlabeled total beside the types
		`state="lost"`,              // lost clients are not current ones
		"\nsngate_gateway_clients ", // no unlabeled gauge
	} {
		if strings.Contains(body, unwanted) {
			t.Errorf("/metrics has %q", unwanted)
		}
	}

	code, body = get(t, base+"/healthz")
	if code != 200 || !strings.Contains(body, "broker: ok") || !strings.Contains(body, "degraded: bridge cloud: not connected") {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	lost := errors.New("probe lost")
	failing.Store(&lost)
	code, body = get(t, base+"/healthz")
	if code != 503 || !strings.Contains(body, "broker: failing: probe lost") {
		t.Fatalf("/healthz with a failing broker: %d %q", code, body)
	}
	if err := (&Config{Listen: "nowhere"}).Validate(); err == nil {
		t.Error("a listen address without a port was accepted")
	}
}
