package gateway

import (
	"sort"
	"sync/atomic"
	"time"

	"github.com/sngate/sngate/mqttsn"
)

// keepLost is how many lost clients Clients reports after they are gone,
// most recent first: enough for a status page to show which sensors went
// quiet, bounded so that churn cannot grow it.
const keepLost = 64

// Client states as Clients reports them.
const (
	StateConnecting = "connecting" // CONNECT with a will: the will exchange is not done
	StateActive     = "active"
	StateAsleep     = "asleep"
	StateAwake      = "awake" // asleep, and polling for its messages (PINGREQ)
	StateLost       = "lost"  // keep-alive, sleep timer or retransmissions gave up
)

// ClientInfo describes one MQTT-SN client for status pages and metrics.
type ClientInfo struct {
	ID        string
	Transport string // the transport's String, e.g. "udp [::]:1884"
	Address   string // where it talks from, a node behind a forwarder included
	State     string // one of the State constants
	KeepAlive time.Duration
	SleepFor  time.Duration // while asleep
	Since     time.Time     // connected, or lost
	LastHeard time.Time     // zero for a lost client
	Topics    []string      // the topic names it has ids for, sorted
	Queued    int           // messages waiting for it (buffered while asleep)
	Reason    string        // why it was lost
}

// Clients returns the connected clients, sorted by id, followed by the
// clients lost recently (at most keepLost, the latest first) that have not
// come back since.
func (g *Gateway) Clients() []ClientInfo {
	g.mu.Lock()
	cs := make([]*client, 0, len(g.byID))
	for _, c := range g.byID {
		cs = append(cs, c)
	}
	lost := append([]ClientInfo(nil), g.lost...)
	g.mu.Unlock()

	out := make([]ClientInfo, 0, len(cs)+len(lost))
	for _, c := range cs {
		if info, ok := c.info(); ok {
			out = append(out, info)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	for i := len(lost) - 1; i >= 0; i-- {
		out = append(out, lost[i])
	}
	return out
}

// info describes c; false once it is gone.
func (c *client) info() (ClientInfo, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var state string
	switch c.state {
	case stWillTopic, stWillMsg:
		state = StateConnecting
	case stActive:
		state = StateActive
	case stAsleep:
		state = StateAsleep
	case stAwake:
		state = StateAwake
	default:
		return ClientInfo{}, false
	}
	info := ClientInfo{ID: c.id, State: state, KeepAlive: c.keepAlive, Since: c.since,
		LastHeard: c.heard, Queued: len(c.queue)}
	if c.at.tr != nil {
		info.Transport, info.Address = c.at.tr.String(), c.at.String()
	}
	if state == StateAsleep || state == StateAwake {
		info.SleepFor = c.sleepFor
	}
	if c.topics != nil {
		info.Topics = make([]string, 0, len(c.topics.byName))
		for name := range c.topics.byName {
			info.Topics = append(info.Topics, name)
		}
		sort.Strings(info.Topics)
	}
	return info, true
}

// lose ends a client that stopped answering: counted, logged, its will
// published, and remembered for Clients.
func (c *client) lose(reason string) {
	c.g.log.Info("MQTT-SN client lost: "+reason, "client", c.id)
	c.g.metrics.clientsLost.Add(1)
	info, ok := c.info()
	c.end(true)
	if !ok {
		return
	}
	info.State, info.Reason, info.Since, info.LastHeard, info.Queued = StateLost, reason, time.Now(), time.Time{}, 0
	g := c.g
	g.mu.Lock()
	defer g.mu.Unlock()
	g.forgetLostLocked(c.id)
	if len(g.lost) == keepLost {
		g.lost = append(g.lost[:0], g.lost[1:]...)
	}
	g.lost = append(g.lost, info)
}

// forgetLostLocked drops id from the lost clients: it is back. g.mu is held.
func (g *Gateway) forgetLostLocked(id string) {
	for i := range g.lost {
		if g.lost[i].ID == id {
			g.lost = append(g.lost[:i], g.lost[i+1:]...)
			return
		}
	}
}

// packetCounts are messages by MQTT-SN message type, indexed by its byte.
type packetCounts [256]atomic.Int64

// byName returns the non-zero counts by type name.
func (p *packetCounts) byName() map[string]int64 {
	out := map[string]int64{}
	for t := range p {
		if n := p[t].Load(); n > 0 {
			out[mqttsn.MsgType(t).String()] = n
		}
	}
	return out
}
