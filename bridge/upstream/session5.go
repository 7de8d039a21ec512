package upstream

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/eclipse/paho.golang/packets"
	paholog "github.com/eclipse/paho.golang/paho/log"
	"github.com/eclipse/paho.golang/paho/session"
	"github.com/eclipse/paho.golang/paho/session/state"
)

// session5 wraps paho.golang's in-memory session state (state.State), which
// lives for the run across connections, to learn the outcome of each
// PUBLISH sent with PublishMethod_AsyncSend, for which paho offers no
// callback. What state.State does, and how this relies on it
// (paho.golang v0.23.0, paho/session/state/state.go):
//
//   - AddToSession(PUBLISH) waits for a Receive Maximum slot, allocates a
//     packet identifier, stores the packet, and promises exactly one send on
//     the given channel: the final response (PUBACK, PUBCOMP, or a PUBREC
//     with a reason >= 0x80) when PacketReceived handles it, or a zero
//     ControlPacket from Close. The send happens under the state's lock, so
//     it must never block: the wrapper passes its own channel of capacity
//     1 (and forwards to paho's, which nobody reads in async mode), and
//     reads it right after PacketReceived returns.
//   - ConAckReceived without Session Present, and ConnectionLost when the
//     Session Expiry Interval in force is 0, clear the state without
//     sending anything on those channels: the wrapper fails those messages
//     with ErrNotAcknowledged itself.
//   - ConAckReceived with Session Present keeps the channels and
//     retransmits the stored PUBLISH (DUP) and PUBREL packets, in order,
//     before the connection is used; their responses arrive as usual.
//
// Which onDone belongs to a PUBLISH is passed from Publish through slot
// (Publish calls are serialized, and AddToSession for a PUBLISH is only
// reached from them).
type session5 struct {
	inner  *state.State
	notify *notifier

	mu        sync.Mutex
	slot      func(error) // onDone of the PUBLISH being added; nil once taken
	pending   map[uint16]pendingPub
	seq       uint64
	connected bool   // between ConAckReceived and ConnectionLost
	gen       uint64 // connection generation, incremented before each ConAckReceived
	expiry    uint32 // the Session Expiry Interval in force, as state.State computes it
}

type pendingPub struct {
	onDone func(error)
	resp   chan packets.ControlPacket   // the wrapper's, given to state.State
	fwd    chan<- packets.ControlPacket // paho's
	seq    uint64                       // publish order
}

var _ session.SessionManager = (*session5)(nil)

func newSession5(n *notifier) *session5 {
	return &session5{inner: state.NewInMemory(), notify: n, pending: make(map[uint16]pendingPub)}
}

// setSlot hands onDone to the next PUBLISH added to the session.
func (s *session5) setSlot(onDone func(error)) {
	s.mu.Lock()
	s.slot = onDone
	s.mu.Unlock()
}

// takeSlot clears the slot and reports whether a PUBLISH took it (and so
// whether its onDone will be called).
func (s *session5) takeSlot() (taken bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	taken = s.slot == nil
	s.slot = nil
	return taken
}

func (s *session5) AddToSession(ctx context.Context, p session.Packet, resp chan<- packets.ControlPacket) error {
	if p.Type() != packets.PUBLISH {
		return s.inner.AddToSession(ctx, p, resp)
	}
	pub, ok := p.(*packets.Publish)
	s.mu.Lock()
	onDone := s.slot
	s.mu.Unlock()
	if !ok || onDone == nil {
		return s.inner.AddToSession(ctx, p, resp) // not from Publish
	}
	ch := make(chan packets.ControlPacket, 1)
	if err := s.inner.AddToSession(ctx, p, ch); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// The identifier was free in the state, so an entry still here is a
	// finished message whose response was not read yet: settle it first.
	if old, ok := s.pending[pub.PacketID]; ok {
		s.settle(old, "its packet identifier was reused")
	}
	s.seq++
	s.pending[pub.PacketID] = pendingPub{onDone: onDone, resp: ch, fwd: resp, seq: s.seq}
	s.slot = nil
	return nil
}

func (s *session5) PacketReceived(recv *packets.ControlPacket, pubChan chan<- *packets.Publish) error {
	err := s.inner.PacketReceived(recv, pubChan)
	switch recv.Type {
	case packets.PUBACK, packets.PUBREC, packets.PUBCOMP:
		id := recv.PacketID()
		s.mu.Lock()
		// A PUBREC that was accepted leaves the channel empty: the PUBREL
		// went out and the PUBCOMP is still to come.
		if p, ok := s.pending[id]; ok && len(p.resp) > 0 {
			delete(s.pending, id)
			s.settle(p, "")
		}
		s.mu.Unlock()
	}
	return err
}

// settle completes p: with the state's response if it has one, or else as
// not acknowledged (why). The response is passed on to paho, whose channel
// has room for it. s.mu is held.
func (s *session5) settle(p pendingPub, why string) {
	var r packets.ControlPacket
	select {
	case r = <-p.resp:
	default:
	}
	s.notify.complete(p.onDone, outcome(r, why))
	select {
	case p.fwd <- r:
	default:
	}
}

// outcome maps the final response to a PUBLISH to onDone's error.
func outcome(r packets.ControlPacket, why string) error {
	reason, text := byte(0), ""
	switch c := r.Content.(type) {
	case *packets.Puback:
		reason, text = c.ReasonCode, reasonString(c.Properties)
	case *packets.Pubrec:
		reason, text = c.ReasonCode, reasonString(c.Properties)
	case *packets.Pubcomp:
		// The PUBREC was accepted, so the upstream has the message. A
		// PUBCOMP "Packet Identifier not found" (0x92) answers a PUBREL
		// retransmitted after the upstream had completed the flow.
		return nil
	default: // no response, or the zero ControlPacket of state.Close
		if why == "" {
			why = "the session was closed"
		}
		return fmt.Errorf("%w: %s", ErrNotAcknowledged, why)
	}
	if reason >= 0x80 {
		return &RefusedError{Reason: reason, Text: text}
	}
	return nil
}

func reasonString(p *packets.Properties) string {
	if p == nil {
		return ""
	}
	return p.ReasonString
}

// failAll settles every pending message, in publish order: those without a
// response get ErrNotAcknowledged (why). s.mu is held.
func (s *session5) failAll(why string) {
	all := make([]pendingPub, 0, len(s.pending))
	for _, p := range s.pending {
		all = append(all, p)
	}
	clear(s.pending)
	slices.SortFunc(all, func(a, b pendingPub) int { return cmp.Compare(a.seq, b.seq) })
	for _, p := range all {
		s.settle(p, why)
	}
}

func (s *session5) ConAckReceived(w io.Writer, cp *packets.Connect, ca *packets.Connack) error {
	s.mu.Lock()
	s.gen++ // before the state switches to the new connection: see ackIfCurrent
	s.mu.Unlock()
	err := s.inner.ConAckReceived(w, cp, ca)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.connected = true
	// The same rule as state.State: the CONNACK's interval, else the
	// CONNECT's, else 0.
	s.expiry = 0
	if ca.Properties != nil && ca.Properties.SessionExpiryInterval != nil {
		s.expiry = *ca.Properties.SessionExpiryInterval
	} else if cp.Properties != nil && cp.Properties.SessionExpiryInterval != nil {
		s.expiry = *cp.Properties.SessionExpiryInterval
	}
	if !ca.SessionPresent {
		s.failAll("the upstream did not resume the session")
	}
	return err
}

func (s *session5) ConnectionLost(dp *packets.Disconnect) error {
	err := s.inner.ConnectionLost(dp)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.connected {
		return err // repeated call: state.State ignores it too
	}
	s.connected = false
	if dp != nil && dp.Properties != nil && dp.Properties.SessionExpiryInterval != nil {
		s.expiry = *dp.Properties.SessionExpiryInterval
	}
	if s.expiry == 0 {
		s.failAll("connection lost and the session expired with it")
	}
	return err
}

func (s *session5) Ack(pb *packets.Publish) error { return s.inner.Ack(pb) }

// generation identifies the current connection, for ackIfCurrent.
func (s *session5) generation() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen
}

// ackIfCurrent acknowledges pb, received on connection gen, unless a later
// connection has been established since: packet identifiers are per
// connection, and the state writes to the current one (paho issue #160).
// Holding s.mu keeps the next ConAckReceived from switching connections
// during the write.
func (s *session5) ackIfCurrent(gen uint64, pb *packets.Publish) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != gen {
		return errors.New("connection replaced")
	}
	return s.inner.Ack(pb)
}

// Close closes the state (which sends the zero ControlPacket to what is
// still in it) and fails every pending message.
func (s *session5) Close() error {
	err := s.inner.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.connected = false
	s.failAll("client closed")
	return err
}

func (s *session5) SetErrorLogger(l paholog.Logger) { s.inner.SetErrorLogger(l) }
func (s *session5) SetDebugLogger(l paholog.Logger) { s.inner.SetDebugLogger(l) }
