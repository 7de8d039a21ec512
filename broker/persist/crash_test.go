package persist

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sngate/sngate/internal/storage"
)

const helperEnvDir = "SNGATE_PERSIST_CRASH_DIR"

func crashPayload(seq uint64) []byte {
	return fmt.Appendf(nil, "payload-%d-%s", seq, bytes.Repeat([]byte{'x'}, int(seq%64)))
}

// TestHelperProcess is the child of TestCrashKill9: four publishers enqueue
// numbered messages for session "crash" (and dequeue every fifth one again
// in the same unit as the next enqueue), printing each enqueued seq as soon
// as Apply's done(nil) fires, until the parent kills it.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(helperEnvDir)
	if dir == "" {
		t.Skip("child process of TestCrashKill9")
	}
	start, _ := strconv.ParseUint(os.Getenv("SNGATE_PERSIST_CRASH_START"), 10, 64)
	s, err := Open(dir, storage.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper: open:", err)
		os.Exit(2)
	}
	var (
		next   atomic.Uint64
		outMu  sync.Mutex
		inflow = make(chan struct{}, 128)
	)
	next.Store(start)
	ack := func(seq uint64) func(error) {
		return func(err error) {
			if err != nil {
				fmt.Fprintln(os.Stderr, "helper: apply", seq, "failed:", err)
				os.Exit(3)
			}
			outMu.Lock()
			fmt.Fprintf(os.Stdout, "%d\n", seq)
			outMu.Unlock()
			<-inflow
		}
	}
	inflow <- struct{}{}
	s.Apply([]Op{PutSession(Session{ClientID: "crash", Subscriptions: []Subscription{{"crash/#", 1}}})}, func(err error) {
		if err != nil {
			os.Exit(3)
		}
		<-inflow
	})
	for range 4 {
		go func() {
			for {
				inflow <- struct{}{}
				seq := next.Add(1)
				ops := []Op{Enqueue("crash", Queued{Seq: seq, Msg: Message{Topic: "crash/t", Payload: crashPayload(seq), QoS: 1}})}
				if seq%5 == 0 {
					// the "delivered" one is removed in the same unit: it must
					// vanish together with the enqueue being acknowledged
					ops = append(ops, Dequeue("crash", seq))
				}
				s.Apply(ops, ack(seq))
			}
		}()
	}
	time.Sleep(15 * time.Second)
	os.Exit(4)
}

func TestCrashKill9(t *testing.T) {
	dir := t.TempDir()
	acked := map[uint64]bool{}
	for round := range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), helperEnvDir+"="+dir,
			"SNGATE_PERSIST_CRASH_START="+strconv.Itoa(round*1_000_000))
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
		n := 0
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			seq, err := strconv.ParseUint(sc.Text(), 10, 64)
			if err != nil {
				continue
			}
			acked[seq] = true
			if n++; n == 300 {
				_ = cmd.Process.Signal(syscall.SIGKILL) // keep reading what it printed before dying
			}
		}
		werr := cmd.Wait()
		watchdog.Stop()
		var ee *exec.ExitError
		if !errors.As(werr, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL || n < 300 {
			t.Fatalf("round %d: child ended with %v after %d acks\nstderr:\n%s", round, werr, n, stderr.String())
		}

		s, err := Open(dir, storage.Options{})
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		st, err := s.Load()
		if cerr := s.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Sessions) != 1 || st.Sessions[0].Session.ClientID != "crash" {
			t.Fatalf("round %d: sessions %+v", round, st.Sessions)
		}
		stored := map[uint64][]byte{}
		for _, q := range st.Sessions[0].Queue {
			stored[q.Seq] = q.Msg.Payload
		}
		for seq := range acked {
			p, ok := stored[seq]
			switch {
			case seq%5 == 0 && ok:
				t.Fatalf("round %d: seq %d dequeued in its acked unit but present", round, seq)
			case seq%5 != 0 && !ok:
				t.Fatalf("round %d: acked seq %d lost", round, seq)
			case ok && !bytes.Equal(p, crashPayload(seq)):
				t.Fatalf("round %d: seq %d payload %q", round, seq, p)
			}
		}
		t.Logf("round %d: %d acked in total, all present; %d queued on disk", round, len(acked), len(stored))
	}
}
