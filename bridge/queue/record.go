package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"time"
)

// Record format (the value stored under the record's Seq, 8 bytes big
// endian, in the "records" bucket):
//
//	offset  size  field
//	0       1     format version (1)
//	1       1     flags: bit 0 retain; other bits 0
//	2       1     QoS (0-2)
//	3       8     Time, unix nanoseconds, int64 big endian
//	11      2     topic length n, uint16 big endian
//	13      n     topic
//	13+n    m     payload: every byte up to the CRC
//	end-4   4     CRC-32C (Castagnoli), big endian, of every preceding byte
//
// Every field before the topic has a fixed width and the payload takes the
// rest, so a record's size (len(Topic)+len(Payload)) is len(value) minus
// recordOverhead: dropping or deleting a record keeps the byte count in the
// meta record exact without decoding it, even when the record is corrupt.
// The encoding is canonical (one byte string per record), which the fuzz
// test relies on for its round trip.
//
// bbolt checksums only its meta pages, so the CRC is what catches a torn or
// bit-rotten record on an SD card.
const (
	recordV1       byte = 1
	flagRetain     byte = 1 << 0
	crcLen              = 4
	recordHeader        = 13 // version, flags, QoS, time, topic length
	recordOverhead      = recordHeader + crcLen
	maxTopicLen         = math.MaxUint16
	timeOffset          = 3
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	errShort    = errors.New("truncated")
	errChecksum = errors.New("checksum mismatch")
)

// encodeRecord encodes r's fields (not its Seq, which is the key).
func encodeRecord(r Record) []byte {
	b := make([]byte, 0, recordOverhead+len(r.Topic)+len(r.Payload))
	var flags byte
	if r.Retain {
		flags |= flagRetain
	}
	b = append(b, recordV1, flags, r.QoS)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Time.UnixNano()))
	b = binary.BigEndian.AppendUint16(b, uint16(len(r.Topic)))
	b = append(b, r.Topic...)
	b = append(b, r.Payload...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// validateRecord reports why r cannot be encoded, if it cannot.
func validateRecord(r Record) error {
	if r.QoS > 2 {
		return fmt.Errorf("invalid QoS %d", r.QoS)
	}
	if len(r.Topic) > maxTopicLen {
		return fmt.Errorf("topic of %d bytes exceeds %d", len(r.Topic), maxTopicLen)
	}
	return nil
}

// decodeRecord decodes the record stored under seq. The result shares no
// memory with b, which may be bbolt's mmap'd page.
func decodeRecord(seq uint64, b []byte) (Record, error) {
	if len(b) < recordOverhead {
		return Record{}, errShort
	}
	if b[0] != recordV1 {
		return Record{}, fmt.Errorf("unknown format version %d", b[0])
	}
	body, sum := b[:len(b)-crcLen], b[len(b)-crcLen:]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(sum) {
		return Record{}, errChecksum
	}
	flags, qos := b[1], b[2]
	if flags&^flagRetain != 0 {
		return Record{}, fmt.Errorf("unknown flags 0x%02x", flags)
	}
	if qos > 2 {
		return Record{}, fmt.Errorf("invalid QoS %d", qos)
	}
	nanos := int64(binary.BigEndian.Uint64(b[timeOffset:]))
	n := int(binary.BigEndian.Uint16(b[11:]))
	rest := body[recordHeader:]
	if n > len(rest) {
		return Record{}, fmt.Errorf("topic length %d exceeds record", n)
	}
	r := Record{
		Seq:    seq,
		Topic:  string(rest[:n]),
		QoS:    qos,
		Retain: flags&flagRetain != 0,
		Time:   time.Unix(0, nanos),
	}
	if p := rest[n:]; len(p) > 0 {
		r.Payload = append(make([]byte, 0, len(p)), p...)
	}
	return r, nil
}

// valueSize is the size (len(Topic)+len(Payload)) of the record stored as
// value v, from its length alone; 0 for a value too short to be a record.
func valueSize(v []byte) uint64 {
	if len(v) < recordOverhead {
		return 0
	}
	return uint64(len(v) - recordOverhead)
}

// valueTime is the Time of the record stored as v, read without checking
// the CRC (it only feeds Stats.Oldest); zero for a value that is not a
// version 1 record.
func valueTime(v []byte) time.Time {
	if len(v) < recordOverhead || v[0] != recordV1 {
		return time.Time{}
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v[timeOffset:])))
}

// seqKey is the bucket key of seq: 8 bytes big endian, so that bbolt's
// byte order is Seq order. A fresh slice each time: bbolt keeps the key
// until the transaction commits.
func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), seq) }
