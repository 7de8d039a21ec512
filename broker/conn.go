package broker

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/sngate/sngate/broker/auth"
	"github.com/sngate/sngate/broker/packets"
	"github.com/sngate/sngate/broker/persist"
)

// connectTimeout bounds the wait for the first packet of a new connection.
const connectTimeout = 10 * time.Second

// errDisconnect ends the read loop after a DISCONNECT.
var errDisconnect = errors.New("client sent DISCONNECT")

// conn is one network client: it reads and dispatches packets on its own
// goroutine and writes through its output buffer.
type conn struct {
	srv *Server
	nc  net.Conn
	// allowAnon is the listener's allow_anonymous; nil: clients without a
	// user name are admitted while there is no password file.
	allowAnon *bool
	out       output
	acks      ackQueue

	// Set by connect, then read-only.
	sess     *session
	gen      uint64
	who      clientIdentity
	perms    *auth.Perms // the ACL compiled for this client: see permissions
	permsACL *auth.ACL   // the ACL perms were compiled from
	// authed is what ReloadAuth checks against a new password file: set
	// once the client is admitted, read from the reloading goroutine.
	authed    atomic.Pointer[admission]
	keepAlive time.Duration
	will      *Message

	scratch    routeScratch
	pub        packets.PublishPacket // reused for every incoming PUBLISH
	lastTopic  string                // the topic of the last PUBLISH
	disconnect bool                  // DISCONNECT received: discard the will
	shut       atomic.Bool           // the server is shutting down
}

func newConn(s *Server, nc net.Conn, allowAnon *bool) *conn {
	c := &conn{srv: s, nc: nc, allowAnon: allowAnon}
	c.out = output{nc: nc, written: &s.metrics.bytesOut, onError: func(error) { nc.Close() }}
	return c
}

// serve runs the connection to its end.
func (c *conn) serve() {
	defer c.srv.untrack(c)
	defer c.nc.Close()
	c.srv.metrics.connections.Add(1)
	r := packets.NewSmallReader(c.nc, c.srv.cfg.MaxPacketSize)
	if !c.connect(r) {
		return
	}
	err := c.readLoop(r)
	c.end(err)
}

// connect reads and answers the CONNECT packet. It reports whether the
// client is now attached to a session.
func (c *conn) connect(r *packets.Reader) bool {
	_ = c.nc.SetReadDeadline(time.Now().Add(connectTimeout))
	fh, body, err := r.ReadPacket()
	if err != nil {
		c.violation("read CONNECT", err)
		return false
	}
	if fh.Type != packets.TypeConnect { // MQTT-3.1.0-1
		c.violation("first packet", &packets.Error{Type: fh.Type, Kind: packets.ErrProtocol, Detail: "first packet is not CONNECT"})
		return false
	}
	p, err := packets.Decode(fh, body)
	if errors.Is(err, packets.ErrUnsupportedLevel) { // MQTT-3.1.2-2
		c.refuse(0x01)
		c.violation("CONNECT", err)
		return false
	}
	if err != nil { // MQTT-3.1.4-1: malformed, close without CONNACK
		c.violation("CONNECT", err)
		return false
	}
	cp := p.(*packets.ConnectPacket)
	id := cp.ClientID
	if id == "" {
		if !cp.CleanSession { // MQTT-3.1.3-8
			c.refuse(0x02)
			return false
		}
		id = assignClientID() // MQTT-3.1.3-6
	}
	if !cp.CleanSession && len(id) > maxPersistentClientID { // MQTT-3.1.3-9
		c.refuse(0x02)
		return false
	}
	rc, hash := c.authenticate(cp)
	if rc != 0 {
		c.srv.metrics.authFailures.Add(1)
		c.refuse(rc)
		return false
	}
	if c.srv.metrics.clientsConnected.Load() >= int64(c.srv.cfg.MaxClients) && !c.srv.attached(id) {
		// A client taking its own id over frees the slot it takes.
		c.srv.metrics.refusedMaxClients.Add(1)
		c.srv.log.Warn("max_clients reached: connection refused", "client", id, "max_clients", c.srv.cfg.MaxClients)
		c.refuse(0x03)
		return false
	}
	c.who = clientIdentity{ClientID: id, Username: cp.Username, HasUsername: cp.UsernameFlag}
	c.permissions()
	c.authed.Store(&admission{who: c.who, hash: hash})
	c.keepAlive = time.Duration(cp.KeepAlive) * time.Second
	if cp.WillFlag {
		c.will = &Message{Topic: cp.WillTopic, Payload: bytes.Clone(cp.WillMessage), QoS: cp.WillQoS, Retain: cp.WillRetain}
	}
	var present bool
	c.sess, c.gen, present = c.srv.attach(id, cp.CleanSession, c.who, false)
	c.srv.metrics.clientsConnected.Add(1)
	c.out.append(false, func(b []byte) []byte {
		return (&packets.ConnackPacket{SessionPresent: present}).Append(b)
	})
	c.sess.resume(c, c.gen)
	c.srv.log.Debug("client connected", "client", id, "clean", cp.CleanSession, "present", present,
		"keep_alive", c.keepAlive, "remote", c.nc.RemoteAddr())
	return true
}

// authenticate returns 0 to admit the client, else the CONNACK code, and
// the password hash it was admitted with ("" without one).
func (c *conn) authenticate(cp *packets.ConnectPacket) (byte, string) {
	users := c.srv.users.Load()
	rc := admit(users, c.srv.anonymousAllowed(c.allowAnon, users), cp.UsernameFlag, func() bool {
		return users.Check(cp.Username, cp.Password)
	})
	if rc != 0 || users == nil {
		return rc, ""
	}
	hash, _ := users.Hash(cp.Username)
	return 0, hash
}

// admit is the broker's one admission rule, for CONNECT and for the
// clients a ReloadAuth re-examines: without a user name a client needs
// anonymous access; with one, there is either no password file (the name
// is only a name, where anonymous clients are admitted) or passwordOK must
// hold. It returns 0 or the CONNACK refusal code.
func admit(users *auth.Users, anonymous, hasUsername bool, passwordOK func() bool) byte {
	switch {
	case !hasUsername && !anonymous:
		return 0x05 // not authorized
	case !hasUsername:
		return 0
	case users == nil && !anonymous:
		return 0x04
	case users == nil:
		return 0 // no password file: user names are only names
	case !passwordOK():
		return 0x04 // bad user name or password
	}
	return 0
}

// permissions returns the client's compiled ACL, compiling it again when
// ReloadAuth has replaced the ACL. Only the connection's own goroutine
// calls it.
func (c *conn) permissions() *auth.Perms {
	if acl := c.srv.acl.Load(); acl != c.permsACL {
		c.perms, c.permsACL = acl.For(c.who), acl
	}
	return c.perms
}

// refuse writes a CONNACK with a non-zero code; the caller closes
// (MQTT-3.2.2-5: session present is 0).
func (c *conn) refuse(rc byte) {
	b := (&packets.ConnackPacket{ReturnCode: rc}).Append(nil)
	_ = c.nc.SetWriteDeadline(time.Now().Add(connectTimeout))
	_, _ = c.nc.Write(b)
}

// violation counts and logs a protocol violation or read failure that
// closes the connection (MQTT-4.8.0-1).
func (c *conn) violation(what string, err error) {
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return
	}
	var pe *packets.Error
	if errors.As(err, &pe) {
		c.srv.metrics.protocolErrors.Add(1)
		if errors.Is(err, packets.ErrTooLarge) {
			c.srv.metrics.oversizePackets.Add(1)
		}
	}
	c.srv.log.Debug("closing connection", "client", c.who.ClientID, "remote", c.nc.RemoteAddr(), "during", what, "err", err)
}

// readLoop dispatches packets until the connection ends.
func (c *conn) readLoop(r *packets.Reader) error {
	// MQTT-3.1.2-24: close after 1.5 × keep-alive without a packet. Moving
	// the deadline costs a timer update, so it moves only when a quarter of
	// the keep-alive has passed since it last moved: the connection then
	// closes after between 1.25 and 1.5 keep-alives of silence, never
	// before a client that keeps its keep-alive is late.
	deadline := c.keepAlive * 3 / 2
	refresh := c.keepAlive / 4
	var moved time.Time
	if deadline == 0 {
		_ = c.nc.SetReadDeadline(time.Time{})
	}
	for {
		if deadline > 0 {
			if now := time.Now(); now.Sub(moved) >= refresh {
				moved = now
				_ = c.nc.SetReadDeadline(now.Add(deadline))
			}
		}
		fh, body, err := r.ReadPacket()
		if err != nil {
			return err
		}
		c.srv.metrics.bytesIn.Add(int64(1 + packets.RemainingLengthSize(fh.Remaining) + fh.Remaining))
		if err := c.handle(fh, body); err != nil {
			return err
		}
	}
}

// handle dispatches one packet.
func (c *conn) handle(fh packets.FixedHeader, body []byte) error {
	switch fh.Type {
	case packets.TypePublish:
		if err := c.pub.Decode(fh, body); err != nil {
			return err
		}
		return c.onPublish(&c.pub)
	case packets.TypePuback, packets.TypePubrec, packets.TypePubrel, packets.TypePubcomp:
		pid, err := ackID(fh, body)
		if err != nil {
			return err
		}
		switch fh.Type {
		case packets.TypePuback:
			c.sess.acked(pid, false)
		case packets.TypePubcomp:
			c.sess.acked(pid, true)
		case packets.TypePubrec:
			c.sess.received(pid)
		case packets.TypePubrel:
			c.onPubrel(pid)
		}
		return nil
	case packets.TypeSubscribe, packets.TypeUnsubscribe:
		p, err := packets.Decode(fh, body)
		if err != nil {
			return err
		}
		if sp, ok := p.(*packets.SubscribePacket); ok {
			return c.onSubscribe(sp)
		}
		return c.onUnsubscribe(p.(*packets.UnsubscribePacket))
	case packets.TypePingreq:
		if fh.Flags != 0 || len(body) != 0 {
			return &packets.Error{Type: fh.Type, Kind: packets.ErrMalformed, Detail: "PINGREQ with flags or a body"}
		}
		c.out.append(false, func(b []byte) []byte { return append(b, 0xD0, 0x00) })
		return nil
	case packets.TypeDisconnect:
		if fh.Flags != 0 || len(body) != 0 { // MQTT-3.14.1-1
			return &packets.Error{Type: fh.Type, Kind: packets.ErrProtocol, Detail: "DISCONNECT with flags or a body"}
		}
		c.disconnect = true
		return errDisconnect
	case packets.TypeConnect: // MQTT-3.1.0-2
		return &packets.Error{Type: fh.Type, Kind: packets.ErrProtocol, Detail: "second CONNECT"}
	}
	return &packets.Error{Type: fh.Type, Kind: packets.ErrProtocol, Detail: "not a packet a client sends"}
}

// ackID reads the packet id of PUBACK, PUBREC, PUBREL or PUBCOMP.
func ackID(fh packets.FixedHeader, body []byte) (uint16, error) {
	want := byte(0)
	if fh.Type == packets.TypePubrel {
		want = 0x02 // MQTT-3.6.1-1
	}
	if fh.Flags != want {
		return 0, &packets.Error{Type: fh.Type, Kind: packets.ErrProtocol, Detail: fmt.Sprintf("flags %04b", fh.Flags)}
	}
	if len(body) != 2 {
		return 0, &packets.Error{Type: fh.Type, Kind: packets.ErrMalformed, Detail: fmt.Sprintf("%d bytes, want 2", len(body))}
	}
	return uint16(body[0])<<8 | uint16(body[1]), nil
}

// onPublish routes a client's message and acknowledges it per its QoS once
// it is durable where it must be.
func (c *conn) onPublish(p *packets.PublishPacket) error {
	// A client mostly publishes to the same few topics: reuse the last
	// topic string rather than allocate one per message.
	if string(p.Topic) != c.lastTopic {
		c.lastTopic = string(p.Topic)
	}
	topic := c.lastTopic
	if !c.permissions().CanPublish(topic) {
		// MQTT-3.3.5-2: acknowledge normally, deliver nowhere.
		c.srv.metrics.aclDenied.Add(1)
		c.srv.log.Debug("publish denied by ACL", "client", c.who.ClientID, "topic", topic)
		switch p.QoS {
		case 1:
			c.ack(packets.TypePuback, p.PacketID)
		case 2:
			c.ack(packets.TypePubrec, p.PacketID)
		}
		return nil
	}
	m := &Message{Topic: topic, Payload: bytes.Clone(p.Payload), QoS: p.QoS, Retain: p.Retain}
	if m.Payload == nil {
		m.Payload = []byte{}
	}
	c.srv.metrics.messagesIn.Add(1)
	switch p.QoS {
	case 0:
		c.srv.route(m, nil, &c.scratch)
	case 1:
		t := newTicket(nil)
		c.srv.route(m, t, &c.scratch)
		c.ackWhenDurable(t, packets.TypePuback, p.PacketID)
	case 2:
		// MQTT-4.3.3-2: a repeated PUBLISH before PUBREL is answered, not
		// delivered again.
		t := newTicket(nil)
		if !c.sess.receiveQoS2(p.PacketID, t) {
			t.release()
			c.ack(packets.TypePubrec, p.PacketID)
			return nil
		}
		c.srv.route(m, t, &c.scratch)
		c.ackWhenDurable(t, packets.TypePubrec, p.PacketID)
	}
	return nil
}

// ack sends an acknowledgement in order with those still waiting.
func (c *conn) ack(t packets.Type, pid uint16) {
	c.acks.now(func() { c.out.append(false, func(b []byte) []byte { return packets.AppendAck(b, t, pid) }) })
}

// ackWhenDurable sends the acknowledgement once everything t waits for is
// in the store. A store failure closes the connection unacknowledged, so
// the client sends the message again when it reconnects.
func (c *conn) ackWhenDurable(t *ticket, typ packets.Type, pid uint16) {
	c.afterDurable(t, "message not stored: closing the connection unacknowledged", func() {
		c.out.append(false, func(b []byte) []byte { return packets.AppendAck(b, typ, pid) })
	})
}

func (c *conn) onPubrel(pid uint16) {
	c.sess.releaseQoS2(pid)
	c.ack(packets.TypePubcomp, pid)
}

// onSubscribe adds the subscriptions the ACL allows, answers SUBACK once a
// persistent session's subscriptions are durable, then sends the matching
// retained messages.
func (c *conn) onSubscribe(sp *packets.SubscribePacket) error {
	codes := make([]byte, len(sp.Filters))
	for i, f := range sp.Filters {
		if c.permissions().CanSubscribe(f.Filter) {
			codes[i] = f.QoS
		} else {
			codes[i] = 0x80 // MQTT-3.9.3-1 failure
			c.srv.metrics.aclDenied.Add(1)
		}
	}
	t := newTicket(nil)
	if !c.sess.subscribe(c.gen, sp.Filters, codes, t) {
		t.release()
		return net.ErrClosed // taken over meanwhile
	}
	send := func() {
		c.srv.sendRetained(c.sess, sp.Filters, codes, func() {
			c.out.append(false, func(b []byte) []byte {
				return (&packets.SubackPacket{PacketID: sp.PacketID, ReturnCodes: codes}).Append(b)
			})
		})
	}
	c.afterDurable(t, "subscription not stored: closing the connection", send)
	return nil
}

func (c *conn) onUnsubscribe(up *packets.UnsubscribePacket) error {
	t := newTicket(nil)
	if !c.sess.unsubscribe(c.gen, up.Filters, t) {
		t.release()
		return net.ErrClosed
	}
	c.afterDurable(t, "subscription not stored: closing the connection", func() {
		c.out.append(false, func(b []byte) []byte { return packets.AppendAck(b, packets.TypeUnsuback, up.PacketID) })
	})
	return nil
}

// afterDurable runs send, in acknowledgement order, once t completes. If a
// store write of t failed, it logs failure and closes the connection
// instead: the answer is never sent, and the client sends its request
// again when it reconnects.
func (c *conn) afterDurable(t *ticket, failure string, send func()) {
	// Nothing to wait for, or all written already. A write that failed at
	// once (an Accept's done(err)) left its error: it must not pass as none.
	if t.pending.Load() == 1 && t.err.Load() == nil {
		c.acks.now(send)
		return
	}
	ready := c.acks.later(send)
	t.done = func(err error) {
		if err != nil {
			c.srv.log.Error(failure, "client", c.who.ClientID, "err", err)
			c.nc.Close()
			return
		}
		ready()
	}
	t.release()
}

// end detaches the session and publishes the will if the connection ended
// without DISCONNECT (MQTT-3.1.2-8, -10).
func (c *conn) end(err error) {
	if !c.disconnect {
		c.violation("read", err)
	}
	c.srv.metrics.clientsConnected.Add(-1)
	c.out.close()
	if c.will != nil && !c.disconnect && !c.shut.Load() && c.permissions().CanPublish(c.will.Topic) {
		c.srv.log.Debug("publishing will", "client", c.who.ClientID, "topic", c.will.Topic)
		c.srv.metrics.messagesIn.Add(1)
		c.srv.route(c.will, nil, &c.scratch)
	}
	c.srv.release(c.sess, c.gen)
	c.srv.acl.Load().Forget(c.who)
	c.srv.log.Debug("client disconnected", "client", c.who.ClientID, "clean", c.disconnect)
}

// shutdown closes the connection for a server shutdown: no will.
func (c *conn) shutdown() {
	c.shut.Store(true)
	c.nc.Close()
}

// The outlet methods: the session writes through these.

func (c *conn) publish(d delivery, dup bool) bool {
	return c.out.append(d.qos == 0, func(b []byte) []byte {
		return packets.AppendPublish(b, dup, d.qos, d.retain, d.msg.Topic, d.pid, d.msg.Payload)
	})
}

func (c *conn) pubrel(pid uint16) {
	c.out.append(false, func(b []byte) []byte { return packets.AppendAck(b, packets.TypePubrel, pid) })
}

func (c *conn) kick() { c.nc.Close() }

// receiveQoS2 records an incoming QoS 2 packet id and reports whether it is
// new; a persistent session's ids are stored, as part of t.
func (s *session) receiveQoS2(pid uint16, t *ticket) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, seen := s.inbound2[pid]; seen {
		return false
	}
	s.inbound2[pid] = struct{}{}
	if s.persistent {
		s.srv.apply(t, persist.AddInboundQoS2(s.id, pid))
	}
	return true
}

func (s *session) releaseQoS2(pid uint16) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.inbound2[pid]; !ok {
		return
	}
	delete(s.inbound2, pid)
	if s.persistent {
		s.srv.apply(nil, persist.RemoveInboundQoS2(s.id, pid))
	}
}
