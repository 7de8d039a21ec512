package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/paho"
)

const (
	// pahoPacketTimeout is paho's own bound on waiting for CONNACK, SUBACK
	// and a Receive Maximum slot. The caller's ctx is the real bound (with
	// ConnectTimeout), so paho's is set out of the way.
	pahoPacketTimeout = 24 * time.Hour
	// ackInterval is how often paho sends the manual acknowledgements that
	// are due, in receive order. It bounds inbound throughput to
	// receiveMaximum messages per interval.
	ackInterval = 20 * time.Millisecond
	// receiveMaximum is the MQTT 5 Receive Maximum we announce: how many
	// QoS 1 and 2 messages the upstream may have in flight to us, waiting
	// for the caller's ack. paho allocates a channel of this size per
	// connection (65535 by default).
	receiveMaximum = 256
)

// mqtt5Client is the MQTT 5 Client, on paho.golang. paho needs a new
// paho.Client per network connection; session state (session5) is shared by
// all of them for the run.
type mqtt5Client struct {
	clientBase
	sess *session5

	cur *conn5 // the current connection, or the last one; nil before the first (c.mu)
}

// conn5 is one network connection and what the CONNACK said about it.
type conn5 struct {
	pc        *paho.Client
	raw       net.Conn
	link      *link
	ready     chan struct{} // closed when paho's Connect has returned: see receive
	maxQoS    byte
	retain    bool
	maxPacket uint32 // 0: no limit
}

func newMQTT5(cfg Config, ep endpoint) *mqtt5Client {
	c := &mqtt5Client{}
	c.init(cfg, ep)
	c.sess = newSession5(c.notify)
	c.sess.SetDebugLogger(libLogger{l: c.log.With("lib", "paho.golang"), level: "debug"})
	c.sess.SetErrorLogger(libLogger{l: c.log.With("lib", "paho.golang"), level: "error"})
	return c
}

func (c *mqtt5Client) Connect(ctx context.Context, subs []Subscription) (bool, error) {
	c.connMu.Lock()
	defer c.connMu.Unlock()
	c.mu.Lock()
	closed, prev, first := c.closed, c.cur, !c.established
	c.mu.Unlock()
	if closed {
		return false, c.errorf("connect", ErrClosed)
	}
	if prev != nil {
		if !prev.link.ended() {
			return false, c.errorf("connect", errors.New("already connected"))
		}
		<-prev.pc.Done() // ended links are ended after this anyway
	}
	c.notify.start()

	ctx, cancel := context.WithTimeout(ctx, c.cfg.ConnectTimeout)
	defer cancel()
	defer context.AfterFunc(c.closeCtx, cancel)()

	raw, err := c.ep.dial(ctx, c.cfg.TLS)
	if err != nil {
		return false, c.errorf("connect", err)
	}
	conn := &conn5{raw: raw, link: newLink(), ready: make(chan struct{})}
	conn.pc = paho.NewClient(paho.ClientConfig{
		ClientID: c.cfg.ClientID,
		// paho writes from several goroutines (publishers, acks, pings);
		// packetConn serializes whole packets, each in one write.
		Conn:    newPacketConn(deadlineConn{Conn: raw, timeout: c.cfg.writeTimeout()}),
		Session: c.sess,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			<-conn.ready
			c.receive(pr)
			return true, nil
		}},
		OnClientError: func(err error) {
			c.ended(conn, fmt.Errorf("upstream %s: connection lost: %w", c.ep, err))
		},
		OnServerDisconnect: func(d *paho.Disconnect) {
			c.ended(conn, c.errorf("connection lost", disconnectError(d)))
		},
		EnableManualAcknowledgment: true,
		SendAcksInterval:           ackInterval,
		PacketTimeout:              pahoPacketTimeout,
	})
	lib := c.log.With("lib", "paho.golang")
	conn.pc.SetDebugLogger(libLogger{l: lib, level: "debug"})
	conn.pc.SetErrorLogger(libLogger{l: lib, level: "error"})

	expiry, rm := uint32(seconds(c.cfg.SessionExpiry)), uint16(receiveMaximum)
	cp := &paho.Connect{
		ClientID:   c.cfg.ClientID,
		KeepAlive:  uint16(seconds(c.cfg.KeepAlive)),
		CleanStart: first || c.cfg.CleanStart,
		Properties: &paho.ConnectProperties{SessionExpiryInterval: &expiry, ReceiveMaximum: &rm},
	}
	if c.cfg.Username != "" {
		cp.UsernameFlag, cp.Username = true, c.cfg.Username
	}
	if c.cfg.Password != "" {
		cp.PasswordFlag, cp.Password = true, []byte(c.cfg.Password)
	}
	c.log.Debug("connecting", "clean_start", cp.CleanStart, "session_expiry", expiry)
	ca, err := conn.pc.Connect(ctx, cp)
	close(conn.ready)
	if err != nil {
		// paho has closed the connection, but does not tell the session
		// if it fails after ConAckReceived (retransmission failed): a
		// no-op otherwise.
		_ = c.sess.ConnectionLost(nil)
		return false, c.errorf("connect", connackError(ca, err))
	}
	c.mu.Lock()
	c.established = true
	c.mu.Unlock()
	// Messages the CONNACK made final (no session) have been failed in
	// ConAckReceived; their onDone run before Connect returns, so that the
	// caller knows what to send again before it sends anything new.
	defer func() {
		if err := c.notify.barrier(ctx); err != nil {
			c.log.Debug("onDone callbacks still running as Connect returns", "err", err)
		}
	}()

	conn.maxQoS, conn.retain = 2, true
	if p := ca.Properties; p != nil {
		if p.MaximumQoS != nil {
			conn.maxQoS = *p.MaximumQoS
		}
		conn.retain = p.RetainAvailable
		if p.MaximumPacketSize != nil {
			conn.maxPacket = *p.MaximumPacketSize
		}
	}
	c.log.Debug("connected", "session_present", ca.SessionPresent, "maximum_qos", conn.maxQoS,
		"retain_available", conn.retain, "maximum_packet_size", conn.maxPacket, "receive_maximum", receiveMaximumOf(ca))

	if len(subs) > 0 {
		if err := c.subscribe(ctx, conn.pc, subs); err != nil {
			conn.link.end(err)
			_ = conn.pc.Disconnect(&paho.Disconnect{ReasonCode: 0})
			<-conn.pc.Done()
			return false, err
		}
	}
	c.mu.Lock()
	c.cur, c.curLink = conn, conn.link
	c.mu.Unlock()
	return ca.SessionPresent, nil
}

func (c *mqtt5Client) subscribe(ctx context.Context, pc *paho.Client, subs []Subscription) error {
	s := &paho.Subscribe{Subscriptions: make([]paho.SubscribeOptions, len(subs))}
	for i, sub := range subs {
		s.Subscriptions[i] = paho.SubscribeOptions{Topic: sub.Filter, QoS: sub.QoS}
	}
	sa, err := pc.Subscribe(ctx, s)
	if sa != nil {
		var refused []error
		for i, r := range sa.Reasons {
			if r >= 0x80 && i < len(subs) {
				refused = append(refused, fmt.Errorf("%q: %w", subs[i].Filter, &RefusedError{Reason: r, Text: subackText(sa)}))
			}
		}
		if len(refused) > 0 {
			return c.errorf("subscribe", errors.Join(refused...))
		}
	}
	if err != nil {
		return c.errorf("subscribe", err)
	}
	if len(sa.Reasons) != len(subs) {
		return c.errorf("subscribe", fmt.Errorf("SUBACK has %d reason codes for %d filters", len(sa.Reasons), len(subs)))
	}
	return nil
}

// Subscribe subscribes on the current connection.
func (c *mqtt5Client) Subscribe(ctx context.Context, subs []Subscription) error {
	conn, err := c.current("subscribe")
	if err != nil {
		return err
	}
	return c.subscribe(ctx, conn.pc, subs)
}

// Unsubscribe unsubscribes on the current connection. A filter the
// upstream had no subscription for (reason 0x11) is no error.
func (c *mqtt5Client) Unsubscribe(ctx context.Context, filters []string) error {
	conn, err := c.current("unsubscribe")
	if err != nil {
		return err
	}
	ua, err := conn.pc.Unsubscribe(ctx, &paho.Unsubscribe{Topics: filters})
	if ua != nil {
		var refused []error
		for i, r := range ua.Reasons {
			if r >= 0x80 && i < len(filters) {
				refused = append(refused, fmt.Errorf("%q: %w", filters[i], &RefusedError{Reason: r}))
			}
		}
		if len(refused) > 0 {
			return c.errorf("unsubscribe", errors.Join(refused...))
		}
	}
	if err != nil {
		return c.errorf("unsubscribe", err)
	}
	return nil
}

// current is the connection that is up, or ErrNotConnected / ErrClosed.
func (c *mqtt5Client) current(op string) (*conn5, error) {
	c.mu.Lock()
	conn, closed := c.cur, c.closed
	c.mu.Unlock()
	switch {
	case closed:
		return nil, c.errorf(op, ErrClosed)
	case conn == nil || conn.link.ended():
		return nil, c.errorf(op, ErrNotConnected)
	}
	return conn, nil
}

func subackText(sa *paho.Suback) string {
	if sa.Properties == nil {
		return ""
	}
	return sa.Properties.ReasonString
}

// receive passes an inbound PUBLISH to OnMessage (on paho's goroutine, in
// order). paho's manual acknowledgement (Client.Ack) only marks the
// message; paho sends the marked ones every ackInterval, stopping at the
// first unmarked one, so acknowledgements go out in receive order.
//
// paho v0.23.0 starts reading the connection before it resets its
// acknowledgement tracker in Connect: a message that arrives with the
// CONNACK (an un-acknowledged one the upstream sends again on a resumed
// session) can be wiped from the tracker, even after it was marked. So
// messages are held until paho's Connect has returned (conn.ready), and a
// message Client.Ack no longer finds is acknowledged through the session
// state directly, if its connection is still the current one (possibly out
// of order, but it is only ever the first messages of a connection). Acks
// for an ended connection's messages are dropped: the upstream sends those
// again on a resumed session.
func (c *mqtt5Client) receive(pr paho.PublishReceived) {
	p := pr.Packet
	gen := c.sess.generation()
	ack := func() {
		if p.QoS == 0 {
			return
		}
		err := pr.Client.Ack(p)
		if errors.Is(err, paho.ErrPacketNotFound) {
			err = c.sess.ackIfCurrent(gen, p.Packet())
			c.log.Debug("acknowledged through the session state", "topic", p.Topic, "err", err)
		}
		if err != nil {
			c.log.Debug("acknowledgement not sent", "topic", p.Topic, "err", err)
		}
	}
	if c.cfg.OnMessage == nil {
		c.log.Debug("message dropped: no OnMessage", "topic", p.Topic)
		ack()
		return
	}
	var once sync.Once
	c.cfg.OnMessage(Message{Topic: p.Topic, Payload: p.Payload, QoS: p.QoS, Retain: p.Retain}, func() { once.Do(ack) })
}

// ended ends conn's link once paho has shut the connection down (its
// goroutines are gone and the session knows), and once the onDone of
// messages the loss made final have run.
func (c *mqtt5Client) ended(conn *conn5, err error) {
	<-conn.pc.Done()
	_ = c.notify.barrier(context.Background())
	if !conn.link.ended() {
		c.log.Debug("connection ended", "err", err)
	}
	conn.link.end(err)
}

func (c *mqtt5Client) Publish(ctx context.Context, m Message, onDone func(error)) error {
	if onDone == nil {
		onDone = func(error) {}
	}
	c.pubMu.Lock()
	defer c.pubMu.Unlock()
	conn, err := c.current("publish")
	if err != nil {
		return err
	}
	if err := checkMessage(m); err != nil {
		c.notify.complete(onDone, err)
		return nil
	}
	p := &paho.Publish{Topic: m.Topic, QoS: min(m.QoS, conn.maxQoS), Retain: m.Retain && conn.retain, Payload: m.Payload}
	if conn.maxPacket > 0 {
		if n := packetSize(p); n > int64(conn.maxPacket) {
			c.notify.complete(onDone, &RefusedError{Reason: 0x95, Text: fmt.Sprintf(
				"not sent: %d bytes, over the upstream's Maximum Packet Size %d", n, conn.maxPacket)})
			return nil
		}
	}
	opts := paho.PublishOptions{Method: paho.PublishMethod_AsyncSend}
	if p.QoS == 0 {
		if _, err := conn.pc.PublishWithOptions(ctx, p, opts); err != nil {
			return c.publishError(err, onDone)
		}
		c.notify.complete(onDone, nil)
		return nil
	}
	c.sess.setSlot(onDone)
	_, err = conn.pc.PublishWithOptions(ctx, p, opts)
	if c.sess.takeSlot() {
		// In the session: onDone follows the acknowledgement, here or
		// after a resumed session's retransmission, or the session's end.
		if err != nil {
			c.log.Debug("publish not written; it stays in the session", "topic", m.Topic, "err", err)
		}
		return nil
	}
	if err == nil { // cannot happen: a QoS 1 or 2 PUBLISH always enters the session
		c.notify.complete(onDone, fmt.Errorf("%w: not added to the session", ErrNotAcknowledged))
		return nil
	}
	return c.publishError(err, onDone)
}

// publishError handles a PUBLISH paho did not send: arguments it says can
// never be sent are a refusal, anything else (no connection, ctx) is
// Publish's error.
func (c *mqtt5Client) publishError(err error, onDone func(error)) error {
	if errors.Is(err, paho.ErrInvalidArguments) {
		c.notify.complete(onDone, &RefusedError{Reason: 0x80, Text: "not sent: " + err.Error()})
		return nil
	}
	return c.errorf("publish", err)
}

func (c *mqtt5Client) Close(ctx context.Context) error {
	if !c.markClosed() {
		return nil
	}
	c.connMu.Lock()
	defer c.connMu.Unlock()
	c.mu.Lock()
	conn := c.cur
	c.mu.Unlock()

	var errs []error
	if conn != nil {
		if !conn.link.ended() {
			conn.link.end(c.errorf("connection", ErrClosed))
			// A DISCONNECT blocked in a write ends with the connection
			// when ctx does.
			stop := context.AfterFunc(ctx, func() { conn.raw.Close() })
			if err := conn.pc.Disconnect(&paho.Disconnect{ReasonCode: 0}); err != nil {
				errs = append(errs, c.errorf("disconnect", err))
			}
			stop()
		}
		select {
		case <-conn.pc.Done():
		case <-ctx.Done():
			conn.raw.Close()
			errs = append(errs, c.errorf("close", ctx.Err()))
		}
	}
	_ = c.sess.Close() // fails what is pending
	if err := c.notify.close(ctx); err != nil {
		errs = append(errs, c.errorf("close: waiting for onDone callbacks", err))
	}
	return errors.Join(errs...)
}

// disconnectError describes a server's DISCONNECT.
func disconnectError(d *paho.Disconnect) error {
	text := ""
	if d.Properties != nil {
		text = d.Properties.ReasonString
	}
	return fmt.Errorf("server sent DISCONNECT, reason code 0x%02x %s", d.ReasonCode, text)
}

// connackError adds the CONNACK's reason code to paho's error.
func connackError(ca *paho.Connack, err error) error {
	if ca == nil || ca.ReasonCode < 0x80 {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("no CONNACK in time: %w", err)
		}
		return err
	}
	text := ""
	if ca.Properties != nil {
		text = ca.Properties.ReasonString
	}
	return fmt.Errorf("refused by CONNACK: %w", &RefusedError{Reason: ca.ReasonCode, Text: text})
}

func receiveMaximumOf(ca *paho.Connack) int {
	if ca.Properties == nil || ca.Properties.ReceiveMaximum == nil {
		return 65535
	}
	return int(*ca.Properties.ReceiveMaximum)
}

// packetSize is the encoded size of p as a PUBLISH.
func packetSize(p *paho.Publish) int64 {
	var w countingWriter
	n, _ := p.Packet().WriteTo(&w)
	return n
}

type countingWriter struct{}

func (countingWriter) Write(b []byte) (int, error) { return len(b), nil }
