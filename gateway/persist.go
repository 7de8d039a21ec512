package gateway

// Persistent MQTT-SN sessions across restarts.
//
// A client that connects with CleanSession=0 is a persistent session of the
// broker, which keeps its subscriptions and queued QoS 1/2 messages in its
// store. What MQTT-SN adds is kept here, in the same bbolt file and through
// the same group commits (broker.Server.Storage): one record per client id
// in the bucket gateway_sessions, holding the client's topic-id table and
// whether it was asleep, and for how long. gateway.New loads the records
// into g.saved, where takeTopics finds them, so that after a restart
//
//   - a client that CONNECTs with CleanSession=0 keeps its topic ids and
//     publishes on them without registering again;
//   - a client that was asleep wakes with PINGREQ(client id) as if nothing
//     had happened: wakeStored makes it a sleeping client again, attached to
//     its broker session, and the awake flow hands it what the broker kept.
//
// Writes are asynchronous: the gateway answers the client (REGACK, SUBACK,
// the DISCONNECT of a sleep) without waiting for the record to be durable.
// A crash can therefore lose the last changes of a table. That heals
// itself: a PUBLISH on an id the gateway lost is answered PUBACK "invalid
// topic id" and the client registers again (§6.5; mqttsn.Client does so on
// its own), and a topic the gateway registered to the client is registered
// again when next needed, the client replacing any id it reused. Waiting
// for the fsync before REGACK would add a commit to every REGISTER for no
// more than that. Writes are submitted with c.mu held, so that they commit
// in the order of the changes and the last record stored is the latest.
//
// A record is written when a persistent client's table changes (REGISTER
// accepted, an id assigned in SUBACK or in a REGISTER of the gateway, an id
// forgotten) and when its sleep state changes (it sleeps; it connects again,
// disconnects or is lost while asleep). Shutdown leaves the records as they
// are: the sensors are not going away. A CONNECT with CleanSession=1 deletes
// the record, as the broker deletes the session.
//
// Record format (the value; the key is the MQTT-SN client id):
//
//	byte     format version (1)
//	byte     flags: bit 0 asleep; other bits 0
//	uint16   sleep duration in seconds, big endian (0 unless asleep)
//	uint16   the last topic id assigned, big endian
//	uvarint  number of topics, then per topic:
//	         uint16 topic id (1..0xFFFE), big endian; uvarint length and bytes of the name
//	uint32   CRC-32C (Castagnoli), big endian, of every preceding byte
//
// Not kept: the will (a sensor asleep over a restart has none until it
// connects again) and QoS 0 messages buffered for a sleeper, which the
// broker does not keep either.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/internal/storage"
	"go.etcd.io/bbolt"
)

var bucketGatewaySessions = []byte("gateway_sessions")

const (
	recordV1         byte = 1
	recordFlagAsleep byte = 1 << 0
	recordCRCLen          = 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// diskState is what the stored record of a session says, kept with its
// topic table so that a write happens only when something changed.
type diskState struct {
	stored   bool
	gen      uint64 // the table's gen when written
	asleep   bool
	sleepFor time.Duration
}

// sessionRecord is the decoded record of a persistent session.
type sessionRecord struct {
	asleep   bool
	sleepFor time.Duration
	next     uint16
	topics   map[uint16]string
}

func encodeSessionRecord(r sessionRecord) []byte {
	n := 1 + 1 + 2 + 2 + binary.MaxVarintLen64 + recordCRCLen
	for _, name := range r.topics {
		n += 2 + binary.MaxVarintLen64 + len(name)
	}
	b := make([]byte, 0, n)
	var flags byte
	if r.asleep {
		flags |= recordFlagAsleep
	}
	b = append(b, recordV1, flags)
	b = binary.BigEndian.AppendUint16(b, uint16(r.sleepFor/time.Second))
	b = binary.BigEndian.AppendUint16(b, r.next)
	b = binary.AppendUvarint(b, uint64(len(r.topics)))
	for id, name := range r.topics { // order does not matter to the reader
		b = binary.BigEndian.AppendUint16(b, id)
		b = binary.AppendUvarint(b, uint64(len(name)))
		b = append(b, name...)
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

var errRecordShort = errors.New("truncated")

func decodeSessionRecord(b []byte) (sessionRecord, error) {
	var r sessionRecord
	if len(b) < 1+1+2+2+1+recordCRCLen {
		return r, errRecordShort
	}
	if b[0] != recordV1 {
		return r, fmt.Errorf("unknown format version %d", b[0])
	}
	body, sum := b[:len(b)-recordCRCLen], b[len(b)-recordCRCLen:]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(sum) {
		return r, errors.New("checksum mismatch")
	}
	flags := body[1]
	if flags&^recordFlagAsleep != 0 {
		return r, fmt.Errorf("unknown flags 0x%02x", flags)
	}
	r.asleep = flags&recordFlagAsleep != 0
	r.sleepFor = secs(binary.BigEndian.Uint16(body[2:]))
	r.next = binary.BigEndian.Uint16(body[4:])
	d := body[6:]
	count, n := binary.Uvarint(d)
	if n <= 0 {
		return r, errors.New("bad topic count")
	}
	d = d[n:]
	if count > uint64(len(d))/3 { // each topic takes at least 3 bytes
		return r, errRecordShort
	}
	r.topics = make(map[uint16]string, count)
	names := make(map[string]bool, count)
	for range count {
		if len(d) < 2 {
			return r, errRecordShort
		}
		id := binary.BigEndian.Uint16(d)
		d = d[2:]
		l, n := binary.Uvarint(d)
		if n <= 0 || l > uint64(len(d)-n) {
			return r, errRecordShort
		}
		name := string(d[n : n+int(l)])
		d = d[n+int(l):]
		if id == 0 || id == 0xFFFF || name == "" {
			return r, fmt.Errorf("invalid topic %d %q", id, name)
		}
		if _, dup := r.topics[id]; dup || names[name] {
			return r, fmt.Errorf("duplicate topic %d %q", id, name)
		}
		r.topics[id] = name
		names[name] = true
	}
	if len(d) != 0 {
		return r, errors.New("trailing bytes")
	}
	return r, nil
}

// loadSessions reads the stored records into g.saved. Unreadable records
// are logged and skipped: their clients register again.
func (g *Gateway) loadSessions() error {
	db := g.broker.Storage()
	if db == nil {
		return nil
	}
	saved := map[string]*topicTable{}
	asleep := 0
	err := db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketGatewaySessions)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			r, err := decodeSessionRecord(v)
			if err != nil {
				g.log.Warn("stored MQTT-SN session unreadable: skipped", "client", string(k), "err", err)
				return nil
			}
			t := newTopicTable(g.cfg.MaxTopicsPerClient)
			for id, name := range r.topics {
				t.byID[id] = name
				t.byName[name] = id
			}
			t.next = r.next
			t.disk = diskState{stored: true, asleep: r.asleep, sleepFor: r.sleepFor}
			if r.asleep {
				asleep++
			}
			saved[string(k)] = t
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("gateway: load stored sessions: %w", err)
	}
	g.mu.Lock()
	g.saved = saved
	g.mu.Unlock()
	if len(saved) > 0 {
		g.log.Info("MQTT-SN sessions loaded", "sessions", len(saved), "asleep", asleep)
	}
	return nil
}

// persistLocked writes the client's record if its topic table or sleep state
// differs from what is stored. It does not wait. c.mu is held.
func (c *client) persistLocked() {
	db := c.g.broker.Storage()
	if db == nil || c.clean || c.id == "" || c.topics == nil {
		return
	}
	if c.state == stGone && c.g.ctx.Err() != nil {
		return // Shutdown: the record stays as the client left it
	}
	t := c.topics
	want := diskState{stored: true, gen: t.gen, asleep: c.state == stAsleep || c.state == stAwake}
	if want.asleep {
		want.sleepFor = c.sleepFor
	}
	if t.disk == want || (!t.disk.stored && len(t.byID) == 0 && !want.asleep) {
		return // unchanged, or nothing worth a record
	}
	t.disk = want
	rec := encodeSessionRecord(sessionRecord{asleep: want.asleep, sleepFor: want.sleepFor, next: t.next, topics: t.byID})
	key := []byte(c.id)
	db.Submit(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketGatewaySessions)
		if err != nil {
			return err
		}
		return b.Put(key, rec)
	}, c.g.storeDone(c.id))
}

// dropRecordLocked deletes the stored record of a session cleaned by a
// CONNECT with CleanSession=1. g.mu is held.
func (g *Gateway) dropRecordLocked(id string, t *topicTable) {
	db := g.broker.Storage()
	if db == nil || !t.disk.stored {
		return
	}
	t.disk = diskState{}
	key := []byte(id)
	db.Submit(func(tx *bbolt.Tx) error {
		if b := tx.Bucket(bucketGatewaySessions); b != nil {
			return b.Delete(key)
		}
		return nil
	}, g.storeDone(id))
}

// storeDone returns the done callback of a write: failures are logged, the
// client carries on (see the notes at the top).
func (g *Gateway) storeDone(id string) func(error) {
	return func(err error) {
		switch {
		case err == nil:
		case errors.Is(err, storage.ErrClosed):
			g.log.Debug("MQTT-SN session not stored: the store is closed", "client", id)
		default:
			g.log.Error("MQTT-SN session not stored", "client", id, "err", err)
		}
	}
}

// wakeStored makes a client that was asleep when the gateway stopped a
// sleeping client again, attached to its broker session, on its first
// PINGREQ with its client id; the caller moves it to where that came from
// and the awake flow follows. nil if the gateway knows of no such sleeper.
func (g *Gateway) wakeStored(id string) *client {
	g.mu.Lock()
	t := g.saved[id]
	if t == nil || !t.disk.asleep || g.byID[id] != nil || g.ctx.Err() != nil {
		g.mu.Unlock()
		return nil
	}
	if len(g.byID) >= g.cfg.MaxClients {
		g.mu.Unlock()
		g.log.Warn("max_clients reached: stored sleeping client not woken", "client", id)
		return nil
	}
	delete(g.saved, id)
	c := &client{g: g, id: id, state: stAsleep, sleepFor: t.disk.sleepFor, topics: t,
		pre: newPredefined(g.cfg.PredefinedTopics, id), inbound2: map[uint16]bool{}, since: time.Now()}
	g.byID[id] = c
	g.mu.Unlock()

	// Deliveries the broker resumes wait in the queue: the client is asleep.
	bc, _, err := g.broker.Connect(broker.LocalConfig{ClientID: g.cfg.ClientIDPrefix + id, OnMessage: c.deliver})
	c.mu.Lock()
	if err != nil || c.state == stGone || g.ctx.Err() != nil {
		ended := c.state == stGone
		c.state = stGone
		c.mu.Unlock()
		if err != nil {
			g.log.Warn("stored sleeping MQTT-SN client refused by the broker", "client", id, "err", err)
		}
		if bc != nil {
			bc.Disconnect(false)
		}
		if !ended { // taken over meanwhile, the new client has the table
			g.forget(c)
			g.keepTopics(id, t)
		}
		return nil
	}
	c.bc = bc
	g.metrics.clientsConnected.Add(1)
	c.mu.Unlock()
	g.log.Info("MQTT-SN client asleep before the restart woke", "client", id)
	return c
}
