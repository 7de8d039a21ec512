package observe

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"net/http"
	"time"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/gateway"
)

// The status page is for a technician in front of the cabinet: one
// self-contained HTML page (inline CSS, no script, no external asset) that
// reloads itself. Client ids, topics and addresses come from the field,
// so html/template escapes them, and the Content-Security-Policy would
// stop a script that slipped through anyway.

//go:embed status.html
var statusHTML string

var statusTmpl = template.Must(template.New("status").Funcs(template.FuncMap{
	"num": formatCount, "bytes": formatBytes, "dur": formatDuration, "stateClass": stateClass,
}).Parse(statusHTML))

// Page limits: a gateway with thousands of clients still gets a page that
// loads; the rest is counted.
const (
	maxClientsShown = 500
	maxTopicsShown  = 200
	refreshSeconds  = 10
)

// page is what the template shows.
type page struct {
	Version, Uptime string
	Started         time.Time
	Refresh         int
	SampleEvery     string // "10s", for the sparklines' captions
	Window          string // what the sparklines cover: "10m"

	Gateway      *gatewayView // nil without a gateway
	States       []stateCount
	Clients      []clientView
	ClientsShown bool // Sources.Clients is set
	MoreClients  int
	Topics       []topicView
	MoreTopics   int
	Broker       *broker.Stats
	BrokerDrops  int64
	Bridges      []bridgeView
	BridgesShown bool // Sources.Bridges is set
	Ports        []PortStats
}

type gatewayView struct {
	In, Out, Drops int64
	DropReasons    []reasonCount
	Packets        []packetRow
	Spark          sparkline
}

type packetRow struct {
	Type    string
	In, Out int64
}

type stateCount struct {
	State string
	N     int
}

type clientView struct {
	gateway.ClientInfo
	SinceAgo, Heard string
	Timer           string // keep-alive or sleep duration
}

type topicView struct {
	Name    string
	Clients int
}

type bridgeView struct {
	Name                                string
	Connected                           bool
	QueueMessages, QueueBytes           int64
	Oldest                              time.Duration
	Sent, Received, Dropped, Reconnects uint64
	LastError                           string
	Spark                               sparkline
}

// statusPage renders the page from src at each request.
func statusPage(src Sources, st Status, hist *history) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		p := buildPage(src, st, hist, now)
		var buf bytes.Buffer
		if err := statusTmpl.Execute(&buf, p); err != nil {
			http.Error(w, fmt.Sprintf("status page: %v", err), http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		_, _ = w.Write(buf.Bytes())
	})
}

func buildPage(src Sources, st Status, hist *history, now time.Time) page {
	p := page{Version: st.Version, Started: st.Started, Uptime: formatDuration(now.Sub(st.Started)),
		Refresh:     refreshSeconds,
		SampleEvery: formatDuration(hist.every), Window: formatDuration(hist.every * time.Duration(hist.size))}
	if src.Gateway != nil {
		gs := src.Gateway()
		g := &gatewayView{In: gs.Received, Out: gs.Sent, DropReasons: gatewayDrops(gs),
			Spark: newSparkline(hist.values(seriesKey{kindGateway, ""}), hist.size, "messages in per "+p.SampleEvery)}
		for _, d := range g.DropReasons {
			g.Drops += d.N
		}
		types := map[string]bool{}
		for t := range gs.PacketsIn {
			types[t] = true
		}
		for t := range gs.PacketsOut {
			types[t] = true
		}
		for _, t := range sortedKeys(types) {
			g.Packets = append(g.Packets, packetRow{Type: t, In: gs.PacketsIn[t], Out: gs.PacketsOut[t]})
		}
		p.Gateway = g
	}
	if src.Clients != nil {
		p.ClientsShown = true
		addClients(&p, src.Clients(), now)
	}
	if src.Broker != nil {
		bs := src.Broker()
		p.Broker = &bs
		p.BrokerDrops = bs.DroppedQueueFull + bs.DroppedSlowClient + bs.DroppedRetained + bs.ACLDenied + bs.ProtocolErrors
	}
	if src.Bridges != nil {
		p.BridgesShown = true
		for _, b := range src.Bridges() {
			p.Bridges = append(p.Bridges, bridgeView{Name: b.Name, Connected: b.Connected,
				QueueMessages: b.QueueMessages, QueueBytes: b.QueueBytes, Oldest: b.OldestAge,
				Sent: b.Sent, Received: b.Received, Dropped: b.Dropped, Reconnects: b.Reconnects, LastError: b.LastError,
				Spark: newSparkline(hist.values(seriesKey{kindBridge, b.Name}), hist.size, "messages sent per "+p.SampleEvery)})
		}
	}
	if src.Ports != nil {
		p.Ports = src.Ports()
	}
	return p
}

// addClients fills the clients table, the counts by state and the topics
// in use by the connected clients.
func addClients(p *page, clients []gateway.ClientInfo, now time.Time) {
	counts := map[string]int{}
	topics := map[string]int{}
	for _, c := range clients {
		counts[c.State]++
		if c.State != gateway.StateLost {
			for _, t := range c.Topics {
				topics[t]++
			}
		}
		if len(p.Clients) == maxClientsShown {
			p.MoreClients++
			continue
		}
		v := clientView{ClientInfo: c, SinceAgo: ago(now, c.Since), Heard: ago(now, c.LastHeard)}
		switch {
		case c.State == gateway.StateLost:
		case c.SleepFor > 0:
			v.Timer = "sleeps " + formatDuration(c.SleepFor)
		case c.KeepAlive > 0:
			v.Timer = "keep-alive " + formatDuration(c.KeepAlive)
		}
		p.Clients = append(p.Clients, v)
	}
	for _, s := range append(clientStates[:len(clientStates):len(clientStates)], gateway.StateLost) {
		p.States = append(p.States, stateCount{State: s, N: counts[s]})
	}
	for _, name := range sortedKeys(topics) {
		if len(p.Topics) == maxTopicsShown {
			p.MoreTopics++
			continue
		}
		p.Topics = append(p.Topics, topicView{Name: name, Clients: topics[name]})
	}
}

// stateClass maps a state to its CSS class; anything unknown gets a
// neutral one, never text from the source.
func stateClass(state string) string {
	switch state {
	case gateway.StateActive, gateway.StateAwake, gateway.StateAsleep, gateway.StateConnecting, gateway.StateLost:
		return "st-" + state
	}
	return "st-other"
}

// ago says how long before now t was; "" for a zero t.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return formatDuration(now.Sub(t)) + " ago"
}
