package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sngate/sngate/bridge/queue"
	"github.com/sngate/sngate/bridge/upstream"
	"github.com/sngate/sngate/broker"
)

// volatileBuffer bounds the QoS 0 messages not queued on disk that wait for
// the sender while connected.
const volatileBuffer = 1024

// inboundBuffer bounds the messages from upstream waiting to be published
// locally.
const inboundBuffer = 256

// maxPendingQoS0 bounds the QoS 0 messages (of queue_qos0 rules) handed to
// the queue and not yet on disk: their publishers do not wait for the
// disk, so a fast one could otherwise pile them up in memory.
const maxPendingQoS0 = 10000

// connectTimeout bounds one connection attempt.
const connectTimeout = 30 * time.Second

// connection is one bridge connection: a local in-process client, a disk
// queue for the out rules, an upstream client, and the goroutines that
// move messages between them (run, the inbound publisher, the status
// publisher).
type connection struct {
	ctx   context.Context // the bridge's: ends at shutdown
	cfg   ConnectionConfig
	log   *slog.Logger
	rules atomic.Pointer[ruleSet] // replaced by Reload (reload.go)

	q     *queue.Queue // nil without out rules
	up    upstream.Client
	local *broker.LocalClient

	// volatile holds QoS 0 messages that are not queued on disk.
	volatile chan queue.Record
	// inbound holds messages from upstream for the inbound publisher.
	inbound chan inboundMessage

	// events from callbacks (upstream acks, queue removals) to run.
	evMu   sync.Mutex
	events []event
	evWake chan struct{}

	connected   atomic.Bool
	lastError   atomic.Pointer[string]
	pendingQoS0 atomic.Int64
	counters    counters
	wg          sync.WaitGroup // the inbound publisher

	// qos0Done is the done of every queued QoS 0 append (it releases a
	// pendingQoS0 slot): made once, not per message.
	qos0Done func(error)
}

// counters are the connection's cumulative figures.
type counters struct {
	sent, received, rejected, droppedQoS0, reconnects atomic.Uint64
}

func newConnection(ctx context.Context, cfg ConnectionConfig, srv *broker.Server, queuePath string, log *slog.Logger) (*connection, error) {
	c := &connection{
		ctx:      ctx,
		cfg:      cfg,
		log:      log,
		volatile: make(chan queue.Record, volatileBuffer),
		inbound:  make(chan inboundMessage, inboundBuffer),
		evWake:   make(chan struct{}, 1),
	}
	c.qos0Done = func(error) { c.pendingQoS0.Add(-1) }
	rules := newRuleSet(cfg.Rules)
	c.rules.Store(rules)

	up, err := c.newUpstream()
	if err != nil {
		return nil, err
	}
	c.up = up

	if len(rules.out) > 0 {
		policy, err := queue.ParsePolicy(cfg.Queue.Policy)
		if err != nil {
			return nil, err
		}
		c.q, err = queue.Open(queuePath, queue.Options{
			MaxMessages:  cfg.Queue.MaxMessages,
			MaxBytes:     cfg.Queue.MaxBytes,
			Policy:       policy,
			CommitWindow: cfg.Queue.CommitWindow,
			Logger:       log,
		})
		if err != nil {
			return nil, err
		}
		if st := c.q.Stats(); st.Messages > 0 {
			log.Info("queue holds messages from before the start: they go first", "messages", st.Messages, "bytes", st.Bytes, "oldest", st.Oldest)
		}
	}

	lc := broker.LocalConfig{
		ClientID:     "sngate-bridge-" + cfg.Name,
		CleanSession: true,
		NoLocal:      true, // what came in is never sent back out here
		Trusted:      true,
	}
	if c.q != nil {
		lc.Accept = c.accept
	}
	c.local, _, err = srv.Connect(lc)
	if err != nil {
		c.close()
		return nil, fmt.Errorf("attach to the broker: %w", err)
	}
	if err := c.subscribeLocally(ctx, filtersOf(rules.out, localFilter)); err != nil {
		c.close()
		return nil, err
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.publishInbound(ctx)
	}()
	return c, nil
}

// subscribeLocally subscribes the bridge's broker client to the out rules'
// local filters, at QoS 2: a message then arrives at its published QoS, so
// a QoS 1/2 publisher waits for the disk queue; the rule's QoS applies
// upstream.
func (c *connection) subscribeLocally(ctx context.Context, filters []string) error {
	if len(filters) == 0 {
		return nil
	}
	subs := make([]broker.Subscription, len(filters))
	for i, f := range filters {
		subs[i] = broker.Subscription{Filter: f, QoS: 2}
	}
	if _, err := c.local.Subscribe(ctx, subs...); err != nil {
		return fmt.Errorf("subscribe locally: %w", err)
	}
	return nil
}

// newUpstream makes the upstream client from the configuration.
func (c *connection) newUpstream() (upstream.Client, error) {
	cfg := c.cfg
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	password := cfg.Password
	if cfg.PasswordFile != "" {
		b, err := os.ReadFile(cfg.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("read password file: %w", err)
		}
		password = strings.TrimRight(string(b), "\r\n")
	}
	ucfg := upstream.Config{
		Protocol:       upstream.Protocol(cfg.Protocol),
		URL:            u,
		ClientID:       cfg.ClientID,
		Username:       cfg.Username,
		Password:       password,
		KeepAlive:      cfg.KeepAlive,
		CleanStart:     cfg.CleanStart,
		SessionExpiry:  cfg.SessionExpiry,
		ConnectTimeout: connectTimeout,
		Logger:         c.log,
		OnMessage:      c.fromUpstream,
	}
	if ucfg.Protocol != upstream.MQTT5 {
		ucfg.SessionExpiry = 0
	}
	if useTLS, _ := upstream.SchemeTLS(u.Scheme); useTLS {
		if ucfg.TLS, err = cfg.TLS.tlsConfig(u); err != nil {
			return nil, err
		}
	}
	return upstream.New(ucfg)
}

// accept takes a message over from the broker (broker.LocalConfig.Accept):
// it runs on the publisher's goroutine with the bridge's session locked,
// so it only appends to the queue, whose fsync then completes done and
// lets the publisher be acknowledged.
func (c *connection) accept(d broker.Delivery, done func(error)) {
	if d.Retain {
		// A retained message sent because the bridge subscribed (at each
		// start): not new, it went out when it was published.
		done(nil)
		return
	}
	m := d.Message
	r, remote, ok := matchOut(c.rules.Load().out, m.Topic)
	if !ok {
		done(nil)
		return
	}
	rec := queue.Record{Topic: remote, Payload: m.Payload, QoS: min(m.QoS, r.QoS), Retain: r.Retain && m.Retain}
	if m.QoS == 0 && !r.QueueQoS0 {
		c.sendVolatile(rec)
		done(nil)
		return
	}
	if m.QoS == 0 {
		if c.pendingQoS0.Add(1) > maxPendingQoS0 {
			c.pendingQoS0.Add(-1)
			c.counters.droppedQoS0.Add(1)
			done(nil)
			return
		}
		c.q.Append(rec, c.qos0Done)
		done(nil)
		return
	}
	c.q.Append(rec, func(err error) {
		if errors.Is(err, queue.ErrRefused) {
			// refuse-new: counted and logged by the queue; the publisher
			// is still acknowledged, for the local subscribers have it.
			err = nil
		}
		done(err)
	})
}

// sendVolatile hands a QoS 0 message that is not queued on disk to the
// sender, or drops it (counted) while the upstream is away or the sender
// is behind.
func (c *connection) sendVolatile(rec queue.Record) {
	if !c.connected.Load() {
		c.counters.droppedQoS0.Add(1)
		return
	}
	select {
	case c.volatile <- rec:
	default:
		c.counters.droppedQoS0.Add(1)
	}
}

// detach stops taking messages from the broker.
func (c *connection) detach() {
	if c.local != nil {
		c.local.Disconnect(false)
	}
}

// close releases everything; run must have ended.
func (c *connection) close() error {
	c.detach()
	c.wg.Wait()
	var errs []error
	if c.up != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, c.up.Close(ctx))
		cancel()
	}
	if c.q != nil {
		errs = append(errs, c.q.Close())
	}
	return errors.Join(errs...)
}
