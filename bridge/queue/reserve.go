package queue

import (
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// The reserve: pages the file holds back for a full disk.
//
// bbolt never overwrites a page in place: even a transaction that only
// deletes writes new copies of the pages it changes (the leaf, the branches
// above it, the root, the freelist), and the pages a transaction frees are
// reusable only by later ones. When the file cannot grow and its last
// commit used every free page, a delete fails like an append, and a full
// queue would stay full forever: no Remove, no drop-oldest.
//
// So every queue file holds a reserve bucket of about reservePages pages.
// Deleting that bucket needs only the pages every commit frees (the root
// and the freelist), and frees the whole reserve, which the make-room op
// (drop-oldest) or the Removes then use to free more. It is released only
// when a delete (a Remove or a make-room op) failed to commit.
//
// The reserve comes back once there is room: right after a make-room op
// that dropped enough for it (drop-oldest), or by a restore op tried after
// Removes, recoveries and refusals while the reserve is missing (one at a
// time, riding in the batches of the others), which writes it when bbolt's
// free pages could hold it twice over, or regardless once per reserveRetry
// (the disk may have room again). While the reserve is missing, refuse-new refuses
// every append, so that appends cannot take the room that Removes need.
const (
	reservePages = 16
	reservePer   = 4 // values per page
	reserveRetry = 10 * time.Second
)

var bucketReserve = []byte("reserve")

// putReserve creates the reserve bucket if it is missing.
func putReserve(tx *bbolt.Tx) error {
	if tx.Bucket(bucketReserve) != nil {
		return nil
	}
	b, err := tx.CreateBucket(bucketReserve)
	if err != nil {
		return fmt.Errorf("create reserve: %w", err)
	}
	b.FillPercent = 1.0
	// Small values, reservePer to a page: no overflow pages, so the reserve
	// never needs a run of contiguous free pages.
	v := make([]byte, tx.DB().Info().PageSize/reservePer-64)
	for i := range reservePages * reservePer {
		if err := b.Put([]byte{byte(i)}, v); err != nil {
			return fmt.Errorf("fill reserve: %w", err)
		}
	}
	return nil
}

// dropReserve deletes the reserve bucket, if there is one.
func dropReserve(tx *bbolt.Tx) error {
	if err := tx.DeleteBucket(bucketReserve); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
		return fmt.Errorf("release reserve: %w", err)
	}
	return nil
}

// reserveOp releases or restores the reserve.
type reserveOp struct {
	q       *Queue
	restore bool
	force   bool // restore even without the free pages for it
	done    bool // result of the last run: the file holds the reserve (restore)
}

func (o *reserveOp) run(tx *bbolt.Tx) error {
	if !o.restore {
		return dropReserve(tx)
	}
	o.done = false
	if tx.Bucket(bucketReserve) == nil && !o.force {
		// Free pages (and those freed by the last commit) could hold the
		// reserve twice over: the pages the batch's other ops take
		// besides, it will fit without growing the file.
		st := tx.DB().Stats()
		if st.FreePageN+st.PendingPageN < 2*reservePages+16 {
			return nil
		}
	}
	if err := putReserve(tx); err != nil {
		return err
	}
	o.done = true
	return nil
}

// submitReleaseLocked releases the reserve; q.mu held.
func (q *Queue) submitReleaseLocked() {
	q.releasing = true
	q.releaseOn.Store(true)
	o := &reserveOp{q: q}
	q.db.Submit(o.run, o.finish)
}

// maybeRestoreLocked submits a restore op if the reserve is missing and no
// release or restore is in storage; q.mu held.
func (q *Queue) maybeRestoreLocked() {
	if q.reserveHeld || q.releasing || q.restorePending {
		return
	}
	q.submitRestoreLocked(false)
}

// submitRestoreLocked submits a restore op, forced (written without looking
// at the free pages) if force or if the last forced one is reserveRetry
// old; q.mu held.
func (q *Queue) submitRestoreLocked(force bool) {
	o := &reserveOp{q: q, restore: true, force: force}
	if now := time.Now(); now.Sub(q.lastForced) >= reserveRetry {
		o.force, q.lastForced = true, now
	}
	q.restorePending = true
	q.db.Submit(o.run, o.finish)
}

func (o *reserveOp) finish(err error) {
	q := o.q
	q.mu.Lock()
	if o.restore {
		q.restorePending = false
		if err == nil && o.done && !q.reserveHeld {
			q.reserveHeld = true
			q.log.Info("queue: disk space reserve restored")
		}
		q.proceedLocked()
		q.mu.Unlock()
		q.callDoomed()
		return
	}
	q.releasing = false
	q.releaseOn.Store(false)
	if err == nil {
		q.reserveHeld = false
		q.log.Warn("queue: disk full, released the space reserve to free room")
	} else if q.recovering {
		q.roomTries++
	}
	// Removes that waited for the release go on, and so does a recovery.
	waiting := q.removeWait
	q.removeWait = nil
	for _, r := range waiting {
		q.submitRemove(r)
	}
	q.proceedLocked()
	q.mu.Unlock()
	q.callDoomed()
}

// reserveBytes is the reserve's size in the file.
func (q *Queue) reserveBytes() uint64 { return reservePages * uint64(q.pageSize) }
