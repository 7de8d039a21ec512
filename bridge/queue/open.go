package queue

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sngate/sngate/internal/storage"
	"go.etcd.io/bbolt"
)

// Open opens (creating it and its directories if needed) the queue file at
// path. It reads the queue's size from the meta record, without scanning
// the records, so it is fast with a million of them; after a crash it finds
// every record whose append was acknowledged and not removed.
func Open(path string, opts Options) (*Queue, error) {
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("queue %s: %w", path, err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	// No synced freelist: after a long backlog drained, the file is mostly
	// free pages, and bbolt would write all their ids in every commit
	// (hundreds of KiB per message for a drained million). The price: Open
	// walks the live pages to rebuild the freelist.
	db, err := storage.Open(path, storage.Options{CommitWindow: opts.CommitWindow, Logger: log, NoFreelistSync: true})
	if err != nil {
		return nil, fmt.Errorf("queue %s: %w", path, err)
	}
	q := &Queue{
		path:    path,
		db:      db,
		opts:    opts,
		log:     log.With("queue", path),
		now:     now,
		notify:  make(chan struct{}, 1),
		corrupt: map[string]bool{},

		fullBackoff: fullBackoff,
	}
	q.drops = newDropLog(q.log, dropLogEvery)
	m, oldest, err := q.load()
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("queue %s: open: %w", path, err)
	}
	q.setMeta(m, true, oldest)
	q.lastForced = time.Now()
	// bbolt's freelist rebuild touched every live page: hand them back.
	_ = db.View(dropMapped)
	return q, nil
}

// load reads the meta record, the head's Time and the page size, and
// creates or repairs what is missing (the buckets, the meta record, the
// reserve) with one write, only when needed: opening a full disk must work.
func (q *Queue) load() (meta, time.Time, error) {
	var (
		m       meta
		oldest  time.Time
		why     string // what needs repairing; empty: nothing
		reserve bool
	)
	err := q.db.View(func(tx *bbolt.Tx) error {
		var err error
		m, oldest, why, err = inspect(tx)
		q.pageSize = tx.DB().Info().PageSize
		reserve = tx.Bucket(bucketReserve) != nil
		return err
	})
	if err != nil || (why == "" && reserve) {
		q.reserveHeld = reserve
		return m, oldest, err
	}
	fix := func(withReserve bool) error {
		return q.db.Update(context.Background(), func(tx *bbolt.Tx) error {
			if why != "" {
				var err error
				if m, oldest, err = repair(tx, q.log, why); err != nil {
					return err
				}
			}
			if withReserve {
				return putReserve(tx)
			}
			return nil
		})
	}
	if err := fix(true); err == nil {
		q.reserveHeld = true
		return m, oldest, nil
	} else if why == "" {
		q.log.Warn("queue: cannot write the disk space reserve (disk full?); trying again later", "err", err)
		return m, oldest, nil
	}
	// A repair is needed: without the reserve if there is no room for it.
	return m, oldest, fix(false)
}

// inspect checks the file's layout and meta record against the records'
// first and last keys (cheap: two cursor seeks). why says what is wrong.
func inspect(tx *bbolt.Tx) (m meta, oldest time.Time, why string, err error) {
	recs, mb := tx.Bucket(bucketRecords), tx.Bucket(bucketMeta)
	if recs == nil || mb == nil {
		return meta{}, time.Time{}, "new file", nil
	}
	m, err = decodeMeta(mb.Get(keyState))
	if errors.Is(err, errNewerFormat) {
		return meta{}, time.Time{}, "", err
	}
	if err != nil {
		return meta{}, time.Time{}, "meta record: " + err.Error(), nil
	}
	c := recs.Cursor()
	fk, fv := c.First()
	lk, _ := c.Last()
	switch {
	case m.next == 0:
		return m, time.Time{}, "meta record: next Seq 0", nil
	case (m.count == 0) != (fk == nil):
		return m, time.Time{}, fmt.Sprintf("meta record counts %d records, the bucket disagrees", m.count), nil
	case len(lk) == 8 && binary.BigEndian.Uint64(lk) >= m.next:
		return m, time.Time{}, fmt.Sprintf("meta record's next Seq %d is not past the last record", m.next), nil
	}
	return m, valueTime(fv), "", nil
}

// repair creates the buckets and meta record of a new file, or rebuilds a
// meta record that disagrees with the records by scanning them (only a
// corrupted file needs that).
func repair(tx *bbolt.Tx, log *slog.Logger, why string) (meta, time.Time, error) {
	recs, err := tx.CreateBucketIfNotExists(bucketRecords)
	if err != nil {
		return meta{}, time.Time{}, err
	}
	mb, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return meta{}, time.Time{}, err
	}
	old, merr := decodeMeta(mb.Get(keyState))
	if errors.Is(merr, errNewerFormat) {
		return meta{}, time.Time{}, merr
	}
	m := meta{next: max(old.next, 1)}
	if why != "new file" {
		log.Warn("queue: rebuilding the meta record from the records", "reason", why)
	}
	c := recs.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		m.count++
		m.bytes += valueSize(v)
		if len(k) == 8 {
			m.next = max(m.next, binary.BigEndian.Uint64(k)+1)
		}
	}
	if err := mb.Put(keyState, encodeMeta(m)); err != nil {
		return meta{}, time.Time{}, err
	}
	_, fv := c.First()
	return m, valueTime(fv), nil
}
