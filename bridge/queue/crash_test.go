package queue

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	envCrashPath  = "SNGATE_QUEUE_CRASH_DB"
	envCrashRound = "SNGATE_QUEUE_CRASH_ROUND"
)

// TestCrashHelper is the child of TestCrashKill9: four goroutines append
// records (record i's payload says i, and Append order is i order) and
// remove every third one once it is durable. It prints "a SEQ I" when an
// append's done(nil) fires and "r SEQ" when a remove's does, one write(2)
// per line, until the parent kills it.
func TestCrashHelper(t *testing.T) {
	path := os.Getenv(envCrashPath)
	if path == "" {
		t.Skip("child process of TestCrashKill9")
	}
	round, _ := strconv.ParseUint(os.Getenv(envCrashRound), 10, 64)
	q, err := Open(path, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper: open:", err)
		os.Exit(2)
	}
	var (
		orderMu sync.Mutex // Append order = i order
		next    = round * 1_000_000_000
		outMu   sync.Mutex
		inflow  = make(chan struct{}, 256) // bound the memory
	)
	print := func(format string, args ...any) {
		outMu.Lock()
		fmt.Fprintf(os.Stdout, format, args...) // unbuffered
		outMu.Unlock()
	}
	for range 4 {
		go func() {
			for {
				inflow <- struct{}{}
				orderMu.Lock()
				i := next
				next++
				q.AppendSeq(rec(i, 100), func(seq uint64, err error) {
					if err != nil {
						fmt.Fprintln(os.Stderr, "helper: append", i, "failed:", err)
						os.Exit(3)
					}
					print("a %d %d\n", seq, i)
					if i%3 == 0 {
						q.Remove(seq, func(err error) {
							if err != nil {
								fmt.Fprintln(os.Stderr, "helper: remove", seq, "failed:", err)
								os.Exit(3)
							}
							print("r %d\n", seq)
						})
					}
					<-inflow
				})
				orderMu.Unlock()
			}
		}()
	}
	time.Sleep(20 * time.Second) // the parent kills us long before this
	os.Exit(4)
}

// runChild starts the helper test run with env and returns its command,
// its stdout and its stderr buffer.
func runChild(t *testing.T, run string, env ...string) (*exec.Cmd, *bufio.Scanner, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+run+"$", "-test.count=1", "-test.v")
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
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 0, 1<<16), 1<<24)
	return cmd, sc, &stderr
}

// TestCrashKill9 SIGKILLs an appending and removing child three times over
// on the same file; after each, every acknowledged append that was not
// acknowledged removed must be there, in Append order, every acknowledged
// remove must have happened, Seqs keep growing across the crashes, and the
// counts read from the meta record match the records.
func TestCrashKill9(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bridge", "crash.db")
	appended := map[uint64]uint64{} // seq → i, over all rounds
	removed := map[uint64]bool{}
	var maxSeq uint64
	for round := range uint64(3) {
		cmd, sc, stderr := runChild(t, "TestCrashHelper",
			envCrashPath+"="+path, envCrashRound+"="+strconv.FormatUint(round, 10))
		watchdog := time.AfterFunc(20*time.Second, func() { _ = cmd.Process.Kill() })
		acks, killed := 0, false
		roundMin := ^uint64(0)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) < 2 || (f[0] != "a" && f[0] != "r") {
				continue // test framework chatter
			}
			seq, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				continue
			}
			if f[0] == "a" && len(f) == 3 {
				i, _ := strconv.ParseUint(f[2], 10, 64)
				appended[seq] = i
				roundMin = min(roundMin, seq)
				acks++
			} else {
				removed[seq] = true
			}
			if acks == 2000 && !killed {
				killed = true
				// kill -9 mid-stream; keep reading: whatever the child
				// printed before it died was acknowledged too.
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
			}
		}
		werr := cmd.Wait()
		watchdog.Stop()
		var ee *exec.ExitError
		if !errors.As(werr, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child did not die by SIGKILL: %v\nstderr:\n%s", round, werr, stderr)
		}
		if !killed {
			t.Fatalf("round %d: child acked only %d appends\nstderr:\n%s", round, acks, stderr)
		}
		if round > 0 && roundMin <= maxSeq {
			t.Fatalf("round %d: seq %d reused (the last round went up to %d)", round, roundMin, maxSeq)
		}

		q, err := Open(path, Options{})
		if err != nil {
			t.Fatalf("round %d: reopen after kill -9: %v", round, err)
		}
		all := readAll(t, q)
		present := map[uint64]bool{}
		var bytes int64
		for k, r := range all {
			present[r.Seq] = true
			bytes += int64(len(r.Topic) + len(r.Payload))
			if k > 0 && recIndex(r) <= recIndex(all[k-1]) {
				t.Fatalf("round %d: seq %d holds record %d after seq %d with %d: out of Append order",
					round, r.Seq, recIndex(r), all[k-1].Seq, recIndex(all[k-1]))
			}
			if i, ok := appended[r.Seq]; ok && i != recIndex(r) {
				t.Fatalf("round %d: seq %d holds record %d, acked as %d", round, r.Seq, recIndex(r), i)
			}
			maxSeq = max(maxSeq, r.Seq)
		}
		lost := 0
		for seq, i := range appended {
			maxSeq = max(maxSeq, seq)
			switch {
			case removed[seq] && present[seq]:
				t.Errorf("round %d: seq %d (record %d) acked removed, still there", round, seq, i)
			case !removed[seq] && !present[seq] && i%3 != 0:
				lost++
				t.Errorf("round %d: acked seq %d (record %d) lost", round, seq, i)
			}
		}
		if lost > 0 {
			t.FailNow()
		}
		st := q.Stats()
		if st.Messages != int64(len(all)) || st.Bytes != bytes {
			t.Fatalf("round %d: stats say %d records, %d bytes; the file has %d, %d", round, st.Messages, st.Bytes, len(all), bytes)
		}
		if len(all) > 0 && !st.Oldest.Equal(all[0].Time) {
			t.Fatalf("round %d: Oldest %v, head's Time %v", round, st.Oldest, all[0].Time)
		}
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: %d appends and %d removes acked so far; %d records on disk", round, len(appended), len(removed), len(all))
	}
}
