package broker

import (
	"sync"
	"sync/atomic"

	"github.com/sngate/sngate/broker/persist"
)

// ticket gathers the store writes one client request causes (a PUBLISH to
// persistent sessions, a SUBSCRIBE of a persistent session) and calls done
// once all are durable, or with the first error. Requests that write
// nothing complete at once, without touching the store.
type ticket struct {
	pending atomic.Int32
	err     atomic.Pointer[error]
	done    func(error)
}

// newTicket returns a ticket holding one reference for its creator, who
// calls release when it has submitted everything.
func newTicket(done func(error)) *ticket {
	t := &ticket{done: done}
	t.pending.Store(1)
	return t
}

func (t *ticket) finish(err error) {
	if err != nil {
		t.err.CompareAndSwap(nil, &err)
	}
	if t.pending.Add(-1) == 0 && t.done != nil {
		var e error
		if p := t.err.Load(); p != nil {
			e = *p
		}
		t.done(e)
	}
}

func (t *ticket) release() { t.finish(nil) }

// apply submits store operations; with a ticket, the ticket waits for
// them. Without a store (an in-memory broker) it does nothing.
func (s *Server) apply(t *ticket, ops ...persist.Op) {
	if s.store == nil {
		return
	}
	if t == nil {
		s.store.Apply(ops, s.logStoreError)
		return
	}
	t.pending.Add(1)
	s.store.Apply(ops, t.finish)
}

func (s *Server) logStoreError(err error) {
	if err != nil {
		s.metrics.storeErrors.Add(1)
		s.log.Error("store write failed", "err", err)
	}
}

// ackQueue releases a connection's acknowledgements in the order their
// requests arrived (MQTT-4.6.0-2..4), although some wait for the store and
// others do not.
type ackQueue struct {
	mu      sync.Mutex
	pending []*ackEntry
}

type ackEntry struct {
	ready bool
	send  func()
}

// now sends at once when nothing is waiting ahead, else queues send behind
// the waiting acknowledgements.
func (q *ackQueue) now(send func()) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.pending) == 0 {
		send()
		return
	}
	q.pending = append(q.pending, &ackEntry{ready: true, send: send})
}

// later reserves a place for an acknowledgement that becomes sendable when
// the returned function is called.
func (q *ackQueue) later(send func()) (ready func()) {
	e := &ackEntry{send: send}
	q.mu.Lock()
	q.pending = append(q.pending, e)
	q.mu.Unlock()
	return func() {
		q.mu.Lock()
		defer q.mu.Unlock()
		e.ready = true
		n := 0
		for n < len(q.pending) && q.pending[n].ready {
			q.pending[n].send()
			q.pending[n] = nil
			n++
		}
		q.pending = q.pending[n:]
		if len(q.pending) == 0 {
			q.pending = nil
		}
	}
}
