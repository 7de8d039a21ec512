// Package observe serves sngate's state to machines, Prometheus metrics at
// /metrics and a health check at /healthz, and to people, a status page at
// /, on an HTTP listener that is off unless configured. It reads the Stats
// of each part on every request, so the parts keep their own counters and
// know nothing of Prometheus or HTML.
package observe

import (
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sngate/sngate/bridge"
	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/gateway"
	"github.com/sngate/sngate/internal/storage"
)

// PortStats is a serial port's state, whatever its framing.
type PortStats struct {
	Name, Framing  string
	Up             bool
	Outages        int
	Frames         uint64 // good frames read
	BadFrames      uint64 // checksum errors, cut or malformed frames
	Sent, SendErrs uint64
}

// Sources are the parts whose Stats the metrics and the status page read;
// a nil one is left out.
type Sources struct {
	Broker  func() broker.Stats
	Store   func() storage.Stats
	Gateway func() gateway.Stats
	// Clients are the MQTT-SN clients, connected and recently lost, for
	// the clients gauge and the status page's tables.
	Clients func() []gateway.ClientInfo
	Bridges func() []bridge.ConnectionStats
	Ports   func() []PortStats
}

// clientStates are the states of a connected client, in the order the
// status page lists them; a lost client is no longer a current one.
var clientStates = []string{gateway.StateActive, gateway.StateAwake, gateway.StateAsleep, gateway.StateConnecting}

// collector turns Sources into metrics at each scrape.
type collector struct {
	src Sources
	// transports are those that ever had a client, so that a transport
	// whose last client left reports 0 rather than a series that vanishes.
	// Transports come from the configuration, so the set stays small.
	mu         sync.Mutex
	transports map[string]bool
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("sngate_"+name, help, labels, nil)
}

var (
	dBrokerClients   = desc("broker_clients_connected", "Clients connected to the broker (network and in-process).")
	dBrokerSessions  = desc("broker_sessions", "Sessions the broker holds, persistent ones included.")
	dBrokerMessages  = desc("broker_messages_total", "Application messages through the broker.", "direction")
	dBrokerBytes     = desc("broker_bytes_total", "Bytes on the broker's network connections.", "direction")
	dBrokerDrops     = desc("broker_dropped_total", "Messages the broker dropped, by reason.", "reason")
	dBrokerRetained  = desc("broker_retained_messages", "Retained messages held.")
	dStoreCommits    = desc("store_commits_total", "Durable (fsync'ed) transactions of the broker's store.")
	dStoreCommitSecs = desc("store_commit_seconds_total", "Time spent committing, fsync included; divide by commits for the latency.")
	dStoreErrors     = desc("store_commit_errors_total", "Store transactions that failed.")
	dGatewayPackets  = desc("gateway_packets_total", "MQTT-SN messages by type (undecodable datagrams are in gateway_dropped_total{reason=\"malformed\"}).", "direction", "type")
	dGatewayClients  = desc("gateway_clients", "MQTT-SN clients connected, by transport and state.", "transport", "state")
	dGatewayLost     = desc("gateway_clients_lost_total", "MQTT-SN clients lost (keep-alive or sleep timer).")
	dGatewayDrops    = desc("gateway_dropped_total", "MQTT-SN datagrams or messages dropped, by reason.", "reason")
	dBridgeConnected = desc("bridge_connected", "1 while the bridge connection is up.", "bridge")
	dBridgeQueueMsgs = desc("bridge_queue_messages", "Messages in the bridge's disk queue.", "bridge")
	dBridgeQueueB    = desc("bridge_queue_bytes", "Topic and payload bytes in the bridge's disk queue.", "bridge")
	dBridgeOldest    = desc("bridge_queue_oldest_age_seconds", "Age of the oldest queued message.", "bridge")
	dBridgeSent      = desc("bridge_sent_total", "Messages the upstream acknowledged.", "bridge")
	dBridgeReceived  = desc("bridge_received_total", "Messages from the upstream published locally.", "bridge")
	dBridgeDropped   = desc("bridge_dropped_total", "Messages the bridge dropped, by reason.", "bridge", "reason")
	dBridgeReconn    = desc("bridge_reconnects_total", "Reconnections to the upstream.", "bridge")
	dPortUp          = desc("serial_port_up", "1 while the serial port is open.", "port", "framing")
	dPortOutages     = desc("serial_port_outages_total", "Times the serial port was lost (unplugged, read error).", "port")
	dPortFrames      = desc("serial_frames_total", "Frames read from the serial port.", "port", "result")
	dPortSent        = desc("serial_sent_total", "Frames written to the serial port.", "port", "result")
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	if c.src.Broker != nil {
		st := c.src.Broker()
		gauge(dBrokerClients, float64(st.ClientsConnected))
		gauge(dBrokerSessions, float64(st.Sessions))
		counter(dBrokerMessages, float64(st.MessagesIn), "in")
		counter(dBrokerMessages, float64(st.MessagesOut), "out")
		counter(dBrokerBytes, float64(st.BytesIn), "in")
		counter(dBrokerBytes, float64(st.BytesOut), "out")
		counter(dBrokerDrops, float64(st.DroppedQueueFull), "queue_full")
		counter(dBrokerDrops, float64(st.DroppedSlowClient), "slow_client")
		counter(dBrokerDrops, float64(st.DroppedRetained), "retained_limit")
		counter(dBrokerDrops, float64(st.ACLDenied), "acl_denied")
		counter(dBrokerDrops, float64(st.ProtocolErrors), "protocol_error")
		gauge(dBrokerRetained, float64(st.Retained))
	}
	if c.src.Store != nil {
		st := c.src.Store()
		counter(dStoreCommits, float64(st.Commits))
		counter(dStoreCommitSecs, st.CommitTime.Seconds())
		counter(dStoreErrors, float64(st.CommitErrors))
	}
	if c.src.Gateway != nil {
		st := c.src.Gateway()
		for typ, n := range st.PacketsIn {
			counter(dGatewayPackets, float64(n), "in", typ)
		}
		for typ, n := range st.PacketsOut {
			counter(dGatewayPackets, float64(n), "out", typ)
		}
		counter(dGatewayLost, float64(st.ClientsLost))
		for _, d := range gatewayDrops(st) {
			counter(dGatewayDrops, float64(d.N), d.Reason)
		}
	}
	if c.src.Clients != nil {
		for tr, byState := range c.clientCounts(c.src.Clients()) {
			for _, state := range clientStates {
				gauge(dGatewayClients, float64(byState[state]), tr, state)
			}
		}
	}
	if c.src.Bridges != nil {
		for _, st := range c.src.Bridges() {
			n := st.Name
			gauge(dBridgeConnected, boolFloat(st.Connected), n)
			gauge(dBridgeQueueMsgs, float64(st.QueueMessages), n)
			gauge(dBridgeQueueB, float64(st.QueueBytes), n)
			gauge(dBridgeOldest, st.OldestAge.Seconds(), n)
			counter(dBridgeSent, float64(st.Sent), n)
			counter(dBridgeReceived, float64(st.Received), n)
			counter(dBridgeDropped, float64(st.DroppedOldest), n, "drop_oldest")
			counter(dBridgeDropped, float64(st.Refused), n, "refuse_new")
			counter(dBridgeDropped, float64(st.Rejected), n, "upstream_refused")
			counter(dBridgeDropped, float64(st.DroppedQoS0), n, "qos0_offline")
			counter(dBridgeReconn, float64(st.Reconnects), n)
		}
	}
	if c.src.Ports != nil {
		for _, st := range c.src.Ports() {
			gauge(dPortUp, boolFloat(st.Up), st.Name, st.Framing)
			counter(dPortOutages, float64(st.Outages), st.Name)
			counter(dPortFrames, float64(st.Frames), st.Name, "good")
			counter(dPortFrames, float64(st.BadFrames), st.Name, "bad")
			counter(dPortSent, float64(st.Sent), st.Name, "ok")
			counter(dPortSent, float64(st.SendErrs), st.Name, "error")
		}
	}
}

// clientCounts counts the connected clients by transport and state, with
// every transport that ever had a client.
func (c *collector) clientCounts(clients []gateway.ClientInfo) map[string]map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.transports == nil {
		c.transports = map[string]bool{}
	}
	out := map[string]map[string]int{}
	for tr := range c.transports {
		out[tr] = map[string]int{}
	}
	for _, cl := range clients {
		if cl.State == gateway.StateLost {
			continue
		}
		if out[cl.Transport] == nil {
			out[cl.Transport] = map[string]int{}
			c.transports[cl.Transport] = true
		}
		out[cl.Transport][cl.State]++
	}
	return out
}

// reasonCount is one reason of a drop counter, shared by the metrics and
// the status page so that both name reasons alike.
type reasonCount struct {
	Reason string
	N      int64
}

// gatewayDrops are the gateway's drops by reason.
func gatewayDrops(st gateway.Stats) []reasonCount {
	return []reasonCount{{"malformed", st.Malformed}, {"oversized", st.Oversized}, {"unexpected", st.Unexpected},
		{"rate_limited", st.RateLimited}, {"sleep_buffer_full", st.DroppedSleepBuffer}}
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
