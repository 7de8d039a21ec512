package bridge

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/sngate/sngate/bridge/queue"
	"github.com/sngate/sngate/bridge/upstream"
)

// Window entry states.
const (
	entryResend   = iota // to be sent (again) on the current connection
	entrySent            // sent, waiting for the upstream's acknowledgement
	entryRemoving        // acknowledged, waiting for its removal to be durable
)

// entry is one queued message in the window: read from the queue, not yet
// durably removed from it. It holds its slot until the removal is on disk,
// so that at most Inflight messages are sent but still queued, which is
// the most a crash can duplicate.
type entry struct {
	rec   queue.Record
	state int
	gen   uint64 // the connection it was last sent on
}

// event is a callback's news for the sender, which owns the window.
type event struct {
	removed bool // the removal of seq is durable (else: the upstream answered)
	seq     uint64
	gen     uint64
	err     error
}

// sender moves the queue's records upstream through the window. Only the
// run goroutine uses it.
type sender struct {
	c        *connection
	window   map[uint64]*entry
	lastRead uint64 // highest seq read from the queue
	gen      uint64 // counts connections
	draining bool   // a backlog drain is being reported
	drainAt  time.Time
	drainN   uint64
	// resendDue is set when an entry of the window became entryResend,
	// so that pump scans the window only then, not at every wake-up.
	resendDue bool
}

func newSender(c *connection) *sender {
	return &sender{c: c, window: make(map[uint64]*entry)}
}

// post queues an event for the run goroutine; it never blocks.
func (c *connection) post(ev event) {
	c.evMu.Lock()
	c.events = append(c.events, ev)
	c.evMu.Unlock()
	select {
	case c.evWake <- struct{}{}:
	default:
	}
}

func (c *connection) takeEvents(buf []event) []event {
	c.evMu.Lock()
	buf = append(buf[:0], c.events...)
	clear(c.events)
	c.events = c.events[:0]
	c.evMu.Unlock()
	return buf
}

// serve relays over one connection until it is lost or ctx ends.
func (s *sender) serve(ctx context.Context) {
	c := s.c
	s.gen++
	connCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	lost := c.up.Lost()
	go func() { // ends with serve, at the latest
		select {
		case <-lost:
			cancel()
		case <-connCtx.Done():
		}
	}()
	// What was in flight on the last connection: the library resends it on
	// a resumed session and its acks come; what it gave up on came as
	// ErrNotAcknowledged before Connect returned, and goes again below.
	var notify <-chan struct{}
	if c.q != nil {
		notify = c.q.Notify()
	}
	var evs []event
	for {
		evs = c.takeEvents(evs)
		for _, ev := range evs {
			s.handle(ev)
		}
		if !s.pump(connCtx) {
			return
		}
		select {
		case <-connCtx.Done():
			s.flushEvents(&evs)
			return
		case <-c.evWake:
		case <-notify:
		case rec := <-c.volatile:
			if err := c.up.Publish(connCtx, message(rec), func(error) {}); err != nil {
				c.counters.droppedQoS0.Add(1)
			} else {
				c.counters.sent.Add(1)
			}
		}
	}
}

// flushEvents handles what arrived before the connection ended, so that
// acknowledged messages are not sent again.
func (s *sender) flushEvents(evs *[]event) {
	*evs = s.c.takeEvents(*evs)
	for _, ev := range *evs {
		s.handle(ev)
	}
}

func message(r queue.Record) upstream.Message {
	return upstream.Message{Topic: r.Topic, Payload: r.Payload, QoS: r.QoS, Retain: r.Retain}
}

// pump sends what must go again, then new records while the window has
// room. It reports false when the connection failed.
func (s *sender) pump(ctx context.Context) bool {
	c := s.c
	if s.resendDue {
		s.resendDue = false
		var resend []uint64
		for seq, e := range s.window {
			if e.state == entryResend {
				resend = append(resend, seq)
			}
		}
		slices.Sort(resend)
		for _, seq := range resend {
			if !s.send(ctx, s.window[seq]) {
				return false
			}
		}
	}
	if c.q == nil {
		return true
	}
	for room := c.cfg.Inflight - len(s.window); room > 0; room = c.cfg.Inflight - len(s.window) {
		recs, err := c.q.Read(s.lastRead, room)
		if err != nil {
			c.log.Error("queue read failed", "err", err)
			return ctx.Err() == nil
		}
		if len(recs) == 0 {
			s.drained()
			return true
		}
		s.startDrain()
		for _, r := range recs {
			e := &entry{rec: r}
			s.window[r.Seq] = e
			s.lastRead = r.Seq
			if !s.send(ctx, e) {
				return false
			}
		}
	}
	return true
}

// markResend has e sent again by the next pump.
func (s *sender) markResend(e *entry) {
	e.state = entryResend
	s.resendDue = true
}

// send publishes e on the current connection.
func (s *sender) send(ctx context.Context, e *entry) bool {
	c := s.c
	seq, gen := e.rec.Seq, s.gen
	err := c.up.Publish(ctx, message(e.rec), func(err error) {
		c.post(event{seq: seq, gen: gen, err: err})
	})
	if err != nil {
		s.markResend(e)
		return false
	}
	e.state, e.gen = entrySent, gen
	return true
}

// handle applies one event to the window.
func (s *sender) handle(ev event) {
	c := s.c
	e, ok := s.window[ev.seq]
	if !ok {
		return
	}
	if ev.removed {
		if ev.err != nil {
			c.log.Error("queue removal failed: the message may be sent again after a restart", "seq", ev.seq, "err", ev.err)
		}
		delete(s.window, ev.seq)
		return
	}
	switch {
	case e.state == entryRemoving:
		return
	case ev.err == nil:
		// Good news from any connection: the upstream has it.
		c.counters.sent.Add(1)
		s.drainN++
	case e.state != entrySent || ev.gen != e.gen:
		return // news of an older send: the message has gone again since
	case errors.Is(ev.err, upstream.ErrNotAcknowledged):
		s.markResend(e)
		return
	default:
		// The upstream refused it (not authorized, say): sending it again
		// would get the same answer and hold up the queue behind it.
		c.counters.rejected.Add(1)
		c.log.Error("upstream refused a message: dropped", "topic", e.rec.Topic, "err", ev.err)
	}
	e.state = entryRemoving
	seq := ev.seq
	c.q.Remove(seq, func(err error) { c.post(event{removed: true, seq: seq, err: err}) })
}

// startDrain notes the start of a backlog drain, for the log.
func (s *sender) startDrain() {
	if s.draining {
		return
	}
	st := s.c.queueStats()
	if st.Messages < int64(s.c.cfg.Inflight) {
		return // no backlog: live traffic
	}
	s.draining, s.drainAt, s.drainN = true, time.Now(), 0
	s.c.log.Info("draining backlog", "messages", st.Messages, "bytes", st.Bytes, "oldest", st.Oldest)
}

// drained reports the end of a backlog drain.
func (s *sender) drained() {
	if !s.draining || len(s.window) > 0 {
		return
	}
	s.draining = false
	took := time.Since(s.drainAt)
	s.c.log.Info("backlog drained", "sent", s.drainN, "took", took.Round(time.Millisecond))
}
