package serial

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.bug.st/serial"
	"go.bug.st/serial/enumerator"
	"golang.org/x/sys/unix"

	"github.com/sngate/sngate/hw/serial/serialtest"
)

// fast makes outages short: the tests wait for events, never for time.
var fast = Options{MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond}

func openPort(t *testing.T, opts Options, cfg Config) (*Port, *logRecorder) {
	t.Helper()
	rec := &logRecorder{}
	p, err := opts.Open(context.Background(), cfg, slog.New(rec))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, rec
}

// openEnd opens the far end of a pair as a plain non-blocking file.
func openEnd(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOCTTY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// termios2 reads the line settings of p's tty, speeds included.
func termios2(t *testing.T, p *Port) *unix.Termios {
	t.Helper()
	p.mu.Lock()
	c := p.cur
	p.mu.Unlock()
	if c == nil {
		t.Fatal("port is down")
	}
	rc, err := c.f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var tio *unix.Termios
	var ioErr error
	if err := rc.Control(func(fd uintptr) { tio, ioErr = unix.IoctlGetTermios(int(fd), unix.TCGETS2) }); err != nil {
		t.Fatal(err)
	}
	if ioErr != nil {
		t.Fatal(ioErr)
	}
	return tio
}

// The line settings reach the tty. A pty keeps the speed, stop bits,
// flow control and the parity kind (PARODD, CMSPAR) but forces CS8 and
// clears PARENB whatever is asked (pty_set_termios in drivers/tty/pty.c),
// so data bits and parity-on are checked in the mode handed to
// go.bug.st/serial instead.
func TestOpenAppliesSettings(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    Config
		bits   int
		parity serial.Parity
		kind   uint32 // PARODD|CMSPAR as the pty keeps them
		stop2  bool
	}{
		{"defaults 9600 8N1", Config{}, 8, serial.NoParity, 0, false},
		{"115200 7E2 rtscts", Config{Baud: 115200, DataBits: 7, Parity: "even", StopBits: "2", RTSCTS: true}, 7, serial.EvenParity, 0, true},
		{"250000 (non-standard) 8O1", Config{Baud: 250000, Parity: "odd"}, 8, serial.OddParity, unix.PARODD, false},
		{"57600 5 mark", Config{Baud: 57600, DataBits: 5, Parity: "mark"}, 5, serial.MarkParity, unix.PARODD | unix.CMSPAR, false},
		{"1200 6 space rtscts", Config{Baud: 1200, DataBits: 6, Parity: "space", RTSCTS: true}, 6, serial.SpaceParity, unix.CMSPAR, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pair := serialtest.NewPair(t)
			cfg := tc.cfg
			cfg.Path = pair.A
			p, _ := openPort(t, Options{}, cfg)
			want := cfg.withDefaults()
			if m := want.mode(); m.DataBits != tc.bits || m.Parity != tc.parity {
				t.Errorf("mode %+v, want %d bits, parity %v", m, tc.bits, tc.parity)
			}
			tio := termios2(t, p)
			if tio.Ispeed != uint32(want.Baud) || tio.Ospeed != uint32(want.Baud) {
				t.Errorf("speed %d/%d, want %d", tio.Ispeed, tio.Ospeed, want.Baud)
			}
			if got := tio.Cflag & (unix.PARODD | unix.CMSPAR); got != tc.kind {
				t.Errorf("parity kind bits %#o, want %#o", got, tc.kind)
			}
			if got := tio.Cflag&unix.CSTOPB != 0; got != tc.stop2 {
				t.Errorf("CSTOPB %v, want %v", got, tc.stop2)
			}
			if got := tio.Cflag&unix.CRTSCTS != 0; got != cfg.RTSCTS {
				t.Errorf("CRTSCTS %v, want %v", got, cfg.RTSCTS)
			}
			// Raw: no line editing, echo, signals, translation or
			// software flow control, and a read returns any byte.
			if tio.Lflag&(unix.ICANON|unix.ECHO|unix.ISIG|unix.IEXTEN) != 0 ||
				tio.Iflag&(unix.IXON|unix.IXOFF|unix.ICRNL|unix.INLCR|unix.ISTRIP) != 0 ||
				tio.Oflag&unix.OPOST != 0 || tio.Cflag&(unix.CREAD|unix.CLOCAL) != unix.CREAD|unix.CLOCAL ||
				tio.Cc[unix.VMIN] != 1 || tio.Cc[unix.VTIME] != 0 {
				t.Errorf("not raw: %+v", tio)
			}
			if s := p.String(); s != pair.A {
				t.Errorf("String() = %q", s)
			}
		})
	}
}

func TestBytesBothWays(t *testing.T) {
	pair := serialtest.NewPair(t)
	p, _ := openPort(t, Options{}, Config{Path: pair.A, Baud: 115200})
	b := openEnd(t, pair.B)

	// Every byte value, both ways: the line is raw.
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	if n, err := p.Write(all); n != len(all) || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if got := readFull(t, b, len(all)); !bytes.Equal(got, all) {
		t.Fatalf("B read %x", got)
	}
	if _, err := b.Write(all); err != nil {
		t.Fatal(err)
	}
	if got := readPort(t, p, len(all)); !bytes.Equal(got, all) {
		t.Fatalf("port read %x", got)
	}
	// An idle line reads as a gap: (0, nil) after the read timeout.
	if n, err := p.Read(make([]byte, 16)); n != 0 || err != nil {
		t.Fatalf("idle Read = %d, %v", n, err)
	}
	if st := p.State(); !st.Up || st.Device != pair.A || st.Outages != 0 || st.LastError != nil {
		t.Fatalf("state %+v", st)
	}
}

// Unplugging fails writes fast and logs once; replugging brings reads and
// writes back without the caller doing anything, and a reader blocked
// across the outage carries on.
func TestUnplugReplug(t *testing.T) {
	pair := serialtest.NewPair(t)
	p, rec := openPort(t, fast, Config{Path: pair.A})
	reopened := p.Reopened()

	type result struct {
		n   int
		err error
		b   []byte
	}
	reads := make(chan result, 100)
	go func() {
		buf := make([]byte, 64)
		for {
			n, err := p.Read(buf)
			reads <- result{n, err, bytes.Clone(buf[:n])}
			if err != nil {
				return
			}
		}
	}()

	pair.Unplug()
	// The first write after the unplug meets the hung-up tty; the port is
	// lost and every write fails with ErrPortDown until it is back.
	for i := range 5 {
		if n, err := p.Write([]byte("lost")); n != 0 || !errors.Is(err, ErrPortDown) {
			t.Fatalf("write %d during the outage = %d, %v", i, n, err)
		}
	}
	// Let it fail to reopen a few times: still one log line.
	eventually(t, "retrying", func() bool { return p.State().Attempts >= 3 })
	st := p.State()
	if st.Up || st.Outages != 1 || st.Reopens != 0 || !errors.Is(st.LastError, fs.ErrNotExist) {
		t.Fatalf("state during the outage %+v", st)
	}
	if got := rec.messages(); strings.Join(got, "|") != "serial port open|serial port lost" {
		t.Fatalf("log during the outage %q", got)
	}
	select {
	case <-reopened:
		t.Fatal("Reopened closed during the outage")
	default:
	}

	pair.Replug()
	select {
	case <-reopened:
	case <-time.After(bound):
		t.Fatalf("not back after %v: %+v", bound, p.State())
	}
	if got := rec.messages(); strings.Join(got, "|") != "serial port open|serial port lost|serial port back" {
		t.Fatalf("log %q", got)
	}
	if v, ok := rec.attr("serial port back", "down_for"); !ok || v.Kind() != slog.KindDuration || v.Duration() <= 0 {
		t.Fatalf("down_for = %v, %v", v, ok)
	}
	if v, ok := rec.attr("serial port lost", "err"); !ok || v.String() == "" {
		t.Fatalf("lost without err: %v", v)
	}
	st = p.State()
	if !st.Up || st.Outages != 1 || st.Reopens != 1 || st.Attempts != 0 {
		t.Fatalf("state after %+v", st)
	}
	if p.Reopened() == reopened {
		t.Fatal("Reopened did not start a new channel")
	}

	// Both ways again, on the new ptys.
	b := openEnd(t, pair.B)
	if _, err := p.Write([]byte("back")); err != nil {
		t.Fatal(err)
	}
	if got := readFull(t, b, 4); string(got) != "back" {
		t.Fatalf("B read %q", got)
	}
	if _, err := b.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	// The reader saw only gaps (among them the one marking the outage)
	// and no error, then the new data.
	var got []byte
	for deadline := time.After(bound); len(got) < 5; {
		select {
		case r := <-reads:
			if r.err != nil {
				t.Fatalf("reader: %v", r.err)
			}
			got = append(got, r.b...)
		case <-deadline:
			t.Fatalf("reader got %q", got)
		}
	}
	if string(got) != "hello" {
		t.Fatalf("reader got %q", got)
	}

	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for r := range reads {
		if r.err != nil {
			if !errors.Is(r.err, ErrClosed) {
				t.Fatalf("reader ended with %v", r.err)
			}
			break
		}
	}
	noPortGoroutines(t)
}

// A failed read (not a write) notices the outage too.
func TestReaderNoticesUnplug(t *testing.T) {
	pair := serialtest.NewPair(t)
	p, rec := openPort(t, fast, Config{Path: pair.A})
	pair.Unplug()
	// Reads return gaps until one meets the hangup, then block; so read
	// in the background and wait for the state.
	done := make(chan error, 1)
	go func() {
		for {
			if _, err := p.Read(make([]byte, 8)); err != nil {
				done <- err
				return
			}
		}
	}()
	eventually(t, "down", func() bool { return !p.State().Up })
	if _, err := p.Write([]byte("x")); !errors.Is(err, ErrPortDown) {
		t.Fatalf("Write = %v", err)
	}
	pair.Replug()
	eventually(t, "back", func() bool { return p.State().Up })
	p.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("reader ended with %v", err)
	}
	if got := rec.messages(); strings.Join(got, "|") != "serial port open|serial port lost|serial port back" {
		t.Fatalf("log %q", got)
	}
	noPortGoroutines(t)
}

// Close during an outage returns (no reopening loop to wait out), ends a
// Read blocked across the outage, and later calls fail with ErrClosed.
func TestCloseDuringOutage(t *testing.T) {
	pair := serialtest.NewPair(t)
	// A long backoff: Close must not wait for it.
	p, _ := openPort(t, Options{MinBackoff: time.Hour, MaxBackoff: time.Hour}, Config{Path: pair.A})
	pair.Unplug()
	if _, err := p.Write([]byte("x")); !errors.Is(err, ErrPortDown) {
		t.Fatalf("Write = %v", err)
	}
	readErr := make(chan error, 1)
	go func() {
		for {
			if _, err := p.Read(make([]byte, 8)); err != nil {
				readErr <- err
				return
			}
		}
	}()
	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(bound):
		t.Fatal("Close hangs during an outage")
	}
	select {
	case err := <-readErr:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Read = %v", err)
		}
	case <-time.After(bound):
		t.Fatal("Read still blocked after Close")
	}
	if _, err := p.Write([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Close = %v", err)
	}
	if _, err := p.Read(make([]byte, 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Read after Close = %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	noPortGoroutines(t)
}

// Close while up ends a blocked Read.
func TestCloseWhileReading(t *testing.T) {
	pair := serialtest.NewPair(t)
	p, _ := openPort(t, Options{ReadTimeout: time.Hour}, Config{Path: pair.A})
	readErr := make(chan error, 1)
	go func() {
		_, err := p.Read(make([]byte, 8))
		readErr <- err
	}()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-readErr:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Read = %v", err)
		}
	case <-time.After(bound):
		t.Fatal("Read still blocked after Close")
	}
	noPortGoroutines(t)
}

// A line that does not take data (here: nobody reads the far end, so the
// pty buffers fill up) fails the write after WriteTimeout instead of
// hanging, and the port stays up.
func TestWriteTimeout(t *testing.T) {
	pair := serialtest.NewPair(t)
	p, rec := openPort(t, Options{WriteTimeout: 50 * time.Millisecond}, Config{Path: pair.A})
	big := make([]byte, 1<<20)
	var err error
	var sent int
	for range 64 { // bounded: 64 MiB cannot fit in pty and socat buffers
		var n int
		n, err = p.Write(big)
		sent += n
		if err != nil {
			break
		}
	}
	if !errors.Is(err, ErrWriteTimeout) {
		t.Fatalf("Write after %d bytes = %v", sent, err)
	}
	if st := p.State(); !st.Up || st.Outages != 0 {
		t.Fatalf("state %+v", st)
	}
	if got := rec.messages(); len(got) != 1 {
		t.Fatalf("log %q", got)
	}
}

func TestOpenMissingPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ttyUSB9")
	_, err := Open(context.Background(), Config{Path: path}, nil)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "no such serial port") {
		t.Fatalf("got %v", err)
	}
}

func TestOpenNotATTY(t *testing.T) {
	_, err := Open(context.Background(), Config{Path: "/dev/null"}, nil)
	if err == nil || !strings.Contains(err.Error(), "/dev/null is not a serial port") {
		t.Fatalf("got %v", err)
	}
}

func TestOpenInvalidConfig(t *testing.T) {
	_, err := Open(context.Background(), Config{Path: "/dev/ttyS0", DataBits: 9}, nil)
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field() != "data_bits" {
		t.Fatalf("got %v", err)
	}
}

func TestOpenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Open(ctx, Config{Path: "/dev/ttyS0"}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}

// A USB match resolves through the (faked) enumerator at Open and again at
// each reopening; while the adapter is not listed, reopening keeps trying.
func TestUSBMatchReopens(t *testing.T) {
	pair := serialtest.NewPair(t)
	listed := make(chan []*enumerator.PortDetails, 1)
	listed <- []*enumerator.PortDetails{{Name: "/dev/ttyS0"}, usbPort(pair.A, "0403", "6015", "A1")}
	list := func() ([]*enumerator.PortDetails, error) {
		l := <-listed
		listed <- l
		return l, nil
	}
	opts := fast
	opts.ListPorts = list
	p, rec := openPort(t, opts, Config{USB: &USBMatch{VID: "0403", PID: "6015"}})
	if s := p.String(); s != pair.A+" (USB 0403:6015)" {
		t.Fatalf("String() = %q", s)
	}
	<-listed
	listed <- nil // unplugged: not listed any more
	pair.Unplug()
	if _, err := p.Write([]byte("x")); !errors.Is(err, ErrPortDown) {
		t.Fatalf("Write = %v", err)
	}
	eventually(t, "retrying", func() bool { return errors.Is(p.State().LastError, ErrNoDevice) })
	pair.Replug()
	<-listed
	listed <- []*enumerator.PortDetails{usbPort(pair.A, "0403", "6015", "A1")}
	select {
	case <-p.Reopened():
	case <-time.After(bound):
		t.Fatalf("not back: %+v", p.State())
	}
	if _, err := p.Write([]byte("ok")); err != nil {
		t.Fatal(err)
	}
	if got := readFull(t, openEnd(t, pair.B), 2); string(got) != "ok" {
		t.Fatalf("B read %q", got)
	}
	if got := rec.messages(); strings.Join(got, "|") != "serial port open|serial port lost|serial port back" {
		t.Fatalf("log %q", got)
	}
}

// go.bug.st/serial's own Read would panic here (select(2) with a fixed
// fd_set, index out of range for descriptor 1024 and up); Port's I/O goes
// through the runtime poller and does not care.
func TestHighFileDescriptors(t *testing.T) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil || lim.Cur < 1200 {
		t.Skipf("open file limit too low to test (%d, %v)", lim.Cur, err)
	}
	for range 1100 {
		f, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		if f.Fd() > 1100 { // Fd is harmless on /dev/null
			break
		}
	}
	pair := serialtest.NewPair(t)
	p, _ := openPort(t, Options{}, Config{Path: pair.A})
	rc, err := p.cur.f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var fd uintptr
	rc.Control(func(d uintptr) { fd = d })
	if fd < 1024 {
		t.Fatalf("the port's descriptor is %d; the test wants one ≥ 1024", fd)
	}
	b := openEnd(t, pair.B)
	if n, err := p.Read(make([]byte, 8)); n != 0 || err != nil {
		t.Fatalf("idle Read = %d, %v", n, err)
	}
	if _, err := b.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	if got := readPort(t, p, 2); string(got) != "hi" {
		t.Fatalf("read %q", got)
	}
}
