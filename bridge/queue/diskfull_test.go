package queue

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	envFullPath   = "SNGATE_QUEUE_DISKFULL_DB"
	envFullPolicy = "SNGATE_QUEUE_DISKFULL_POLICY"
	envFullHuge   = "SNGATE_QUEUE_DISKFULL_HUGE" // "1": TestDiskFullHuge's child

	fullLimit     = 1 << 20 // RLIMIT_FSIZE of the child: a 1 MiB "disk"
	fullRecords   = 20_000  // 100-byte payloads: about three times what fits
	hugeIndex     = 3000    // TestDiskFullHuge: this record is larger than the file can be
	phase2Records = 2000
	phase2Base    = 1_000_000 // index of phase 2's first record
)

// fullResult is what TestDiskFullHelper reports on its last stdout line.
type fullResult struct {
	Outcomes string // per record i: 'o' ok, 'r' refused, 'f' failed
	Errors   []string
	Stats    Stats
	CloseErr string
	// phase 2 (not with huge): remove the oldest half, append phase2Records
	Present               []uint64 // indexes in the file after phase 1
	Removed, RemoveErrors int
	Phase2                string
	Stats2                Stats
	Released, Restored    int // reserve releases and restores logged
	Errors2               []string
}

// TestDiskFullHelper is the child of TestDiskFull. With a file size limit
// (RLIMIT_FSIZE) and SIGXFSZ ignored, writes past the limit fail with EFBIG
// like writes to a full disk fail with ENOSPC. It appends far past "full",
// 256 appends in flight, then reports every outcome and the stats.
func TestDiskFullHelper(t *testing.T) {
	path := os.Getenv(envFullPath)
	if path == "" {
		t.Skip("child process of TestDiskFull")
	}
	policy, err := ParsePolicy(os.Getenv(envFullPolicy))
	if err != nil {
		t.Fatal(err)
	}
	logs := &captureHandler{}
	q, err := Open(path, Options{Policy: policy, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	signal.Ignore(syscall.SIGXFSZ)
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	lim.Cur = fullLimit
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}

	var (
		mu       sync.Mutex
		outcomes = []byte(strings.Repeat("?", fullRecords))
		errs     []string
		inflow   = make(chan struct{}, 256)
		wg       sync.WaitGroup
	)
	huge := os.Getenv(envFullHuge) == "1"
	for i := range uint64(fullRecords) {
		inflow <- struct{}{}
		wg.Add(1)
		r := rec(i, 100)
		if huge && i == hugeIndex {
			r = rec(i, 2*fullLimit) // can never fit in the file
		}
		q.Append(r, func(err error) {
			mu.Lock()
			switch {
			case err == nil:
				outcomes[i] = 'o'
			case errors.Is(err, ErrRefused):
				outcomes[i] = 'r'
			default:
				outcomes[i] = 'f'
			}
			if err != nil && len(errs) < 5 {
				errs = append(errs, err.Error())
			}
			mu.Unlock()
			<-inflow
			wg.Done()
		})
	}
	wg.Wait()
	if policy == RefuseNew && !huge {
		// Squeeze the last free pages out of the file: one record per
		// commit (no backoff) until the disk said no many times in a row.
		// Then a commit that rewrites a few leaves cannot get the pages
		// (see reserve.go).
		q.mu.Lock()
		q.fullBackoff = 0
		q.fullUntil.Store(0)
		q.mu.Unlock()
		for i, no := 0, 0; no < 20 && i < 2000; i++ {
			if r := appendWait(t, q, rec(uint64(len(outcomes)), 100)); r[0].err == nil {
				no = 0
				outcomes = append(outcomes, 'o')
			} else {
				no++
				outcomes = append(outcomes, 'r')
			}
		}
		q.mu.Lock()
		q.fullBackoff = fullBackoff
		q.mu.Unlock()
	}
	res := fullResult{Outcomes: string(outcomes), Errors: errs, Stats: q.Stats()}

	// Phase 2, the link is back: the sender removes the oldest half of the
	// full queue, then more records come.
	if !huge {
		var present []Record
		for after := uint64(0); ; {
			rs, err := q.Read(after, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) == 0 {
				break
			}
			present = append(present, rs...)
			after = rs[len(rs)-1].Seq
		}
		res.Present = indexes(present)
		remove := func(r Record) {
			wg.Add(1)
			q.Remove(r.Seq, func(err error) {
				mu.Lock()
				if err != nil {
					res.RemoveErrors++
					if len(res.Errors2) < 3 {
						res.Errors2 = append(res.Errors2, err.Error())
					}
				} else {
					res.Removed++
				}
				mu.Unlock()
				wg.Done()
			})
		}
		// First ten acknowledgements out of order, one in every hundred
		// records: one commit that rewrites ten leaves, more pages than a
		// squeezed file has free.
		scattered := map[uint64]bool{}
		for k := 0; k < 1000 && k < len(present)/2; k += 100 {
			scattered[present[k].Seq] = true
			remove(present[k])
		}
		wg.Wait()
		for _, r := range present[:len(present)/2] {
			if !scattered[r.Seq] {
				remove(r)
			}
		}
		wg.Wait()
		more := []byte(strings.Repeat("?", phase2Records))
		for i := range uint64(phase2Records) {
			inflow <- struct{}{}
			wg.Add(1)
			q.Append(rec(phase2Base+i, 100), func(err error) {
				mu.Lock()
				switch {
				case err == nil:
					more[i] = 'o'
				case errors.Is(err, ErrRefused):
					more[i] = 'r'
				default:
					more[i] = 'f'
				}
				if err != nil && len(res.Errors2) < 3 {
					res.Errors2 = append(res.Errors2, err.Error())
				}
				mu.Unlock()
				<-inflow
				wg.Done()
			})
		}
		wg.Wait()
		res.Phase2 = string(more)
		res.Stats2 = q.Stats()
		res.Released = logs.count(slog.LevelWarn, "released the space reserve")
		res.Restored = logs.count(slog.LevelInfo, "reserve restored")
	}
	if err := q.Close(); err != nil {
		res.CloseErr = err.Error()
	}
	b, _ := json.Marshal(res)
	fmt.Printf("RESULT %s\n", b)
}

// TestDiskFull runs TestDiskFullHelper under each policy and checks that
// the child did not crash or wedge, that the limit was really hit, and what
// the file holds afterwards: with drop-oldest the newest records (a tail of
// those acknowledged), with refuse-new the oldest (exactly those
// acknowledged) and refusals for the rest.
func TestDiskFull(t *testing.T) {
	for _, policy := range []Policy{DropOldest, RefuseNew} {
		t.Run(policy.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "full.db")
			res := runFullChild(t, path, envFullPolicy+"="+policy.String())
			st := res.Stats
			t.Logf("stats %+v; first errors %q", st, res.Errors)
			if res.CloseErr != "" {
				t.Fatalf("close: %s", res.CloseErr)
			}
			if fi, err := os.Stat(path); err != nil || fi.Size() > fullLimit {
				t.Fatalf("file: %v, %v", fi, err)
			}
			if st.WriteErrors == 0 {
				t.Fatal("no failed commit: the limit was never hit")
			}
			var ok []uint64
			count := map[byte]int{}
			for i, c := range []byte(res.Outcomes) {
				count[c]++
				if c == 'o' {
					ok = append(ok, uint64(i))
				}
			}
			got := res.Present // after phase 1
			if count['?'] > 0 || len(got) == 0 || int64(len(got)) != st.Messages {
				t.Fatalf("%d appends never reported; %d records present, stats say %d", count['?'], len(got), st.Messages)
			}
			t.Logf("%d ok, %d refused, %d failed; %d records kept, %d..%d", count['o'], count['r'], count['f'], len(got), got[0], got[len(got)-1])

			switch policy {
			case DropOldest:
				if st.DroppedOldest == 0 || count['r'] > 0 || st.Refused > 0 {
					t.Fatalf("drop-oldest: dropped %d, refused %d", st.DroppedOldest, count['r'])
				}
				// Giving up is for a disk that fails every write, not this one.
				if count['f'] > 0 || st.Failed > 0 {
					t.Fatalf("drop-oldest: %d appends failed: %q", count['f'], res.Errors)
				}
				// Kept: a tail of the acknowledged records, newest included.
				if got[len(got)-1] != uint64(len(res.Outcomes)-1) {
					t.Fatalf("newest record %d missing (last kept %d)", len(res.Outcomes)-1, got[len(got)-1])
				}
				tail := ok[len(ok)-len(got):]
				if fmt.Sprint(tail) != fmt.Sprint(got) {
					t.Fatal("records kept are not the newest acknowledged ones")
				}
				if uint64(len(ok))-uint64(len(got)) != st.DroppedOldest {
					t.Fatalf("%d acked, %d kept, but %d counted dropped", len(ok), len(got), st.DroppedOldest)
				}
			case RefuseNew:
				if st.DroppedOldest != 0 || count['r'] == 0 || uint64(count['r']) != st.Refused || count['f'] > 0 {
					t.Fatalf("refuse-new: dropped %d, refused %d (stats %d), failed %d", st.DroppedOldest, count['r'], st.Refused, count['f'])
				}
				// The oldest are kept: every record up to the first refusal.
				// After it, a small batch can still fit in pages left in the
				// file now and then, but the disk stays full.
				first := strings.IndexByte(res.Outcomes, 'r')
				okAfter := strings.Count(res.Outcomes[first:], "o")
				t.Logf("refuse-new: first refusal at %d, %d accepted after it", first, okAfter)
				if first < 1000 || strings.Count(res.Outcomes[:first], "o") != first || okAfter > (len(res.Outcomes)-first)/10 {
					t.Fatalf("refuse-new: first refusal at %d, %d accepted after it", first, okAfter)
				}
				if fmt.Sprint(ok) != fmt.Sprint(got) {
					t.Fatal("refuse-new: records kept differ from those acknowledged")
				}
			}

			// Phase 2, on the full file: every Remove works, and then there is
			// room for new records again (for refuse-new too: the reserve).
			t.Logf("phase 2: %d removed, %d remove errors, appends %d ok %d refused %d failed; reserve released %d, restored %d times; stats %+v",
				res.Removed, res.RemoveErrors, strings.Count(res.Phase2, "o"), strings.Count(res.Phase2, "r"),
				strings.Count(res.Phase2, "f"), res.Released, res.Restored, res.Stats2)
			if res.Released != res.Restored {
				t.Fatalf("reserve released %d times, restored %d", res.Released, res.Restored)
			}
			// refuse-new squeezed the file: its scattered Removes could not
			// commit before the reserve was released.
			if policy == RefuseNew && res.Released == 0 {
				t.Fatal("refuse-new: the reserve was never released")
			}
			if res.RemoveErrors > 0 || res.Removed != len(got)/2 {
				t.Fatalf("phase 2: %d removes failed: %q", res.RemoveErrors, res.Errors2)
			}
			if n := strings.Count(res.Phase2, "o"); n != phase2Records {
				t.Fatalf("phase 2: only %d of %d appends after the removes queued: %q", n, phase2Records, res.Errors2)
			}
			want := got[len(got)/2:]
			for i := range uint64(phase2Records) {
				want = append(want, phase2Base+i)
			}
			q := openAt(t, path, Options{})
			final := indexes(readAll(t, q))
			if fmt.Sprint(final) != fmt.Sprint(want) {
				t.Fatalf("after phase 2 the file holds %d records, want %d (the newer half and phase 2's)", len(final), len(want))
			}
			if qs := q.Stats(); qs.Messages != int64(len(final)) || qs.Messages != res.Stats2.Messages {
				t.Fatalf("reopened stats %+v, %d records read, child said %d", qs, len(final), res.Stats2.Messages)
			}
		})
	}
}

// runFullChild runs TestDiskFullHelper on path with env and returns its
// result; the child must exit normally.
func runFullChild(t *testing.T, path string, env ...string) *fullResult {
	t.Helper()
	cmd, sc, stderr := runChild(t, "TestDiskFullHelper", append(env, envFullPath+"="+path)...)
	watchdog := time.AfterFunc(2*time.Minute, func() { _ = cmd.Process.Kill() })
	defer watchdog.Stop()
	var res *fullResult
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), "RESULT "); ok {
			res = new(fullResult)
			if err := json.Unmarshal([]byte(line), res); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := cmd.Wait(); err != nil || res == nil {
		t.Fatalf("child: %v (result %v)\nstderr:\n%s", err, res != nil, stderr)
	}
	if stderr.Len() > 0 {
		t.Logf("child's stderr:\n%s", stderr)
	}
	return res
}

// TestDiskFullHuge: with drop-oldest, a record that cannot fit even in an
// empty file fails after a bounded number of commits (drop-oldest empties
// the queue trying), and the queue goes on: the records after it are
// queued.
func TestDiskFullHuge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "full.db")
	res := runFullChild(t, path, envFullPolicy+"=drop-oldest", envFullHuge+"=1")
	st := res.Stats
	t.Logf("stats %+v; first errors %q", st, res.Errors)
	if res.Outcomes[hugeIndex] != 'f' || st.Failed != 1 || strings.Count(res.Outcomes, "f") != 1 {
		t.Fatalf("huge record: %c, %d failed in all", res.Outcomes[hugeIndex], strings.Count(res.Outcomes, "f"))
	}
	if !strings.Contains(res.Errors[0], "failed commits") || errors.Is(errors.New(res.Errors[0]), ErrRefused) {
		t.Fatalf("huge record's error: %s", res.Errors[0])
	}
	if n := strings.Count(res.Outcomes[hugeIndex+1:], "o"); n != fullRecords-hugeIndex-1 {
		t.Fatalf("only %d of the %d records after the huge one queued", n, fullRecords-hugeIndex-1)
	}
	// Bounded: each failed commit had at most 256 appends (the child's
	// window); the huge record alone may cost maxAttempts commits plus
	// maxAttempts make-room commits per attempt.
	if st.WriteErrors > 200 {
		t.Fatalf("%d failed commits", st.WriteErrors)
	}
	q := openAt(t, path, Options{})
	got := indexes(readAll(t, q))
	if len(got) == 0 || got[len(got)-1] != fullRecords-1 {
		t.Fatalf("newest record missing: %d kept", len(got))
	}
}
