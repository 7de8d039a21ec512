package upstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// libShutdownTimeout bounds waiting for paho.mqtt.golang to finish a
// connection we closed (it notices at once; the bound only keeps a
// library bug from hanging Connect or Close).
const libShutdownTimeout = 10 * time.Second

// mqtt311Client is the MQTT 3.1.1 Client, on paho.mqtt.golang. One
// mqtt.Client is used for the whole run, reconnected by Connect, so that
// its packet identifiers and store (store311) span connections.
type mqtt311Client struct {
	clientBase
	store *store311

	// guarded by c.mu:
	cli  mqtt.Client // created by the first Connect
	live *conn311    // the connection being made or up: the library's callbacks refer to it
	cur  *conn311    // the current connection, or the last one; nil before the first
}

// conn311 is one network connection.
type conn311 struct {
	ctx     context.Context // the Connect's: bounds dialling
	raw     net.Conn        // set when dialled (guarded by mqtt311Client.mu)
	link    *link
	acks    inOrderAcks
	libDone chan struct{} // closed when the library reported the loss
	once    sync.Once
}

func newMQTT311(cfg Config, ep endpoint) *mqtt311Client {
	c := &mqtt311Client{}
	c.init(cfg, ep)
	c.store = newStore311(c.notify)
	return c
}

// options are the library options of the run's client (clean: the
// throwaway client that discards a previous run's session).
func (c *mqtt311Client) options(clean bool, store mqtt.Store) *mqtt.ClientOptions {
	o := mqtt.NewClientOptions()
	o.AddBroker(c.ep.String()) // dialled by open, not the library
	o.SetCustomOpenConnectionFn(c.open)
	o.SetProtocolVersion(4)
	o.SetClientID(c.cfg.ClientID)
	if c.cfg.Username != "" {
		o.SetUsername(c.cfg.Username)
	}
	if c.cfg.Password != "" {
		o.SetPassword(c.cfg.Password)
	}
	o.SetCleanSession(clean)
	o.SetKeepAlive(c.cfg.KeepAlive)
	o.SetConnectTimeout(c.cfg.ConnectTimeout)
	o.SetWriteTimeout(c.cfg.writeTimeout()) // also bounds Publish's hand-off to the writer
	o.SetAutoReconnect(false)               // the caller reconnects
	o.SetConnectRetry(false)
	o.SetResumeSubs(false) // Connect subscribes every time
	o.SetOrderMatters(true)
	o.SetAutoAckDisabled(true)
	o.SetStore(store)
	// Not SetMaxResumePubInFlight: its helper goroutine in resume() reads
	// the client's stop channel unsynchronized, racing with the next
	// Connect (v1.5.1). Publish keeps at most MaxInflight messages in the
	// store, so resume() sends no more than that anyway.
	return o
}

// open dials for the library, within the current Connect's context.
func (c *mqtt311Client) open(*url.URL, mqtt.ClientOptions) (net.Conn, error) {
	c.mu.Lock()
	conn := c.live
	c.mu.Unlock()
	if conn == nil {
		return nil, ErrNotConnected
	}
	raw, err := c.ep.dial(conn.ctx, c.cfg.TLS)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	conn.raw = raw
	c.mu.Unlock()
	return deadlineConn{Conn: raw, timeout: c.cfg.writeTimeout()}, nil
}

func (c *mqtt311Client) Connect(ctx context.Context, subs []Subscription) (bool, error) {
	c.connMu.Lock()
	defer c.connMu.Unlock()
	c.mu.Lock()
	closed, prev, first := c.closed, c.cur, !c.established
	c.mu.Unlock()
	if closed {
		return false, c.errorf("connect", ErrClosed)
	}
	if prev != nil && !prev.link.ended() {
		return false, c.errorf("connect", errors.New("already connected"))
	}
	c.notify.start()

	ctx, cancel := context.WithTimeout(ctx, c.cfg.ConnectTimeout)
	defer cancel()
	defer context.AfterFunc(c.closeCtx, cancel)()

	conn := &conn311{ctx: ctx, link: newLink(), libDone: make(chan struct{})}
	c.mu.Lock()
	c.live = conn
	if c.cli == nil {
		o := c.options(c.cfg.CleanStart, c.store)
		o.SetDefaultPublishHandler(c.receive)
		o.SetConnectionLostHandler(c.connectionLost)
		c.cli = mqtt.NewClient(o)
	}
	cli := c.cli
	c.mu.Unlock()

	if first && !c.cfg.CleanStart {
		if err := c.discardSession(ctx, conn); err != nil {
			return false, c.errorf("connect: discarding the previous session", err)
		}
	}
	c.log.Debug("connecting", "clean_session", c.cfg.CleanStart)
	tok := cli.Connect()
	if err := c.await(ctx, conn, tok); err != nil {
		return false, c.errorf("connect", err)
	}
	if err := connectError(tok); err != nil {
		return false, c.errorf("connect", err)
	}
	present := tok.(*mqtt.ConnectToken).SessionPresent()
	c.mu.Lock()
	c.established = true
	c.mu.Unlock()
	// A clean session's Reset failed what was pending; those onDone run
	// before Connect returns.
	defer func() {
		if err := c.notify.barrier(ctx); err != nil {
			c.log.Debug("onDone callbacks still running as Connect returns", "err", err)
		}
	}()
	c.log.Debug("connected", "session_present", present, "pending", c.store.pendingCount())

	if len(subs) > 0 {
		if err := c.subscribe(ctx, cli, conn, subs); err != nil {
			conn.link.end(err)
			c.drop(conn)
			return false, err
		}
	}
	c.mu.Lock()
	c.cur, c.curLink = conn, conn.link
	c.mu.Unlock()
	return present, nil
}

// await waits for a library token within ctx. If ctx ends first, the
// connection is closed (aborting a handshake) and the token still awaited:
// the library completes it quickly once its connection is gone.
func (c *mqtt311Client) await(ctx context.Context, conn *conn311, tok mqtt.Token) error {
	select {
	case <-tok.Done():
		if ctx.Err() == nil {
			return nil
		}
	case <-ctx.Done():
	}
	c.drop(conn)
	select {
	case <-tok.Done():
	case <-time.After(libShutdownTimeout):
	}
	return ctx.Err()
}

// drop closes conn's network connection and, if the library had it up,
// waits until the library has reported the loss.
func (c *mqtt311Client) drop(conn *conn311) {
	c.mu.Lock()
	raw := conn.raw
	c.mu.Unlock()
	if raw != nil {
		raw.Close()
	}
	if c.cli.IsConnectionOpen() {
		select {
		case <-conn.libDone:
		case <-time.After(libShutdownTimeout):
		}
	}
}

// discardSession connects with a clean session and disconnects, so that
// the upstream forgets the previous run's session (and the packet
// identifiers it may still hold), using a throwaway library client.
func (c *mqtt311Client) discardSession(ctx context.Context, conn *conn311) error {
	wc := mqtt.NewClient(c.options(true, mqtt.NewMemoryStore()))
	tok := wc.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		c.mu.Lock()
		raw := conn.raw
		c.mu.Unlock()
		if raw != nil {
			raw.Close()
		}
		<-tok.Done() // the library's handshake has its own deadline too
	}
	if tok.Error() == nil {
		// Up, even if ctx ended meanwhile: take it down again.
		dctx, cancel := context.WithTimeout(context.Background(), libShutdownTimeout)
		defer cancel()
		disconnect311(dctx, wc)
	}
	c.mu.Lock()
	conn.raw = nil
	c.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	return connectError(tok)
}

// connectError is a connect token's error, a RefusedError for a CONNACK
// refusal.
func connectError(tok mqtt.Token) error {
	err := tok.Error()
	if err == nil {
		return nil
	}
	if rc := tok.(*mqtt.ConnectToken).ReturnCode(); rc >= 0x01 && rc <= 0x05 {
		return fmt.Errorf("refused by CONNACK: %w", &RefusedError{Reason: rc, Text: err.Error()})
	}
	return err
}

// disconnect311 sends DISCONNECT and waits (within ctx and
// libShutdownTimeout) until the library has shut the connection down:
// Disconnect may return before that.
func disconnect311(ctx context.Context, cli mqtt.Client) {
	quiesce := uint(1000)
	if d, ok := ctx.Deadline(); ok {
		quiesce = uint(max(0, min(time.Until(d), time.Second)).Milliseconds())
	}
	cli.Disconnect(quiesce)
	deadline := time.Now().Add(libShutdownTimeout)
	for cli.IsConnected() && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
}

func (c *mqtt311Client) subscribe(ctx context.Context, cli mqtt.Client, conn *conn311, subs []Subscription) error {
	filters := make(map[string]byte, len(subs))
	for _, s := range subs {
		filters[s.Filter] = max(filters[s.Filter], s.QoS)
	}
	tok := cli.SubscribeMultiple(filters, nil)
	if err := c.await(ctx, conn, tok); err != nil {
		return c.errorf("subscribe", err)
	}
	if err := tok.Error(); err != nil {
		return c.errorf("subscribe", err)
	}
	var refused []error
	granted := tok.(*mqtt.SubscribeToken).Result()
	for f := range filters {
		if q, ok := granted[f]; !ok || q >= 0x80 {
			refused = append(refused, fmt.Errorf("%q: %w", f, &RefusedError{Reason: 0x80, Text: "SUBACK failure"}))
		}
	}
	if len(refused) > 0 {
		return c.errorf("subscribe", errors.Join(refused...))
	}
	return nil
}

// Subscribe subscribes on the current connection.
func (c *mqtt311Client) Subscribe(ctx context.Context, subs []Subscription) error {
	conn, cli, err := c.current("subscribe")
	if err != nil {
		return err
	}
	return c.subscribe(ctx, cli, conn, subs)
}

// Unsubscribe unsubscribes on the current connection.
func (c *mqtt311Client) Unsubscribe(ctx context.Context, filters []string) error {
	conn, cli, err := c.current("unsubscribe")
	if err != nil {
		return err
	}
	tok := cli.Unsubscribe(filters...)
	if err := c.await(ctx, conn, tok); err != nil {
		return c.errorf("unsubscribe", err)
	}
	if err := tok.Error(); err != nil {
		return c.errorf("unsubscribe", err)
	}
	return nil
}

// current is the connection that is up and the library client, or
// ErrNotConnected / ErrClosed.
func (c *mqtt311Client) current(op string) (*conn311, mqtt.Client, error) {
	c.mu.Lock()
	conn, closed, cli := c.cur, c.closed, c.cli
	c.mu.Unlock()
	switch {
	case closed:
		return nil, nil, c.errorf(op, ErrClosed)
	case conn == nil || conn.link.ended() || !cli.IsConnectionOpen():
		return nil, nil, c.errorf(op, ErrNotConnected)
	}
	return conn, cli, nil
}

// receive passes an inbound PUBLISH to OnMessage (on the library's router
// goroutine, in order; SetOrderMatters). Message.Ack sends at once, so
// inOrderAcks holds acknowledgements back until the earlier messages are
// acknowledged too. An Ack after the connection ended is dropped by the
// library.
func (c *mqtt311Client) receive(_ mqtt.Client, msg mqtt.Message) {
	c.mu.Lock()
	conn := c.live
	c.mu.Unlock()
	if c.cfg.OnMessage == nil {
		c.log.Debug("message dropped: no OnMessage", "topic", msg.Topic())
		msg.Ack()
		return
	}
	m := Message{Topic: msg.Topic(), Payload: msg.Payload(), QoS: msg.Qos(), Retain: msg.Retained()}
	if m.QoS == 0 || conn == nil {
		var once sync.Once
		c.cfg.OnMessage(m, func() { once.Do(msg.Ack) })
		return
	}
	c.cfg.OnMessage(m, conn.acks.add(msg.Ack))
}

// connectionLost is the library's report that the connection it had up
// has ended (not called for Disconnect).
func (c *mqtt311Client) connectionLost(_ mqtt.Client, err error) {
	c.mu.Lock()
	conn := c.live
	c.mu.Unlock()
	if conn == nil {
		return
	}
	if c.cfg.CleanStart {
		// The next connection starts a clean session: nothing pending
		// will be sent again.
		c.store.dropPending("connection lost with a clean session")
	}
	_ = c.notify.barrier(context.Background())
	if !conn.link.ended() {
		c.log.Debug("connection ended", "err", err)
	}
	conn.link.end(c.errorf("connection lost", err))
	conn.once.Do(func() { close(conn.libDone) })
}

func (c *mqtt311Client) Publish(ctx context.Context, m Message, onDone func(error)) error {
	if onDone == nil {
		onDone = func(error) {}
	}
	c.pubMu.Lock()
	defer c.pubMu.Unlock()
	conn, cli, err := c.current("publish")
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return c.errorf("publish", err)
	}
	if err := checkMessage(m); err != nil {
		c.notify.complete(onDone, err)
		return nil
	}
	// The library keeps the payload for retransmission without copying.
	payload := bytes.Clone(m.Payload)
	if payload == nil {
		payload = []byte{}
	}
	if m.QoS == 0 {
		// The token completes once the packet is written.
		tok := cli.Publish(m.Topic, 0, m.Retain, payload)
		select {
		case <-tok.Done():
		case <-ctx.Done():
			return c.errorf("publish", ctx.Err())
		}
		if err := tok.Error(); err != nil {
			return c.errorf("publish", err)
		}
		c.notify.complete(onDone, nil)
		return nil
	}
	if err := c.store.waitRoom(ctx, c.cfg.MaxInflight, conn.link.lost); err != nil {
		return c.errorf("publish: waiting for room in flight", err)
	}
	c.store.setSlot(onDone)
	tok := cli.Publish(m.Topic, m.QoS, m.Retain, payload)
	if !c.store.takeSlot() {
		<-tok.Done() // completed: the library did not take the message
		return c.errorf("publish", fmt.Errorf("not sent: %w", tok.Error()))
	}
	// In the store: onDone follows the acknowledgement, here or after the
	// next Connect's retransmission, or the message is failed. If the
	// library gave up handing it to the writer (its write timeout), the
	// connection is stuck: end it, so that the next one sends it in order.
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			c.log.Debug("publish not written; closing the connection", "topic", m.Topic, "err", err)
			c.mu.Lock()
			raw := conn.raw
			c.mu.Unlock()
			raw.Close()
		}
	default:
	}
	return nil
}

func (c *mqtt311Client) Close(ctx context.Context) error {
	if !c.markClosed() {
		return nil
	}
	c.connMu.Lock()
	defer c.connMu.Unlock()
	c.mu.Lock()
	conn, cli := c.cur, c.cli
	c.mu.Unlock()

	var errs []error
	if conn != nil {
		conn.link.end(c.errorf("connection", ErrClosed))
	}
	if cli != nil && cli.IsConnected() {
		disconnect311(ctx, cli)
		if cli.IsConnected() {
			errs = append(errs, c.errorf("close", errors.New("the library did not shut the connection down in time")))
		}
	}
	c.store.dropPending("client closed")
	if err := c.notify.close(ctx); err != nil {
		errs = append(errs, c.errorf("close: waiting for onDone callbacks", err))
	}
	return errors.Join(errs...)
}
