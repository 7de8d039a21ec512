package storage

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

const (
	helperEnvPath  = "SNGATE_STORAGE_CRASH_DB"
	helperEnvStart = "SNGATE_STORAGE_CRASH_START"
)

// crashValue is the 100-byte value stored under key(i); the parent checks it.
func crashValue(i uint64) []byte {
	v := make([]byte, 104)
	for j := 0; j < len(v); j += 8 {
		binary.BigEndian.PutUint64(v[j:], i*0x9e3779b97f4a7c15+uint64(j))
	}
	return v[:100]
}

// TestHelperProcess is the child of TestCrashKill9: it writes numbered puts
// from several goroutines and prints each number the moment its done(nil)
// fires, until the parent kills it (or a safety deadline passes).
func TestHelperProcess(t *testing.T) {
	path := os.Getenv(helperEnvPath)
	if path == "" {
		t.Skip("child process of TestCrashKill9")
	}
	start, _ := strconv.ParseUint(os.Getenv(helperEnvStart), 10, 64)
	db, err := Open(path, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper: open:", err)
		os.Exit(2)
	}
	var (
		next   atomic.Uint64
		outMu  sync.Mutex
		inflow = make(chan struct{}, 128) // bound the queue
	)
	next.Store(start)
	for range 4 {
		go func() {
			for {
				inflow <- struct{}{}
				i := next.Add(1)
				db.Submit(put(key(i), crashValue(i)), func(err error) {
					if err != nil {
						fmt.Fprintln(os.Stderr, "helper: op", i, "failed:", err)
						os.Exit(3)
					}
					outMu.Lock()
					// unbuffered: one write(2) per ack, before the next ack
					fmt.Fprintf(os.Stdout, "%d\n", i)
					outMu.Unlock()
					<-inflow
				})
			}
		}()
	}
	time.Sleep(15 * time.Second) // the parent kills us long before this
	os.Exit(4)
}

// runCrashChild starts the helper test named by run with env, reads the
// numbers it acknowledges, SIGKILLs it after minAcks of them, and returns
// every number it printed before it died.
func runCrashChild(t *testing.T, run string, env []string, minAcks int) []uint64 {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+run+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	watchdog := time.AfterFunc(15*time.Second, func() { _ = cmd.Process.Kill() })
	defer watchdog.Stop()

	var acked []uint64
	killed := false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		n, err := strconv.ParseUint(sc.Text(), 10, 64)
		if err != nil {
			continue // test framework chatter
		}
		acked = append(acked, n)
		if len(acked) == minAcks && !killed {
			killed = true
			// kill -9 mid-stream; keep reading: whatever the child printed
			// before it died was acknowledged too.
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}
	}
	werr := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(werr, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die by SIGKILL: %v\nstderr:\n%s", werr, stderr.String())
	}
	if len(acked) < minAcks {
		t.Fatalf("child acked only %d ops before the watchdog\nstderr:\n%s", len(acked), stderr.String())
	}
	return acked
}

// TestCrashKill9 kills a writer with SIGKILL in the middle of a stream of
// group commits, three times over on the same file, and checks that every
// acknowledged write is there and the file is consistent.
func TestCrashKill9(t *testing.T) {
	path := filepath.Join(t.TempDir(), "crash.db")
	var all []uint64
	for round := range 3 {
		start := uint64(round) * 1_000_000_000
		acked := runCrashChild(t, "TestHelperProcess", []string{
			helperEnvPath + "=" + path,
			helperEnvStart + "=" + strconv.FormatUint(start, 10),
		}, 300)
		all = append(all, acked...)

		db, err := Open(path, Options{})
		if err != nil {
			t.Fatalf("round %d: reopen after kill -9: %v", round, err)
		}
		var present int
		err = db.View(func(tx *bbolt.Tx) error {
			var cerrs []error
			for cerr := range tx.Check() { // drain: the checker blocks otherwise
				cerrs = append(cerrs, cerr)
			}
			if len(cerrs) > 0 {
				return fmt.Errorf("consistency check: %w", errors.Join(cerrs...))
			}
			b := tx.Bucket(testBucket)
			if b == nil {
				return errors.New("bucket missing")
			}
			present = b.Stats().KeyN
			for _, i := range all {
				if v := b.Get(key(i)); !bytes.Equal(v, crashValue(i)) {
					return fmt.Errorf("acked op %d lost (value %x)", i, v)
				}
			}
			return nil
		})
		if cerr := db.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		t.Logf("round %d: %d acked this round, all %d acked present (%d keys on disk)", round, len(acked), len(all), present)
	}
}
