package serialtest

import (
	"bytes"
	"errors"
	"io"
	"os"
	"syscall"
	"testing"
	"time"
)

func openEnd(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOCTTY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func transfer(t *testing.T, from, to *os.File, msg string) {
	t.Helper()
	if _, err := from.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	to.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(to, got); err != nil || !bytes.Equal(got, []byte(msg)) {
		t.Fatalf("read %q, %v; want %q", got, err, msg)
	}
}

// The pair carries bytes both ways; unplugged, its ends hang up and its
// links go; replugged, the same paths lead to a working pair again.
func TestPair(t *testing.T) {
	p := NewPair(t)
	a, b := openEnd(t, p.A), openEnd(t, p.B)
	transfer(t, a, b, "ping")
	transfer(t, b, a, "pong")

	p.Unplug()
	if _, err := a.Write([]byte("x")); !errors.Is(err, syscall.EIO) {
		t.Fatalf("write to an unplugged end: %v", err)
	}
	for _, l := range []string{p.A, p.B} {
		if _, err := os.Lstat(l); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s after Unplug: %v", l, err)
		}
	}
	p.Unplug() // twice is fine

	p.Replug()
	p.Replug() // twice is fine
	a, b = openEnd(t, p.A), openEnd(t, p.B)
	transfer(t, a, b, "again")

	p.Restart()
	a, b = openEnd(t, p.A), openEnd(t, p.B)
	transfer(t, b, a, "and again")
}
