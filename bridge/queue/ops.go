package queue

import (
	"errors"
	"fmt"
	"time"

	"github.com/sngate/sngate/internal/storage"
	"go.etcd.io/bbolt"
)

// An op's run is storage's fn: it may run more than once (storage re-runs a
// batch without an op that failed), so it acts only on its transaction and
// leaves its outcome in the op's result fields, reset on every run. Its
// finish is storage's done: it reads the result of the last run, the one
// that committed, and mirrors it into q.st.

// appendOp is one Append.
type appendOp struct {
	q        *Queue
	val      []byte // the encoded record; nil when refuse is set
	size     uint64 // len(Topic)+len(Payload)
	done     func(uint64, error)
	doneErr  func(error) // Append's done, called instead: no wrapper closure per record
	refuse   error       // set by Append: invalid or too large, refused in order
	epoch    uint64      // see Queue.epoch; set at each submission, under q.mu
	attempts int         // commits that failed with this op in them

	// result of the last run
	fnErr       error
	deferred    bool // stale epoch: nothing written, to be retried
	refused     bool // refuse-new at a limit, or disk full (noRoom)
	noRoom      bool
	seq         uint64
	dropped     uint64 // records dropped by drop-oldest to make room
	m           meta
	headChanged bool
	oldest      time.Time
}

func (o *appendOp) run(tx *bbolt.Tx) error {
	o.fnErr, o.deferred, o.refused, o.noRoom, o.seq, o.dropped, o.headChanged = nil, false, false, false, 0, 0, false
	err := o.apply(tx)
	o.fnErr = err
	return err
}

func (o *appendOp) apply(tx *bbolt.Tx) error {
	q := o.q
	if o.refuse != nil {
		return nil
	}
	if o.epoch != q.epoch.Load() {
		o.deferred = true
		return nil
	}
	s, err := loadTx(tx)
	if err != nil {
		return err
	}
	if q.opts.Policy == RefuseNew && (q.releaseOn.Load() || tx.Bucket(bucketReserve) == nil || q.diskFull()) {
		// Disk full: the room left is for Removes (see reserve.go).
		o.refused, o.noRoom, o.m = true, true, s.m
		return nil
	}
	if !q.fits(s.m, o.size) {
		if q.opts.Policy == RefuseNew {
			o.refused, o.m = true, s.m
			return nil
		}
		o.dropped, _, err = dropHead(&s, func(_, _ uint64) bool { return q.fits(s.m, o.size) })
		if err != nil {
			return fmt.Errorf("drop oldest: %w", err)
		}
	}
	o.seq = s.m.next
	s.m.next++
	if err := s.recs.Put(seqKey(o.seq), o.val); err != nil {
		return err
	}
	s.m.count++
	s.m.bytes += o.size
	if err := s.save(); err != nil {
		return err
	}
	o.m = s.m
	if o.dropped > 0 || s.m.count == 1 {
		o.headChanged, o.oldest = true, s.head()
	}
	return nil
}

// callDone calls the caller's done, if any.
func (o *appendOp) callDone(seq uint64, err error) {
	switch {
	case o.done != nil:
		o.done(seq, err)
	case o.doneErr != nil:
		o.doneErr(err)
	}
}

func (o *appendOp) finish(err error) {
	q := o.q
	var (
		seq                      uint64
		cbErr                    error
		call                     = true
		dropped, refused, failed uint64
		cause                    string
	)
	q.mu.Lock()
	q.inflight--
	// The outcomes that wrote nothing first: they stand whether or not the
	// batch's commit failed.
	switch {
	case errors.Is(err, storage.ErrClosed):
		cbErr = fmt.Errorf("queue %s: append: %w", q.path, ErrClosed)
	case o.deferred:
		q.retry = append(q.retry, o)
		call = false
	case o.refuse != nil:
		q.st.Refused++
		refused, cause, cbErr = 1, "too large or invalid", o.refuse
	case o.refused && o.noRoom:
		q.st.Refused++
		refused, cause = 1, "disk full"
		cbErr = fmt.Errorf("queue %s: append: %w: disk full, waiting for removals to free room", q.path, ErrRefused)
		q.maybeRestoreLocked()
	case o.refused:
		q.st.Refused++
		refused, cause = 1, "limit"
		cbErr = fmt.Errorf("queue %s: append: %w: queue full (%d records, %d bytes)", q.path, ErrRefused, o.m.count, o.m.bytes)
	case err != nil && o.fnErr != nil:
		// The op itself failed inside bbolt: retrying cannot help.
		q.st.Failed++
		failed, cause = 1, err.Error()
		cbErr = fmt.Errorf("queue %s: append: %w", q.path, err)
	case err != nil:
		// The commit failed: a write error, most likely a full disk.
		call, cbErr = q.writeFailedLocked(o, err)
		if cbErr != nil {
			if errors.Is(cbErr, ErrRefused) {
				refused = 1
			} else {
				failed = 1
			}
			cause = "disk write failed: " + err.Error()
		}
	default:
		q.st.Appended++
		q.st.DroppedOldest += o.dropped
		dropped, cause = o.dropped, "limit"
		q.failures = 0
		q.setMeta(o.m, o.headChanged, o.oldest)
		seq = o.seq
	}
	if o == q.isolated && call {
		q.isolated = nil // done with it: the next one goes alone
	}
	q.proceedLocked()
	q.mu.Unlock()

	q.drops.add(dropped, refused, failed, cause)
	q.callDoomed()
	if cbErr == nil && call {
		q.signal()
		q.touched(int64(o.size + perRecordCost))
	}
	if call {
		o.callDone(seq, cbErr)
	}
}

// removeOp is one Remove, or the deletion of a corrupt record found by Read.
type removeOp struct {
	q        *Queue
	key      []byte
	seq      uint64
	done     func(error)
	corrupt  bool // deleting a corrupt record: no caller, counted in Corrupt already
	attempts int

	// result of the last run
	fnErr       error
	deferred    bool // a release is in storage: nothing written, to be retried
	removed     bool
	size        uint64
	m           meta
	headChanged bool
	oldest      time.Time
}

func (o *removeOp) run(tx *bbolt.Tx) error {
	o.fnErr, o.deferred, o.removed, o.headChanged = nil, false, false, false
	err := o.apply(tx)
	o.fnErr = err
	return err
}

func (o *removeOp) apply(tx *bbolt.Tx) error {
	if o.q.releaseOn.Load() {
		// The release must commit without the pages this op would need.
		o.deferred = true
		return nil
	}
	s, err := loadTx(tx)
	if err != nil {
		return err
	}
	v := s.recs.Get(o.key)
	if v == nil {
		return nil
	}
	sz := valueSize(v)
	if err := s.recs.Delete(o.key); err != nil {
		return err
	}
	s.deleted(sz)
	if err := s.save(); err != nil {
		return err
	}
	o.removed, o.size, o.m = true, sz, s.m
	// The head changed if the record removed was in front of the new head.
	fk, fv := s.recs.Cursor().First()
	if fk == nil || string(fk) > string(o.key) {
		o.headChanged, o.oldest = true, valueTime(fv)
	}
	return nil
}

func (o *removeOp) finish(err error) {
	q := o.q
	what := "remove"
	if o.corrupt {
		what = "delete corrupt record"
	}
	retry := false
	q.mu.Lock()
	if err == nil && o.removed {
		if !o.corrupt {
			q.st.Removed++
		}
		q.fullUntil.Store(0)
		q.setMeta(o.m, o.headChanged, o.oldest)
		q.maybeRestoreLocked()
	}
	switch {
	case errors.Is(err, storage.ErrClosed):
	case o.deferred:
		// Shared a batch with the release: again, after it.
		retry = true
		q.requeueRemoveLocked(o)
	case err != nil && o.fnErr == nil && !o.corrupt && o.attempts+1 < maxAttempts:
		// A write error: try again, after releasing the reserve if the
		// file still holds it (a full file may not have the pages even a
		// delete needs).
		retry = true
		o.attempts++
		q.lastWriteErr = err
		if q.reserveHeld && !q.releasing {
			if q.opts.Policy == DropOldest {
				// Keep the appends out of the release's commit.
				q.startRecoveryLocked()
			}
			q.submitReleaseLocked()
		}
		q.requeueRemoveLocked(o)
	}
	if o.corrupt && !retry {
		delete(q.corrupt, string(o.key))
	}
	q.mu.Unlock()
	if retry {
		return
	}

	switch {
	case err == nil:
	case errors.Is(err, storage.ErrClosed):
		err = fmt.Errorf("queue %s: %s %d: %w", q.path, what, o.seq, ErrClosed)
	default:
		err = fmt.Errorf("queue %s: %s %d: %w", q.path, what, o.seq, err)
	}
	if o.corrupt && err != nil {
		q.log.Error("queue: could not delete a corrupt record; the next Read retries", "seq", o.seq, "err", err)
	}
	if o.done != nil {
		o.done(err)
	}
}

// requeueRemoveLocked submits o again, after the release if one is in
// storage; q.mu held.
func (q *Queue) requeueRemoveLocked(o *removeOp) {
	if q.releasing {
		q.removeWait = append(q.removeWait, o)
		return
	}
	q.submitRemove(o)
}

// corruptRecord is a record Read could not decode.
type corruptRecord struct {
	key []byte
	seq uint64
	err error
}

// dropCorrupt counts, logs and deletes a corrupt record, once however many
// Reads meet it before its deletion commits.
func (q *Queue) dropCorrupt(cr corruptRecord) {
	q.mu.Lock()
	if q.corrupt[string(cr.key)] {
		q.mu.Unlock()
		return
	}
	q.corrupt[string(cr.key)] = true
	q.st.Corrupt++
	q.mu.Unlock()
	q.log.Error("queue: corrupt record skipped and deleted", "seq", cr.seq, "key", fmt.Sprintf("%x", cr.key), "err", cr.err)
	q.submitRemove(&removeOp{q: q, key: cr.key, seq: cr.seq, corrupt: true})
}
