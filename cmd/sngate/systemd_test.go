package main

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/broker/brokertest"
)

// TestRunNotifiesSystemd: under systemd (Type=notify, WatchdogSec=) sngate
// says READY=1 once it serves, feeds the watchdog while healthy, and says
// STOPPING=1 when it stops.
func TestRunNotifiesSystemd(t *testing.T) {
	dir, err := os.MkdirTemp("", "sn") // a socket path must be short
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	t.Setenv("WATCHDOG_USEC", "200000") // 200ms: fed every 100ms

	msgs := make(chan string, 100)
	go func() {
		buf := make([]byte, 1024)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	expect := func(want string) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case m := <-msgs:
				if strings.Contains(m, want) {
					return
				}
			case <-deadline:
				t.Fatalf("systemd was not told %q", want)
			}
		}
	}
	_, stop := startRun(t, "run", "-c", anyPortConfig(t, "data_dir: "+t.TempDir()+"\n"))
	expect("READY=1")
	expect("WATCHDOG=1")
	expect("WATCHDOG=1")
	if code := stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	expect("STOPPING=1")
}

// TestHealth: the probe passes through a working broker and fails once a
// serve loop has ended, which stops the watchdog feeding.
func TestHealth(t *testing.T) {
	srv, _ := brokertest.NewServer(t, broker.Config{}, broker.Options{})
	h, err := newHealth(srv)
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()
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
