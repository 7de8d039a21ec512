package queue

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// fakeClock is Options.Now for tests: every call is one second later.
func fakeClock() func() time.Time {
	var n atomic.Int64
	return func() time.Time { return time.Unix(1_700_000_000+n.Add(1), 0) }
}

func openTest(t testing.TB, opts Options) (*Queue, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bridge", "cloud.db")
	return openAt(t, path, opts), path
}

func openAt(t testing.TB, path string, opts Options) *Queue {
	t.Helper()
	q, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close() })
	return q
}

// rec is test record i: topic "t/<i>", payload i (8 bytes) padded to size
// bytes (at least 8).
func rec(i uint64, size int) Record {
	p := make([]byte, max(size, 8))
	binary.BigEndian.PutUint64(p, i)
	return Record{Topic: fmt.Sprintf("t/%d", i), Payload: p, QoS: byte(i % 3), Retain: i%2 == 0}
}

// recIndex is the i of a record made by rec.
func recIndex(r Record) uint64 { return binary.BigEndian.Uint64(r.Payload) }

type result struct {
	seq uint64
	err error
}

// appendWait appends rs in order without waiting in between, then waits for
// every done and returns their results.
func appendWait(t testing.TB, q *Queue, rs ...Record) []result {
	t.Helper()
	res := make([]result, len(rs))
	var wg sync.WaitGroup
	wg.Add(len(rs))
	for i, r := range rs {
		q.AppendSeq(r, func(seq uint64, err error) {
			res[i] = result{seq, err}
			wg.Done()
		})
	}
	wg.Wait()
	return res
}

func mustAppend(t testing.TB, q *Queue, rs ...Record) []uint64 {
	t.Helper()
	var seqs []uint64
	for i, r := range appendWait(t, q, rs...) {
		if r.err != nil {
			t.Fatalf("append %d: %v", i, r.err)
		}
		seqs = append(seqs, r.seq)
	}
	return seqs
}

func removeWait(t testing.TB, q *Queue, seqs ...uint64) {
	t.Helper()
	errs := make(chan error, len(seqs))
	for _, s := range seqs {
		q.Remove(s, func(err error) { errs <- err })
	}
	for range seqs {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// readAll reads the whole queue in chunks.
func readAll(t testing.TB, q *Queue) []Record {
	t.Helper()
	var all []Record
	var after uint64
	for range 1 << 20 {
		rs, err := q.Read(after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) == 0 {
			return all
		}
		all = append(all, rs...)
		after = rs[len(rs)-1].Seq
	}
	t.Fatal("readAll: too many records")
	return nil
}

func indexes(rs []Record) []uint64 {
	out := make([]uint64, len(rs))
	for i, r := range rs {
		out[i] = recIndex(r)
	}
	return out
}

func TestAppendReadRemove(t *testing.T) {
	clock := fakeClock()
	q, _ := openTest(t, Options{Now: clock})
	var in []Record
	for i := range uint64(10) {
		in = append(in, rec(i, 20+int(i)))
	}
	seqs := mustAppend(t, q, in...)
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] {
			t.Fatalf("seqs not increasing in Append order: %v", seqs)
		}
	}
	got := readAll(t, q)
	if len(got) != len(in) {
		t.Fatalf("read %d records, want %d", len(got), len(in))
	}
	for i, r := range got {
		want := in[i]
		want.Seq = seqs[i]
		want.Time = r.Time
		if !recordsEqual(r, want) {
			t.Fatalf("record %d = %+v, want %+v", i, r, want)
		}
		if r.Time.IsZero() || (i > 0 && !r.Time.After(got[i-1].Time)) {
			t.Fatalf("record %d: Time %v not set by the queue", i, r.Time)
		}
	}

	// Read after and max.
	part, err := q.Read(seqs[3], 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(part) != 2 || part[0].Seq != seqs[4] || part[1].Seq != seqs[5] {
		t.Fatalf("Read(seqs[3], 2) = %v", part)
	}
	if rs, err := q.Read(seqs[9], 10); err != nil || len(rs) != 0 {
		t.Fatalf("Read past the end = %v, %v", rs, err)
	}
	if rs, err := q.Read(0, 0); err != nil || len(rs) != 0 {
		t.Fatalf("Read max 0 = %v, %v", rs, err)
	}

	// Records returned must not alias bbolt's memory: scribble and re-read.
	part[0].Payload[0] ^= 0xff
	again, _ := q.Read(seqs[3], 1)
	if !bytes.Equal(again[0].Payload, in[4].Payload) {
		t.Fatal("Read returned memory shared with the database")
	}

	// Remove the head, one in the middle and a missing seq.
	removeWait(t, q, seqs[0], seqs[5], 999_999)
	got = readAll(t, q)
	if want := []uint64{1, 2, 3, 4, 6, 7, 8, 9}; fmt.Sprint(indexes(got)) != fmt.Sprint(want) {
		t.Fatalf("after remove: %v, want %v", indexes(got), want)
	}
	st := q.Stats()
	var wantBytes int64
	for _, r := range got {
		wantBytes += int64(len(r.Topic) + len(r.Payload))
	}
	if st.Messages != 8 || st.Bytes != wantBytes || st.Appended != 10 || st.Removed != 2 {
		t.Fatalf("stats %+v, want 8 messages, %d bytes, 10 appended, 2 removed", st, wantBytes)
	}
	if !st.Oldest.Equal(got[0].Time) {
		t.Fatalf("Oldest %v, want head's %v", st.Oldest, got[0].Time)
	}
	if st.Commits == 0 || st.Commits > 20 {
		t.Fatalf("Commits = %d", st.Commits)
	}

	// Remove the rest: empty, Oldest zero.
	var rest []uint64
	for _, r := range got {
		rest = append(rest, r.Seq)
	}
	removeWait(t, q, rest...)
	if st := q.Stats(); st.Messages != 0 || st.Bytes != 0 || !st.Oldest.IsZero() {
		t.Fatalf("empty queue stats %+v", st)
	}
}

func TestSeqMonotonicAndStatsAcrossReopen(t *testing.T) {
	clock := fakeClock()
	q, path := openTest(t, Options{Now: clock})
	seqs := mustAppend(t, q, rec(0, 10), rec(1, 10), rec(2, 10), rec(3, 30))
	removeWait(t, q, seqs[0], seqs[3]) // the head and the tail
	before := q.Stats()
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}

	q = openAt(t, path, Options{Now: clock})
	after := q.Stats()
	if after.Messages != 2 || after.Bytes != before.Bytes || !after.Oldest.Equal(before.Oldest) {
		t.Fatalf("after reopen %+v, before %+v", after, before)
	}
	more := mustAppend(t, q, rec(4, 10))
	if more[0] <= seqs[3] {
		t.Fatalf("seq %d after reopen reuses one up to %d", more[0], seqs[3])
	}
	if got := indexes(readAll(t, q)); fmt.Sprint(got) != "[1 2 4]" {
		t.Fatalf("records %v", got)
	}
	// An empty queue keeps counting too.
	all := readAll(t, q)
	for _, r := range all {
		removeWait(t, q, r.Seq)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	q = openAt(t, path, Options{Now: clock})
	if st := q.Stats(); st.Messages != 0 || st.Bytes != 0 || !st.Oldest.IsZero() {
		t.Fatalf("empty after reopen: %+v", st)
	}
	if s := mustAppend(t, q, rec(5, 10)); s[0] <= more[0] {
		t.Fatalf("seq %d after reopen of an empty queue, last was %d", s[0], more[0])
	}
}

func TestLimits(t *testing.T) {
	for _, tc := range []struct {
		name        string
		opts        Options
		sizes       []int    // record sizes (topic + payload), in Append order
		wantKept    []uint64 // indexes left in the queue
		wantDropped uint64
		wantRefused []uint64 // indexes refused
	}{
		{name: "count drop-oldest", opts: Options{MaxMessages: 3},
			sizes: []int{20, 20, 20, 20, 20}, wantKept: []uint64{2, 3, 4}, wantDropped: 2},
		{name: "count refuse-new", opts: Options{MaxMessages: 3, Policy: RefuseNew},
			sizes: []int{20, 20, 20, 20, 20}, wantKept: []uint64{0, 1, 2}, wantRefused: []uint64{3, 4}},
		{name: "bytes drop-oldest", opts: Options{MaxBytes: 50},
			sizes: []int{20, 20, 20, 20}, wantKept: []uint64{2, 3}, wantDropped: 2},
		{name: "bytes refuse-new", opts: Options{MaxBytes: 50, Policy: RefuseNew},
			sizes: []int{20, 20, 20, 20}, wantKept: []uint64{0, 1}, wantRefused: []uint64{2, 3}},
		{name: "bytes exact fit", opts: Options{MaxBytes: 60},
			sizes: []int{20, 20, 20}, wantKept: []uint64{0, 1, 2}},
		{name: "bytes drop several for a big one", opts: Options{MaxBytes: 60},
			sizes: []int{15, 15, 15, 50}, wantKept: []uint64{3}, wantDropped: 3},
		{name: "refuse-new refuses a big one, takes a small one", opts: Options{MaxBytes: 60, Policy: RefuseNew},
			sizes: []int{20, 20, 30, 15}, wantKept: []uint64{0, 1, 3}, wantRefused: []uint64{2}},
		{name: "both limits", opts: Options{MaxMessages: 3, MaxBytes: 70},
			sizes: []int{20, 20, 20, 20, 40}, wantKept: []uint64{3, 4}, wantDropped: 3},
		{name: "too large drop-oldest", opts: Options{MaxBytes: 50},
			sizes: []int{20, 51, 20}, wantKept: []uint64{0, 2}, wantRefused: []uint64{1}},
		{name: "too large refuse-new", opts: Options{MaxBytes: 50, Policy: RefuseNew},
			sizes: []int{51, 20}, wantKept: []uint64{1}, wantRefused: []uint64{0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Now = fakeClock()
			q, path := openTest(t, tc.opts)
			var rs []Record
			for i, sz := range tc.sizes {
				r := rec(uint64(i), sz-1)
				r.Topic = "t"
				rs = append(rs, r)
			}
			var refused []uint64
			for i, r := range appendWait(t, q, rs...) {
				switch {
				case r.err == nil:
				case errors.Is(r.err, ErrRefused):
					refused = append(refused, uint64(i))
				default:
					t.Fatalf("append %d: %v", i, r.err)
				}
			}
			if fmt.Sprint(refused) != fmt.Sprint(tc.wantRefused) {
				t.Fatalf("refused %v, want %v", refused, tc.wantRefused)
			}
			kept := readAll(t, q)
			if fmt.Sprint(indexes(kept)) != fmt.Sprint(tc.wantKept) {
				t.Fatalf("kept %v, want %v", indexes(kept), tc.wantKept)
			}
			st := q.Stats()
			var wantBytes int64
			for _, r := range kept {
				wantBytes += int64(len(r.Topic) + len(r.Payload))
			}
			if st.DroppedOldest != tc.wantDropped || st.Refused != uint64(len(tc.wantRefused)) ||
				st.Messages != int64(len(tc.wantKept)) || st.Bytes != wantBytes || !st.Oldest.Equal(kept[0].Time) {
				t.Fatalf("stats %+v; want dropped %d, refused %d, messages %d, bytes %d, oldest %v",
					st, tc.wantDropped, len(tc.wantRefused), len(tc.wantKept), wantBytes, kept[0].Time)
			}
			// The limits hold across a reopen, with the counts read from disk.
			if err := q.Close(); err != nil {
				t.Fatal(err)
			}
			q = openAt(t, path, tc.opts)
			if st2 := q.Stats(); st2.Messages != st.Messages || st2.Bytes != st.Bytes || !st2.Oldest.Equal(st.Oldest) {
				t.Fatalf("after reopen %+v, before %+v", st2, st)
			}
		})
	}
}

func TestInvalidRecords(t *testing.T) {
	q, _ := openTest(t, Options{})
	long := Record{Topic: string(make([]byte, 70000))}
	badQoS := Record{Topic: "t", QoS: 3}
	res := appendWait(t, q, long, rec(1, 10), badQoS)
	for _, i := range []int{0, 2} {
		if !errors.Is(res[i].err, ErrInvalid) || !errors.Is(res[i].err, ErrRefused) {
			t.Fatalf("record %d: %v, want ErrInvalid and ErrRefused", i, res[i].err)
		}
	}
	if res[1].err != nil {
		t.Fatal(res[1].err)
	}
	if st := q.Stats(); st.Messages != 1 || st.Refused != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestNotify(t *testing.T) {
	q, _ := openTest(t, Options{})
	select {
	case <-q.Notify():
		t.Fatal("notified before any append")
	default:
	}
	mustAppend(t, q, rec(1, 10), rec(2, 10))
	select {
	case <-q.Notify():
	default:
		t.Fatal("no notification after durable appends")
	}
	select {
	case <-q.Notify():
		t.Fatal("a second pending notification: the channel must hold one")
	default:
	}
}

func TestClosed(t *testing.T) {
	q, _ := openTest(t, Options{})
	mustAppend(t, q, rec(1, 10))
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if r := appendWait(t, q, rec(2, 10)); !errors.Is(r[0].err, ErrClosed) {
		t.Fatalf("append after Close: %v", r[0].err)
	}
	if _, err := q.Read(0, 10); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after Close: %v", err)
	}
	errc := make(chan error, 1)
	q.Remove(1, func(err error) { errc <- err })
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("remove after Close: %v", err)
	}
}

func TestOpenRejectsBadOptions(t *testing.T) {
	dir := t.TempDir()
	for _, o := range []Options{{MaxMessages: -1}, {MaxBytes: -1}, {Policy: 7}} {
		if q, err := Open(filepath.Join(dir, "q.db"), o); err == nil {
			_ = q.Close()
			t.Fatalf("Open(%+v) succeeded", o)
		}
	}
}

// withBolt opens the closed queue file with bbolt directly, to damage it.
func withBolt(t *testing.T, path string, fn func(tx *bbolt.Tx) error) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptRecordSkippedAndDeleted(t *testing.T) {
	logs := &captureHandler{}
	opts := Options{Logger: slog.New(logs)}
	q, path := openTest(t, opts)
	seqs := mustAppend(t, q, rec(0, 30), rec(1, 30), rec(2, 30), rec(3, 30))
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	withBolt(t, path, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketRecords)
		v := append([]byte(nil), b.Get(seqKey(seqs[1]))...)
		v[len(v)-10] ^= 0x40 // a flipped bit in the payload: same length, bad CRC
		if err := b.Put(seqKey(seqs[1]), v); err != nil {
			return err
		}
		return b.Put(seqKey(seqs[2]), []byte{1, 2, 3}) // a torn record
	})

	q = openAt(t, path, opts)
	for range 2 { // the second Read must not count them again
		got, err := q.Read(0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(indexes(got)) != "[0 3]" {
			t.Fatalf("read %v, want [0 3]", indexes(got))
		}
	}
	if err := q.Close(); err != nil { // commits the deletions
		t.Fatal(err)
	}
	if st := q.Stats(); st.Corrupt != 2 {
		t.Fatalf("Corrupt = %d, want 2", st.Corrupt)
	}
	if n := logs.count(slog.LevelError, "corrupt"); n != 2 {
		t.Fatalf("%d corrupt-record errors logged, want 2", n)
	}
	q = openAt(t, path, opts)
	st := q.Stats()
	// The torn record's size is lost with its length: the byte count keeps
	// it (33) until the queue empties. The flipped one's is exact.
	if sz := int64(len(rec(0, 30).Topic) + 30); st.Messages != 2 || st.Bytes != 3*sz {
		t.Fatalf("after deleting the corrupt records: %+v", st)
	}
	left := readAll(t, q)
	if got := indexes(left); fmt.Sprint(got) != "[0 3]" {
		t.Fatalf("records %v", got)
	}
	removeWait(t, q, left[0].Seq, left[1].Seq)
	if st := q.Stats(); st.Messages != 0 || st.Bytes != 0 {
		t.Fatalf("the byte count did not heal when the queue emptied: %+v", st)
	}
}

func TestOpenRebuildsBadMeta(t *testing.T) {
	for _, tc := range []struct {
		name  string
		smash func(b *bbolt.Bucket) error
	}{
		{"garbage", func(b *bbolt.Bucket) error { return b.Put(keyState, []byte("garbage")) }},
		{"missing", func(b *bbolt.Bucket) error { return b.Delete(keyState) }},
		{"wrong count", func(b *bbolt.Bucket) error { return b.Put(keyState, encodeMeta(meta{next: 2, count: 0})) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, path := openTest(t, Options{})
			seqs := mustAppend(t, q, rec(0, 10), rec(1, 10), rec(2, 10))
			want := q.Stats()
			if err := q.Close(); err != nil {
				t.Fatal(err)
			}
			withBolt(t, path, func(tx *bbolt.Tx) error { return tc.smash(tx.Bucket(bucketMeta)) })
			q = openAt(t, path, Options{})
			if st := q.Stats(); st.Messages != want.Messages || st.Bytes != want.Bytes {
				t.Fatalf("rebuilt %+v, want %+v", st, want)
			}
			if s := mustAppend(t, q, rec(3, 10)); s[0] <= seqs[2] {
				t.Fatalf("seq %d after rebuild, last was %d", s[0], seqs[2])
			}
		})
	}
}

func TestOpenRejectsNewerFormat(t *testing.T) {
	q, path := openTest(t, Options{})
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	withBolt(t, path, func(tx *bbolt.Tx) error {
		b := []byte{2}
		b = append(b, make([]byte, 24)...)
		b = binary.BigEndian.AppendUint32(b, crc32c(b))
		return tx.Bucket(bucketMeta).Put(keyState, b)
	})
	if q, err := Open(path, Options{}); err == nil || !errors.Is(err, errNewerFormat) {
		if q != nil {
			_ = q.Close()
		}
		t.Fatalf("Open = %v, want errNewerFormat", err)
	}
}

// TestConcurrent: producers append while a consumer reads and removes, as
// the bridge's sender does; run with -race.
func TestConcurrent(t *testing.T) {
	const producers, each = 8, 250
	q, _ := openTest(t, Options{CommitWindow: -1})
	var wg sync.WaitGroup
	var appended atomic.Int64
	for p := range uint64(producers) {
		wg.Go(func() {
			var pw sync.WaitGroup
			for i := range uint64(each) {
				pw.Add(1)
				q.Append(rec(p*1_000_000+i, 50), func(err error) {
					if err != nil {
						t.Error(err)
					}
					appended.Add(1)
					pw.Done()
				})
			}
			pw.Wait()
		})
	}

	// Consumer: read after the last seq seen, remove what was read; per
	// producer, indexes must come in order.
	done := make(chan struct{})
	var consumed int
	go func() {
		defer close(done)
		last := map[uint64]uint64{}
		var after uint64
		deadline := time.Now().Add(30 * time.Second)
		for consumed < producers*each && time.Now().Before(deadline) {
			rs, err := q.Read(after, 64)
			if err != nil {
				t.Error(err)
				return
			}
			if len(rs) == 0 {
				select {
				case <-q.Notify():
				case <-time.After(10 * time.Millisecond):
				}
				continue
			}
			for _, r := range rs {
				i := recIndex(r)
				p := i / 1_000_000
				if l, ok := last[p]; ok && i <= l {
					t.Errorf("producer %d: index %d after %d", p, i, l)
				}
				last[p] = i
				q.Remove(r.Seq, func(err error) {
					if err != nil {
						t.Error(err)
					}
				})
			}
			consumed += len(rs)
			after = rs[len(rs)-1].Seq
		}
	}()
	wg.Wait()
	<-done
	if consumed != producers*each {
		t.Fatalf("consumed %d of %d", consumed, producers*each)
	}
	// Wait for the removes: one more op through the committer.
	if err := q.db.Update(context.Background(), func(*bbolt.Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	st := q.Stats()
	if st.Messages != 0 || st.Bytes != 0 || st.Appended != producers*each || st.Removed != producers*each {
		t.Fatalf("stats %+v", st)
	}
	if st.Commits >= producers*each {
		t.Fatalf("%d commits for %d appends and as many removes: no group commit", st.Commits, producers*each)
	}
}

func crc32c(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }
