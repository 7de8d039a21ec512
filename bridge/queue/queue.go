// Package queue is the bridge's durable FIFO of outgoing messages: one per
// bridge connection, one bbolt file each (for example
// <data_dir>/bridge/<connection>.db).
//
// A message counts as accepted only once Append's done(nil) says it is on
// disk, and it leaves only when the upstream broker acknowledged it
// (Remove). Writes are group-committed by internal/storage: many appends and
// removes from many goroutines share one fsync'ed transaction, which keeps
// an SD card alive. The queue holds no per-record state in memory, only
// counters, so a million queued messages cost disk, not RAM.
//
// The queue is bounded by a record count and/or a byte size. When a new
// record does not fit, or the disk (or file size limit) is full, the policy
// decides: DropOldest deletes the oldest records to make room, RefuseNew
// refuses the new one. Both are counted in Stats and logged, at most once
// per 10 seconds.
package queue

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sngate/sngate/internal/storage"
)

var (
	// ErrRefused is wrapped by the error an append's done gets when the
	// record was not queued by policy: refuse-new at a limit or on a full
	// disk, or a record larger than MaxBytes, which could never fit.
	ErrRefused = errors.New("queue: record refused")
	// ErrClosed is reported for work submitted after Close.
	ErrClosed = errors.New("queue: closed")
	// ErrInvalid is wrapped (together with ErrRefused) when a record cannot
	// be stored at all: QoS over 2 or a topic over 65535 bytes.
	ErrInvalid = errors.New("queue: invalid record")
)

// maxAttempts bounds the commits an append or a remove tries when commits
// fail with write errors, so a broken disk cannot make the queue spin.
const maxAttempts = 4

// Options configure a queue. The zero value is an unbounded drop-oldest
// queue with storage's default commit window.
type Options struct {
	MaxMessages  int64            // 0: no limit on the count
	MaxBytes     int64            // 0: no limit on the size; a record's size is len(Topic)+len(Payload)
	Policy       Policy           // what gives when a record does not fit
	CommitWindow time.Duration    // passed to storage (0: storage default 2ms)
	Logger       *slog.Logger     // nil: discard
	Now          func() time.Time // nil: time.Now (tests)
}

func (o Options) validate() error {
	switch {
	case o.MaxMessages < 0:
		return fmt.Errorf("negative MaxMessages %d", o.MaxMessages)
	case o.MaxBytes < 0:
		return fmt.Errorf("negative MaxBytes %d", o.MaxBytes)
	case !o.Policy.valid():
		return fmt.Errorf("invalid policy %d", int(o.Policy))
	}
	return nil
}

// Record is one queued message.
type Record struct {
	Seq     uint64 // assigned by Append, increasing, never reused within a file (gaps allowed)
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool
	Time    time.Time // when appended (stored as unix nanoseconds)
}

// Queue is a durable FIFO of records in one bbolt file. It is safe for
// concurrent use.
type Queue struct {
	path   string
	db     *storage.DB
	opts   Options
	log    *slog.Logger
	now    func() time.Time
	notify chan struct{}
	drops  *dropLog

	// epoch changes when a commit of appends fails (see diskfull.go). An
	// append op whose epoch is stale commits nothing: it is retried, in
	// order, after the failed ones. Read by op functions on the committer
	// goroutine, written under mu.
	epoch atomic.Uint64
	// releaseOn is set while a release of the reserve is in storage: the
	// op functions of Removes (and of appends, with refuse-new) then write
	// nothing, so that the release commits with no other changes. (With
	// drop-oldest a release starts a recovery, which keeps appends out.)
	releaseOn atomic.Bool
	// fullUntil (unix ns, 0: not full) keeps refuse-new from trying a
	// commit for a while after one failed with a write error: while the
	// disk is full every try would fail, and a failed commit costs bbolt a
	// walk of the file to rebuild its freelist. A Remove ends it.
	fullUntil   atomic.Int64
	fullBackoff time.Duration // the const fullBackoff; a test changes it, under mu
	// mapped counts bytes of the file touched through bbolt's mapping since
	// the last dropMapped.
	mapped atomic.Int64

	mu       sync.Mutex
	closed   bool
	st       Stats // Messages, Bytes, Oldest and the counters kept here
	inflight int   // append ops handed to storage whose done has not run
	// disk-full recovery, see diskfull.go
	recovering   bool
	needRoom     bool           // a commit failed since the last make-room op
	roomPending  bool           // the make-room op is in storage
	madeRoom     bool           // a make-room op committed; the reserve is not restored yet
	roomTries    int            // failed make-room or release commits in this recovery
	lastWriteErr error          // of the last failed commit
	failures     int            // recoveries since the last successful append: the chunk grows
	isolating    bool           // retry one append per commit
	isolated     *appendOp      // the append tried alone, while in storage
	retry        []*appendOp    // failed or deferred appends, in Append order
	backlog      []*appendOp    // appends made during the recovery, in order
	doomed       []doomedAppend // appends given up, done not called yet
	// the reserve, see reserve.go
	pageSize       int
	reserveHeld    bool        // as of the last commit
	releasing      bool        // the release op is in storage
	restorePending bool        // a restore op is in storage
	lastForced     time.Time   // last forced restore
	removeWait     []*removeOp // removes waiting for the release to commit

	corrupt map[string]bool // keys of corrupt records being deleted

	closeOnce sync.Once
	closeErr  error
}

// Append queues r; see AppendSeq.
func (q *Queue) Append(r Record, done func(error)) {
	q.append(r, &appendOp{doneErr: done})
}

// AppendSeq stores a copy of r (its Seq and Time are set by the queue)
// asynchronously and calls done with the record's Seq and nil once it is
// durable (fsync'ed), or with 0 and the error otherwise: wrapping
// ErrRefused when policy refused it, ErrClosed after Close. Records become
// durable and visible in AppendSeq/Append call order.
//
// AppendSeq never blocks on disk: r waits in memory until its commit (see
// Stats.Pending; bounding that is the caller's job). When a limit would be
// exceeded, DropOldest deletes the oldest records in the same transaction
// until r fits; RefuseNew refuses r. A full disk is handled like a limit
// (see diskfull.go).
//
// done is called from another goroutine (storage's committer, mostly),
// never from inside AppendSeq, so the caller may hold locks done takes. It
// must return quickly and must not wait for another Append or Remove to
// finish, or commits stall; it may call Append or Remove.
func (q *Queue) AppendSeq(r Record, done func(seq uint64, err error)) {
	q.append(r, &appendOp{done: done})
}

// append does AppendSeq's work for o, which holds the caller's done.
func (q *Queue) append(r Record, o *appendOp) {
	r.Time = q.now()
	o.q, o.size = q, uint64(len(r.Topic))+uint64(len(r.Payload))
	switch err := validateRecord(r); {
	case err != nil:
		o.refuse = fmt.Errorf("queue %s: append: %w: %w: %v", q.path, ErrRefused, ErrInvalid, err)
	case q.opts.MaxBytes > 0 && o.size > uint64(q.opts.MaxBytes):
		o.refuse = fmt.Errorf("queue %s: append: %w: record of %d bytes exceeds the %d byte limit",
			q.path, ErrRefused, o.size, q.opts.MaxBytes)
	default:
		o.val = encodeRecord(r)
	}
	// Refusals go through the committer too (as no-ops) so that every done
	// is called in Append order.
	q.mu.Lock()
	if q.recovering && !q.closed {
		q.backlog = append(q.backlog, o)
	} else {
		q.submitAppendLocked(o)
	}
	q.mu.Unlock()
}

// submitAppendLocked hands o to storage in the current epoch; q.mu held, so
// that submission order is call order.
func (q *Queue) submitAppendLocked(o *appendOp) {
	o.epoch = q.epoch.Load()
	q.inflight++
	q.db.Submit(o.run, o.finish)
}

// Remove deletes the record seq, which the upstream acknowledged,
// asynchronously; done (if not nil) gets nil once that is durable. Removing
// a missing seq (dropped by drop-oldest, or removed before) is not an error.
func (q *Queue) Remove(seq uint64, done func(error)) {
	q.submitRemove(&removeOp{q: q, key: seqKey(seq), seq: seq, done: done})
}

func (q *Queue) submitRemove(o *removeOp) { q.db.Submit(o.run, o.finish) }

// Notify returns a channel (capacity 1) that receives a value whenever new
// records became durable: the sender waits on it, then Reads.
func (q *Queue) Notify() <-chan struct{} { return q.notify }

func (q *Queue) signal() {
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

// Close commits everything appended or removed before it and closes the
// file; appends waiting for a disk-full recovery get ErrClosed. Calls after
// the first return the first call's result.
func (q *Queue) Close() error {
	q.closeOnce.Do(func() {
		err := q.db.Close()
		q.mu.Lock()
		q.closed = true
		left := append(q.retry, q.backlog...)
		q.retry, q.backlog = nil, nil
		q.resetRecoveryLocked()
		q.mu.Unlock()
		for _, o := range left {
			o.callDone(0, fmt.Errorf("queue %s: append: %w", q.path, ErrClosed))
		}
		q.callDoomed()
		q.drops.close()
		if err != nil {
			q.closeErr = fmt.Errorf("queue %s: close: %w", q.path, err)
		}
	})
	return q.closeErr
}
