// Package persist is the broker's durable state: persistent sessions (their
// subscriptions, queued QoS 1/2 messages and inbound QoS 2 packet ids) and
// retained messages, kept in a group-committed bbolt database
// (internal/storage).
//
// The broker describes each change as an Op and hands the few ops a request
// causes to Apply, which commits them together, atomically, and calls done
// once they are durable: only then may the broker acknowledge the request.
//
// Layout of the database (file sngate.db):
//
//	meta/schema                 → 2
//	sessions/<client id>/       one bucket per persistent session
//	    session                 → session record (subscriptions)
//	    queue/<seq, 8 bytes BE> → queue record (packet id, PUBREC state, message)
//	    inbound/<packet id, 2 bytes BE> → empty
//	retained/<topic>            → message record
//
// (A bbolt key is either a value or a nested bucket, never both, so the
// session record lives inside the session's bucket.) Records use a small
// versioned binary format with a CRC; see codec.go.
//
// Schema 2 added the packet id and PUBREC state of a queued message, in
// version 2 queue records. Open upgrades a schema 1 database by rewriting
// only the marker: its version 1 queue records still read (as never sent),
// and the marker keeps an older sngate, which could not read version 2
// records, from opening the file.
package persist

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/sngate/sngate/internal/storage"
	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// FileName is the database file Open uses inside its directory.
const FileName = "sngate.db"

const schemaVersion = 2

var (
	bucketMeta     = []byte("meta")
	bucketSessions = []byte("sessions")
	bucketRetained = []byte("retained")
	bucketQueue    = []byte("queue")
	bucketInbound  = []byte("inbound")
	keySchema      = []byte("schema")
	keySession     = []byte("session")
)

// Message is a stored application message.
type Message struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool
}

// Subscription is one topic filter of a session.
type Subscription struct {
	Filter string
	QoS    byte
}

// Session is the stored record of a persistent (clean-session=0) session.
type Session struct {
	ClientID      string
	Subscriptions []Subscription
}

// Queued is a QoS 1/2 message waiting for (or in flight to) a session.
type Queued struct {
	Seq uint64
	Msg Message
	// PacketID is the id the message was sent with; 0: never sent. After a
	// restart a message with an id is sent again with that id and DUP set,
	// or, released, its PUBREL is (MQTT-4.4.0-1).
	PacketID uint16
	// Released: the client has answered PUBREC, the broker owes it the
	// PUBREL and must never send the message again (QoS 2 only).
	Released bool
}

// State is everything Load returns at startup.
type State struct {
	Sessions []SessionState // in client id order
	Retained []Message      // in topic order
}

// SessionState is one stored session with its queue and inbound QoS 2 ids.
type SessionState struct {
	Session     Session
	Queue       []Queued // in Seq order
	InboundQoS2 []uint16 // packet ids between PUBREC and PUBREL, ascending
}

type opKind uint8

const (
	opInvalid opKind = iota
	opPutSession
	opDeleteSession
	opEnqueue
	opDequeue
	opSetRetained
	opAddInbound
	opRemoveInbound
	opSetInflight
)

func (k opKind) String() string {
	switch k {
	case opPutSession:
		return "PutSession"
	case opDeleteSession:
		return "DeleteSession"
	case opEnqueue:
		return "Enqueue"
	case opDequeue:
		return "Dequeue"
	case opSetRetained:
		return "SetRetained"
	case opAddInbound:
		return "AddInboundQoS2"
	case opRemoveInbound:
		return "RemoveInboundQoS2"
	case opSetInflight:
		return "SetInflight"
	}
	return "invalid Op"
}

// Op is one change to the stored state, built by the functions below. Ops
// encode their data when built, so the caller may reuse a payload slice
// afterwards.
//
// Ops addressed to a session that is not stored (never put, or deleted) do
// nothing: a message for a session that no longer exists has nowhere to go,
// and one vanished session must not fail a fan-out to the others.
type Op struct {
	kind opKind
	id   string // client id
	key  []byte // seq, packet id or topic
	val  []byte // encoded record; nil for SetRetained = delete
	err  error  // invalid arguments, reported by Apply
}

// PutSession stores the session's record (replacing its subscriptions) and
// creates its buckets; an existing queue and inbound ids are kept.
func PutSession(s Session) Op {
	op := Op{kind: opPutSession, id: s.ClientID, err: checkClientID(s.ClientID)}
	for _, sub := range s.Subscriptions {
		if sub.QoS > 2 {
			op.err = fmt.Errorf("subscription %q: invalid QoS %d", sub.Filter, sub.QoS)
		}
	}
	if op.err == nil {
		op.val = encodeSession(s)
	}
	return op
}

// DeleteSession removes the session with its queue and inbound ids; no error
// if it does not exist.
func DeleteSession(clientID string) Op {
	return Op{kind: opDeleteSession, id: clientID, err: checkClientID(clientID)}
}

// Enqueue stores q in the session's queue under q.Seq (replacing any
// message with that Seq), with its delivery state: a message sent at once
// is stored with its packet id.
func Enqueue(clientID string, q Queued) Op {
	op := Op{kind: opEnqueue, id: clientID, key: seqKey(q.Seq), err: checkClientID(clientID)}
	if op.err == nil {
		op.err = checkQoS(q.Msg.QoS)
	}
	if op.err == nil && q.Released {
		op.err = checkReleased(q.PacketID)
		if op.err == nil && q.Msg.QoS != 2 {
			op.err = fmt.Errorf("release of a QoS %d message", q.Msg.QoS)
		}
	}
	if op.err == nil {
		op.val = encodeQueued(q)
	}
	return op
}

// SetInflight records the delivery state of the queued message with seq:
// the packet id it was sent with (0: not sent) and whether the client has
// answered PUBREC (released; QoS 2 only). The message itself is kept. No
// error if the message or the session is absent: it was acknowledged, or
// the session ended, meanwhile.
func SetInflight(clientID string, seq uint64, packetID uint16, released bool) Op {
	op := Op{kind: opSetInflight, id: clientID, key: seqKey(seq), err: checkClientID(clientID)}
	if op.err == nil && released {
		op.err = checkReleased(packetID)
	}
	if op.err == nil {
		op.val = appendDelivery(make([]byte, 0, deliveryLen), packetID, released)
	}
	return op
}

// Dequeue removes the message with seq from the session's queue; no error if
// it is absent.
func Dequeue(clientID string, seq uint64) Op {
	return Op{kind: opDequeue, id: clientID, key: seqKey(seq), err: checkClientID(clientID)}
}

// SetRetained stores m as its topic's retained message; an empty payload
// deletes the topic's retained message.
func SetRetained(m Message) Op {
	op := Op{kind: opSetRetained, key: []byte(m.Topic)}
	switch {
	case m.Topic == "":
		op.err = errors.New("empty topic")
	case len(m.Topic) > bbolt.MaxKeySize:
		op.err = fmt.Errorf("topic of %d bytes exceeds %d", len(m.Topic), bbolt.MaxKeySize)
	default:
		op.err = checkQoS(m.QoS)
	}
	if op.err == nil && len(m.Payload) > 0 {
		op.val = encodeMessage(m)
	}
	return op
}

// AddInboundQoS2 records that the session has received (PUBREC'd) the QoS 2
// packet id and awaits its PUBREL.
func AddInboundQoS2(clientID string, packetID uint16) Op {
	return Op{kind: opAddInbound, id: clientID, key: pidKey(packetID), err: checkClientID(clientID)}
}

// RemoveInboundQoS2 forgets an inbound QoS 2 packet id (PUBREL received); no
// error if absent.
func RemoveInboundQoS2(clientID string, packetID uint16) Op {
	return Op{kind: opRemoveInbound, id: clientID, key: pidKey(packetID), err: checkClientID(clientID)}
}

func checkClientID(id string) error {
	switch {
	case id == "":
		return errors.New("empty client id")
	case len(id) > bbolt.MaxKeySize:
		return fmt.Errorf("client id of %d bytes exceeds %d", len(id), bbolt.MaxKeySize)
	}
	return nil
}

func checkReleased(packetID uint16) error {
	if packetID == 0 {
		return errors.New("released without a packet id")
	}
	return nil
}

func checkQoS(q byte) error {
	if q > 2 {
		return fmt.Errorf("invalid QoS %d", q)
	}
	return nil
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), seq) }

func pidKey(pid uint16) []byte { return binary.BigEndian.AppendUint16(make([]byte, 0, 2), pid) }

// Store is the broker's durable state. It is safe for concurrent use.
type Store struct {
	db  *storage.DB
	log *slog.Logger
}

// Open opens (creating if needed) dir/sngate.db.
func Open(dir string, opts storage.Options) (*Store, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	db, err := storage.Open(filepath.Join(dir, FileName), opts)
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, log: log}
	if err := db.Update(context.Background(), initSchema); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("persist: %s: %w", db.Path(), err)
	}
	return s, nil
}

func initSchema(tx *bbolt.Tx) error {
	meta, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return err
	}
	if v := meta.Get(keySchema); v != nil {
		if len(v) != 1 {
			return fmt.Errorf("bad schema marker %x", v)
		}
		if v[0] > schemaVersion {
			return fmt.Errorf("database schema %d is newer than this sngate (%d)", v[0], schemaVersion)
		}
		if v[0] < schemaVersion { // see the package doc: records stay as they are
			if err := meta.Put(keySchema, []byte{schemaVersion}); err != nil {
				return err
			}
		}
	} else if err := meta.Put(keySchema, []byte{schemaVersion}); err != nil {
		return err
	}
	for _, name := range [][]byte{bucketSessions, bucketRetained} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	return nil
}

// DB is the underlying database, for other components (the store-and-forward
// bridge) to share its file and its group commits. It stays owned by the
// Store: Close closes it.
func (s *Store) DB() *storage.DB { return s.db }

// Stats returns the database's counters.
func (s *Store) Stats() storage.Stats { return s.db.Stats() }

// Apply commits ops, in order, as one atomic unit, group-committed with other
// concurrent work. done (if not nil) is called once the unit is durable, or
// with the error that rolled all of it back; it is called from the
// committer goroutine (never from inside Apply) and must return quickly.
// Apply keeps ops until done is called: do not modify the slice meanwhile.
func (s *Store) Apply(ops []Op, done func(error)) {
	s.db.Submit(func(tx *bbolt.Tx) error {
		for i := range ops {
			if err := applyOp(tx, &ops[i]); err != nil {
				return fmt.Errorf("persist: %s (op %d of %d): %w", ops[i].kind, i+1, len(ops), err)
			}
		}
		return nil
	}, done)
}

func applyOp(tx *bbolt.Tx, op *Op) error {
	if op.err != nil {
		return op.err
	}
	sessions := tx.Bucket(bucketSessions)
	if sessions == nil {
		return berrors.ErrBucketNotFound
	}
	id := []byte(op.id)
	switch op.kind {
	case opPutSession:
		sb, err := sessions.CreateBucketIfNotExists(id)
		if errors.Is(err, berrors.ErrIncompatibleValue) {
			// a stray value where the session's bucket belongs
			if err = sessions.Delete(id); err == nil {
				sb, err = sessions.CreateBucket(id)
			}
		}
		if err != nil {
			return err
		}
		if _, err := sb.CreateBucketIfNotExists(bucketQueue); err != nil {
			return err
		}
		if _, err := sb.CreateBucketIfNotExists(bucketInbound); err != nil {
			return err
		}
		return sb.Put(keySession, op.val)

	case opDeleteSession:
		err := sessions.DeleteBucket(id)
		switch {
		case errors.Is(err, berrors.ErrBucketNotFound):
			return nil
		case errors.Is(err, berrors.ErrIncompatibleValue):
			return sessions.Delete(id)
		}
		return err

	case opEnqueue, opDequeue:
		sb := sessions.Bucket(id)
		if sb == nil {
			return nil // session gone: see Op
		}
		if op.kind == opDequeue {
			if qb := sb.Bucket(bucketQueue); qb != nil {
				return qb.Delete(op.key)
			}
			return nil
		}
		qb, err := sb.CreateBucketIfNotExists(bucketQueue)
		if err != nil {
			return err
		}
		return qb.Put(op.key, op.val)

	case opSetInflight:
		sb := sessions.Bucket(id)
		if sb == nil {
			return nil
		}
		qb := sb.Bucket(bucketQueue)
		if qb == nil {
			return nil
		}
		old := qb.Get(op.key)
		if old == nil {
			return nil // acknowledged meanwhile: see SetInflight
		}
		rec, err := setDelivery(old, binary.BigEndian.Uint16(op.val), op.val[2]&flagReleased != 0)
		if err != nil {
			return fmt.Errorf("queued message %d: %w", binary.BigEndian.Uint64(op.key), err)
		}
		return qb.Put(op.key, rec)

	case opAddInbound, opRemoveInbound:
		sb := sessions.Bucket(id)
		if sb == nil {
			return nil
		}
		if op.kind == opRemoveInbound {
			if ib := sb.Bucket(bucketInbound); ib != nil {
				return ib.Delete(op.key)
			}
			return nil
		}
		ib, err := sb.CreateBucketIfNotExists(bucketInbound)
		if err != nil {
			return err
		}
		return ib.Put(op.key, []byte{})

	case opSetRetained:
		rb := tx.Bucket(bucketRetained)
		if rb == nil {
			return berrors.ErrBucketNotFound
		}
		if op.val == nil {
			return rb.Delete(op.key)
		}
		return rb.Put(op.key, op.val)
	}
	return errors.New("zero Op")
}

// Load reads the whole stored state. A record that cannot be decoded is
// logged and skipped (a session whose own record is corrupt is skipped with
// its queue, so its client starts afresh) rather than failing the start.
func (s *Store) Load() (State, error) {
	var st State
	err := s.db.View(func(tx *bbolt.Tx) error {
		if sessions := tx.Bucket(bucketSessions); sessions != nil {
			if err := sessions.ForEach(func(k, v []byte) error {
				if ss, ok := s.loadSession(sessions, k, v); ok {
					st.Sessions = append(st.Sessions, ss)
				}
				return nil
			}); err != nil {
				return err
			}
		}
		if rb := tx.Bucket(bucketRetained); rb != nil {
			return rb.ForEach(func(k, v []byte) error {
				m, err := decodeMessage(v)
				if err == nil && m.Topic != string(k) {
					err = fmt.Errorf("record is for topic %q", m.Topic)
				}
				if err != nil {
					s.skip(&CorruptError{Bucket: string(bucketRetained), Key: k, Err: err})
					return nil
				}
				st.Retained = append(st.Retained, m)
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return State{}, fmt.Errorf("persist: load: %w", err)
	}
	return st, nil
}

func (s *Store) loadSession(sessions *bbolt.Bucket, k, v []byte) (SessionState, bool) {
	id := string(k)
	path := string(bucketSessions)
	if v != nil {
		s.skip(&CorruptError{Bucket: path, Key: k, Err: errors.New("value where a session bucket belongs")})
		return SessionState{}, false
	}
	sb := sessions.Bucket(k)
	path += "/" + id
	rec := sb.Get(keySession)
	if rec == nil {
		s.skip(&CorruptError{Bucket: path, Key: keySession, Err: errors.New("session record missing")})
		return SessionState{}, false
	}
	sess, err := decodeSession(id, rec)
	if err != nil {
		s.skip(&CorruptError{Bucket: path, Key: keySession, Err: err})
		return SessionState{}, false
	}
	ss := SessionState{Session: sess}
	if qb := sb.Bucket(bucketQueue); qb != nil {
		qpath := path + "/" + string(bucketQueue)
		_ = qb.ForEach(func(k, v []byte) error {
			if len(k) != 8 {
				s.skip(&CorruptError{Bucket: qpath, Key: k, Err: fmt.Errorf("key of %d bytes, want 8", len(k))})
				return nil
			}
			q, err := decodeQueued(binary.BigEndian.Uint64(k), v)
			if err != nil {
				s.skip(&CorruptError{Bucket: qpath, Key: k, Err: err})
				return nil
			}
			ss.Queue = append(ss.Queue, q)
			return nil
		})
	}
	if ib := sb.Bucket(bucketInbound); ib != nil {
		ipath := path + "/" + string(bucketInbound)
		_ = ib.ForEach(func(k, _ []byte) error {
			if len(k) != 2 {
				s.skip(&CorruptError{Bucket: ipath, Key: k, Err: fmt.Errorf("key of %d bytes, want 2", len(k))})
				return nil
			}
			ss.InboundQoS2 = append(ss.InboundQoS2, binary.BigEndian.Uint16(k))
			return nil
		})
	}
	return ss, true
}

func (s *Store) skip(err *CorruptError) {
	s.log.Error("persist: skipping corrupt record", "bucket", err.Bucket, "key", fmtKey(err.Key), "err", err)
}

// Close commits everything applied before it and closes the database.
func (s *Store) Close() error { return s.db.Close() }
