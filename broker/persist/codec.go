package persist

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"unicode/utf8"
)

// Record format, version 1 (all records):
//
//	byte     version (1)
//	...      fields, as below
//	uint32   CRC-32C (Castagnoli), big endian, of every preceding byte
//
// Message fields:  flags byte (bit 0: retain; other bits 0), QoS byte (0-2),
// topic (uvarint length + bytes), payload (uvarint length + bytes).
// Session fields:  subscription count (uvarint), then per subscription the
// filter (uvarint length + bytes) and its QoS byte (0-2).
//
// bbolt checksums only its meta pages, so the CRC is what catches a torn or
// bit-rotten record on an SD card. A reader rejects any other version.
const (
	formatV1   byte = 1
	crcLen          = 4
	flagRetain byte = 1 << 0
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// CorruptError reports a stored record that cannot be decoded. Load skips
// such records (logging this error) instead of failing.
type CorruptError struct {
	Bucket string // path of the bucket, e.g. "sessions/dev42/queue"
	Key    []byte
	Err    error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("persist: corrupt record in bucket %q, key %s: %v", e.Bucket, fmtKey(e.Key), e.Err)
}

func (e *CorruptError) Unwrap() error { return e.Err }

// fmtKey shows a key as a quoted string when it is printable text, else in
// hex (with the number for 8-byte queue and 2-byte packet id keys).
func fmtKey(k []byte) string {
	printable := utf8.Valid(k) && len(k) > 0
	for _, r := range string(k) {
		if !strconv.IsPrint(r) {
			printable = false
			break
		}
	}
	switch {
	case printable:
		return strconv.Quote(string(k))
	case len(k) == 8:
		return fmt.Sprintf("0x%x (%d)", k, binary.BigEndian.Uint64(k))
	case len(k) == 2:
		return fmt.Sprintf("0x%x (%d)", k, binary.BigEndian.Uint16(k))
	default:
		return fmt.Sprintf("0x%x", k)
	}
}

var (
	errShort    = errors.New("truncated")
	errChecksum = errors.New("checksum mismatch")
	errTrailing = errors.New("trailing bytes")
)

func sealRecord(b []byte) []byte {
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// openRecord checks the version and checksum and returns the field bytes.
func openRecord(b []byte) ([]byte, error) {
	if len(b) < 1+crcLen {
		return nil, errShort
	}
	if b[0] != formatV1 {
		return nil, fmt.Errorf("unknown format version %d", b[0])
	}
	body, sum := b[:len(b)-crcLen], b[len(b)-crcLen:]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(sum) {
		return nil, errChecksum
	}
	return body[1:], nil
}

func encodeMessage(m Message) []byte {
	b := make([]byte, 0, 1+2+2*binary.MaxVarintLen64+len(m.Topic)+len(m.Payload)+crcLen)
	var flags byte
	if m.Retain {
		flags |= flagRetain
	}
	b = append(b, formatV1, flags, m.QoS)
	b = appendBytes(b, []byte(m.Topic))
	b = appendBytes(b, m.Payload)
	return sealRecord(b)
}

// decodeMessage decodes a message record; the result shares no memory with b.
func decodeMessage(b []byte) (Message, error) {
	d, err := openRecord(b)
	if err != nil {
		return Message{}, err
	}
	if len(d) < 2 {
		return Message{}, errShort
	}
	flags, qos := d[0], d[1]
	if flags&^flagRetain != 0 {
		return Message{}, fmt.Errorf("unknown flags 0x%02x", flags)
	}
	if qos > 2 {
		return Message{}, fmt.Errorf("invalid QoS %d", qos)
	}
	d = d[2:]
	topic, d, err := readBytes(d)
	if err != nil {
		return Message{}, fmt.Errorf("topic: %w", err)
	}
	payload, d, err := readBytes(d)
	if err != nil {
		return Message{}, fmt.Errorf("payload: %w", err)
	}
	if len(d) != 0 {
		return Message{}, errTrailing
	}
	m := Message{Topic: string(topic), QoS: qos, Retain: flags&flagRetain != 0}
	if len(payload) > 0 {
		m.Payload = append([]byte(nil), payload...)
	}
	return m, nil
}

func encodeSession(s Session) []byte {
	n := 1 + binary.MaxVarintLen64 + crcLen
	for _, sub := range s.Subscriptions {
		n += binary.MaxVarintLen64 + len(sub.Filter) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, formatV1)
	b = binary.AppendUvarint(b, uint64(len(s.Subscriptions)))
	for _, sub := range s.Subscriptions {
		b = appendBytes(b, []byte(sub.Filter))
		b = append(b, sub.QoS)
	}
	return sealRecord(b)
}

// decodeSession decodes a session record stored under clientID.
func decodeSession(clientID string, b []byte) (Session, error) {
	d, err := openRecord(b)
	if err != nil {
		return Session{}, err
	}
	count, n := binary.Uvarint(d)
	if n <= 0 {
		return Session{}, fmt.Errorf("subscription count: %w", errShort)
	}
	d = d[n:]
	// every subscription takes at least 2 bytes: bound the allocation
	if count > uint64(len(d))/2 {
		return Session{}, fmt.Errorf("subscription count %d exceeds record", count)
	}
	s := Session{ClientID: clientID}
	if count > 0 {
		s.Subscriptions = make([]Subscription, 0, count)
	}
	for i := range count {
		var f []byte
		f, d, err = readBytes(d)
		if err != nil {
			return Session{}, fmt.Errorf("subscription %d: %w", i, err)
		}
		if len(d) < 1 {
			return Session{}, fmt.Errorf("subscription %d: %w", i, errShort)
		}
		if d[0] > 2 {
			return Session{}, fmt.Errorf("subscription %d: invalid QoS %d", i, d[0])
		}
		s.Subscriptions = append(s.Subscriptions, Subscription{Filter: string(f), QoS: d[0]})
		d = d[1:]
	}
	if len(d) != 0 {
		return Session{}, errTrailing
	}
	return s, nil
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func readBytes(d []byte) (v, rest []byte, err error) {
	l, n := binary.Uvarint(d)
	if n <= 0 {
		return nil, nil, errShort
	}
	d = d[n:]
	if l > uint64(len(d)) {
		return nil, nil, errShort
	}
	return d[:l], d[l:], nil
}
