// Package storage is sngate's durable key/value store: a bbolt database whose
// writes go through a single committer goroutine that groups many small
// operations into one fsync'ed transaction (group commit) and reports each
// operation's outcome asynchronously.
//
// The contract every caller relies on: an op's done callback is called with
// nil only after the transaction containing the op has been committed and
// fsync'ed by bbolt, so an acknowledgement given from done survives kill -9
// and, on storage that honours fdatasync, a power cut.
//
// Ops commit in the order they were submitted. An op whose fn returns an
// error (or panics) is rolled back alone: the batch is re-run without it.
// Because of that re-run, fn may be called more than once for the same op
// and must only act on the transaction it is given.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Defaults for Options.
const (
	DefaultCommitWindow = 2 * time.Millisecond
	DefaultMaxBatch     = 1000

	lockTimeout = time.Second
	fileMode    = 0o600
	dirMode     = 0o750
)

var (
	// ErrClosed is reported for work submitted after Close, and by View after Close.
	ErrClosed = errors.New("storage: database closed")
	// ErrInUse is wrapped by the error Open returns when another process holds the
	// database's file lock. Its text completes "database PATH is ...".
	ErrInUse = errors.New("in use by another process")
	// ErrTxFinished is reported for an op whose fn committed or rolled back the
	// shared transaction itself, which it must never do.
	ErrTxFinished = errors.New("storage: op committed or rolled back the shared transaction")
)

// Options tune a DB. The zero value gives the defaults.
type Options struct {
	// CommitWindow is how long the committer gathers further ops after the
	// first op of a batch arrived, before it commits. Zero means
	// DefaultCommitWindow (2ms). A negative value disables the wait: the
	// committer commits as soon as it is free, and batches still form from
	// the ops that arrive while a commit (fsync) is in progress.
	CommitWindow time.Duration
	// MaxBatch caps the ops in one transaction; a full batch is committed
	// without waiting for the window to end. Zero means DefaultMaxBatch (1000).
	MaxBatch int
	// Logger receives operational messages; nil discards them.
	Logger *slog.Logger
	// NoFreelistSync keeps bbolt from writing its freelist (every free page
	// id) in every commit, and selects bbolt's hashmap freelist. Open then
	// rebuilds the freelist by walking the live pages, and so does a failed
	// commit: slower the more live data there is. Worth it for a file that
	// can be mostly free space, such as a queue drained of a long backlog,
	// where the synced freelist is most of what every commit writes.
	NoFreelistSync bool
}

// Stats are cumulative counters for metrics.
type Stats struct {
	// Commits is the number of durable write transactions. Each is one
	// fsync round (bbolt fdatasyncs the data pages, then the meta page).
	Commits uint64
	// Ops is the number of ops committed durably (done(nil)).
	Ops uint64
	// FailedOps is the number of ops whose done received an error.
	FailedOps uint64
	// Reruns counts batches re-run after an op failed inside them.
	Reruns uint64
	// CommitErrors counts transactions that failed to begin or commit.
	CommitErrors uint64
	// LastBatch is the number of ops in the last committed transaction;
	// MaxBatchSeen the largest so far.
	LastBatch    int
	MaxBatchSeen int
	// Pending is the number of ops queued and not yet taken by the committer.
	Pending int
	// CommitTime is the total time spent in bbolt's Commit, fsync included.
	CommitTime time.Duration
}

// op states: the committer claims an op (pending → taken) before running it;
// Update cancels an op it no longer waits for (pending → cancelled).
const (
	opPending int32 = iota
	opTaken
	opCancelled
)

type op struct {
	fn    func(tx *bbolt.Tx) error
	done  func(error)
	at    time.Time
	state atomic.Int32
	err   error // set by the committer
}

// DB is a bbolt database with a group-committing writer. It is safe for
// concurrent use.
type DB struct {
	bolt     *bbolt.DB
	path     string
	log      *slog.Logger
	window   time.Duration
	maxBatch int

	mu      sync.Mutex
	queue   []*op
	closed  bool
	stats   Stats
	wake    chan struct{} // capacity 1: "look at the queue again"
	stopped chan struct{} // closed when the committer has exited

	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating if needed) the database file at path. The file is
// created with mode 0600 and missing parent directories with 0750. If another
// process holds the file lock for more than a second, Open fails with an error
// wrapping ErrInUse.
func Open(path string, opts Options) (*DB, error) {
	if opts.CommitWindow == 0 {
		opts.CommitWindow = DefaultCommitWindow
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}

	dir := filepath.Dir(path)
	createdDirs, err := mkdirAll(dir)
	if err != nil {
		return nil, fmt.Errorf("storage: create directory for %s: %w", path, err)
	}
	_, statErr := os.Stat(path)
	newFile := errors.Is(statErr, fs.ErrNotExist)

	bopts := &bbolt.Options{
		Timeout: lockTimeout,
		NoSync:  false, // never: an ack must mean "on disk"
	}
	if opts.NoFreelistSync {
		bopts.NoFreelistSync = true
		bopts.FreelistType = bbolt.FreelistMapType
	}
	bdb, err := bbolt.Open(path, fileMode, bopts)
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("database %s is %w", path, ErrInUse)
		}
		return nil, fmt.Errorf("storage: open %s: %w", path, err)
	}
	bdb.NoSync = false

	// bbolt fsyncs the file but not the directory entries that name it: make
	// a new file (and any new directories) survive a power cut too.
	if newFile {
		toSync := append([]string{dir}, parentsOf(createdDirs)...)
		for _, d := range toSync {
			if err := syncDir(d); err != nil {
				_ = bdb.Close()
				return nil, fmt.Errorf("storage: sync directory %s: %w", d, err)
			}
		}
	}

	db := &DB{
		bolt:     bdb,
		path:     path,
		log:      opts.Logger.With("db", path),
		window:   opts.CommitWindow,
		maxBatch: opts.MaxBatch,
		wake:     make(chan struct{}, 1),
		stopped:  make(chan struct{}),
	}
	go db.run()
	return db, nil
}

// mkdirAll is os.MkdirAll that also returns the directories it created,
// outermost first.
func mkdirAll(dir string) ([]string, error) {
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return nil, err
	}
	// outermost first
	for i, j := 0, len(missing)-1; i < j; i, j = i+1, j-1 {
		missing[i], missing[j] = missing[j], missing[i]
	}
	return missing, nil
}

// parentsOf returns the parent of every created directory (deduplicated,
// excluding the directories already covered by the caller's own list).
func parentsOf(created []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, d := range created {
		p := filepath.Dir(d)
		if p != d && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	serr := f.Sync()
	cerr := f.Close()
	if serr != nil {
		return serr
	}
	return cerr
}

// Path returns the database file's path.
func (db *DB) Path() string { return db.path }

// Submit queues a write. fn runs inside a read-write transaction shared with
// other submitted ops, after every op submitted before it; it must not commit
// or roll back that transaction, must not call Update, and may be called more
// than once (if another op of its batch fails, the batch is re-run).
//
// done, if not nil, is called exactly once: with nil once the transaction
// holding the op is durably committed, or with the op's error (fn's error,
// or the transaction's commit error). It is called from the committer
// goroutine and must return quickly; it may call Submit but must not wait for
// another op (Update) or the committer stalls. After Close, done(ErrClosed) is
// called at once from a new goroutine. done is never called from inside
// Submit, so the caller may hold locks that done takes.
func (db *DB) Submit(fn func(tx *bbolt.Tx) error, done func(error)) {
	db.submit(&op{fn: fn, done: done})
}

func (db *DB) submit(o *op) {
	if o.fn == nil {
		o.fn = func(*bbolt.Tx) error { return errors.New("storage: nil op function") }
	}
	db.mu.Lock()
	if db.closed {
		db.stats.FailedOps++
		db.mu.Unlock()
		if o.done != nil {
			// never from inside Submit: the caller may hold locks done takes
			go o.done(ErrClosed)
		}
		return
	}
	o.at = time.Now()
	db.queue = append(db.queue, o)
	n := len(db.queue)
	db.mu.Unlock()
	if n == 1 || n == db.maxBatch {
		db.poke()
	}
}

func (db *DB) poke() {
	select {
	case db.wake <- struct{}{}:
	default:
	}
}

// Update submits fn and waits until it is durably committed or has failed.
// If ctx ends first and the committer has not started the op yet, the op is
// withdrawn and ctx's error returned: an error from Update therefore always
// means fn's changes were not (and will not be) committed. Once the committer
// has started the op, Update waits for its outcome (at most one commit).
// Update must not be called from fn or from a done callback.
func (db *DB) Update(ctx context.Context, fn func(tx *bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	res := make(chan error, 1)
	o := &op{fn: fn, done: func(err error) { res <- err }}
	db.submit(o)
	select {
	case err := <-res:
		return err
	case <-ctx.Done():
		if o.state.CompareAndSwap(opPending, opCancelled) {
			return ctx.Err()
		}
		return <-res
	}
}

// View runs fn in a read-only transaction. Read transactions run concurrently
// with each other and with the committer.
func (db *DB) View(fn func(tx *bbolt.Tx) error) error {
	db.mu.Lock()
	closed := db.closed
	db.mu.Unlock()
	if closed {
		return ErrClosed
	}
	err := db.bolt.View(fn)
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// Close commits every op submitted before it, stops the committer and closes
// the file. Calls after the first return the first call's result.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		db.mu.Lock()
		db.closed = true
		db.mu.Unlock()
		db.poke()
		<-db.stopped
		if err := db.bolt.Close(); err != nil {
			db.closeErr = fmt.Errorf("storage: close %s: %w", db.path, err)
		}
	})
	return db.closeErr
}

// Stats returns a snapshot of the counters.
func (db *DB) Stats() Stats {
	db.mu.Lock()
	defer db.mu.Unlock()
	s := db.stats
	s.Pending = len(db.queue)
	return s
}

// run is the committer: it gathers ops for the commit window (or until a
// batch is full, or Close), then commits them in one transaction.
func (db *DB) run() {
	defer close(db.stopped)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var batch []*op
	for {
		db.mu.Lock()
		n, closed := len(db.queue), db.closed
		if n == 0 {
			db.mu.Unlock()
			if closed {
				return
			}
			<-db.wake
			continue
		}
		if wait := time.Until(db.queue[0].at.Add(db.window)); !closed && n < db.maxBatch && wait > 0 {
			db.mu.Unlock()
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-db.wake:
				timer.Stop()
			}
			continue
		}
		k := min(n, db.maxBatch)
		batch = append(batch[:0], db.queue[:k]...)
		rest := copy(db.queue, db.queue[k:])
		clear(db.queue[rest:])
		db.queue = db.queue[:rest]
		db.mu.Unlock()

		db.commit(batch)
		clear(batch)
	}
}

// commit runs one batch to completion and calls the dones in submit order.
func (db *DB) commit(batch []*op) {
	live := make([]*op, 0, len(batch))
	for _, o := range batch {
		if o.state.CompareAndSwap(opPending, opTaken) {
			live = append(live, o)
		}
	}
	var (
		committed    int
		failed       int
		reruns       uint64
		commitErrors uint64
		commitTime   time.Duration
	)
	run := live
	for len(run) > 0 {
		tx, err := db.bolt.Begin(true)
		if err != nil {
			commitErrors++
			db.log.Error("storage: begin transaction failed", "err", err, "ops", len(run))
			for _, o := range run {
				o.err = fmt.Errorf("storage: begin transaction: %w", err)
			}
			failed += len(run)
			break
		}
		bad := -1
		for i, o := range run {
			if err := db.call(o, tx); err != nil {
				o.err = err
				bad = i
				break
			}
		}
		if bad >= 0 {
			_ = tx.Rollback() // ErrTxClosed if the op closed it itself: fine
			db.log.Debug("storage: op failed, re-running batch without it", "err", run[bad].err, "batch", len(run))
			failed++
			run = append(run[:bad:bad], run[bad+1:]...)
			if len(run) > 0 {
				reruns++
			}
			continue
		}
		t0 := time.Now()
		err = tx.Commit()
		commitTime += time.Since(t0)
		if err != nil {
			commitErrors++
			db.log.Error("storage: commit failed", "err", err, "ops", len(run))
			for _, o := range run {
				o.err = fmt.Errorf("storage: commit: %w", err)
			}
			failed += len(run)
			break
		}
		committed = len(run)
		break
	}

	db.mu.Lock()
	if committed > 0 {
		db.stats.Commits++
		db.stats.LastBatch = committed
		db.stats.MaxBatchSeen = max(db.stats.MaxBatchSeen, committed)
	}
	db.stats.Ops += uint64(committed)
	db.stats.FailedOps += uint64(failed)
	db.stats.Reruns += reruns
	db.stats.CommitErrors += commitErrors
	db.stats.CommitTime += commitTime
	db.mu.Unlock()

	for _, o := range live {
		db.finish(o)
	}
}

// call runs one op's fn, turning a panic or a closed transaction into the
// op's error so that one bad op cannot take the committer down.
func (db *DB) call(o *op, tx *bbolt.Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			db.log.Error("storage: op panicked", "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("storage: op panicked: %v", r)
		}
	}()
	o.err = nil
	if err := o.fn(tx); err != nil {
		return err
	}
	if tx.DB() == nil {
		return ErrTxFinished
	}
	return nil
}

func (db *DB) finish(o *op) {
	if o.done == nil {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			db.log.Error("storage: done callback panicked", "panic", r, "stack", string(debug.Stack()))
		}
	}()
	o.done(o.err)
}
