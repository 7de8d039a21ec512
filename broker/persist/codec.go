package persist

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"unicode/utf8"
)

// Record format (all records):
//
//	byte     format version
//	...      fields, as below
//	uint32   CRC-32C (Castagnoli), big endian, of every preceding byte
//
// Version 1 records:
//
//	Message fields:  flags byte (bit 0: retain; other bits 0), QoS byte (0-2),
//	topic (uvarint length + bytes), payload (uvarint length + bytes).
//	Session fields:  subscription count (uvarint), then per subscription the
//	filter (uvarint length + bytes) and its QoS byte (0-2).
//
// Retained messages and session records are version 1. Queued messages
// (sessions/<id>/queue/<seq>) are written as version 2, which puts the
// delivery state in front of the message fields:
//
//	uint16   packet id, big endian; 0: never sent
//	byte     delivery flags (bit 0: released, i.e. PUBREC received and
//	         PUBREL pending, only with a packet id and QoS 2; other bits 0)
//	...      message fields, as in version 1
//
// The delivery fields sit at a fixed offset so that SetInflight rewrites
// them without decoding the message. A version 1 queue record (written
// before schema 2, see persist.go) still reads: as a message never sent.
//
// bbolt checksums only its meta pages, so the CRC is what catches a torn or
// bit-rotten record on an SD card. A reader rejects versions it does not
// know, and a version its kind of record does not use.
const (
	formatV1     byte = 1
	formatV2     byte = 2
	crcLen            = 4
	flagRetain   byte = 1 << 0
	flagReleased byte = 1 << 0 // delivery flags of a version 2 queue record
	deliveryLen       = 3      // packet id and delivery flags
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

// openRecord checks the version, which must be 1..maxVersion, and the
// checksum and returns the version and the field bytes.
func openRecord(b []byte, maxVersion byte) (byte, []byte, error) {
	if len(b) < 1+crcLen {
		return 0, nil, errShort
	}
	if b[0] < formatV1 || b[0] > maxVersion {
		return 0, nil, fmt.Errorf("unknown format version %d", b[0])
	}
	body, sum := b[:len(b)-crcLen], b[len(b)-crcLen:]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(sum) {
		return 0, nil, errChecksum
	}
	return b[0], body[1:], nil
}

func encodeMessage(m Message) []byte {
	b := make([]byte, 0, 1+messageLen(m)+crcLen)
	b = append(b, formatV1)
	b = appendMessage(b, m)
	return sealRecord(b)
}

// messageLen bounds the length of m's fields.
func messageLen(m Message) int {
	return 2 + 2*binary.MaxVarintLen64 + len(m.Topic) + len(m.Payload)
}

// appendMessage appends m's fields.
func appendMessage(b []byte, m Message) []byte {
	var flags byte
	if m.Retain {
		flags |= flagRetain
	}
	b = append(b, flags, m.QoS)
	b = appendBytes(b, []byte(m.Topic))
	return appendBytes(b, m.Payload)
}

// decodeMessage decodes a (version 1) message record; the result shares no
// memory with b.
func decodeMessage(b []byte) (Message, error) {
	_, d, err := openRecord(b, formatV1)
	if err != nil {
		return Message{}, err
	}
	return decodeMessageFields(d)
}

func decodeMessageFields(d []byte) (Message, error) {
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

// encodeQueued encodes a queue record, version 2. The Seq is the key, not
// part of the record.
func encodeQueued(q Queued) []byte {
	b := make([]byte, 0, 1+deliveryLen+messageLen(q.Msg)+crcLen)
	b = append(b, formatV2)
	b = appendDelivery(b, q.PacketID, q.Released)
	b = appendMessage(b, q.Msg)
	return sealRecord(b)
}

func appendDelivery(b []byte, packetID uint16, released bool) []byte {
	var flags byte
	if released {
		flags |= flagReleased
	}
	b = binary.BigEndian.AppendUint16(b, packetID)
	return append(b, flags)
}

// openQueued opens a queue record of version 1 or 2 and returns its
// delivery state (zero for version 1) and its message fields, undecoded.
func openQueued(b []byte) (packetID uint16, released bool, msg []byte, err error) {
	v, d, err := openRecord(b, formatV2)
	if err != nil {
		return 0, false, nil, err
	}
	if v == formatV1 {
		return 0, false, d, nil
	}
	if len(d) < deliveryLen {
		return 0, false, nil, errShort
	}
	packetID, flags := binary.BigEndian.Uint16(d), d[2]
	if flags&^flagReleased != 0 {
		return 0, false, nil, fmt.Errorf("unknown delivery flags 0x%02x", flags)
	}
	released = flags&flagReleased != 0
	if released && packetID == 0 {
		return 0, false, nil, errors.New("released without a packet id")
	}
	return packetID, released, d[deliveryLen:], nil
}

// decodeQueued decodes a queue record (version 1 or 2) stored under seq; the
// result shares no memory with b.
func decodeQueued(seq uint64, b []byte) (Queued, error) {
	pid, released, d, err := openQueued(b)
	if err != nil {
		return Queued{}, err
	}
	m, err := decodeMessageFields(d)
	if err != nil {
		return Queued{}, err
	}
	if released && m.QoS != 2 {
		return Queued{}, fmt.Errorf("released at QoS %d", m.QoS)
	}
	return Queued{Seq: seq, Msg: m, PacketID: pid, Released: released}, nil
}

// setDelivery returns queue record b (version 1 or 2) with its delivery
// state replaced, as a version 2 record. The message fields are copied as
// they are, after b's checksum has vouched for them.
func setDelivery(b []byte, packetID uint16, released bool) ([]byte, error) {
	_, _, d, err := openQueued(b)
	if err != nil {
		return nil, err
	}
	if len(d) < 2 {
		return nil, errShort
	}
	if released && d[1] != 2 {
		return nil, fmt.Errorf("release of a QoS %d message", d[1])
	}
	nb := make([]byte, 0, 1+deliveryLen+len(d)+crcLen)
	nb = append(nb, formatV2)
	nb = appendDelivery(nb, packetID, released)
	nb = append(nb, d...)
	return sealRecord(nb), nil
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
	_, d, err := openRecord(b, formatV1)
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
