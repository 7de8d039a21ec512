package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/broker/brokertest"
)

// TestRunNotifiesSystemd: under systemd (Type=notify, WatchdogSec=) sngate
// says READY=1 once it serves, feeds the watchdog while healthy, and says
// STOPPING=1 when it stops.
func TestRunNotifiesSystemd(t *testing.T) {
	sd := listenNotify(t, 200*time.Millisecond) // fed every 100ms
	_, stop := startRun(t, "run", "-c", anyPortConfig(t, "data_dir: "+t.TempDir()+"\n"))
	sd.expect(t, "READY=1")
	sd.expect(t, "WATCHDOG=1")
	sd.expect(t, "WATCHDOG=1")
	if code := stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	sd.expect(t, "STOPPING=1")
}

// notifySocket is the socket systemd is notified on.
type notifySocket struct{ conn *net.UnixConn }

// listenNotify plays systemd for the test: a notify socket in
// $NOTIFY_SOCKET, and a watchdog of interval in $WATCHDOG_USEC.
func listenNotify(t *testing.T, interval time.Duration) notifySocket {
	t.Helper()
	dir, err := os.MkdirTemp("", "sn") // a socket path must be short
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	t.Setenv("WATCHDOG_USEC", strconv.FormatInt(interval.Microseconds(), 10))
	return notifySocket{conn}
}

// read returns the next notification, or false after wait.
func (s notifySocket) read(wait time.Duration) (string, bool) {
	_ = s.conn.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 1024)
	n, err := s.conn.Read(buf)
	if err != nil {
		return "", false
	}
	return string(buf[:n]), true
}

// expect reads notifications until one contains want, for up to 10s.
func (s notifySocket) expect(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, ok := s.read(time.Until(deadline))
		if !ok {
			t.Fatalf("systemd was not told %q", want)
		}
		if strings.Contains(m, want) {
			return
		}
	}
}

// TestWatchdogWithheldWhileUnhealthy: watchdog feeds systemd while the
// health check passes and sends no WATCHDOG=1 once it fails, so that
// systemd restarts a wedged sngate.
func TestWatchdogWithheldWhileUnhealthy(t *testing.T) {
	const interval = 100 * time.Millisecond // fed every 50ms
	sd := listenNotify(t, interval)
	h := testHealth(t)
	var logs syncBuffer
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		watchdog(ctx, h, slog.New(slog.NewTextHandler(&logs, nil)))
	}()
	defer func() { cancel(); <-done }()

	for range 2 {
		if m, ok := sd.read(10 * time.Second); !ok || m != "WATCHDOG=1" {
			t.Fatalf("healthy: systemd was told %q (%v), want WATCHDOG=1", m, ok)
		}
	}
	h.loopEnded(errors.New("udp: socket closed"))
	waitFor(t, &logs, "not feeding the systemd watchdog")
	// What was sent before the failed check is queued already: drain it.
	for {
		if _, ok := sd.read(10 * time.Millisecond); !ok {
			break
		}
	}
	if m, ok := sd.read(10 * interval); ok {
		t.Fatalf("unhealthy: systemd was told %q, want nothing", m)
	}
	if out := logs.String(); !strings.Contains(out, "udp: socket closed") {
		t.Errorf("the failure log line does not name the cause:\n%s", out)
	}
}

// testHealth returns a health check on a broker of its own, closed when
// the test ends.
func testHealth(t *testing.T) *health {
	t.Helper()
	srv, _ := brokertest.NewServer(t, broker.Config{}, broker.Options{})
	h, err := newHealth(srv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.close)
	return h
}

// TestHealth: the probe passes through a working broker and fails once a
// serve loop has ended, which stops the watchdog feeding.
func TestHealth(t *testing.T) {
	h := testHealth(t)
	for range 3 {
		if err := h.check(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	h.loopEnded(errors.New("udp: socket closed"))
	if err := h.check(t.Context()); err == nil || !strings.Contains(err.Error(), "udp: socket closed") {
		t.Fatalf("check after a dead loop = %v", err)
	}
}

// TestHealthConcurrentChecks: the watchdog and /healthz probe at the same
// time; each check must get its own answer, not time out because the other
// took it.
func TestHealthConcurrentChecks(t *testing.T) {
	h := testHealth(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				if err := h.check(t.Context()); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
