package mqttload

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/sngate/sngate/broker/packets"
)

// IdleSet is a set of connected, idle MQTT clients. Nothing reads from
// them after CONNACK and no goroutine serves them: they cost the load
// generator only their sockets.
type IdleSet struct {
	mu    sync.Mutex
	conns []net.Conn
}

// Len returns the number of open connections.
func (s *IdleSet) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Close closes every connection.
func (s *IdleSet) Close() {
	s.mu.Lock()
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// IdleOptions configure OpenIdle.
type IdleOptions struct {
	KeepAlive time.Duration // sent in CONNECT; default 300s
	Parallel  int           // connections being opened at once; default 64
	Timeout   time.Duration // per connection: TCP connect and CONNACK; default 10s
	IDPrefix  string        // client ids are IDPrefix + index; default "idle-<pid>-"
}

// OpenIdle opens n connections to addr, each sending CONNECT (clean
// session) and waiting for CONNACK. On error the set holds the connections
// opened so far; the caller closes it in any case.
func OpenIdle(ctx context.Context, addr string, n int, opts IdleOptions) (*IdleSet, error) {
	if opts.KeepAlive <= 0 {
		opts.KeepAlive = 300 * time.Second
	}
	if opts.Parallel <= 0 {
		opts.Parallel = 64
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.IDPrefix == "" {
		opts.IDPrefix = "idle-" + strconv.Itoa(os.Getpid()) + "-"
	}
	set := &IdleSet{conns: make([]net.Conn, 0, n)}
	ka := min(opts.KeepAlive/time.Second, 65535)
	err := DialAll(ctx, n, opts.Parallel, func(i int) error {
		nc, err := idleConnect(ctx, addr, opts.IDPrefix+strconv.Itoa(i), uint16(ka), opts.Timeout)
		if err != nil {
			return fmt.Errorf("client %d: %w", i, err)
		}
		set.mu.Lock()
		set.conns = append(set.conns, nc)
		set.mu.Unlock()
		return nil
	})
	return set, err
}

func idleConnect(ctx context.Context, addr, id string, keepAlive uint16, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = nc.SetDeadline(time.Now().Add(timeout))
	connect := packets.ConnectPacket{CleanSession: true, KeepAlive: keepAlive, ClientID: id}
	if _, err := nc.Write(connect.Append(nil)); err != nil {
		nc.Close()
		return nil, err
	}
	r := packets.NewReaderSize(nc, 64, 16)
	fh, body, err := r.ReadPacket()
	if err == nil && fh.Type != packets.TypeConnack {
		err = fmt.Errorf("expected CONNACK, got %v", fh.Type)
	}
	if err == nil {
		var ca packets.ConnackPacket
		if err = ca.Decode(fh, body); err == nil && ca.ReturnCode != packets.ConnAccepted {
			err = &ConnackError{ca.ReturnCode}
		}
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	return nc, nil
}

// RSS returns the resident set size of process pid in bytes, from the
// VmRSS line of /proc/PID/status.
func RSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("/proc/%d/status: cannot read VmRSS line %q", pid, sc.Text())
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/status: VmRSS: %w", pid, err)
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("/proc/%d/status has no VmRSS line (a kernel thread or a zombie?)", pid)
}

// ErrFileLimit is wrapped by RaiseFileLimit when the limit cannot be raised
// far enough.
var ErrFileLimit = errors.New("open file limit too low")

// RaiseFileLimit makes sure this process may have need open files, raising
// the soft RLIMIT_NOFILE, and the hard one if it must and may (as root). It
// returns the limit now in force.
func RaiseFileLimit(need uint64) (syscall.Rlimit, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return lim, fmt.Errorf("getrlimit: %w", err)
	}
	if lim.Cur >= need {
		return lim, nil
	}
	want := lim
	want.Cur = need
	want.Max = max(lim.Max, need)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		return lim, fmt.Errorf("%w: need %d open files, RLIMIT_NOFILE is %d (hard %d) and cannot be raised: %v; raise it with ulimit -n or run as root",
			ErrFileLimit, need, lim.Cur, lim.Max, err)
	}
	return want, nil
}
