package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/sngate/sngate/broker/packets"
)

// ErrClientClosed is returned by a LocalClient after Disconnect, or after
// another client took its client id over.
var ErrClientClosed = errors.New("broker: client disconnected")

// LocalConfig describes an in-process client: an MQTT-SN client of the
// gateway, or the bridge. It goes through the same sessions, ACL and
// persistence as a network client; it has no password, being trusted code.
type LocalConfig struct {
	ClientID     string
	CleanSession bool
	Username     string // for ACL rules; "" is anonymous
	Will         *Message

	// OnMessage receives every message for the client. It is called on the
	// publisher's goroutine with the session locked, so it must not block
	// or call back into the LocalClient: queue the delivery and return.
	// QoS 1 and 2 deliveries stay in flight, and count against the window,
	// until Ack. After a reconnect of a persistent session, unacknowledged
	// deliveries come again with Dup set.
	OnMessage func(Delivery)

	// Accept, when set, takes the place of OnMessage for a client that
	// keeps what it receives durably on its own, as the bridge does in its
	// disk queue. Each message is handed over once, at once, and the broker
	// keeps nothing for the client: no window, no queue, no packet ids. The
	// publisher is acknowledged only after done(nil); done(err) fails the
	// publish as a failed store write does (a network client is closed
	// unacknowledged and sends again, LocalClient.Publish returns err). done
	// must be called exactly once, from any goroutine. Accept is called like
	// OnMessage, with the session locked: it must not block. It needs a
	// clean session.
	Accept func(d Delivery, done func(error))

	// NoLocal keeps the client's own messages from being delivered back to
	// it (MQTT 5's No Local), so that a bridge cannot send a message it
	// brought in from upstream back out on the same connection.
	NoLocal bool

	// Trusted skips the ACL: the bridge relays what its own configured
	// rules say, whatever rules bind the users of the broker.
	Trusted bool
}

// Delivery is one message for a LocalClient.
type Delivery struct {
	Message  *Message // shared: do not modify
	QoS      byte     // the delivered QoS
	Retain   bool     // set for retained messages sent on subscription
	Dup      bool
	PacketID uint16 // for Ack; 0 at QoS 0
}

// Subscription is a topic filter with the highest QoS wanted.
type Subscription struct {
	Filter string
	QoS    byte
}

// LocalClient is an attached in-process client.
type LocalClient struct {
	srv    *Server
	sess   *session
	gen    uint64
	who    clientIdentity
	will   atomic.Pointer[Message]
	handle func(Delivery)
	accept func(Delivery, func(error))
	// from marks the client's messages when NoLocal is set.
	from    *session
	trusted bool
	closed  atomic.Bool
}

var scratchPool = sync.Pool{New: func() any { return new(routeScratch) }}

// Connect attaches an in-process client. It reports whether a persistent
// session was present. An existing client with the same id is disconnected.
func (s *Server) Connect(cfg LocalConfig) (*LocalClient, bool, error) {
	if cfg.ClientID == "" {
		return nil, false, errors.New("broker: in-process client needs a client id")
	}
	if !cfg.CleanSession && len(cfg.ClientID) > maxPersistentClientID {
		return nil, false, fmt.Errorf("broker: client id of %d bytes is too long for a persistent session (at most %d)", len(cfg.ClientID), maxPersistentClientID)
	}
	if s.ctx.Err() != nil {
		return nil, false, ErrServerClosed
	}
	if cfg.Accept != nil && !cfg.CleanSession {
		return nil, false, errors.New("broker: an in-process client with Accept needs a clean session")
	}
	who := clientIdentity{ClientID: cfg.ClientID, Username: cfg.Username, HasUsername: cfg.Username != ""}
	c := &LocalClient{srv: s, who: who, handle: cfg.OnMessage, accept: cfg.Accept, trusted: cfg.Trusted}
	c.will.Store(cfg.Will)
	if c.handle == nil {
		c.handle = func(Delivery) {}
	}
	var present bool
	c.sess, c.gen, present = s.attach(cfg.ClientID, cfg.CleanSession, who, cfg.Trusted)
	if cfg.NoLocal {
		c.from = c.sess
	}
	s.metrics.clientsConnected.Add(1)
	var out outlet = c
	if c.accept != nil {
		out = acceptOutlet{c}
	}
	c.sess.resume(out, c.gen)
	return c, present, nil
}

// Publish routes m from this client and returns once it is accepted: at
// QoS 1 and 2, once it is durable wherever it must be kept. A message the
// ACL denies is dropped and counted, and Publish returns nil, as a network
// client gets its PUBACK.
func (c *LocalClient) Publish(ctx context.Context, m Message) error {
	if c.closed.Load() {
		return ErrClientClosed
	}
	if m.QoS > 2 {
		return errors.New("broker: QoS must be 0, 1 or 2")
	}
	if err := validName(m.Topic); err != nil {
		return err
	}
	if !c.trusted && !c.srv.acl.Load().CanPublish(c.who, m.Topic) {
		c.srv.metrics.aclDenied.Add(1)
		return nil
	}
	msg := m
	msg.from = c.from
	if msg.Payload == nil {
		msg.Payload = []byte{}
	}
	c.srv.metrics.messagesIn.Add(1)
	sc := scratchPool.Get().(*routeScratch)
	defer scratchPool.Put(sc)
	if msg.QoS == 0 {
		c.srv.route(&msg, nil, sc)
		return nil
	}
	done := make(chan error, 1)
	t := newTicket(func(err error) { done <- err })
	c.srv.route(&msg, t, sc)
	t.release()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Subscribe adds subscriptions and returns one code per filter: the
// granted QoS, or 0x80 where the ACL refused. Retained messages matching
// the new subscriptions are delivered before it returns.
func (c *LocalClient) Subscribe(ctx context.Context, subs ...Subscription) ([]byte, error) {
	if c.closed.Load() {
		return nil, ErrClientClosed
	}
	filters := make([]packets.Subscription, len(subs))
	codes := make([]byte, len(subs))
	for i, sub := range subs {
		if err := validFilter(sub.Filter); err != nil {
			return nil, err
		}
		filters[i] = packets.Subscription{Filter: sub.Filter, QoS: min(sub.QoS, 2)}
		codes[i] = filters[i].QoS
		if !c.trusted && !c.srv.acl.Load().CanSubscribe(c.who, sub.Filter) {
			codes[i] = 0x80
			c.srv.metrics.aclDenied.Add(1)
		}
	}
	done := make(chan error, 1)
	t := newTicket(func(err error) { done <- err })
	if !c.sess.subscribe(c.gen, filters, codes, t) {
		t.release()
		return nil, ErrClientClosed
	}
	t.release()
	select {
	case err := <-done:
		if err != nil {
			return nil, err
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	c.srv.sendRetained(c.sess, filters, codes, nil)
	return codes, nil
}

// Unsubscribe removes subscriptions; unknown filters are no error.
func (c *LocalClient) Unsubscribe(ctx context.Context, filters ...string) error {
	if c.closed.Load() {
		return ErrClientClosed
	}
	done := make(chan error, 1)
	t := newTicket(func(err error) { done <- err })
	if !c.sess.unsubscribe(c.gen, filters, t) {
		t.release()
		return ErrClientClosed
	}
	t.release()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Ack completes a QoS 1 or 2 delivery: the client has the message.
func (c *LocalClient) Ack(packetID uint16) {
	c.sess.completeLocal(packetID)
}

// SetWill replaces the client's will; nil removes it. MQTT-SN clients
// change their will while connected (WILLTOPICUPD, WILLMSGUPD).
func (c *LocalClient) SetWill(w *Message) { c.will.Store(w) }

// Disconnect detaches the client. With publishWill its will is published,
// as for a network client lost without DISCONNECT.
func (c *LocalClient) Disconnect(publishWill bool) {
	if c.closed.Swap(true) {
		return
	}
	c.srv.metrics.clientsConnected.Add(-1)
	if will := c.will.Load(); publishWill && will != nil && c.srv.acl.Load().CanPublish(c.who, will.Topic) {
		sc := scratchPool.Get().(*routeScratch)
		c.srv.metrics.messagesIn.Add(1)
		c.srv.route(will, nil, sc)
		scratchPool.Put(sc)
	}
	c.srv.release(c.sess, c.gen)
}

// The outlet methods.

func (c *LocalClient) publish(d delivery, dup bool) bool {
	c.handle(Delivery{Message: d.msg, QoS: d.qos, Retain: d.retain, Dup: dup, PacketID: d.pid})
	return true
}

func (c *LocalClient) pubrel(uint16) {} // an in-process client completes QoS 2 with Ack alone

func (c *LocalClient) kick() {
	if !c.closed.Swap(true) {
		c.srv.metrics.clientsConnected.Add(-1)
	}
}

// acceptOutlet is the outlet of a LocalClient with Accept: the session
// hands it every delivery at once, with the publisher's ticket.
type acceptOutlet struct{ c *LocalClient }

func (o acceptOutlet) publish(d delivery, dup bool) bool { return o.c.publish(d, dup) }
func (o acceptOutlet) pubrel(pid uint16)                 { o.c.pubrel(pid) }
func (o acceptOutlet) kick()                             { o.c.kick() }

// accept hands m over; the ticket, if any, waits for the client's done.
func (o acceptOutlet) accept(m *Message, qos byte, retain bool, t *ticket) {
	done := noWait
	if t != nil && qos > 0 {
		t.pending.Add(1)
		done = t.finish
	}
	o.c.accept(Delivery{Message: m, QoS: qos, Retain: retain}, done)
}

// noWait is the done of a hand-over nobody waits for.
func noWait(error) {}

// completeLocal finishes an in-process client's delivery, QoS 1 or 2, in
// one step.
func (s *session) completeLocal(pid uint16) {
	s.mu.Lock()
	i := s.inflightIndex(pid)
	if i >= 0 && (s.inflight[i].state == stateAwaitRec || s.inflight[i].state == stateReleasing) {
		s.inflight[i].state = stateAwaitComp
	}
	qos2 := i >= 0 && s.inflight[i].qos == 2
	s.mu.Unlock()
	if i >= 0 {
		s.acked(pid, qos2)
	}
}
