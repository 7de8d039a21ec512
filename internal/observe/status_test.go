package observe

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sngate/sngate/bridge"
	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/gateway"
)

// fakeGateway is a gateway with a few clients, one of them hostile, and a
// bridge whose Sent counter the test moves.
type fakeGateway struct {
	sent, received atomic.Uint64
}

const (
	evilID    = "<script>x</script>"
	evilTopic = `"><img src=x onerror=alert(1)>`
)

func (f *fakeGateway) sources() Sources {
	now := time.Now()
	return Sources{
		Broker: func() broker.Stats {
			return broker.Stats{ClientsConnected: 3, Sessions: 7, MessagesIn: 1234567, MessagesOut: 42, Retained: 9}
		},
		Gateway: func() gateway.Stats {
			return gateway.Stats{Received: int64(f.received.Load()), Sent: 20, Malformed: 2,
				PacketsIn:  map[string]int64{"CONNECT": 4, "PUBLISH": 11},
				PacketsOut: map[string]int64{"CONNACK": 4, "PUBACK": 11}}
		},
		Clients: func() []gateway.ClientInfo {
			return []gateway.ClientInfo{
				{ID: evilID, Transport: "udp [::]:1884", Address: "192.0.2.7:40001", State: gateway.StateActive,
					KeepAlive: time.Minute, Since: now.Add(-5 * time.Minute), LastHeard: now.Add(-3 * time.Second),
					Topics: []string{"sensors/t1", evilTopic}},
				{ID: "boiler-7", Transport: "serial uart0", Address: "uart0", State: gateway.StateAsleep,
					SleepFor: 5 * time.Minute, Since: now.Add(-2 * time.Hour), LastHeard: now.Add(-time.Minute),
					Topics: []string{"sensors/t1"}, Queued: 3},
				{ID: "gone-1", Transport: "udp [::]:1884", State: gateway.StateLost, Since: now.Add(-time.Minute),
					Topics: []string{"only/lost"}, Reason: "keep-alive timeout"},
			}
		},
		Bridges: func() []bridge.ConnectionStats {
			return []bridge.ConnectionStats{
				{Name: "cloud", Connected: true, Sent: f.sent.Load(), Received: 8},
				{Name: "backup", QueueMessages: 5, QueueBytes: 1536, OldestAge: 90 * time.Second, Dropped: 2,
					LastError: "dial tcp: connection refused <b>"},
			}
		},
		Ports: func() []PortStats { return []PortStats{{Name: "uart0", Framing: "slip", Up: true, Frames: 12}} },
	}
}

func serve(t *testing.T, h http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

func TestStatusPage(t *testing.T) {
	var f fakeGateway
	h := Handler(f.sources(), Health{}, Status{Version: "v9.8.7", Started: time.Now().Add(-26 * time.Hour)})
	hist := h.(*handler).hist
	for _, n := range []uint64{0, 10, 15, 40} { // three intervals
		f.sent.Store(n)
		f.received.Store(2 * n)
		hist.sample()
	}
	rec := serve(t, h, "/")
	if rec.Code != 200 {
		t.Fatalf("GET /: %d %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	body := rec.Body.String()
	for _, want := range []string{
		"version v9.8.7", "up 1d 2h",
		`&lt;script&gt;x&lt;/script&gt;`, // the client id, escaped
		`&#34;&gt;&lt;img src=x onerror=alert(1)&gt;`,
		`<span class="badge st-active">active</span>`,
		`<span class="badge st-asleep">asleep</span>`,
		`<span class="badge st-lost">lost</span>`,
		"keep-alive timeout", "sleeps 5m", "keep-alive 1m", "5m ago", "192.0.2.7:40001", "serial uart0",
		`<td class="wrap">sensors/t1</td><td class="num">2</td>`, // used by two connected clients
		`<td class="id">cloud</td>`, `<span class="badge up">connected</span>`,
		`<td class="id">backup</td>`, `<span class="badge down">disconnected</span>`,
		"1.5 KiB", "1m 30s", "connection refused &lt;b&gt;",
		"1\u202f234\u202f567", // broker messages in
		"<td>PUBLISH</td>", `<td class="id">uart0</td>`,
		`<meta http-equiv="refresh" content="10">`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	// Each client row carries its own state's badge (the counts at the top
	// show the same badges, so the page as a whole would not tell).
	rows := regexp.MustCompile(`(?s)<tr class="client">.*?</tr>`).FindAllString(body, -1)
	if len(rows) != 3 {
		t.Fatalf("%d client rows, want 3", len(rows))
	}
	for i, want := range []string{`st-active">active<`, `st-asleep">asleep<`, `st-lost">lost<`} {
		if !strings.Contains(rows[i], `<span class="badge `+want) {
			t.Errorf("client row %d lacks the badge %q:\n%s", i, want, rows[i])
		}
	}
	for _, unwanted := range []string{"<script", "<img", "refused <b>", "only/lost"} {
		if strings.Contains(body, unwanted) {
			t.Errorf("the page has %q", unwanted)
		}
	}
	// Sparklines: the gateway's and cloud's have three points; backup's
	// counter never moved, so its line is flat at the bottom.
	lines := regexp.MustCompile(`<svg class="spark"[^>]*>.*?<polyline points="([0-9., ]+)"/></svg>`).FindAllStringSubmatch(body, -1)
	if len(lines) != 3 {
		t.Fatalf("%d sparklines, want 3 (gateway, cloud, backup)", len(lines))
	}
	for _, l := range lines {
		if n := len(strings.Fields(l[1])); n != 3 {
			t.Errorf("sparkline %q has %d points, want 3", l[1], n)
		}
	}
	if !strings.Contains(body, "messages sent per 10s: last 25, peak 25 over 3 samples") {
		t.Error("cloud's sparkline title is wrong")
	}
}

func TestStatusPageWithoutSources(t *testing.T) {
	h := Handler(Sources{}, Health{}, Status{})
	rec := serve(t, h, "/")
	if rec.Code != 200 {
		t.Fatalf("GET / with no sources: %d %s", rec.Code, rec.Body)
	}
	for _, absent := range []string{`id="gateway"`, `id="clients"`, `id="bridges"`, `id="broker"`, "version"} {
		if strings.Contains(rec.Body.String(), absent) {
			t.Errorf("the page has %q without a source for it", absent)
		}
	}
	// A gateway without clients yet, and no sample: no sparkline.
	h = Handler(Sources{Gateway: func() gateway.Stats { return gateway.Stats{} },
		Clients: func() []gateway.ClientInfo { return nil },
		Bridges: func() []bridge.ConnectionStats { return nil }}, Health{}, Status{})
	body := serve(t, h, "/").Body.String()
	for _, want := range []string{"No MQTT-SN client has connected.", "collecting…", `id="topics"`, "No bridge configured."} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
}

func TestStatusOtherPaths(t *testing.T) {
	h := Handler(Sources{}, Health{}, Status{})
	for _, path := range []string{"/index.html", "/status", "/metrics/x", "/favicon.ico"} {
		if code := serve(t, h, path).Code; code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, code)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d, want 405", rec.Code)
	}
}

func TestStatusTooManyClients(t *testing.T) {
	clients := make([]gateway.ClientInfo, maxClientsShown+7)
	for i := range clients {
		clients[i] = gateway.ClientInfo{ID: "c", State: gateway.StateActive, Topics: []string{string(rune('a'+i%26)) + "/" + strings.Repeat("x", i)}}
	}
	p := buildPage(Sources{Clients: func() []gateway.ClientInfo { return clients }}, Status{}, newHistory(Sources{}, 0, 0), time.Now())
	if len(p.Clients) != maxClientsShown || p.MoreClients != 7 {
		t.Errorf("%d clients shown and %d more, want %d and 7", len(p.Clients), p.MoreClients, maxClientsShown)
	}
	if len(p.Topics) != maxTopicsShown || p.MoreTopics != len(clients)-maxTopicsShown {
		t.Errorf("%d topics shown and %d more", len(p.Topics), p.MoreTopics)
	}
	if p.States[0] != (stateCount{gateway.StateActive, len(clients)}) {
		t.Errorf("states %v: all clients are active", p.States)
	}
}
