package queue

import "time"

// Stats describe a queue for metrics and the status page. Messages, Bytes
// and Oldest are the durable state (they survive restarts); the counters
// count since Open.
type Stats struct {
	Messages int64     // records in the queue (durable)
	Bytes    int64     // sum of their sizes, len(Topic)+len(Payload)
	Oldest   time.Time // Time of the head record; zero when empty

	Appended uint64 // records made durable by Append
	Removed  uint64 // records deleted by Remove (a Remove of a missing Seq does not count)

	// DroppedOldest counts records deleted by drop-oldest, to respect a
	// limit or to make room on a full disk.
	DroppedOldest uint64
	// Refused counts records refused: by refuse-new (limit or disk full),
	// larger than MaxBytes, or invalid (QoS over 2, topic over 65535 bytes).
	Refused uint64
	// Failed counts appends given up after repeated write errors even though
	// drop-oldest made room (or an append failed inside bbolt): their done
	// got an error that does not wrap ErrRefused.
	Failed uint64
	// Corrupt counts records found corrupt (CRC mismatch) by Read; they are
	// skipped and deleted.
	Corrupt uint64
	// Pending is the number of appends not yet durable (nor refused): the
	// only per-record memory the queue holds, and the caller's to bound.
	Pending int64

	WriteErrors uint64 // failed commits (e.g. disk full), from storage
	Commits     uint64 // durable transactions, from storage
}

// setMeta mirrors the meta record of a committed op into q.st; q.mu held.
// Called in commit order, so the last call of a batch leaves its final state.
func (q *Queue) setMeta(m meta, headChanged bool, oldest time.Time) {
	q.st.Messages = int64(m.count)
	q.st.Bytes = int64(m.bytes)
	if headChanged {
		q.st.Oldest = oldest
	}
	if m.count == 0 {
		q.st.Oldest = time.Time{}
	}
}

// Stats returns a snapshot of the queue's state and counters.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	s := q.st
	s.Pending = int64(q.inflight + len(q.retry) + len(q.backlog))
	q.mu.Unlock()
	ds := q.db.Stats()
	s.Commits = ds.Commits
	s.WriteErrors = ds.CommitErrors
	return s
}
