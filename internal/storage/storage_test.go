package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

var testBucket = []byte("t")

func openTest(t testing.TB, opts Options) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sub", "dir", "test.db")
	db, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db, path
}

func key(i uint64) []byte { return binary.BigEndian.AppendUint64(nil, i) }

func put(k, v []byte) func(tx *bbolt.Tx) error {
	return func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(testBucket)
		if err != nil {
			return err
		}
		return b.Put(k, v)
	}
}

func get(t testing.TB, db *DB, k []byte) []byte {
	t.Helper()
	var v []byte
	if err := db.View(func(tx *bbolt.Tx) error {
		if b := tx.Bucket(testBucket); b != nil {
			if g := b.Get(k); g != nil {
				v = append([]byte{}, g...)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestOpenCreatesFileAndDirs(t *testing.T) {
	db, path := openTest(t, Options{})
	if db.Path() != path {
		t.Fatalf("Path = %q", db.Path())
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, want 0600", fi.Mode().Perm())
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o750 {
		t.Errorf("dir mode %v, want 0750", di.Mode().Perm())
	}
	if db.bolt.NoSync {
		t.Fatal("NoSync must never be set")
	}
}

func TestOpenInUse(t *testing.T) {
	_, path := openTest(t, Options{})
	start := time.Now()
	db2, err := Open(path, Options{})
	if err == nil {
		_ = db2.Close()
		t.Fatal("second Open of a locked database succeeded")
	}
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("err = %v, want ErrInUse", err)
	}
	want := fmt.Sprintf("database %s is in use by another process", path)
	if err.Error() != want {
		t.Fatalf("err = %q, want %q", err, want)
	}
	if d := time.Since(start); d < 900*time.Millisecond || d > 5*time.Second {
		t.Errorf("lock timeout took %v, want about 1s", d)
	}
}

func TestUpdateAndView(t *testing.T) {
	db, _ := openTest(t, Options{})
	if err := db.Update(context.Background(), put([]byte("a"), []byte("1"))); err != nil {
		t.Fatal(err)
	}
	if got := get(t, db, []byte("a")); string(got) != "1" {
		t.Fatalf("got %q", got)
	}
	st := db.Stats()
	if st.Commits != 1 || st.Ops != 1 || st.LastBatch != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// Ops commit in submit order: the last write to a key wins, and the dones
// fire in submit order.
func TestOrdering(t *testing.T) {
	db, _ := openTest(t, Options{CommitWindow: 5 * time.Millisecond, MaxBatch: 7})
	const n = 500
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	wg.Add(n)
	for i := range n {
		// every op appends its index to a log value and overwrites "last"
		db.Submit(func(tx *bbolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists(testBucket)
			if err != nil {
				return err
			}
			log := append([]byte(nil), b.Get([]byte("log"))...)
			log = binary.BigEndian.AppendUint32(log, uint32(i))
			if err := b.Put([]byte("log"), log); err != nil {
				return err
			}
			return b.Put([]byte("last"), key(uint64(i)))
		}, func(err error) {
			if err != nil {
				t.Errorf("op %d: %v", i, err)
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			wg.Done()
		})
	}
	wg.Wait()
	for i, v := range order {
		if v != i {
			t.Fatalf("done order: position %d got op %d", i, v)
		}
	}
	log := get(t, db, []byte("log"))
	if len(log) != 4*n {
		t.Fatalf("log has %d bytes", len(log))
	}
	for i := range n {
		if got := binary.BigEndian.Uint32(log[4*i:]); got != uint32(i) {
			t.Fatalf("log[%d] = %d: ops applied out of order", i, got)
		}
	}
	if got := binary.BigEndian.Uint64(get(t, db, []byte("last"))); got != n-1 {
		t.Fatalf("last = %d", got)
	}
	st := db.Stats()
	if st.MaxBatchSeen > 7 {
		t.Fatalf("batch of %d exceeds MaxBatch 7", st.MaxBatchSeen)
	}
	if st.Commits >= n {
		t.Fatalf("%d commits for %d ops: no grouping", st.Commits, n)
	}
}

// A failing op is rolled back alone; its batch neighbours commit.
func TestFailingOpRolledBackAlone(t *testing.T) {
	db, _ := openTest(t, Options{CommitWindow: time.Hour, MaxBatch: 10}) // exactly one batch of 10
	errBoom := errors.New("boom")
	type res struct {
		i   int
		err error
	}
	results := make(chan res, 10)
	for i := range 10 {
		k := key(uint64(i))
		fn := put(k, []byte("ok"))
		switch i {
		case 3:
			// writes, then fails: the write must vanish
			fn = func(tx *bbolt.Tx) error {
				if err := put(k, []byte("bad"))(tx); err != nil {
					return err
				}
				return errBoom
			}
		case 7:
			fn = func(tx *bbolt.Tx) error {
				_ = put(k, []byte("bad"))(tx)
				panic("kaboom")
			}
		}
		db.Submit(fn, func(err error) { results <- res{i, err} })
	}
	for range 10 {
		r := <-results
		switch r.i {
		case 3:
			if !errors.Is(r.err, errBoom) {
				t.Errorf("op 3: err %v, want boom", r.err)
			}
		case 7:
			if r.err == nil {
				t.Errorf("op 7 panicked but got nil error")
			}
		default:
			if r.err != nil {
				t.Errorf("op %d: %v", r.i, r.err)
			}
		}
	}
	for i := range 10 {
		got := get(t, db, key(uint64(i)))
		switch i {
		case 3, 7:
			if got != nil {
				t.Errorf("failed op %d left %q", i, got)
			}
		default:
			if string(got) != "ok" {
				t.Errorf("op %d: got %q", i, got)
			}
		}
	}
	st := db.Stats()
	if st.Commits != 1 || st.Ops != 8 || st.FailedOps != 2 || st.Reruns != 2 {
		t.Fatalf("stats %+v: want one commit of 8 ops after 2 reruns", st)
	}
}

func TestOpMustNotFinishTx(t *testing.T) {
	db, _ := openTest(t, Options{})
	err := db.Update(context.Background(), func(tx *bbolt.Tx) error { return tx.Rollback() })
	if !errors.Is(err, ErrTxFinished) {
		t.Fatalf("err = %v", err)
	}
	if err := db.Update(context.Background(), put([]byte("x"), []byte("y"))); err != nil {
		t.Fatal(err)
	}
}

func TestCloseFlushes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.db")
	// a long window: without Close cutting it short, nothing would commit
	db, err := Open(path, Options{CommitWindow: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	const n = 100
	var mu sync.Mutex
	acked := 0
	for i := range n {
		db.Submit(put(key(uint64(i)), []byte("v")), func(err error) {
			if err != nil {
				t.Errorf("op %d: %v", i, err)
			}
			mu.Lock()
			acked++
			mu.Unlock()
		})
	}
	start := time.Now()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Close took %v", d)
	}
	if acked != n {
		t.Fatalf("%d of %d dones called by Close", acked, n)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i := range n {
		if get(t, db, key(uint64(i))) == nil {
			t.Fatalf("key %d lost across Close", i)
		}
	}
}

func TestSubmitAfterClose(t *testing.T) {
	db, _ := openTest(t, Options{})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	ch := make(chan error, 1)
	db.Submit(put([]byte("a"), nil), func(err error) { ch <- err })
	select {
	case err := <-ch:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("err = %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("done not called after Close")
	}
	if err := db.Update(context.Background(), put([]byte("a"), nil)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Update after Close: %v", err)
	}
	if err := db.View(func(*bbolt.Tx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("View after Close: %v", err)
	}
	db.Submit(put([]byte("a"), nil), nil) // nil done: must not panic
}

func TestUpdateContextCancelWithdrawsOp(t *testing.T) {
	db, _ := openTest(t, Options{CommitWindow: time.Hour, MaxBatch: 1000})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := db.Update(ctx, put([]byte("withdrawn"), []byte("x")))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db2, err := Open(db.Path(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if got := get(t, db2, []byte("withdrawn")); got != nil {
		t.Fatalf("withdrawn op committed: %q", got)
	}
}

func TestMaxBatchCommitsWithoutWaiting(t *testing.T) {
	db, _ := openTest(t, Options{CommitWindow: time.Hour, MaxBatch: 10})
	var wg sync.WaitGroup
	wg.Add(10)
	for i := range 10 {
		db.Submit(put(key(uint64(i)), []byte("v")), func(error) { wg.Done() })
	}
	doneCh := make(chan struct{})
	go func() { wg.Wait(); close(doneCh) }()
	select {
	case <-doneCh:
	case <-time.After(5 * time.Second):
		t.Fatal("full batch not committed before the window ended")
	}
	if st := db.Stats(); st.Commits != 1 || st.LastBatch != 10 {
		t.Fatalf("stats %+v", st)
	}
}

func TestConcurrentSubmitters(t *testing.T) {
	for _, window := range []time.Duration{-1, 0} {
		t.Run(fmt.Sprint("window=", window), func(t *testing.T) {
			db, _ := openTest(t, Options{CommitWindow: window})
			const workers, per = 16, 100
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for i := range per {
						k := key(uint64(w*per + i))
						var err error
						if i%2 == 0 {
							err = db.Update(context.Background(), put(k, k))
						} else {
							ch := make(chan error, 1)
							db.Submit(put(k, k), func(err error) { ch <- err })
							err = <-ch
						}
						if err != nil {
							t.Error(err)
							return
						}
						// readers run alongside the committer
						if got := get(t, db, k); string(got) != string(k) {
							t.Errorf("read-your-write failed for %x", k)
							return
						}
						_ = db.Stats()
					}
				})
			}
			wg.Wait()
			st := db.Stats()
			if st.Ops != workers*per {
				t.Fatalf("ops = %d", st.Ops)
			}
			if st.Commits >= workers*per {
				t.Fatalf("%d commits for %d ops: no group commit", st.Commits, st.Ops)
			}
			t.Logf("%d ops in %d commits (largest batch %d)", st.Ops, st.Commits, st.MaxBatchSeen)
		})
	}
}

// Submit from inside a done callback (e.g. a follow-up write) must work.
func TestSubmitFromDone(t *testing.T) {
	db, _ := openTest(t, Options{})
	ch := make(chan error, 1)
	db.Submit(put([]byte("a"), []byte("1")), func(err error) {
		if err != nil {
			ch <- err
			return
		}
		db.Submit(put([]byte("b"), []byte("2")), func(err error) { ch <- err })
	})
	if err := <-ch; err != nil {
		t.Fatal(err)
	}
	if string(get(t, db, []byte("b"))) != "2" {
		t.Fatal("follow-up write missing")
	}
}

// TestNoFreelistSync: with the option, a reopened file (which rebuilds the
// freelist by walking its pages) still has every write and knows its free
// pages.
func TestNoFreelistSync(t *testing.T) {
	db, path := openTest(t, Options{NoFreelistSync: true})
	if !db.bolt.NoFreelistSync || db.bolt.FreelistType != bbolt.FreelistMapType {
		t.Fatalf("NoFreelistSync %v, FreelistType %v", db.bolt.NoFreelistSync, db.bolt.FreelistType)
	}
	for i := range uint64(100) {
		if err := db.Update(context.Background(), put(key(i), make([]byte, 1000))); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Update(context.Background(), func(tx *bbolt.Tx) error {
		return tx.DeleteBucket(testBucket)
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Update(context.Background(), put(key(1), []byte("one"))); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db2, err := Open(path, Options{NoFreelistSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if v := get(t, db2, key(1)); string(v) != "one" {
		t.Fatalf("after reopen: %q", v)
	}
	if err := db2.View(func(tx *bbolt.Tx) error {
		if st := tx.DB().Stats(); st.FreePageN == 0 {
			return fmt.Errorf("no free pages found after reopen: %+v", st)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
