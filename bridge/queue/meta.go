package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"go.etcd.io/bbolt"
)

// Layout of a queue file:
//
//	meta/state                  → meta record (next Seq, count, bytes)
//	records/<Seq, 8 bytes BE>   → record (see record.go)
//
// The meta record is rewritten in the same transaction as every change to
// the records, so after any crash it agrees with them and Open reads the
// queue's size without scanning it. Its format:
//
//	offset  size  field
//	0       1     format version (1)
//	1       8     next Seq to assign, uint64 big endian
//	9       8     record count, uint64 big endian
//	17      8     sum of the record sizes, uint64 big endian
//	25      4     CRC-32C (Castagnoli), big endian, of every preceding byte
var (
	bucketMeta    = []byte("meta")
	bucketRecords = []byte("records")
	keyState      = []byte("state")
)

const (
	metaV1  byte = 1
	metaLen      = 1 + 3*8 + crcLen
)

// errNewerFormat is wrapped when a file was written by a newer sngate.
var errNewerFormat = errors.New("written by a newer version (unknown meta format)")

// meta is the queue's authoritative state, as stored.
type meta struct {
	next  uint64 // Seq of the next record appended
	count uint64 // records in the queue
	bytes uint64 // sum of their sizes
}

func encodeMeta(m meta) []byte {
	b := make([]byte, 0, metaLen)
	b = append(b, metaV1)
	b = binary.BigEndian.AppendUint64(b, m.next)
	b = binary.BigEndian.AppendUint64(b, m.count)
	b = binary.BigEndian.AppendUint64(b, m.bytes)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func decodeMeta(b []byte) (meta, error) {
	if len(b) != metaLen {
		return meta{}, fmt.Errorf("meta record of %d bytes, want %d", len(b), metaLen)
	}
	body, sum := b[:len(b)-crcLen], b[len(b)-crcLen:]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(sum) {
		return meta{}, errChecksum
	}
	if b[0] != metaV1 {
		return meta{}, errNewerFormat
	}
	return meta{
		next:  binary.BigEndian.Uint64(b[1:]),
		count: binary.BigEndian.Uint64(b[9:]),
		bytes: binary.BigEndian.Uint64(b[17:]),
	}, nil
}

// txState is the queue as seen by one write transaction: its two buckets
// and the meta record, which the op changes and saves.
type txState struct {
	recs  *bbolt.Bucket
	metaB *bbolt.Bucket
	m     meta
}

// loadTx reads the queue's state in a write transaction. The buckets exist:
// Open creates them.
func loadTx(tx *bbolt.Tx) (txState, error) {
	s := txState{recs: tx.Bucket(bucketRecords), metaB: tx.Bucket(bucketMeta)}
	if s.recs == nil || s.metaB == nil {
		return txState{}, errors.New("buckets missing")
	}
	// Keys only ever grow: full pages, not bbolt's default half-full ones.
	s.recs.FillPercent = 1.0
	m, err := decodeMeta(s.metaB.Get(keyState))
	if err != nil {
		return txState{}, fmt.Errorf("meta record: %w", err)
	}
	s.m = m
	return s, nil
}

// save writes the meta record back.
func (s *txState) save() error { return s.metaB.Put(keyState, encodeMeta(s.m)) }

// deleted accounts for a record of size sz that left the queue. It never
// lets the counters wrap: an inconsistency (only possible with a corrupted
// file) heals when the queue empties.
func (s *txState) deleted(sz uint64) {
	if s.m.count > 0 {
		s.m.count--
	}
	s.m.bytes -= min(sz, s.m.bytes)
	if s.m.count == 0 {
		s.m.bytes = 0
	}
}

// head returns the Time of the first record, zero when the queue is empty.
func (s *txState) head() time.Time {
	_, v := s.recs.Cursor().First()
	return valueTime(v)
}
