package persist

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sngate/sngate/internal/storage"
	"go.etcd.io/bbolt"
)

func openStore(t testing.TB, dir string, opts storage.Options) *Store {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// apply runs Apply and waits for done.
func apply(t testing.TB, s *Store, ops ...Op) error {
	t.Helper()
	ch := make(chan error, 1)
	s.Apply(ops, func(err error) { ch <- err })
	select {
	case err := <-ch:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Apply: done not called")
		return nil
	}
}

func mustApply(t testing.TB, s *Store, ops ...Op) {
	t.Helper()
	if err := apply(t, s, ops...); err != nil {
		t.Fatal(err)
	}
}

func load(t testing.TB, s *Store) State {
	t.Helper()
	st, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func msg(topic, payload string, qos byte) Message {
	return Message{Topic: topic, Payload: []byte(payload), QoS: qos}
}

func sessionState(st State, id string) *SessionState {
	for i := range st.Sessions {
		if st.Sessions[i].Session.ClientID == id {
			return &st.Sessions[i]
		}
	}
	return nil
}

func TestOpenCreatesFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s := openStore(t, dir, storage.Options{})
	if _, err := os.Stat(filepath.Join(dir, "sngate.db")); err != nil {
		t.Fatal(err)
	}
	if s.DB().Path() != filepath.Join(dir, "sngate.db") {
		t.Fatal(s.DB().Path())
	}
	if st := load(t, s); len(st.Sessions) != 0 || len(st.Retained) != 0 {
		t.Fatalf("fresh store not empty: %+v", st)
	}
}

func TestPutSession(t *testing.T) {
	s := openStore(t, t.TempDir(), storage.Options{})
	sess := Session{ClientID: "dev1", Subscriptions: []Subscription{{"a/+", 1}, {"b/#", 2}, {"c", 0}}}
	mustApply(t, s, PutSession(sess))
	st := load(t, s)
	if len(st.Sessions) != 1 || !reflect.DeepEqual(st.Sessions[0].Session, sess) {
		t.Fatalf("got %+v", st.Sessions)
	}

	// replace the subscriptions; the queue and inbound ids stay
	mustApply(t, s, Enqueue("dev1", Queued{Seq: 1, Msg: msg("a/x", "p", 1)}), AddInboundQoS2("dev1", 9))
	sess2 := Session{ClientID: "dev1", Subscriptions: []Subscription{{"z", 2}}}
	mustApply(t, s, PutSession(sess2))
	ss := sessionState(load(t, s), "dev1")
	if !reflect.DeepEqual(ss.Session, sess2) || len(ss.Queue) != 1 || !reflect.DeepEqual(ss.InboundQoS2, []uint16{9}) {
		t.Fatalf("after replace: %+v", ss)
	}

	// no subscriptions at all
	mustApply(t, s, PutSession(Session{ClientID: "bare"}))
	ss = sessionState(load(t, s), "bare")
	if ss == nil || ss.Session.Subscriptions != nil || ss.Queue != nil || ss.InboundQoS2 != nil {
		t.Fatalf("bare session: %+v", ss)
	}
}

func TestDeleteSession(t *testing.T) {
	s := openStore(t, t.TempDir(), storage.Options{})
	mustApply(t, s,
		PutSession(Session{ClientID: "a", Subscriptions: []Subscription{{"x", 1}}}),
		Enqueue("a", Queued{Seq: 1, Msg: msg("x", "1", 1)}),
		AddInboundQoS2("a", 1),
		PutSession(Session{ClientID: "b"}),
	)
	mustApply(t, s, DeleteSession("a"))
	st := load(t, s)
	if len(st.Sessions) != 1 || st.Sessions[0].Session.ClientID != "b" {
		t.Fatalf("got %+v", st.Sessions)
	}
	// deleting a missing session is no error
	mustApply(t, s, DeleteSession("a"), DeleteSession("never"))
	// a re-created session starts empty: the old queue went with the delete
	mustApply(t, s, PutSession(Session{ClientID: "a"}))
	if ss := sessionState(load(t, s), "a"); len(ss.Queue) != 0 || len(ss.InboundQoS2) != 0 {
		t.Fatalf("re-created session inherited state: %+v", ss)
	}
}

func TestEnqueueDequeue(t *testing.T) {
	s := openStore(t, t.TempDir(), storage.Options{})
	mustApply(t, s, PutSession(Session{ClientID: "c"}))
	// out of order and with seqs whose byte order matters (256 > 255)
	for _, seq := range []uint64{256, 3, 255, 1 << 40, 7} {
		m := Message{Topic: fmt.Sprint("t/", seq), Payload: []byte(fmt.Sprint("p", seq)), QoS: byte(1 + seq%2), Retain: seq == 7}
		mustApply(t, s, Enqueue("c", Queued{Seq: seq, Msg: m}))
	}
	ss := sessionState(load(t, s), "c")
	var seqs []uint64
	for _, q := range ss.Queue {
		seqs = append(seqs, q.Seq)
		want := Message{Topic: fmt.Sprint("t/", q.Seq), Payload: []byte(fmt.Sprint("p", q.Seq)), QoS: byte(1 + q.Seq%2), Retain: q.Seq == 7}
		if !reflect.DeepEqual(q.Msg, want) {
			t.Errorf("seq %d: got %+v want %+v", q.Seq, q.Msg, want)
		}
	}
	if !reflect.DeepEqual(seqs, []uint64{3, 7, 255, 256, 1 << 40}) {
		t.Fatalf("queue order %v", seqs)
	}

	mustApply(t, s, Dequeue("c", 255), Dequeue("c", 3))
	ss = sessionState(load(t, s), "c")
	if len(ss.Queue) != 3 || ss.Queue[0].Seq != 7 || ss.Queue[1].Seq != 256 {
		t.Fatalf("after dequeue: %+v", ss.Queue)
	}
}

func TestDequeueMissing(t *testing.T) {
	s := openStore(t, t.TempDir(), storage.Options{})
	mustApply(t, s, PutSession(Session{ClientID: "c"}), Enqueue("c", Queued{Seq: 1, Msg: msg("t", "x", 1)}))
	if err := apply(t, s, Dequeue("c", 99), Dequeue("c", 99), Dequeue("nosuch", 1)); err != nil {
		t.Fatalf("dequeue of missing: %v", err)
	}
	if ss := sessionState(load(t, s), "c"); len(ss.Queue) != 1 {
		t.Fatalf("queue %+v", ss.Queue)
	}
}

func TestOpsOnMissingSessionAreIgnored(t *testing.T) {
	s := openStore(t, t.TempDir(), storage.Options{})
	mustApply(t, s, PutSession(Session{ClientID: "live"}))
	// a fan-out that races with a DeleteSession of "gone" must still land for "live"
	mustApply(t, s,
		Enqueue("gone", Queued{Seq: 1, Msg: msg("t", "x", 1)}),
		Enqueue("live", Queued{Seq: 1, Msg: msg("t", "x", 1)}),
		AddInboundQoS2("gone", 1),
		RemoveInboundQoS2("gone", 1),
	)
	st := load(t, s)
	if len(st.Sessions) != 1 || len(st.Sessions[0].Queue) != 1 {
		t.Fatalf("got %+v", st.Sessions)
	}
}

func TestInboundQoS2(t *testing.T) {
	s := openStore(t, t.TempDir(), storage.Options{})
	mustApply(t, s, PutSession(Session{ClientID: "c"}))
	mustApply(t, s, AddInboundQoS2("c", 65535), AddInboundQoS2("c", 1), AddInboundQoS2("c", 256), AddInboundQoS2("c", 1))
	if ss := sessionState(load(t, s), "c"); !reflect.DeepEqual(ss.InboundQoS2, []uint16{1, 256, 65535}) {
		t.Fatalf("inbound %v", ss.InboundQoS2)
	}
	mustApply(t, s, RemoveInboundQoS2("c", 256), RemoveInboundQoS2("c", 4242))
	if ss := sessionState(load(t, s), "c"); !reflect.DeepEqual(ss.InboundQoS2, []uint16{1, 65535}) {
		t.Fatalf("inbound %v", ss.InboundQoS2)
	}
}

func TestRetained(t *testing.T) {
	s := openStore(t, t.TempDir(), storage.Options{})
	mustApply(t, s,
		SetRetained(Message{Topic: "b/t", Payload: []byte("B"), QoS: 1, Retain: true}),
		SetRetained(Message{Topic: "a/t", Payload: []byte("A"), QoS: 0, Retain: true}),
		SetRetained(Message{Topic: "c/t", Payload: []byte("C"), QoS: 2, Retain: true}),
	)
	mustApply(t, s, SetRetained(Message{Topic: "a/t", Payload: []byte("A2"), QoS: 2, Retain: true}))
	st := load(t, s)
	want := []Message{
		{Topic: "a/t", Payload: []byte("A2"), QoS: 2, Retain: true},
		{Topic: "b/t", Payload: []byte("B"), QoS: 1, Retain: true},
		{Topic: "c/t", Payload: []byte("C"), QoS: 2, Retain: true},
	}
	if !reflect.DeepEqual(st.Retained, want) {
		t.Fatalf("got %+v", st.Retained)
	}
	// empty payload deletes; deleting an absent topic is no error
	mustApply(t, s, SetRetained(Message{Topic: "b/t"}), SetRetained(Message{Topic: "nope", Payload: []byte{}}))
	st = load(t, s)
	if !reflect.DeepEqual(st.Retained, []Message{want[0], want[2]}) {
		t.Fatalf("after delete: %+v", st.Retained)
	}
}

// Apply is atomic: an invalid op rolls back the whole unit, and only that unit.
func TestApplyAtomicAndInvalidOps(t *testing.T) {
	s := openStore(t, t.TempDir(), storage.Options{CommitWindow: 20 * time.Millisecond})
	mustApply(t, s, PutSession(Session{ClientID: "c"}))
	bad := [][]Op{
		{Enqueue("c", Queued{Seq: 1, Msg: msg("t", "x", 1)}), Enqueue("", Queued{Seq: 2})},
		{SetRetained(msg("r", "x", 1)), SetRetained(Message{Payload: []byte("no topic")})},
		{Enqueue("c", Queued{Seq: 3, Msg: msg("t", "x", 3)})},
		{PutSession(Session{ClientID: "d", Subscriptions: []Subscription{{"f", 7}}})},
		{DeleteSession("")},
		{Op{}},
	}
	good := []Op{Enqueue("c", Queued{Seq: 10, Msg: msg("t", "ok", 2)})}
	// submit the bad units and a good one into the same group commit
	var wg sync.WaitGroup
	errs := make([]error, len(bad))
	for i, ops := range bad {
		wg.Add(1)
		s.Apply(ops, func(err error) { errs[i] = err; wg.Done() })
	}
	wg.Add(1)
	var goodErr error
	s.Apply(good, func(err error) { goodErr = err; wg.Done() })
	wg.Wait()
	for i, err := range errs {
		if err == nil {
			t.Errorf("bad unit %d accepted", i)
		} else if !strings.HasPrefix(err.Error(), "persist: ") {
			t.Errorf("bad unit %d: error %q lacks context", i, err)
		}
	}
	if goodErr != nil {
		t.Fatalf("good unit: %v", goodErr)
	}
	st := load(t, s)
	if len(st.Retained) != 0 {
		t.Fatalf("rolled-back unit left retained %+v", st.Retained)
	}
	if q := st.Sessions[0].Queue; len(q) != 1 || q[0].Seq != 10 {
		t.Fatalf("queue %+v", q)
	}
}

// Ops encode their data when built: the caller may reuse the payload buffer.
func TestOpCopiesPayload(t *testing.T) {
	s := openStore(t, t.TempDir(), storage.Options{})
	mustApply(t, s, PutSession(Session{ClientID: "c"}))
	buf := []byte("original")
	op := Enqueue("c", Queued{Seq: 1, Msg: Message{Topic: "t", Payload: buf, QoS: 1}})
	copy(buf, "XXXXXXXX")
	mustApply(t, s, op)
	if got := sessionState(load(t, s), "c").Queue[0].Msg.Payload; string(got) != "original" {
		t.Fatalf("payload %q", got)
	}
}

func TestLoadRoundTripAndReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var want State
	for i := range 5 {
		id := fmt.Sprintf("client-%d", i)
		sess := Session{ClientID: id}
		for j := range i {
			sess.Subscriptions = append(sess.Subscriptions, Subscription{Filter: fmt.Sprintf("s/%d/%d/#", i, j), QoS: byte(j % 3)})
		}
		ops := []Op{PutSession(sess)}
		ss := SessionState{Session: sess}
		for seq := uint64(1); seq <= uint64(i*3); seq++ {
			payload := bytes.Repeat([]byte{byte(seq)}, int(seq)*100)
			q := Queued{Seq: seq * 1000, Msg: Message{Topic: fmt.Sprintf("q/%d", seq), Payload: payload, QoS: byte(1 + seq%2)}}
			ops = append(ops, Enqueue(id, q))
			ss.Queue = append(ss.Queue, q)
		}
		for pid := range i {
			ops = append(ops, AddInboundQoS2(id, uint16(pid+1)))
			ss.InboundQoS2 = append(ss.InboundQoS2, uint16(pid+1))
		}
		mustApply(t, s, ops...)
		want.Sessions = append(want.Sessions, ss)
	}
	for i := range 3 {
		m := Message{Topic: fmt.Sprintf("r/%d", i), Payload: []byte{0, byte(i), 0xff}, QoS: byte(i), Retain: true}
		mustApply(t, s, SetRetained(m))
		want.Retained = append(want.Retained, m)
	}
	if got := load(t, s); !reflect.DeepEqual(got, want) {
		t.Fatalf("load before reopen:\n got %+v\nwant %+v", got, want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s.Apply([]Op{DeleteSession("client-1")}, nil) // after Close: rejected, not applied
	s = openStore(t, dir, storage.Options{})
	if got := load(t, s); !reflect.DeepEqual(got, want) {
		t.Fatalf("load after reopen:\n got %+v\nwant %+v", got, want)
	}
}

func TestApplyAfterClose(t *testing.T) {
	s := openStore(t, t.TempDir(), storage.Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := apply(t, s, PutSession(Session{ClientID: "x"})); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("err = %v", err)
	}
}

// syncBuffer is a log sink safe for the committer and test goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Corrupt records are skipped and logged by Load, naming bucket and key;
// the rest of the state still loads.
func TestLoadSkipsCorruptRecords(t *testing.T) {
	var logBuf syncBuffer
	logger := slog.New(slog.NewJSONHandler(&logBuf, nil))
	s := openStore(t, t.TempDir(), storage.Options{Logger: logger})
	mustApply(t, s,
		PutSession(Session{ClientID: "good", Subscriptions: []Subscription{{"g", 1}}}),
		Enqueue("good", Queued{Seq: 1, Msg: msg("t", "one", 1)}),
		Enqueue("good", Queued{Seq: 2, Msg: msg("t", "two", 1)}),
		Enqueue("good", Queued{Seq: 3, Msg: msg("t", "three", 1)}),
		PutSession(Session{ClientID: "badrec"}),
		Enqueue("badrec", Queued{Seq: 1, Msg: msg("t", "lost", 1)}),
		SetRetained(msg("r/ok", "fine", 0)),
		SetRetained(msg("r/bad", "flipped", 0)),
	)
	// damage records behind the Store's back
	if err := s.DB().Update(context.Background(), func(tx *bbolt.Tx) error {
		sessions := tx.Bucket(bucketSessions)
		q := sessions.Bucket([]byte("good")).Bucket(bucketQueue)
		v := append([]byte(nil), q.Get(seqKey(2))...)
		v[len(v)/2] ^= 0x40 // a bit flip: CRC mismatch
		if err := q.Put(seqKey(2), v); err != nil {
			return err
		}
		if err := q.Put([]byte("short"), encodeMessage(msg("t", "x", 1))); err != nil { // bad key
			return err
		}
		if err := sessions.Bucket([]byte("badrec")).Put(keySession, []byte{9, 1, 2, 3, 4, 5}); err != nil { // unknown version
			return err
		}
		if err := sessions.Put([]byte("stray"), []byte("value")); err != nil { // value, not bucket
			return err
		}
		r := tx.Bucket(bucketRetained)
		rv := append([]byte(nil), r.Get([]byte("r/bad"))...)
		return r.Put([]byte("r/bad"), rv[:len(rv)-3]) // truncated
	}); err != nil {
		t.Fatal(err)
	}

	st := load(t, s)
	if len(st.Sessions) != 1 || st.Sessions[0].Session.ClientID != "good" {
		t.Fatalf("sessions %+v", st.Sessions)
	}
	var seqs []uint64
	for _, q := range st.Sessions[0].Queue {
		seqs = append(seqs, q.Seq)
	}
	if !reflect.DeepEqual(seqs, []uint64{1, 3}) {
		t.Fatalf("queue seqs %v, want [1 3]", seqs)
	}
	if len(st.Retained) != 1 || st.Retained[0].Topic != "r/ok" {
		t.Fatalf("retained %+v", st.Retained)
	}
	var logged []string
	for line := range strings.Lines(logBuf.String()) {
		var rec struct{ Msg, Err string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		logged = append(logged, rec.Err)
	}
	wants := []string{
		`persist: corrupt record in bucket "sessions/badrec", key "session": unknown format version 9`,
		`persist: corrupt record in bucket "sessions/good/queue", key 0x0000000000000002 (2): checksum mismatch`,
		`persist: corrupt record in bucket "sessions/good/queue", key "short": key of 5 bytes, want 8`,
		`persist: corrupt record in bucket "sessions", key "stray": value where a session bucket belongs`,
		`persist: corrupt record in bucket "retained", key "r/bad": checksum mismatch`,
	}
	if !reflect.DeepEqual(logged, wants) {
		t.Fatalf("logged:\n%s\nwant:\n%s", strings.Join(logged, "\n"), strings.Join(wants, "\n"))
	}

	// the broker can overwrite the damaged session; Store keeps working
	mustApply(t, s, PutSession(Session{ClientID: "badrec"}), DeleteSession("stray"))
	if st := load(t, s); len(st.Sessions) != 2 {
		t.Fatalf("after repair: %+v", st.Sessions)
	}
}

func TestCorruptErrorNamesBucketAndKey(t *testing.T) {
	_, err := decodeMessage([]byte{1, 2})
	ce := &CorruptError{Bucket: "retained", Key: []byte("a/b"), Err: err}
	if got := ce.Error(); got != `persist: corrupt record in bucket "retained", key "a/b": truncated` {
		t.Fatal(got)
	}
	if !errors.Is(ce, errShort) {
		t.Fatal("Unwrap")
	}
}

func TestSchemaNewerRefused(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DB().Update(context.Background(), func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchema, []byte{schemaVersion + 1})
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s2, err := Open(dir, storage.Options{}); err == nil {
		_ = s2.Close()
		t.Fatal("opened a database with a newer schema")
	} else if !strings.Contains(err.Error(), "newer") {
		t.Fatal(err)
	}
}

func TestConcurrentApply(t *testing.T) {
	s := openStore(t, t.TempDir(), storage.Options{})
	const clients, per = 8, 50
	var wg sync.WaitGroup
	for c := range clients {
		id := fmt.Sprint("c", c)
		wg.Go(func() {
			if err := apply(t, s, PutSession(Session{ClientID: id})); err != nil {
				t.Error(err)
				return
			}
			for seq := range uint64(per) {
				if err := apply(t, s, Enqueue(id, Queued{Seq: seq, Msg: msg("t", "x", 1)}), SetRetained(msg("t/"+id, "r", 1))); err != nil {
					t.Error(err)
					return
				}
				if seq%2 == 1 {
					s.Apply([]Op{Dequeue(id, seq-1)}, nil)
				}
			}
		})
	}
	wg.Wait()
	if err := apply(t, s); err != nil { // an empty unit still completes, after the rest
		t.Fatal(err)
	}
	st := load(t, s)
	if len(st.Sessions) != clients || len(st.Retained) != clients {
		t.Fatalf("%d sessions, %d retained", len(st.Sessions), len(st.Retained))
	}
	for _, ss := range st.Sessions {
		if len(ss.Queue) != per/2 {
			t.Fatalf("%s: %d queued", ss.Session.ClientID, len(ss.Queue))
		}
	}
}
