package upstream

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// store311 is the paho.mqtt.golang session store: in memory, for the run,
// and the source of acknowledgements for Publish's onDone.
//
// paho.mqtt.golang's tokens cannot carry onDone across a reconnect: with
// CleanSession false and AutoReconnect off, a connection loss leaves
// pending publish tokens in place (messageIds.cleanUp only runs for clean
// sessions or Disconnect), but the next Connect's resume() re-sends each
// stored PUBLISH under a new token and claimID completes the old token
// with no error, before any acknowledgement. The store, however, is exact
// (paho.mqtt.golang v1.5.1, store.go persistOutbound/persistInbound): the
// library Puts an outbound QoS 1 or 2 PUBLISH under "o.<id>" in Publish,
// before it goes on the wire, and Deletes that key when the PUBACK or
// PUBCOMP arrives, and only then; resume() re-sends what is still there,
// in the order of All. Reset (a clean-session Connect) wipes it: those
// messages will not be sent again.
//
// Which onDone belongs to a PUBLISH is passed from Publish through slot.
type store311 struct {
	notify *notifier

	mu       sync.Mutex
	messages map[string]stored
	seq      uint64
	slot     func(error) // onDone of the PUBLISH being stored; nil once taken
	pending  map[uint16]pendingPub311
	room     chan struct{} // closed and replaced when pending shrinks
}

type stored struct {
	msg packets.ControlPacket
	seq uint64 // All returns keys in Put order, which resume() sends in
}

type pendingPub311 struct {
	onDone func(error)
	seq    uint64
}

var _ mqtt.Store = (*store311)(nil)

func newStore311(n *notifier) *store311 {
	return &store311{notify: n, messages: make(map[string]stored), pending: make(map[uint16]pendingPub311), room: make(chan struct{})}
}

const outboundPrefix = "o."

// setSlot hands onDone to the next outbound PUBLISH stored.
func (s *store311) setSlot(onDone func(error)) {
	s.mu.Lock()
	s.slot = onDone
	s.mu.Unlock()
}

// takeSlot clears the slot and reports whether a PUBLISH took it (and so
// whether its onDone will be called).
func (s *store311) takeSlot() (taken bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	taken = s.slot == nil
	s.slot = nil
	return taken
}

// Open and Close are no-ops: the store lives for the run, and refusing
// writes while "closed" (as paho's stores do) could only lose messages.
func (s *store311) Open()  {}
func (s *store311) Close() {}

func (s *store311) Put(key string, m packets.ControlPacket) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	s.messages[key] = stored{msg: m, seq: s.seq}
	p, ok := m.(*packets.PublishPacket)
	if !ok || p.Qos == 0 || !strings.HasPrefix(key, outboundPrefix) || s.slot == nil {
		return
	}
	// The library does not reuse an identifier before its acknowledgement
	// deleted it, so an entry still here would be a bug; settle it safely.
	if old, ok := s.pending[p.MessageID]; ok {
		s.notify.complete(old.onDone, fmt.Errorf("%w: packet identifier %d reused", ErrNotAcknowledged, p.MessageID))
	}
	s.pending[p.MessageID] = pendingPub311{onDone: s.slot, seq: s.seq}
	s.slot = nil
}

func (s *store311) Get(key string) packets.ControlPacket {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.messages[key].msg
}

func (s *store311) All() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.messages))
	for k := range s.messages {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return cmp.Compare(s.messages[a].seq, s.messages[b].seq) })
	return keys
}

// Del is the acknowledgement: the library deletes "o.<id>" when the PUBACK
// or PUBCOMP for it arrives.
func (s *store311) Del(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.messages, key)
	id, ok := strings.CutPrefix(key, outboundPrefix)
	if !ok {
		return
	}
	n, err := strconv.ParseUint(id, 10, 16)
	if err != nil {
		return
	}
	if p, ok := s.pending[uint16(n)]; ok {
		delete(s.pending, uint16(n))
		s.notify.complete(p.onDone, nil)
		s.freed()
	}
}

// freed wakes waitRoom. s.mu is held.
func (s *store311) freed() {
	close(s.room)
	s.room = make(chan struct{})
}

// waitRoom waits until fewer than limit messages await acknowledgement,
// or ctx ends, or lost is closed.
func (s *store311) waitRoom(ctx context.Context, limit int, lost <-chan struct{}) error {
	for {
		s.mu.Lock()
		n, room := len(s.pending), s.room
		s.mu.Unlock()
		if n < limit {
			return nil
		}
		select {
		case <-room:
		case <-ctx.Done():
			return ctx.Err()
		case <-lost:
			return ErrNotConnected
		}
	}
}

// Reset wipes the store: what was pending will not be sent again.
func (s *store311) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.messages)
	s.failAll("new clean session")
}

// failAll gives every pending message ErrNotAcknowledged, in publish
// order. s.mu is held.
func (s *store311) failAll(why string) {
	all := make([]pendingPub311, 0, len(s.pending))
	for _, p := range s.pending {
		all = append(all, p)
	}
	clear(s.pending)
	slices.SortFunc(all, func(a, b pendingPub311) int { return cmp.Compare(a.seq, b.seq) })
	for _, p := range all {
		s.notify.complete(p.onDone, fmt.Errorf("%w: %s", ErrNotAcknowledged, why))
	}
	if len(all) > 0 {
		s.freed()
	}
}

// dropPending fails every pending message and removes the stored outbound
// PUBLISH packets too, so that the library cannot send them again after
// the caller was told to (a clean session's loss, or Close).
func (s *store311) dropPending(why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id := range s.pending {
		delete(s.messages, outboundPrefix+strconv.Itoa(int(id)))
	}
	s.failAll(why)
}

// pendingCount is the number of messages awaiting acknowledgement.
func (s *store311) pendingCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}
