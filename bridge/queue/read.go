package queue

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/sngate/sngate/internal/storage"
	"go.etcd.io/bbolt"
)

// Read returns up to max durable records with Seq > after, in Seq order,
// read from disk. The records share no memory with the file. A corrupt
// record (CRC mismatch) is skipped, counted in Stats.Corrupt, logged and
// deleted, so one bad sector cannot stall the bridge.
func (q *Queue) Read(after uint64, max int) ([]Record, error) {
	if max <= 0 || after == ^uint64(0) {
		return nil, nil
	}
	var (
		out []Record
		bad []corruptRecord
	)
	err := q.db.View(func(tx *bbolt.Tx) error {
		out, bad = out[:0], bad[:0]
		b := tx.Bucket(bucketRecords)
		if b == nil {
			return errors.New("records bucket missing")
		}
		c := b.Cursor()
		for k, v := c.Seek(seqKey(after + 1)); k != nil && len(out) < max; k, v = c.Next() {
			if len(k) != 8 {
				bad = append(bad, corruptRecord{key: append([]byte(nil), k...), err: fmt.Errorf("key of %d bytes", len(k))})
				continue
			}
			seq := binary.BigEndian.Uint64(k)
			r, err := decodeRecord(seq, v)
			if err != nil {
				bad = append(bad, corruptRecord{key: append([]byte(nil), k...), seq: seq, err: err})
				continue
			}
			if out == nil {
				out = make([]Record, 0, min(max, 256))
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, storage.ErrClosed) {
			err = ErrClosed
		}
		return nil, fmt.Errorf("queue %s: read: %w", q.path, err)
	}
	for _, cr := range bad {
		q.dropCorrupt(cr)
	}
	var n int64
	for _, r := range out {
		n += int64(len(r.Topic) + len(r.Payload) + perRecordCost)
	}
	q.touched(n)
	return out, nil
}

// mappedDropEvery is how many bytes of the file the process may touch
// through bbolt's mapping before it hands the pages back (see dropMapped).
const mappedDropEvery = 8 << 20

// touched counts n bytes of the file touched through the mapping, and
// hands the mapped pages back to the kernel every mappedDropEvery bytes.
func (q *Queue) touched(n int64) {
	if q.mapped.Add(n) < mappedDropEvery {
		return
	}
	q.mapped.Store(0)
	if err := q.db.View(dropMapped); err != nil && !errors.Is(err, storage.ErrClosed) {
		q.log.Debug("queue: madvise failed", "err", err)
	}
}
