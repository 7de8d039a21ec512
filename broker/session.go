package broker

import (
	"sync"

	"github.com/sngate/sngate/broker/persist"
)

// outlet is where a session's packets go while a client is connected: a
// network connection or an in-process client. Its methods are called with
// the session lock held and must not block.
type outlet interface {
	// publish sends a PUBLISH; false means it could not (closed, or a QoS 0
	// message to a congested client).
	// d is passed by value so that a QoS 0 delivery, sent at once, never
	// reaches the heap.
	publish(d delivery, dup bool) bool
	pubrel(pid uint16)
	// kick ends the connection, for a takeover by a new CONNECT.
	kick()
}

// session is the broker's state for one client id. A persistent session
// (clean session 0) outlives its connections and the process; a clean one
// ends with its connection.
type session struct {
	srv        *Server
	id         string
	persistent bool

	mu          sync.Mutex
	out         outlet // nil while no client is attached
	attached    bool   // a client holds the session, from attach (before CONNACK) to detach
	gen         uint64 // counts attachments, so a stale connection cannot detach a new one
	subs        map[string]byte
	inflight    []*delivery // sent, unacknowledged, in send order
	queue       []*delivery // waiting for a connection or for room in the window
	queuedBytes int64
	nextPID     uint16
	nextSeq     uint64
	inbound2    map[uint16]struct{} // QoS 2 packet ids received, PUBREL not yet
	user        clientIdentity
	trusted     bool // attached by a trusted in-process client: no ACL
}

func newSession(srv *Server, id string, persistent bool) *session {
	return &session{srv: srv, id: id, persistent: persistent, subs: map[string]byte{}, inbound2: map[uint16]struct{}{}, nextSeq: 1}
}

// deliver hands m to the session at qos (already downgraded to the
// subscription's) and returns the store operation that makes it durable, if
// it must be.
func (s *session) deliver(m *Message, qos byte, retain bool, t *ticket) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deliverLocked(m, qos, retain, t)
}

// deliverLocked is deliver with s.mu held.
func (s *session) deliverLocked(m *Message, qos byte, retain bool, t *ticket) {
	if a, ok := s.out.(acceptOutlet); ok {
		s.srv.metrics.messagesOut.Add(1)
		a.accept(m, qos, retain, t)
		return
	}
	if s.out == nil {
		if !s.persistent || (qos == 0 && !s.srv.cfg.QueueQoS0) {
			return
		}
		s.enqueue(&delivery{msg: m, qos: qos, retain: retain}, t)
		return
	}
	if qos == 0 {
		if s.out.publish(delivery{msg: m, retain: retain}, false) {
			s.srv.metrics.messagesOut.Add(1)
		} else {
			s.srv.metrics.droppedSlowClient.Add(1)
		}
		return
	}
	d := &delivery{msg: m, qos: qos, retain: retain}
	if len(s.queue) == 0 && len(s.inflight) < s.srv.cfg.MaxInflight {
		// sent at once: the stored message carries its packet id from the
		// start, with no write of its own
		s.take(d)
		s.persist(d, t)
		s.write(d)
		return
	}
	s.enqueue(d, t)
}

// persist records a QoS 1/2 delivery to a persistent session in the store,
// as part of the publisher's ticket. The delivery gets its packet id now,
// if it has none yet, so that the record carries it from the start: after
// a restart the delivery goes out with the id the client may have seen,
// and a QoS 2 message is not delivered twice.
func (s *session) persist(d *delivery, t *ticket) {
	if !s.persistent || d.qos == 0 || s.srv.store == nil {
		return
	}
	if d.pid == 0 {
		d.pid = s.allocPID()
	}
	d.seq = s.nextSeq
	s.nextSeq++
	s.srv.apply(t, persist.Enqueue(s.id, persist.Queued{Seq: d.seq, Msg: d.record(), PacketID: d.pid}))
}

// enqueue keeps d until it can be sent, within the queue limits: when full,
// the oldest QoS 0 message makes room, else d is dropped and counted.
func (s *session) enqueue(d *delivery, t *ticket) {
	cfg := &s.srv.cfg
	full := func() bool {
		return len(s.queue) >= cfg.MaxQueuedMessages ||
			(cfg.MaxQueuedBytes > 0 && s.queuedBytes+d.size() > cfg.MaxQueuedBytes)
	}
	for full() {
		i := s.oldestQoS0()
		if i < 0 {
			s.srv.metrics.droppedQueueFull.Add(1)
			s.srv.log.Warn("session queue full: message dropped", "client", s.id, "topic", d.msg.Topic,
				"queued", len(s.queue), "queued_bytes", s.queuedBytes)
			return
		}
		s.queuedBytes -= s.queue[i].size()
		s.queue = append(s.queue[:i], s.queue[i+1:]...)
		s.srv.metrics.droppedQueueFull.Add(1)
	}
	s.persist(d, t)
	s.queue = append(s.queue, d)
	s.queuedBytes += d.size()
}

func (s *session) oldestQoS0() int {
	for i, d := range s.queue {
		if d.qos == 0 {
			return i
		}
	}
	return -1
}

// send writes a queued d to the attached client, giving a QoS 1/2 delivery
// a place in the window. A stored delivery has had its packet id since it
// was stored; one restored from a store written before ids were stored
// gets one now, and the id is written without being waited for.
func (s *session) send(d *delivery) {
	if d.qos > 0 {
		unnumbered := d.pid == 0
		s.take(d)
		if unnumbered && d.seq != 0 {
			s.srv.apply(nil, persist.SetInflight(s.id, d.seq, d.pid, false))
		}
	}
	s.write(d)
}

// take gives a QoS 1/2 delivery a place in the window, and a packet id if
// it has none.
func (s *session) take(d *delivery) {
	if d.qos == 0 {
		return
	}
	if d.pid == 0 {
		d.pid = s.allocPID()
	}
	if d.qos == 1 {
		d.state = stateAwaitAck
	} else {
		d.state = stateAwaitRec
	}
	s.inflight = append(s.inflight, d)
}

// write sends d, taken or QoS 0, to the attached client.
func (s *session) write(d *delivery) {
	if s.out.publish(*d, false) {
		s.srv.metrics.messagesOut.Add(1)
	}
}

// allocPID returns the next packet id no in-flight delivery uses. Ids go
// out in turn, and queued deliveries of a persistent session hold theirs
// too: Validate keeps max_inflight + max_queued_messages below the 65535
// ids, so the turn never comes back to an id still held.
func (s *session) allocPID() uint16 {
	for {
		s.nextPID++
		if s.nextPID == 0 {
			s.nextPID = 1
		}
		if s.inflightIndex(s.nextPID) < 0 {
			return s.nextPID
		}
	}
}

func (s *session) inflightIndex(pid uint16) int {
	for i, d := range s.inflight {
		if d.pid == pid {
			return i
		}
	}
	return -1
}

// fill sends queued deliveries while the window has room.
func (s *session) fill() {
	for s.out != nil && len(s.queue) > 0 {
		d := s.queue[0]
		if d.qos > 0 && len(s.inflight) >= s.srv.cfg.MaxInflight {
			return
		}
		s.queue[0] = nil
		s.queue = s.queue[1:]
		s.queuedBytes -= d.size()
		s.send(d)
	}
	if len(s.queue) == 0 {
		s.queue = nil // let a drained backlog's array go
	}
}

// acked completes an outgoing delivery on PUBACK (QoS 1) or PUBCOMP
// (QoS 2). It reports false for an id with no such delivery.
func (s *session) acked(pid uint16, qos2 bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.inflightIndex(pid)
	if i < 0 {
		return false
	}
	d := s.inflight[i]
	if (qos2 && d.state != stateAwaitComp) || (!qos2 && d.state != stateAwaitAck) {
		return false
	}
	s.inflight = append(s.inflight[:i], s.inflight[i+1:]...)
	if d.seq != 0 {
		s.srv.apply(nil, persist.Dequeue(s.id, d.seq))
	}
	s.fill()
	return true
}

// received handles PUBREC: the message is the client's now; release it.
//
// A stored delivery is released only once the store knows: a client that
// has PUBREL must not get the message again after a restart, where it
// would be new to it (MQTT-4.3.3-1). Until then it is stateReleasing, and
// the PUBREL is sent by released, on the store's committer goroutine.
func (s *session) received(pid uint16) bool {
	s.mu.Lock()
	i := s.inflightIndex(pid)
	if i < 0 || s.inflight[i].state != stateAwaitRec {
		s.mu.Unlock()
		return false
	}
	d := s.inflight[i]
	if d.seq == 0 {
		d.state = stateAwaitComp
		if s.out != nil {
			s.out.pubrel(pid)
		}
		s.mu.Unlock()
		return true
	}
	d.state = stateReleasing
	t := newTicket(func(err error) { s.released(d, err) })
	s.srv.apply(t, persist.SetInflight(s.id, d.seq, d.pid, true))
	s.mu.Unlock()
	t.release() // unlocked: the write may be durable already, and released locks
	return true
}

// released completes received once the released state of d is durable (err
// nil): PUBREL goes to whichever client is attached now; without one,
// resume sends it. When the write failed, d is back to waiting for PUBREC
// and the client is disconnected: on its return d is sent again, with its
// packet id, and its PUBREC tries again.
func (s *session) released(d *delivery, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := s.inflightIndex(d.pid); i < 0 || s.inflight[i] != d || d.state != stateReleasing {
		return // completed by an in-process client meanwhile
	}
	if err != nil {
		s.srv.logStoreError(err)
		s.srv.log.Error("PUBREC not stored: PUBREL withheld, disconnecting the client", "client", s.id, "packet_id", d.pid)
		d.state = stateAwaitRec
		if s.out != nil {
			s.out.kick()
		}
		return
	}
	d.state = stateAwaitComp
	if s.out != nil {
		s.out.pubrel(d.pid)
	}
}

// resume attaches out and resends what the last connection (or the last
// run of the broker) left unacknowledged, in order, with DUP set and the
// same packet ids (MQTT-4.4.0-1), then what was queued. A PUBREL still
// waiting for the store is sent by released.
func (s *session) resume(out outlet, gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != gen {
		// Taken over between attach and now, before this client was
		// attached to be kicked: end it here (MQTT-3.1.4-2).
		out.kick()
		return
	}
	s.out = out
	for _, d := range s.inflight {
		switch d.state {
		case stateAwaitComp:
			out.pubrel(d.pid)
		case stateReleasing:
		default:
			if out.publish(*d, true) {
				s.srv.metrics.messagesOut.Add(1)
			}
		}
	}
	s.fill()
}

// detach ends the attachment of generation gen and reports whether it was
// still the current one.
func (s *session) detach(gen uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != gen {
		return false
	}
	s.out = nil
	s.attached = false
	if !s.persistent {
		s.inflight, s.queue = nil, nil
	}
	return true
}

// record is what the store keeps of a delivery: its message at the
// delivered QoS, with the retain flag it goes out with.
func (d *delivery) record() persist.Message {
	return persist.Message{Topic: d.msg.Topic, Payload: d.msg.Payload, QoS: d.qos, Retain: d.retain}
}
