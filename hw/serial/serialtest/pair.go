// Package serialtest provides two serial ports joined by a null-modem
// cable, made of ptys and socat, for tests of code that talks to a serial
// line, and a way to pull the cable out and put it back.
//
// A pty is not a UART: the baud rate is stored but does not pace the
// bytes (they move at memory speed), RTS/CTS and the modem bits do nothing
// (TIOCMGET/TIOCMSET fail with ENOTTY), and the kernel forces 8 data bits
// without parity (pty_set_termios clears CSIZE and PARENB), so tests of
// timing, flow control or parity need real hardware.
package serialtest

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// readyTimeout bounds every wait for socat; it is generous because CI
// machines stall.
const readyTimeout = 10 * time.Second

// Pair is two ptys joined by socat. A and B are the paths of the two ends
// (symbolic links socat makes to /dev/pts/N). Bytes written to one end come
// out of the other.
//
// Unplug stops socat: both ends hang up (reads see end of file, writes
// EIO) and the links go away, which is what a program holding a USB
// adapter sees when it is pulled out. Replug starts socat again with the
// same link names, which now lead to new ptys: a program that reopens the
// path is connected again.
//
// The methods must be called from the test's goroutine (they call
// t.Fatal).
type Pair struct {
	A, B string

	t   testing.TB
	cmd *exec.Cmd
	log *lineLog      // socat's stderr, for failure messages
	eof chan struct{} // closed when socat's stderr is at end (socat is gone)
}

// NewPair starts socat with a pty pair and waits (bounded) until both ends
// can be opened. It skips the test if socat is not installed. The pair is
// stopped when the test ends.
func NewPair(t testing.TB) *Pair {
	t.Helper()
	if _, err := exec.LookPath("socat"); err != nil {
		t.Skip("socat is not installed (apt-get install socat): no pty pair to test a serial line with")
	}
	dir := t.TempDir()
	p := &Pair{A: filepath.Join(dir, "a"), B: filepath.Join(dir, "b"), t: t}
	p.Replug()
	t.Cleanup(p.Stop)
	return p
}

// Unplug stops socat and waits until it is gone and both links with it.
// It does nothing if the pair is unplugged already.
func (p *Pair) Unplug() {
	p.t.Helper()
	if p.cmd == nil {
		return
	}
	// SIGTERM lets socat remove its links; SIGKILL if it does not go.
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.eof:
	case <-time.After(readyTimeout):
		_ = p.cmd.Process.Kill()
		<-p.eof // the kernel closes the pipe when the process dies
	}
	_ = p.cmd.Wait()
	p.cmd = nil
	// After a SIGKILL the links would be left pointing at ptys whose
	// numbers the kernel may give to someone else.
	for _, l := range []string{p.A, p.B} {
		if err := os.Remove(l); err != nil && !errors.Is(err, os.ErrNotExist) {
			p.t.Fatalf("serialtest: removing %s: %v", l, err)
		}
	}
}

// Replug starts socat with the same link names and waits (bounded) until
// it has set up both ptys and is passing data. It does nothing if the pair
// is plugged in.
func (p *Pair) Replug() {
	p.t.Helper()
	if p.cmd != nil {
		return
	}
	cmd := exec.Command("socat", "-d", "-d",
		"pty,raw,echo=0,link="+p.A,
		"pty,raw,echo=0,link="+p.B)
	cmd.SysProcAttr = procAttr()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		p.t.Fatalf("serialtest: %v", err)
	}
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("serialtest: starting socat: %v", err)
	}
	p.cmd, p.log, p.eof = cmd, &lineLog{}, make(chan struct{})
	ready := make(chan struct{})
	go p.log.follow(stderr, ready, p.eof)
	select {
	case <-ready:
	case <-p.eof:
		_ = cmd.Wait()
		p.cmd = nil
		p.t.Fatalf("serialtest: socat exited before it was ready:\n%s", p.log)
	case <-time.After(readyTimeout):
		p.t.Fatalf("serialtest: socat not ready after %v:\n%s", readyTimeout, p.log)
	}
	for _, l := range []string{p.A, p.B} {
		if _, err := os.Stat(l); err != nil {
			p.t.Fatalf("serialtest: socat is ready but %v:\n%s", err, p.log)
		}
	}
}

// Restart unplugs and replugs at once.
func (p *Pair) Restart() {
	p.t.Helper()
	p.Unplug()
	p.Replug()
}

// Stop stops socat for good; NewPair arranges for it to run at the end of
// the test.
func (p *Pair) Stop() {
	p.t.Helper()
	p.Unplug()
}

// lineLog collects socat's stderr.
type lineLog struct {
	mu    sync.Mutex
	lines []string
}

// follow reads r to its end, closing ready when socat says it passes data
// (after it has applied every pty option, so the ends will not be
// reconfigured under the test) and eof at the end.
func (l *lineLog) follow(r io.Reader, ready, eof chan struct{}) {
	defer close(eof)
	sc := bufio.NewScanner(r)
	signalled := false
	for sc.Scan() {
		l.mu.Lock()
		l.lines = append(l.lines, sc.Text())
		l.mu.Unlock()
		if !signalled && strings.Contains(sc.Text(), "starting data transfer loop") {
			close(ready)
			signalled = true
		}
	}
}

func (l *lineLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}
