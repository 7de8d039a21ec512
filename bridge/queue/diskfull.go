package queue

import (
	"errors"
	"fmt"
	"time"

	"github.com/sngate/sngate/internal/storage"
	"go.etcd.io/bbolt"
)

// A full disk.
//
// A commit that fails (bbolt could not grow or write the file: ENOSPC,
// EFBIG past RLIMIT_FSIZE, EDQUOT, EIO) fails every op of its batch, and
// bbolt rolls the transaction back and stays usable. Storage gives such
// errors no class of their own (and bbolt flattens some into text), so any
// failed commit of an op whose own function succeeded counts as a write
// error.
//
// RefuseNew refuses the appends of the failed commit (ErrRefused, wrapping
// the write error), and then every append without trying for fullBackoff,
// or until a Remove commits. DropOldest makes room and retries, keeping
// Append order:
//
//  1. The first failed append starts a recovery and changes the epoch.
//     Appends already handed to storage see the stale epoch, write nothing,
//     and join the retry list behind the failed ones (dones come in
//     submission order). New Appends wait in the backlog.
//  2. When no append of the old epoch is left in storage, a make-room op
//     deletes records from the head: at least the failed records' on-disk
//     size plus 1% of the queue, and 1% of its records (2%, 4%, 8%, 16% on
//     consecutive recoveries). It commits alone: bbolt reuses pages freed by
//     a transaction only in later ones, so the file need not grow. If even
//     it fails (no free page left for the copies of the pages it changes),
//     the reserve is released first (see reserve.go); the make-room op then
//     drops enough for the reserve too, which is restored, alone, before
//     the retries.
//  3. Once that is durable, the retry list and the backlog are resubmitted
//     in order.
//  4. An append that fails a second time switches the recovery to one
//     append per commit for the retry list, so that a record which can
//     never fit (larger than the disk allows) fails alone instead of taking
//     its batch with it; then the backlog goes on in batches.
//
// An append is tried in at most maxAttempts commits and the make-room op
// too; then the appends get an error (counted in Failed). So a disk that
// fails every write costs a bounded number of commits per record and never
// wedges the queue.

// fullBackoff is how long refuse-new refuses without trying after a commit
// failed with a write error (unless a Remove frees room sooner).
const fullBackoff = 10 * time.Second

// diskFull reports whether refuse-new is backing off after a write error.
func (q *Queue) diskFull() bool {
	u := q.fullUntil.Load()
	return u != 0 && time.Now().UnixNano() < u
}

// perRecordCost is what a record takes in a leaf page beyond its size: its
// encoding's overhead, its key and bbolt's element header.
const perRecordCost = recordOverhead + 8 + 16

// writeFailedLocked handles an append whose commit failed; q.mu held. It
// returns whether to call done now, and with what.
func (q *Queue) writeFailedLocked(o *appendOp, err error) (call bool, cbErr error) {
	if q.opts.Policy == RefuseNew {
		q.st.Refused++
		q.fullUntil.Store(time.Now().Add(q.fullBackoff).UnixNano())
		return true, fmt.Errorf("queue %s: append: %w: disk write failed: %w", q.path, ErrRefused, err)
	}
	o.attempts++
	if o.attempts >= maxAttempts {
		q.st.Failed++
		return true, fmt.Errorf("queue %s: append: gave up after %d failed commits: %w", q.path, o.attempts, err)
	}
	q.startRecoveryLocked()
	q.lastWriteErr = err
	q.needRoom = true
	if o.attempts >= 2 {
		q.isolating = true
	}
	if o == q.isolated {
		// Tried alone: back to the front, the rest of the list waits.
		q.isolated = nil
		q.retry = append([]*appendOp{o}, q.retry...)
		return false, nil
	}
	q.retry = append(q.retry, o)
	return false, nil
}

// startRecoveryLocked starts a recovery unless one is on; q.mu held.
func (q *Queue) startRecoveryLocked() {
	if !q.recovering {
		q.recovering = true
		q.epoch.Add(1)
	}
}

// resetRecoveryLocked ends a recovery's state (not its lists); q.mu held.
func (q *Queue) resetRecoveryLocked() {
	q.recovering, q.isolating, q.needRoom, q.madeRoom = false, false, false, false
	q.isolated = nil
}

// proceedLocked moves a recovery on once no append of it is in storage and
// no release or make-room op is; q.mu held. It is called after every
// append's, make-room op's and release's done.
func (q *Queue) proceedLocked() {
	if !q.recovering || q.roomPending || q.releasing || q.restorePending || q.inflight > 0 {
		return
	}
	switch {
	case len(q.retry) == 0:
		q.endRecoveryLocked()
	case q.roomTries >= maxAttempts:
		// Even freeing room fails: give the retry list up, go on with the
		// backlog.
		err := fmt.Errorf("queue %s: append: cannot make room after %d failed commits: %w", q.path, q.roomTries, q.lastWriteErr)
		for _, o := range q.retry {
			q.doomed = append(q.doomed, doomedAppend{o, err})
		}
		q.st.Failed += uint64(len(q.retry))
		q.retry, q.roomTries = nil, 0
		q.endRecoveryLocked()
	case q.needRoom && q.reserveHeld && q.roomTries > 0:
		// The make-room op itself found no free page: release the reserve.
		q.submitReleaseLocked()
	case q.needRoom:
		q.submitRoomLocked()
	case q.madeRoom && !q.reserveHeld:
		// The make-room op dropped enough for the reserve too: restore it
		// before the retries take the room.
		q.madeRoom = false
		q.submitRestoreLocked(true)
	case q.isolating:
		o := q.retry[0]
		q.retry[0] = nil
		q.retry = q.retry[1:]
		q.isolated = o
		q.submitAppendLocked(o)
	default:
		q.endRecoveryLocked()
	}
}

// submitRoomLocked submits the make-room op for the retry list; q.mu held.
func (q *Queue) submitRoomLocked() {
	pct := uint64(1) << min(q.failures, 4)
	q.failures++
	o := &roomOp{q: q, needCount: max(1, uint64(q.st.Messages)*pct/100)}
	retry := q.retry
	if q.isolating {
		retry = retry[:1] // only the next op commits before the next failure
	}
	for _, a := range retry {
		o.needBytes += a.size + perRecordCost
	}
	o.needBytes += (uint64(q.st.Bytes) + uint64(q.st.Messages)*perRecordCost) * pct / 100
	if !q.reserveHeld {
		o.needBytes += q.reserveBytes() // restored after the retries
	}
	q.roomPending = true
	q.db.Submit(o.run, o.finish)
}

// endRecoveryLocked resubmits the retry list, restores the reserve and
// resubmits the backlog, in that order, and ends the recovery; q.mu held.
func (q *Queue) endRecoveryLocked() {
	retry, backlog := q.retry, q.backlog
	q.retry, q.backlog = nil, nil
	q.resetRecoveryLocked()
	for _, o := range retry {
		q.submitAppendLocked(o)
	}
	q.maybeRestoreLocked()
	for _, o := range backlog {
		q.submitAppendLocked(o)
	}
}

// doomedAppend is an append given up under q.mu, whose done is called
// after q.mu is released (by callDoomed).
type doomedAppend struct {
	o   *appendOp
	err error
}

// callDoomed calls the dones of the appends given up; q.mu not held.
func (q *Queue) callDoomed() {
	q.mu.Lock()
	doomed := q.doomed
	q.doomed = nil
	q.mu.Unlock()
	var failed uint64
	for _, d := range doomed {
		if !errors.Is(d.err, ErrClosed) {
			failed++
		}
	}
	q.drops.add(0, 0, failed, "disk full")
	for _, d := range doomed {
		d.o.callDone(0, d.err)
	}
}

// roomOp deletes a chunk of the oldest records after a failed commit.
type roomOp struct {
	q                    *Queue
	needCount, needBytes uint64

	// result of the last run
	dropped uint64
	m       meta
	oldest  time.Time
}

func (o *roomOp) run(tx *bbolt.Tx) error {
	o.dropped = 0
	s, err := loadTx(tx)
	if err != nil {
		return err
	}
	n, _, err := dropHead(&s, func(n, b uint64) bool {
		return n >= o.needCount && b+n*perRecordCost >= o.needBytes
	})
	if err != nil {
		return err
	}
	if n > 0 {
		if err := s.save(); err != nil {
			return err
		}
	}
	o.dropped, o.m, o.oldest = n, s.m, s.head()
	return nil
}

func (o *roomOp) finish(err error) {
	q := o.q
	var dropped uint64
	q.mu.Lock()
	q.roomPending = false
	switch {
	case err == nil:
		q.roomTries = 0
		q.needRoom = false
		q.madeRoom = true
		q.st.DroppedOldest += o.dropped
		dropped = o.dropped
		q.setMeta(o.m, true, o.oldest)
	case errors.Is(err, storage.ErrClosed) || q.closed:
		for _, a := range append(q.retry, q.backlog...) {
			q.doomed = append(q.doomed, doomedAppend{a, fmt.Errorf("queue %s: append: %w", q.path, ErrClosed)})
		}
		q.retry, q.backlog = nil, nil
		q.resetRecoveryLocked()
	default:
		q.roomTries++
		q.lastWriteErr = err
	}
	q.proceedLocked()
	q.mu.Unlock()

	q.drops.add(dropped, 0, 0, "disk full")
	q.callDoomed()
}
