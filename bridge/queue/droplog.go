package queue

import (
	"log/slog"
	"sync"
	"time"
)

// dropLogEvery is the least time between two drop warnings: a queue at its
// limit drops a record per message, and one line per message would flood
// the journal (and wear the SD card the queue is trying to spare).
const dropLogEvery = 10 * time.Second

// dropLog turns drop, refusal and failure events into at most one Warn per
// interval that sums them up. The first event after a quiet interval is
// logged at once; later ones are summed and logged when the interval ends
// (by a timer, stopped by close) or at close.
type dropLog struct {
	log   *slog.Logger
	every time.Duration

	mu                       sync.Mutex
	last                     time.Time // when the last summary was logged
	since                    time.Time // first event of the current summary
	dropped, refused, failed uint64
	cause                    string // of the latest event
	timer                    *time.Timer
	closed                   bool
}

func newDropLog(log *slog.Logger, every time.Duration) *dropLog {
	return &dropLog{log: log, every: every}
}

// add records an event: records dropped by drop-oldest, refused, or failed
// (given up after write errors), and why.
func (d *dropLog) add(dropped, refused, failed uint64, cause string) {
	if dropped == 0 && refused == 0 && failed == 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	if d.dropped == 0 && d.refused == 0 && d.failed == 0 {
		d.since = now
	}
	d.dropped += dropped
	d.refused += refused
	d.failed += failed
	d.cause = cause
	if wait := d.last.Add(d.every).Sub(now); wait > 0 && !d.closed {
		if d.timer == nil {
			d.timer = time.AfterFunc(wait, d.tick)
		}
		return
	}
	d.flushLocked(now)
}

func (d *dropLog) tick() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.timer = nil
	if !d.closed {
		d.flushLocked(time.Now())
	}
}

func (d *dropLog) flushLocked(now time.Time) {
	if d.dropped == 0 && d.refused == 0 && d.failed == 0 {
		return
	}
	d.log.Warn("queue: records dropped or refused",
		"dropped_oldest", d.dropped, "refused", d.refused, "failed", d.failed,
		"cause", d.cause, "over", now.Sub(d.since).Round(time.Millisecond))
	d.dropped, d.refused, d.failed = 0, 0, 0
	d.last = now
}

// close stops the timer and logs what is left; later events are logged as
// they come.
func (d *dropLog) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	d.flushLocked(time.Now())
}
