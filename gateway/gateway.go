package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/mqttsn"
)

// Gateway is the MQTT-SN gateway in front of a broker.
type Gateway struct {
	cfg    Config
	broker *broker.Server
	log    *slog.Logger

	ctx    context.Context // until Shutdown
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu         sync.Mutex
	clients    map[peer]*client   // by where the client talks from
	byID       map[string]*client // by MQTT-SN client id
	transports []Transport
	saved      map[string]*topicTable     // topic ids of persistent sessions while their clients are away
	anonymous  *broker.LocalClient        // publishes QoS -1 messages
	common     atomic.Pointer[predefined] // the predefined topic ids of every client, for QoS -1
	lost       []ClientInfo               // clients lost lately, oldest first (status.go)

	metrics  metrics
	sendBufs sync.Pool // *[]byte, for encoding outgoing datagrams
}

// peer is where a client talks from: a transport address, or a node behind
// a forwarder at that address (specification §5.5). Messages to a node go
// to the forwarder, encapsulated with the node's id.
type peer struct {
	tr   Transport
	addr Addr
	fwd  bool   // behind a forwarder: node is the Wireless Node Id
	node string // the node id's bytes, opaque
}

func (p peer) String() string {
	if !p.fwd {
		return string(p.addr)
	}
	return fmt.Sprintf("%s node %X", p.addr, p.node)
}

// LogValue logs a peer as its String, with any slog handler.
func (p peer) LogValue() slog.Value { return slog.StringValue(p.String()) }

// metrics are the gateway's counters.
type metrics struct {
	received, sent     atomic.Int64
	malformed          atomic.Int64 // datagrams that did not decode
	unexpected         atomic.Int64 // messages out of place: from unknown peers, in the wrong state
	oversized          atomic.Int64
	rateLimited        atomic.Int64 // dropped by the per-address limit
	clientsConnected   atomic.Int64
	clientsLost        atomic.Int64 // keep-alive, sleep or retransmission gave up
	droppedSleepBuffer atomic.Int64
	qosMinus1          atomic.Int64
	in, out            packetCounts // decoded messages by type, a forwarder's by the type inside
}

// Stats is a snapshot of the gateway's counters.
type Stats struct {
	Received, Sent, Malformed, Unexpected, Oversized  int64
	ClientsConnected, ClientsLost, DroppedSleepBuffer int64
	QoSMinus1                                         int64
	RateLimited                                       int64 // datagrams dropped by packets_per_second
	// PacketsIn and PacketsOut count messages by type name ("PUBLISH"),
	// those to and from forwarders by the type they carry.
	PacketsIn, PacketsOut map[string]int64
}

// Stats returns the counters.
func (g *Gateway) Stats() Stats {
	m := &g.metrics
	return Stats{Received: m.received.Load(), Sent: m.sent.Load(), Malformed: m.malformed.Load(),
		Unexpected: m.unexpected.Load(), Oversized: m.oversized.Load(),
		ClientsConnected: m.clientsConnected.Load(), ClientsLost: m.clientsLost.Load(),
		DroppedSleepBuffer: m.droppedSleepBuffer.Load(), QoSMinus1: m.qosMinus1.Load(),
		RateLimited: m.rateLimited.Load(), PacketsIn: m.in.byName(), PacketsOut: m.out.byName()}
}

// New builds a gateway whose clients become sessions of b.
func New(cfg Config, b *broker.Server, log *slog.Logger) (*Gateway, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("gateway config: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := &Gateway{cfg: cfg, broker: b, log: log, clients: map[peer]*client{}, byID: map[string]*client{}}
	common := newPredefined(cfg.PredefinedTopics, "")
	g.common.Store(&common)
	g.ctx, g.cancel = context.WithCancel(context.Background())
	if err := g.loadSessions(); err != nil { // persist.go
		return nil, err
	}
	anon, _, err := b.Connect(broker.LocalConfig{ClientID: cfg.ClientIDPrefix + "sngate-gateway-qos-1", CleanSession: true})
	if err != nil {
		return nil, fmt.Errorf("gateway: attach to the broker: %w", err)
	}
	g.anonymous = anon
	return g, nil
}

// Serve reads and handles messages from tr until Shutdown or until tr
// fails. It returns nil after Shutdown.
func (g *Gateway) Serve(tr Transport) error {
	g.mu.Lock()
	if g.ctx.Err() != nil {
		g.mu.Unlock()
		tr.Close()
		return nil
	}
	g.transports = append(g.transports, tr)
	g.mu.Unlock()
	if g.cfg.AdvertiseInterval > 0 {
		g.wg.Add(1)
		go g.advertise(tr)
	}
	// Bad input is dropped here, before any client state is touched; the
	// limiter and the log throttles belong to this loop alone.
	var (
		limit                               = newLimiter(g.rateFor(tr), time.Now())
		logLimited, logMalformed, logTooBig logThrottle
	)
	buf := make([]byte, mqttsn.MaxMessageLen)
	for {
		n, from, err := tr.Receive(buf)
		if err != nil && !errors.Is(err, ErrTooLong) {
			if g.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("gateway: %v: %w", tr, err)
		}
		now := time.Now()
		if !limit.allow(from, now) {
			g.metrics.rateLimited.Add(1)
			if n, ok := logLimited.tick(now); ok {
				g.log.Warn("RATE-LIMITED: datagrams dropped", "transport", tr, "from", from,
					"packets_per_second", g.cfg.packetsPerSecond(), "dropped", n)
			}
			continue
		}
		if err != nil { // ErrTooLong
			g.metrics.oversized.Add(1)
			if n, ok := logTooBig.tick(now); ok {
				g.log.Info("oversized datagrams dropped", "transport", tr, "from", from, "dropped", n)
			}
			continue
		}
		g.metrics.received.Add(1)
		p, err := mqttsn.Decode(buf[:n])
		if err != nil {
			g.metrics.malformed.Add(1)
			if n, ok := logMalformed.tick(now); ok {
				g.log.Info("malformed datagrams dropped", "transport", tr, "from", from, "err", err, "dropped", n)
			}
			continue
		}
		at := peer{tr: tr, addr: from}
		if e, ok := p.(*mqttsn.Encapsulated); ok {
			// From a forwarder: the client is the node behind it.
			at.fwd, at.node, p = true, string(e.NodeID), e.Message
		}
		g.metrics.in[p.Type()].Add(1)
		g.handle(at, p)
	}
}

// rateFor is the per-address limit for tr: packets_per_second, or none on
// a paced transport.
func (g *Gateway) rateFor(tr Transport) int {
	if p, ok := tr.(Paced); ok && p.Paced() {
		return 0
	}
	return g.cfg.packetsPerSecond()
}

// Shutdown stops serving. Clients are detached from the broker without
// their wills (the gateway, not the sensors, is going away); persistent
// sessions stay in the broker.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.mu.Lock()
	g.cancel()
	for _, tr := range g.transports {
		tr.Close()
	}
	clients := make([]*client, 0, len(g.clients))
	for _, c := range g.clients {
		clients = append(clients, c)
	}
	g.mu.Unlock()
	for _, c := range clients {
		c.end(false)
	}
	g.anonymous.Disconnect(false)
	done := make(chan struct{})
	go func() { g.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// handle dispatches one decoded message.
func (g *Gateway) handle(from peer, p mqttsn.Packet) {
	switch p := p.(type) {
	case *mqttsn.SearchGW:
		g.send(from, &mqttsn.GWInfo{GatewayID: g.cfg.GatewayID})
		return
	case *mqttsn.Advertise, *mqttsn.GWInfo:
		return // another gateway, or a client answering for one
	case *mqttsn.Connect:
		g.connect(from, p)
		return
	case *mqttsn.Publish:
		if p.QoS == mqttsn.QoSMinus1 {
			g.publishQoSMinus1(from, p)
			return
		}
	}
	g.mu.Lock()
	c := g.clients[from]
	g.mu.Unlock()
	if c == nil {
		if ping, ok := p.(*mqttsn.Pingreq); ok && ping.ClientID != "" {
			if c = g.sleeperByID(ping.ClientID); c != nil { // a sleeper waking from a new address
				g.move(c, from)
			}
		}
	}
	if c == nil {
		g.metrics.unexpected.Add(1)
		g.log.Debug("message from an unknown peer", "from", from, "type", p.Type())
		if p.Type() != mqttsn.TypeDisconnect {
			g.send(from, &mqttsn.Disconnect{}) // "connect again" (specification §6.12)
		}
		return
	}
	c.handle(p)
}

// send encodes and sends p to a peer; to a node behind a forwarder, p goes
// encapsulated with the node's id.
func (g *Gateway) send(to peer, p mqttsn.Packet) {
	typ := p.Type()
	if to.fwd {
		p = &mqttsn.Encapsulated{NodeID: []byte(to.node), Message: p}
	}
	// Encode into a pooled buffer: a fan-out sends thousands of datagrams,
	// and the transport is done with the bytes when Send returns.
	bp, _ := g.sendBufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	defer g.sendBufs.Put(bp)
	b, err := mqttsn.Append((*bp)[:0], p)
	if err != nil {
		g.log.Error("cannot encode", "type", p.Type(), "err", err)
		return
	}
	*bp = b
	if err := to.tr.Send(to.addr, b); err != nil {
		g.log.Debug("send failed", "to", to, "err", err)
		return
	}
	g.metrics.sent.Add(1)
	g.metrics.out[typ].Add(1)
}

// publishQoSMinus1 publishes a "publish without connection" message through
// the gateway's own broker session (specification §6.8).
func (g *Gateway) publishQoSMinus1(from peer, p *mqttsn.Publish) {
	var name string
	switch p.TopicIDType {
	case mqttsn.TopicShort:
		name = mqttsn.ShortTopicName(p.TopicID)
	case mqttsn.TopicPredefined:
		name = g.common.Load().byID[p.TopicID]
	}
	if name == "" { // nobody to answer: drop (reference §7, pitfall 8)
		g.metrics.unexpected.Add(1)
		return
	}
	g.metrics.qosMinus1.Add(1)
	msg := broker.Message{Topic: name, Payload: append([]byte(nil), p.Data...), Retain: p.Retain}
	if err := g.anonymous.Publish(g.ctx, msg); err != nil {
		g.log.Debug("QoS -1 publish failed", "from", from, "err", err)
	}
}

func (g *Gateway) sleeperByID(id string) *client {
	g.mu.Lock()
	c := g.byID[id]
	if c == nil {
		g.mu.Unlock()
		return g.wakeStored(id) // asleep when the gateway stopped: persist.go
	}
	defer g.mu.Unlock()
	if !c.sleeping() {
		return nil
	}
	return c
}

// move re-keys a client that talks from a new address.
func (g *Gateway) move(c *client, to peer) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.clients[c.peer()] == c {
		delete(g.clients, c.peer())
	}
	c.setPeer(to)
	g.clients[to] = c
}

// forget removes c from the tables if it is still there.
func (g *Gateway) forget(c *client) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.clients[c.peer()] == c {
		delete(g.clients, c.peer())
	}
	if g.byID[c.id] == c {
		delete(g.byID, c.id)
	}
}

// advertise broadcasts ADVERTISE every AdvertiseInterval.
func (g *Gateway) advertise(tr Transport) {
	defer g.wg.Done()
	b, _ := mqttsn.Marshal(&mqttsn.Advertise{GatewayID: g.cfg.GatewayID,
		Duration: uint16(g.cfg.AdvertiseInterval / time.Second)})
	tick := time.NewTicker(g.cfg.AdvertiseInterval)
	defer tick.Stop()
	for {
		if err := tr.Broadcast(b); err != nil {
			g.log.Debug("ADVERTISE failed", "transport", tr, "err", err)
		}
		select {
		case <-g.ctx.Done():
			return
		case <-tick.C:
		}
	}
}
