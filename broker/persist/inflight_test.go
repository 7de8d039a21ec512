package persist

import (
	"context"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"

	"github.com/sngate/sngate/internal/storage"
	"go.etcd.io/bbolt"
)

// v1QueueRecord is a queue record as schema 1 wrote it (a version 1
// message record): topic "o/ld", payload "hello", QoS 2, no retain.
const v1QueueRecord = "010002046f2f6c640568656c6c6f895110d3"

func queued(t *testing.T, s *Store, id string) []Queued {
	t.Helper()
	ss := sessionState(load(t, s), id)
	if ss == nil {
		t.Fatalf("session %q not loaded", id)
	}
	return ss.Queue
}

func TestEnqueueWithPacketID(t *testing.T) {
	s := openStore(t, t.TempDir(), storage.Options{})
	want := []Queued{
		{Seq: 1, Msg: msg("t", "never sent", 1)},
		{Seq: 2, Msg: msg("t", "sent", 1), PacketID: 65535},
		{Seq: 3, Msg: msg("t", "sent", 2), PacketID: 1},
		{Seq: 4, Msg: msg("t", "released", 2), PacketID: 2, Released: true},
	}
	mustApply(t, s, PutSession(Session{ClientID: "c"}))
	for _, q := range want {
		mustApply(t, s, Enqueue("c", q))
	}
	if got := queued(t, s, "c"); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

func TestSetInflight(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, storage.Options{})
	m1, m2 := msg("t/1", "one", 1), msg("t/2", "two", 2)
	m2.Retain = true
	mustApply(t, s, PutSession(Session{ClientID: "c"}),
		Enqueue("c", Queued{Seq: 10, Msg: m1}),
		Enqueue("c", Queued{Seq: 11, Msg: m2}),
		Enqueue("c", Queued{Seq: 12, Msg: msg("t/3", "three", 2)}))

	// sent: both get their ids, in the same unit as other work
	mustApply(t, s, SetInflight("c", 10, 7, false), SetInflight("c", 11, 8, false))
	want := []Queued{
		{Seq: 10, Msg: m1, PacketID: 7},
		{Seq: 11, Msg: m2, PacketID: 8},
		{Seq: 12, Msg: msg("t/3", "three", 2)},
	}
	if got := queued(t, s, "c"); !reflect.DeepEqual(got, want) {
		t.Fatalf("after send:\n got %+v\nwant %+v", got, want)
	}

	// PUBREC of the QoS 2 one
	mustApply(t, s, SetInflight("c", 11, 8, true))
	want[1].Released = true
	if got := queued(t, s, "c"); !reflect.DeepEqual(got, want) {
		t.Fatalf("after release:\n got %+v\nwant %+v", got, want)
	}

	// back to "never sent" (packet id 0), and survives a reopen
	mustApply(t, s, SetInflight("c", 10, 0, false))
	want[0].PacketID = 0
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, storage.Options{})
	if got := queued(t, s, "c"); !reflect.DeepEqual(got, want) {
		t.Fatalf("after reopen:\n got %+v\nwant %+v", got, want)
	}

	// completion removes the record whatever its state
	mustApply(t, s, Dequeue("c", 11))
	if got := queued(t, s, "c"); len(got) != 2 || got[1].Seq != 12 {
		t.Fatalf("after dequeue: %+v", got)
	}
}

// SetInflight of a message that is gone (acknowledged before the write), or
// for a session that is gone, does nothing and fails nothing.
func TestSetInflightAbsent(t *testing.T) {
	s := openStore(t, t.TempDir(), storage.Options{})
	mustApply(t, s, PutSession(Session{ClientID: "c"}), Enqueue("c", Queued{Seq: 1, Msg: msg("t", "x", 2)}))
	if err := apply(t, s,
		SetInflight("c", 2, 5, false),
		SetInflight("c", 3, 6, true),
		SetInflight("gone", 1, 5, true),
		Enqueue("c", Queued{Seq: 4, Msg: msg("t", "y", 1)}), // the unit still lands
	); err != nil {
		t.Fatalf("SetInflight of absent records: %v", err)
	}
	st := load(t, s)
	if len(st.Sessions) != 1 {
		t.Fatalf("sessions %+v", st.Sessions)
	}
	want := []Queued{{Seq: 1, Msg: msg("t", "x", 2)}, {Seq: 4, Msg: msg("t", "y", 1)}}
	if got := st.Sessions[0].Queue; !reflect.DeepEqual(got, want) {
		t.Fatalf("queue %+v, want %+v", got, want)
	}

	// a session without its queue bucket (not possible through the ops, but
	// Load tolerates it, so SetInflight does too)
	if err := s.DB().Update(context.Background(), func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketSessions).Bucket([]byte("c")).DeleteBucket(bucketQueue)
	}); err != nil {
		t.Fatal(err)
	}
	if err := apply(t, s, SetInflight("c", 1, 5, false)); err != nil {
		t.Fatal(err)
	}
}

func TestInflightInvalid(t *testing.T) {
	s := openStore(t, t.TempDir(), storage.Options{})
	mustApply(t, s, PutSession(Session{ClientID: "c"}), Enqueue("c", Queued{Seq: 1, Msg: msg("t", "x", 1)}))
	for _, c := range []struct {
		name, want string
		op         Op
	}{
		{"released without id", "released without a packet id", SetInflight("c", 1, 0, true)},
		{"released QoS 1 record", "release of a QoS 1 message", SetInflight("c", 1, 3, true)},
		{"enqueue released without id", "released without a packet id", Enqueue("c", Queued{Seq: 2, Msg: msg("t", "x", 2), Released: true})},
		{"enqueue released QoS 1", "release of a QoS 1 message", Enqueue("c", Queued{Seq: 2, Msg: msg("t", "x", 1), PacketID: 1, Released: true})},
		{"empty client id", "empty client id", SetInflight("", 1, 1, false)},
	} {
		if err := apply(t, s, c.op); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want %q", c.name, err, c.want)
		}
	}
	want := []Queued{{Seq: 1, Msg: msg("t", "x", 1)}}
	if got := queued(t, s, "c"); !reflect.DeepEqual(got, want) {
		t.Fatalf("queue %+v, want %+v", got, want)
	}
}

// A database written by schema 1 (marker 1, version 1 queue records) opens,
// is marked schema 2, and its queued messages load as never sent; a
// SetInflight turns such a record into a version 2 one.
func TestSchema1Upgrade(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, s, PutSession(Session{ClientID: "old"}))
	v1, _ := hex.DecodeString(v1QueueRecord)
	if err := s.DB().Update(context.Background(), func(tx *bbolt.Tx) error {
		if err := tx.Bucket(bucketMeta).Put(keySchema, []byte{1}); err != nil {
			return err
		}
		return tx.Bucket(bucketSessions).Bucket([]byte("old")).Bucket(bucketQueue).Put(seqKey(5), v1)
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openStore(t, dir, storage.Options{})
	if err := s.DB().View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keySchema); !reflect.DeepEqual(v, []byte{schemaVersion}) {
			t.Errorf("schema marker %v after open, want [%d]", v, schemaVersion)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	old := Message{Topic: "o/ld", Payload: []byte("hello"), QoS: 2}
	if got, want := queued(t, s, "old"), []Queued{{Seq: 5, Msg: old}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("v1 record loaded as %+v, want %+v", got, want)
	}
	mustApply(t, s, SetInflight("old", 5, 300, true))
	if got, want := queued(t, s, "old"), []Queued{{Seq: 5, Msg: old, PacketID: 300, Released: true}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after SetInflight %+v, want %+v", got, want)
	}
	if err := s.DB().View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bucketSessions).Bucket([]byte("old")).Bucket(bucketQueue).Get(seqKey(5)); v[0] != formatV2 {
			t.Errorf("rewritten record has version %d", v[0])
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestQueuedCodec(t *testing.T) {
	// retained messages keep format version 1, byte for byte
	v1, _ := hex.DecodeString(v1QueueRecord)
	if got := encodeMessage(Message{Topic: "o/ld", Payload: []byte("hello"), QoS: 2}); !reflect.DeepEqual(got, v1) {
		t.Fatalf("message record %x, want %x", got, v1)
	}
	// version 2: version, packet id, delivery flags, message fields, CRC
	q := Queued{Seq: 9, Msg: Message{Topic: "o/ld", Payload: []byte("hello"), QoS: 2}, PacketID: 0x0102, Released: true}
	rec := encodeQueued(q)
	if want := "02010201" + v1QueueRecord[2:len(v1QueueRecord)-8]; hex.EncodeToString(rec[:len(rec)-crcLen]) != want {
		t.Fatalf("v2 record %x, want %s + CRC", rec, want)
	}
	if got, err := decodeQueued(9, rec); err != nil || !reflect.DeepEqual(got, q) {
		t.Fatalf("decode: %+v, %v", got, err)
	}
	// a version 2 record is not a retained message
	if _, err := decodeMessage(rec); err == nil || !strings.Contains(err.Error(), "unknown format version 2") {
		t.Fatalf("decodeMessage of a v2 record: %v", err)
	}

	bad := func(fields string) []byte {
		b, _ := hex.DecodeString(fields)
		return sealRecord(b)
	}
	msgFields := v1QueueRecord[2 : len(v1QueueRecord)-8] // QoS 2
	qos1Fields := "0001" + msgFields[4:]
	for _, c := range []struct {
		name string
		rec  []byte
		want string
	}{
		{"unknown delivery flags", bad("02000102" + msgFields), "unknown delivery flags 0x02"},
		{"released without id", bad("02000001" + msgFields), "released without a packet id"},
		{"released at QoS 1", bad("02000101" + qos1Fields), "released at QoS 1"},
		{"short delivery fields", bad("020001"), "truncated"},
		{"unknown version", bad("03000100" + msgFields), "unknown format version 3"},
		{"checksum", append(rec[:len(rec)-1:len(rec)-1], rec[len(rec)-1]^1), "checksum mismatch"},
	} {
		if _, err := decodeQueued(1, c.rec); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want %q", c.name, err, c.want)
		}
		if _, err := setDelivery(c.rec, 1, false); err == nil && c.name != "released at QoS 1" {
			t.Errorf("%s: setDelivery accepted the record", c.name)
		}
	}
}
