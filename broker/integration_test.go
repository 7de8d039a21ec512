//go:build unix

package broker

// Integration tests: the broker driven by the real mosquitto clients
// (mosquitto_pub, mosquitto_sub) as independent peers, over TCP, TLS and
// WebSocket. They skip when the clients are not installed.
//
// mosquitto_sub writes its debug log (-d) block-buffered when its output is
// a pipe, so the tests never wait on it: they learn that a client is
// connected or subscribed from the broker's session table instead, and read
// only the message lines, which mosquitto_sub flushes one by one.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sngate/sngate/broker/auth"
	"github.com/sngate/sngate/broker/packets"
	"github.com/sngate/sngate/internal/mosquittotest"
)

// mosqTimeout bounds every run of a mosquitto client; it is killed after.
const mosqTimeout = 20 * time.Second

// needMosquitto skips the test unless mosquitto_pub and mosquitto_sub are
// installed.
func needMosquitto(t testing.TB) {
	t.Helper()
	for _, name := range []string{"mosquitto_pub", "mosquitto_sub"} {
		if _, err := exec.LookPath(name); err != nil {
			t.Skipf("skipping: %s not found on PATH; install mosquitto-clients to run the tests against real MQTT peers (%v)", name, err)
		}
	}
}

// hostPort returns mosquitto's -h and -p arguments for a listener address.
func hostPort(t testing.TB, addr string) []string {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return []string{"-h", host, "-p", port}
}

// args joins argument lists.
func args(lists ...[]string) []string { return slices.Concat(lists...) }

// mosqResult is the outcome of a mosquitto client run to its end.
type mosqResult struct {
	cmd            string
	stdout, stderr string
	err            error // from Wait: nil for exit status 0
}

func (r mosqResult) String() string {
	return fmt.Sprintf("%s: %v\nstdout:\n%s\nstderr:\n%s", r.cmd, r.err, abbrev(r.stdout), abbrev(r.stderr))
}

// mosqRun runs a mosquitto client to its end with stdin as its input,
// failing the test if it is still running after mosqTimeout.
func mosqRun(t testing.TB, stdin string, name string, argv ...string) mosqResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), mosqTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, argv...)
	cmd.WaitDelay = time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	err := cmd.Run()
	r := mosqResult{cmd: name + " " + strings.Join(argv, " "), stdout: stdout.String(), stderr: stderr.String(), err: err}
	if ctx.Err() != nil {
		t.Fatalf("killed after %v: %v", mosqTimeout, r)
	}
	return r
}

// mosqOK runs a mosquitto client and fails the test unless it exits 0.
func mosqOK(t testing.TB, stdin string, name string, argv ...string) mosqResult {
	t.Helper()
	r := mosqRun(t, stdin, name, argv...)
	if r.err != nil {
		t.Fatalf("want success: %v", r)
	}
	return r
}

// lockedBuffer is a bytes.Buffer for a process's stderr, read while the
// process runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// proc is a process running in the background (a mosquitto client, or the
// broker child of the restart test) whose stdout lines the test reads as
// they come. It is killed when the test ends, at the latest after its
// timeout.
type proc struct {
	t      testing.TB
	desc   string
	cmd    *exec.Cmd
	cancel context.CancelFunc
	stderr lockedBuffer

	mu      sync.Mutex
	lines   []string
	changed chan struct{} // closed and replaced on every new line and at exit
	exited  bool
	err     error // Wait's result, once exited

	next int // the first line waitLine has not consumed; test goroutine only
}

// startProc starts name with argv and extra environment, bounded by timeout.
func startProc(t testing.TB, timeout time.Duration, env []string, name string, argv ...string) *proc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	cmd := exec.CommandContext(ctx, name, argv...)
	cmd.WaitDelay = time.Second
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	p := &proc{t: t, desc: name + " " + strings.Join(argv, " "), cmd: cmd, cancel: cancel, changed: make(chan struct{})}
	cmd.Stderr = &p.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", p.desc, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 4<<20) // a line per message: allow large ones
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			close(p.changed)
			p.changed = make(chan struct{})
			p.mu.Unlock()
		}
		err := cmd.Wait()
		p.mu.Lock()
		p.exited, p.err = true, err
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
	}()
	t.Cleanup(func() {
		p.cancel() // kills it if still running
		p.waitExit(5 * time.Second)
	})
	return p
}

// startMosq starts a mosquitto client in the background.
func startMosq(t testing.TB, name string, argv ...string) *proc {
	t.Helper()
	return startProc(t, mosqTimeout, nil, name, argv...)
}

func (p *proc) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	state := "running"
	if p.exited {
		state = fmt.Sprintf("exited: %v", p.err)
	}
	lines := make([]string, len(p.lines))
	for i, l := range p.lines {
		lines[i] = abbrev(l)
	}
	return fmt.Sprintf("%s (%s)\nstdout:\n%s\nstderr:\n%s", p.desc, state, strings.Join(lines, "\n"), p.stderr.String())
}

// abbrev shortens a long line for a failure message.
func abbrev(s string) string {
	if len(s) > 2000 {
		return fmt.Sprintf("%s...(%d bytes)", s[:1000], len(s))
	}
	return s
}

// waitLine returns the lines from the last one consumed up to and
// including the first one equal to want, failing the test if none comes
// within d or the process ends first.
func (p *proc) waitLine(want string, d time.Duration) []string {
	p.t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		p.mu.Lock()
		for i := p.next; i < len(p.lines); i++ {
			if p.lines[i] == want {
				got := slices.Clone(p.lines[p.next : i+1])
				p.next = i + 1
				p.mu.Unlock()
				return got
			}
		}
		exited, changed := p.exited, p.changed
		p.mu.Unlock()
		if exited {
			p.t.Fatalf("no line %q before the process ended: %v", abbrev(want), p)
		}
		select {
		case <-changed:
		case <-timer.C:
			p.t.Fatalf("no line %q within %v: %v", abbrev(want), d, p)
		}
	}
}

// waitExit waits up to d for the process to end and returns Wait's result.
func (p *proc) waitExit(d time.Duration) (error, bool) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		p.mu.Lock()
		exited, err, changed := p.exited, p.err, p.changed
		p.mu.Unlock()
		if exited {
			return err, true
		}
		select {
		case <-changed:
		case <-timer.C:
			return nil, false
		}
	}
}

// mustExit fails the test unless the process ends within d; it returns
// Wait's result.
func (p *proc) mustExit(d time.Duration) error {
	p.t.Helper()
	err, ok := p.waitExit(d)
	if !ok {
		p.t.Fatalf("still running after %v: %v", d, p)
	}
	return err
}

// output returns every stdout line so far.
func (p *proc) output() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.lines)
}

// kill sends SIGKILL: the process ends without a word to the broker, its
// socket closed by the kernel.
func (p *proc) kill() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(os.Kill); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.t.Fatalf("kill %s: %v", p.desc, err)
	}
}

// eventually polls cond until it holds, failing the test after waitTime.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTime)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// lookupSession returns the session of a client id, or nil.
func (s *Server) lookupSession(id string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[id]
}

// waitSubscribed waits until client id is connected and has filter among
// its subscriptions: the SUBSCRIBE has been processed.
func waitSubscribed(t testing.TB, s *Server, id, filter string) {
	t.Helper()
	eventually(t, fmt.Sprintf("client %q subscribed to %q", id, filter), func() bool {
		sess := s.lookupSession(id)
		if sess == nil {
			return false
		}
		sess.mu.Lock()
		defer sess.mu.Unlock()
		_, ok := sess.subs[filter]
		return ok && sess.out != nil
	})
}

// waitOffline waits until client id has no connection: its session is
// gone or detached, and its will, if any, has been routed.
func waitOffline(t testing.TB, s *Server, id string) {
	t.Helper()
	eventually(t, fmt.Sprintf("client %q gone", id), func() bool {
		sess := s.lookupSession(id)
		if sess == nil {
			return true
		}
		sess.mu.Lock()
		defer sess.mu.Unlock()
		return sess.out == nil
	})
}

// startListeners runs a broker on cfg's listeners through Start (give them
// port 0) and returns the bound addresses, in the order of the listeners.
func startListeners(t testing.TB, cfg Config, dataDir string) (*Server, []string) {
	t.Helper()
	if cfg.SysInterval == 0 {
		cfg.SysInterval = -1
	}
	s, err := New(cfg, Options{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTime)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	var addrs []string
	for _, a := range s.Addrs() {
		addrs = append(addrs, a.String())
	}
	if len(addrs) != len(cfg.Listeners) {
		t.Fatalf("Addrs() = %v for %d listeners", addrs, len(cfg.Listeners))
	}
	return s, addrs
}

// TestMosquittoRetained: a retained message reaches a later subscriber with
// the retain flag, a live subscriber gets it without, and an empty retained
// message deletes it.
func TestMosquittoRetained(t *testing.T) {
	needMosquitto(t)
	s, addr := startBroker(t, Config{}, "")
	hp := hostPort(t, addr)

	mosqOK(t, "", "mosquitto_pub", args(hp, []string{"-i", "ret-pub", "-q", "1", "-r", "-t", "ret/a", "-m", "hello"})...)
	r := mosqOK(t, "", "mosquitto_sub", args(hp, []string{"-i", "ret-sub1", "-q", "1", "-t", "ret/a", "-C", "1", "-F", "%r %q %t %p"})...)
	if got := strings.TrimSpace(r.stdout); got != "1 1 ret/a hello" {
		t.Fatalf("retained delivery %q, want %q (retain flag, QoS 1)", got, "1 1 ret/a hello")
	}

	// MQTT-3.3.1-9: a subscriber that is already there gets the message
	// with retain 0; a new one gets the stored copy with retain 1.
	live := startMosq(t, "mosquitto_sub", args(hp, []string{"-i", "ret-live", "-t", "ret/b", "-C", "1", "-F", "%r %t %p"})...)
	waitSubscribed(t, s, "ret-live", "ret/b")
	mosqOK(t, "", "mosquitto_pub", args(hp, []string{"-i", "ret-pub", "-r", "-t", "ret/b", "-m", "live"})...)
	live.waitLine("0 ret/b live", waitTime)
	if err := live.mustExit(waitTime); err != nil {
		t.Fatalf("live subscriber: %v", live)
	}
	r = mosqOK(t, "", "mosquitto_sub", args(hp, []string{"-i", "ret-sub2", "-t", "ret/b", "-C", "1", "-F", "%r %t %p"})...)
	if got := strings.TrimSpace(r.stdout); got != "1 ret/b live" {
		t.Fatalf("retained delivery %q, want %q", got, "1 ret/b live")
	}

	// MQTT-3.3.1-10, -11: an empty retained message deletes, and is not
	// itself stored.
	mosqOK(t, "", "mosquitto_pub", args(hp, []string{"-i", "ret-pub", "-q", "1", "-r", "-n", "-t", "ret/a"})...)
	r = mosqRun(t, "", "mosquitto_sub", args(hp, []string{"-i", "ret-sub3", "-t", "ret/a", "-W", "1", "-F", "%r %t %p"})...)
	if r.stdout != "" {
		t.Fatalf("after deleting the retained message a new subscriber got %q", r.stdout)
	}
	if strings.TrimSpace(r.stderr) != "Timed out" { // exit status 27
		t.Fatalf("want the subscriber to time out, having connected and got nothing: %v", r)
	}
	if n := s.Stats().Retained; n != 1 {
		t.Fatalf("Stats().Retained = %d, want 1 (ret/b only)", n)
	}

	// mosquitto_sub --remove-retained clears what it receives with empty
	// retained messages of its own.
	mosqOK(t, "", "mosquitto_pub", args(hp, []string{"-i", "ret-pub", "-r", "-t", "ret/c/d", "-m", "more"})...)
	mosqRun(t, "", "mosquitto_sub", args(hp, []string{"-i", "ret-clear", "-t", "ret/#", "--remove-retained", "--retained-only", "-W", "1"})...)
	eventually(t, "no retained messages", func() bool { return s.Stats().Retained == 0 })
}

// TestMosquittoWill: the will of a client killed with SIGKILL is published
// (retained here, as it asked), and a client that exits cleanly, sending
// DISCONNECT, leaves no will.
func TestMosquittoWill(t *testing.T) {
	needMosquitto(t)
	s, addr := startBroker(t, Config{}, "")
	hp := hostPort(t, addr)

	watch := startMosq(t, "mosquitto_sub", args(hp, []string{"-i", "will-watch", "-q", "1", "-t", "will/#", "-F", "%r %q %t %p"})...)
	waitSubscribed(t, s, "will-watch", "will/#")

	victim := startMosq(t, "mosquitto_sub", args(hp, []string{"-i", "will-victim", "-t", "victim/in",
		"--will-topic", "will/victim", "--will-payload", "victim gone", "--will-qos", "1", "--will-retain"})...)
	waitSubscribed(t, s, "will-victim", "victim/in")
	victim.kill()
	if err := victim.mustExit(waitTime); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("victim exit %v, want killed", err)
	}
	// Live delivery: retain 0 (MQTT-3.3.1-9), QoS 1 as the will asked.
	watch.waitLine("0 1 will/victim victim gone", waitTime)
	r := mosqOK(t, "", "mosquitto_sub", args(hp, []string{"-i", "will-late", "-t", "will/victim", "-C", "1", "-F", "%r %t %p"})...)
	if got := strings.TrimSpace(r.stdout); got != "1 will/victim victim gone" {
		t.Fatalf("retained will %q, want %q", got, "1 will/victim victim gone")
	}

	// A clean exit: mosquitto_sub -C 1 sends DISCONNECT after its message.
	polite := startMosq(t, "mosquitto_sub", args(hp, []string{"-i", "will-polite", "-t", "polite/in", "-C", "1",
		"--will-topic", "will/polite", "--will-payload", "polite gone"})...)
	waitSubscribed(t, s, "will-polite", "polite/in")
	mosqOK(t, "", "mosquitto_pub", args(hp, []string{"-i", "will-trigger", "-t", "polite/in", "-m", "bye"})...)
	if err := polite.mustExit(waitTime); err != nil {
		t.Fatalf("polite client: %v", polite)
	}
	// Once the broker has dropped the connection, a will would have been
	// routed already: a sentinel published now arrives after it.
	waitOffline(t, s, "will-polite")
	mosqOK(t, "", "mosquitto_pub", args(hp, []string{"-i", "will-trigger", "-t", "will/sentinel", "-m", "end"})...)
	for _, l := range watch.waitLine("0 0 will/sentinel end", waitTime) {
		if strings.Contains(l, "polite") {
			t.Fatalf("will published after a clean DISCONNECT: %q", l)
		}
	}
}

// TestMosquittoKeepAliveWill: a client that stops talking (SIGSTOP) is
// disconnected after one and a half times its keep-alive (MQTT-3.1.2-24)
// and its will published.
func TestMosquittoKeepAliveWill(t *testing.T) {
	needMosquitto(t)
	if testing.Short() {
		t.Skip("skipping in -short mode: waits 7.5s, mosquitto's shortest keep-alive and a half")
	}
	s, addr := startBroker(t, Config{}, "")
	hp := hostPort(t, addr)
	watch := startMosq(t, "mosquitto_sub", args(hp, []string{"-i", "ka-watch", "-t", "will/#", "-F", "%t %p"})...)
	waitSubscribed(t, s, "ka-watch", "will/#")

	// -k 5 is the least mosquitto_sub accepts.
	stalled := startMosq(t, "mosquitto_sub", args(hp, []string{"-i", "ka-stalled", "-k", "5", "-t", "ka/in",
		"--will-topic", "will/stalled", "--will-payload", "timed out"})...)
	waitSubscribed(t, s, "ka-stalled", "ka/in")
	start := time.Now()
	if err := stalled.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer stalled.cmd.Process.Signal(syscall.SIGCONT) //nolint:errcheck // so the cleanup's kill is not held up
	watch.waitLine("will/stalled timed out", 15*time.Second)
	// The last PINGREQ may have gone out up to 5s before the stop.
	if d := time.Since(start); d < 2*time.Second || d > 10*time.Second {
		t.Errorf("will published %v after the client stopped, want about 7.5s after its last packet", d)
	}
	waitOffline(t, s, "ka-stalled")
}

// TestMosquittoSys: $SYS/broker topics reach a subscriber to them, and
// not one to "#" (MQTT-4.7.2-1).
func TestMosquittoSys(t *testing.T) {
	needMosquitto(t)
	_, addr := startBrokerOpts(t, Config{SysInterval: 20 * time.Millisecond}, Options{Version: "test"})
	hp := hostPort(t, addr)
	r := mosqOK(t, "", "mosquitto_sub", args(hp, []string{"-i", "sys-sub", "-t", "$SYS/broker/version", "-C", "1", "-F", "%t %p"})...)
	if got := strings.TrimSpace(r.stdout); got != "$SYS/broker/version sngate test" {
		t.Fatalf("got %q", got)
	}
	r = mosqRun(t, "", "mosquitto_sub", args(hp, []string{"-i", "all-sub", "-t", "#", "-W", "1", "-F", "%t %p"})...)
	if r.stdout != "" || strings.TrimSpace(r.stderr) != "Timed out" {
		t.Fatalf("a subscriber to # got $SYS topics, or failed: %v", r)
	}
}

// TestMosquittoLargeMessage: a message just under max_packet_size goes
// through intact; a larger one closes the publisher's connection and goes
// nowhere.
func TestMosquittoLargeMessage(t *testing.T) {
	needMosquitto(t)
	const limit = 256 << 10
	s, addr := startBroker(t, Config{MaxPacketSize: limit}, "")
	hp := hostPort(t, addr)
	dir := t.TempDir()
	file := func(name string, n int) (string, string) {
		b := bytes.Repeat([]byte("0123456789abcdef"), n/16+1)[:n]
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return path, string(b)
	}
	okFile, okPayload := file("ok", limit-100)
	bigFile, _ := file("big", limit+1)

	sub := startMosq(t, "mosquitto_sub", args(hp, []string{"-i", "big-sub", "-q", "1", "-t", "big/#", "-F", "%t %l %p"})...)
	waitSubscribed(t, s, "big-sub", "big/#")
	mosqOK(t, "", "mosquitto_pub", args(hp, []string{"-i", "big-pub", "-q", "1", "-t", "big/ok", "-f", okFile})...)
	sub.waitLine(fmt.Sprintf("big/ok %d %s", len(okPayload), okPayload), waitTime)

	r := mosqRun(t, "", "mosquitto_pub", args(hp, []string{"-i", "big-pub", "-q", "1", "-t", "big/toolarge", "-f", bigFile})...)
	if r.err == nil {
		t.Errorf("publishing %d bytes over a limit of %d succeeded: %v", limit+1, limit, r)
	}
	eventually(t, "the oversize packet counted", func() bool { return s.Stats().OversizePackets == 1 })
	mosqOK(t, "", "mosquitto_pub", args(hp, []string{"-i", "big-pub", "-q", "1", "-t", "big/sentinel", "-m", "end"})...)
	for _, l := range sub.waitLine("big/sentinel 3 end", waitTime) {
		if strings.HasPrefix(l, "big/toolarge") {
			t.Errorf("the oversize message was delivered")
		}
	}
}

// TestMosquittoProtocolVersions: MQTT 3.1 clients ("MQIsdp", level 3)
// work alongside 3.1.1 ones, and an MQTT 5 client is refused with CONNACK
// 0x01 (MQTT-3.1.2-2), which mosquitto reports as an unsupported version.
func TestMosquittoProtocolVersions(t *testing.T) {
	needMosquitto(t)
	s, addr := startBroker(t, Config{}, "")
	hp := hostPort(t, addr)

	sub := startMosq(t, "mosquitto_sub", args(hp, []string{"-V", "mqttv31", "-i", "v31-sub", "-q", "1", "-t", "ver/#", "-F", "%q %t %p"})...)
	waitSubscribed(t, s, "v31-sub", "ver/#")
	mosqOK(t, "", "mosquitto_pub", args(hp, []string{"-V", "mqttv31", "-i", "v31-pub", "-q", "1", "-t", "ver/31", "-m", "from 3.1"})...)
	mosqOK(t, "", "mosquitto_pub", args(hp, []string{"-V", "mqttv311", "-i", "v311-pub", "-q", "2", "-t", "ver/311", "-m", "from 3.1.1"})...)
	sub.waitLine("1 ver/31 from 3.1", waitTime)
	sub.waitLine("1 ver/311 from 3.1.1", waitTime)

	r := mosqRun(t, "", "mosquitto_pub", args(hp, []string{"-V", "mqttv5", "-i", "v5-pub", "-t", "ver/5", "-m", "from 5"})...)
	if r.err == nil || !strings.Contains(r.stderr, "Unsupported Protocol Version") {
		t.Errorf("MQTT 5 client: want it refused as an unsupported protocol version: %v", r)
	}
}

// TestMosquittoOverlappingSubscriptions: a client whose subscriptions
// overlap gets a matching message once (MQTT-3.3.5-1).
func TestMosquittoOverlappingSubscriptions(t *testing.T) {
	needMosquitto(t)
	s, addr := startBroker(t, Config{}, "")
	hp := hostPort(t, addr)
	sub := startMosq(t, "mosquitto_sub", args(hp, []string{"-i", "ov-sub", "-q", "1", "-t", "ov/#", "-t", "ov/+", "-t", "ov/x", "-F", "%q %t %p"})...)
	for _, f := range []string{"ov/#", "ov/+", "ov/x"} {
		waitSubscribed(t, s, "ov-sub", f)
	}
	mosqOK(t, "", "mosquitto_pub", args(hp, []string{"-i", "ov-pub", "-q", "1", "-t", "ov/x", "-m", "once"})...)
	mosqOK(t, "", "mosquitto_pub", args(hp, []string{"-i", "ov-pub", "-q", "1", "-t", "ov/sentinel", "-m", "end"})...)
	if got := sub.waitLine("1 ov/sentinel end", waitTime); !slices.Equal(got, []string{"1 ov/x once", "1 ov/sentinel end"}) {
		t.Fatalf("got %q, want the message once, then the sentinel", got)
	}
}

// offlineQueue: a persistent session subscribes at qos and goes away; the
// messages published meanwhile are all delivered, in order and at qos,
// when it comes back, and are then gone from the session.
func offlineQueue(t *testing.T, qos string) {
	needMosquitto(t)
	s, addr := startBroker(t, Config{}, t.TempDir())
	hp := hostPort(t, addr)
	id, topic := "queue-sub-q"+qos, "queue/q"+qos

	// -E: exit once the subscription is acknowledged (with DISCONNECT).
	mosqOK(t, "", "mosquitto_sub", args(hp, []string{"-c", "-i", id, "-q", qos, "-t", topic, "-E"})...)
	waitOffline(t, s, id)

	var in strings.Builder
	var want []string
	for i := 1; i <= 5; i++ {
		fmt.Fprintf(&in, "m%d\n", i)
		want = append(want, fmt.Sprintf("%s %s m%d", qos, topic, i))
	}
	// -l: one connection, a message per line, in order.
	mosqOK(t, in.String(), "mosquitto_pub", args(hp, []string{"-i", "queue-pub-q" + qos, "-q", qos, "-t", topic, "-l"})...)

	r := mosqOK(t, "", "mosquitto_sub", args(hp, []string{"-c", "-i", id, "-q", qos, "-t", topic, "-C", "5", "-F", "%q %t %p"})...)
	if got := strings.Split(strings.TrimSpace(r.stdout), "\n"); !slices.Equal(got, want) {
		t.Fatalf("after reconnecting got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Everything was acknowledged: nothing is left in flight or queued.
	waitOffline(t, s, id)
	eventually(t, "the session to be drained", func() bool {
		sess := s.lookupSession(id)
		sess.mu.Lock()
		defer sess.mu.Unlock()
		return len(sess.inflight) == 0 && len(sess.queue) == 0
	})
}

// TestMosquittoOfflineQueueQoS1: persistent session, QoS 1 messages queued
// while offline.
func TestMosquittoOfflineQueueQoS1(t *testing.T) { offlineQueue(t, "1") }

// TestMosquittoOfflineQueueQoS2: the same at QoS 2, the whole
// PUBLISH/PUBREC/PUBREL/PUBCOMP flow on both sides, across a reconnect.
func TestMosquittoOfflineQueueQoS2(t *testing.T) { offlineQueue(t, "2") }

// TestMosquittoTLS: a tls listener with require_client_cert admits
// mosquitto clients that trust its CA and present a certificate it signed,
// and refuses clients without one, with one from another CA, and clients
// that do not trust the server.
func TestMosquittoTLS(t *testing.T) {
	needMosquitto(t)
	pki := mosquittotest.NewPKI(t)
	s, addrs := startListeners(t, Config{Listeners: []ListenerConfig{{
		Type: "tls", Address: "127.0.0.1:0",
		CertFile: pki.ServerCert, KeyFile: pki.ServerKey,
		ClientCAFile: pki.CAFile, RequireClientCert: true,
	}}}, "")
	hp := hostPort(t, addrs[0]) // -h 127.0.0.1: verified against the IP SAN
	withCert := args(hp, []string{"--cafile", pki.CAFile, "--cert", pki.ClientCert, "--key", pki.ClientKey})

	sub := startMosq(t, "mosquitto_sub", args(withCert, []string{"-i", "tls-sub", "-q", "1", "-t", "tls/#", "-F", "%t %p"})...)
	waitSubscribed(t, s, "tls-sub", "tls/#")
	mosqOK(t, "", "mosquitto_pub", args(withCert, []string{"-i", "tls-pub", "-q", "1", "-t", "tls/ok", "-m", "over tls"})...)
	sub.waitLine("tls/ok over tls", waitTime)

	refused := map[string][]string{
		"no client certificate":              args(hp, []string{"--cafile", pki.CAFile}),
		"client certificate of another CA":   args(hp, []string{"--cafile", pki.CAFile, "--cert", pki.OtherCert, "--key", pki.OtherKey}),
		"client does not trust the server":   args(hp, []string{"--cafile", pki.OtherCAFile, "--cert", pki.ClientCert, "--key", pki.ClientKey}),
		"plain MQTT on the TLS port, no tls": hp,
	}
	before := s.Stats().MessagesIn
	for name, a := range refused {
		r := mosqRun(t, "", "mosquitto_pub", args(a, []string{"-i", "tls-bad", "-q", "1", "-t", "tls/bad", "-m", name})...)
		if r.err == nil {
			t.Errorf("%s: mosquitto_pub succeeded: %v", name, r)
		} else {
			t.Logf("%s: refused as it should be: %v: %s", name, r.err, strings.TrimSpace(r.stderr))
		}
	}
	// The refused messages went nowhere: a sentinel arrives next.
	mosqOK(t, "", "mosquitto_pub", args(withCert, []string{"-i", "tls-pub", "-q", "1", "-t", "tls/sentinel", "-m", "end"})...)
	for _, l := range sub.waitLine("tls/sentinel end", waitTime) {
		if strings.HasPrefix(l, "tls/bad") {
			t.Errorf("a refused client's message was delivered: %q", l)
		}
	}
	if got := s.Stats().MessagesIn - before; got != 1 {
		t.Errorf("MessagesIn grew by %d, want 1 (the sentinel)", got)
	}

	// TLS versions, with a Go client: mosquitto's --tls-version only sets
	// the least version it offers. TLS 1.2 is the minimum.
	cert, err := tls.LoadX509KeyPair(pki.ClientCert, pki.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(pki.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	for _, v := range []struct {
		version uint16
		ok      bool
	}{{tls.VersionTLS11, false}, {tls.VersionTLS12, true}, {tls.VersionTLS13, true}} {
		conf := &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS10, MaxVersion: v.version}
		d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: waitTime}, Config: conf}
		ctx, cancel := context.WithTimeout(context.Background(), waitTime)
		nc, err := d.DialContext(ctx, "tcp", addrs[0])
		cancel()
		name := tls.VersionName(v.version)
		if !v.ok {
			if err == nil {
				nc.Close()
				t.Errorf("%s: handshake succeeded, want it refused", name)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		c := &client{t: t, nc: nc, r: packets.NewReader(nc, 1<<20)}
		if ack := c.connect(&packets.ConnectPacket{ClientID: "tls-go", CleanSession: true}); ack.ReturnCode != 0 {
			t.Errorf("%s: CONNACK %d", name, ack.ReturnCode)
		}
		nc.Close()
	}
}

// TestMosquittoAuthACL: password checks with allow_anonymous false, and
// ACL refusals as mosquitto clients see them.
func TestMosquittoAuthACL(t *testing.T) {
	needMosquitto(t)
	dir := t.TempDir()
	var pw strings.Builder
	for _, u := range []string{"alice", "bob"} {
		h, err := auth.HashPassword([]byte(u+"-secret"), auth.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&pw, "%s:%s\n", u, h)
	}
	pwFile := filepath.Join(dir, "passwd")
	if err := os.WriteFile(pwFile, []byte(pw.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	no := false
	s, addrs := startListeners(t, Config{
		Listeners: []ListenerConfig{{Type: "tcp", Address: "127.0.0.1:0", AllowAnonymous: &no}},
		Auth: auth.Config{PasswordFile: pwFile, ACL: []auth.Rule{
			{User: "alice", Topic: "sensors/#", Access: auth.AccessRead},
			{User: "bob", Topic: "#", Access: auth.AccessReadWrite},
		}},
	}, "")
	hp := hostPort(t, addrs[0])
	alice := args(hp, []string{"-u", "alice", "-P", "alice-secret"})
	bob := args(hp, []string{"-u", "bob", "-P", "bob-secret"})

	// Refused connections: mosquitto_sub gives up with the CONNACK code.
	for _, c := range []struct {
		name string
		argv []string
		want string // mosquitto's text for the CONNACK return code
	}{
		{"wrong password", args(hp, []string{"-u", "alice", "-P", "wrong"}), "bad user name or password"},
		{"unknown user", args(hp, []string{"-u", "mallory", "-P", "alice-secret"}), "bad user name or password"},
		{"no password", args(hp, []string{"-u", "alice"}), "bad user name or password"},
		{"anonymous", hp, "not authorised"},
	} {
		before := s.Stats().AuthFailures
		r := mosqRun(t, "", "mosquitto_sub", args(c.argv, []string{"-i", "auth-bad", "-t", "sensors/#", "-C", "1"})...)
		out := r.stdout + r.stderr
		if r.err == nil || !strings.Contains(out, "Connection Refused") || !strings.Contains(out, c.want) {
			t.Errorf("%s: want a non-zero exit and %q: %v", c.name, "Connection Refused: "+c.want, r)
		}
		if got := s.Stats().AuthFailures - before; got != 1 {
			t.Errorf("%s: AuthFailures grew by %d, want 1", c.name, got)
		}
	}

	// Alice may read sensors/#: she gets bob's message there.
	sensors := startMosq(t, "mosquitto_sub", args(alice, []string{"-i", "alice-sensors", "-q", "1", "-t", "sensors/#", "-F", "%t %p"})...)
	waitSubscribed(t, s, "alice-sensors", "sensors/#")
	mosqOK(t, "", "mosquitto_pub", args(bob, []string{"-i", "bob-pub", "-q", "1", "-t", "sensors/t1", "-m", "21.5"})...)
	sensors.waitLine("sensors/t1 21.5", waitTime)

	// Alice may not read secret/#: SUBACK 0x80 (MQTT-3.9.3), mosquitto_sub
	// reports it and gives up.
	denied := s.Stats().ACLDenied
	// mosquitto_sub says "All subscription requests were denied." and
	// disconnects (exit status 0 in mosquitto 2.0) rather than wait the -W
	// seconds for messages.
	r := mosqRun(t, "", "mosquitto_sub", args(alice, []string{"-i", "alice-secret", "-t", "secret/#", "-W", "5"})...)
	if !strings.Contains(r.stdout+r.stderr, "subscription requests were denied") || strings.Contains(r.stderr, "Timed out") {
		t.Errorf("subscription refused by the ACL: want mosquitto_sub to report the denial and stop: %v", r)
	}
	if got := s.Stats().ACLDenied - denied; got != 1 {
		t.Errorf("ACLDenied grew by %d for the refused subscription, want 1", got)
	}
	if sess := s.lookupSession("alice-secret"); sess != nil {
		sess.mu.Lock()
		n := len(sess.subs)
		sess.mu.Unlock()
		if n != 0 {
			t.Errorf("the refused subscription was added")
		}
	}

	// Alice may not write anywhere: her QoS 1 PUBLISH is acknowledged
	// (MQTT-3.3.5-2, mosquitto_pub exits 0) and delivered to nobody.
	secret := startMosq(t, "mosquitto_sub", args(bob, []string{"-i", "bob-secret", "-q", "1", "-t", "secret/#", "-F", "%t %p"})...)
	waitSubscribed(t, s, "bob-secret", "secret/#")
	denied = s.Stats().ACLDenied
	mosqOK(t, "", "mosquitto_pub", args(alice, []string{"-i", "alice-pub", "-q", "1", "-t", "secret/x", "-m", "leak"})...)
	if got := s.Stats().ACLDenied - denied; got != 1 {
		t.Errorf("ACLDenied grew by %d for the refused publish, want 1", got)
	}
	mosqOK(t, "", "mosquitto_pub", args(bob, []string{"-i", "bob-pub", "-q", "1", "-t", "secret/sentinel", "-m", "end"})...)
	for _, l := range secret.waitLine("secret/sentinel end", waitTime) {
		if strings.Contains(l, "leak") {
			t.Errorf("alice's denied message was delivered: %q", l)
		}
	}
}

// TestWebSocket: MQTT over a websocket listener, with a Go client (the
// mosquitto 2.0 command line clients cannot speak WebSocket): subprotocol
// "mqtt", packets split across and packed into WebSocket messages
// (MQTT-6.0.0-2), a round trip with a client on the TCP listener of the
// same broker, and text frames refused (MQTT-6.0.0-1).
func TestWebSocket(t *testing.T) {
	// mosquitto_sub --help exits non-zero; its output is what counts.
	if _, err := exec.LookPath("mosquitto_sub"); err != nil {
		t.Log("mosquitto_sub not installed: testing with the Go client")
	} else if r := mosqRun(t, "", "mosquitto_sub", "--help"); strings.Contains(strings.ToLower(r.stdout+r.stderr), "websocket") {
		t.Log("mosquitto_sub mentions websockets, but its option for them differs by version: testing with the Go client")
	} else {
		t.Log("mosquitto clients without WebSocket support: testing with the Go client")
	}
	pki := mosquittotest.NewPKI(t)
	s, addrs := startListeners(t, Config{Listeners: []ListenerConfig{
		{Type: "websocket", Address: "127.0.0.1:0"},
		{Type: "tcp", Address: "127.0.0.1:0"},
		{Type: "websocket", Address: "127.0.0.1:0", Path: "/secure", CertFile: pki.ServerCert, KeyFile: pki.ServerKey},
	}}, "")
	wsURL, tcpAddr := "ws://"+addrs[0]+DefaultWebSocketPath, addrs[1]

	ctx, cancel := context.WithTimeout(context.Background(), 4*waitTime)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{Subprotocols: []string{"mqtt"}})
	if err != nil {
		t.Fatalf("dial %s: %v", wsURL, err)
	}
	defer ws.CloseNow()
	if p := ws.Subprotocol(); p != "mqtt" { // MQTT-6.0.0-4
		t.Fatalf("subprotocol %q, want mqtt", p)
	}
	nc := websocket.NetConn(ctx, ws, websocket.MessageBinary)
	c := &client{t: t, nc: nc, r: packets.NewReader(nc, 1<<20)}

	// CONNECT split across two WebSocket messages.
	connect := (&packets.ConnectPacket{ProtocolName: "MQTT", ProtocolLevel: 4, ClientID: "ws-client", CleanSession: true, KeepAlive: 30}).Append(nil)
	for _, part := range [][]byte{connect[:3], connect[3:]} {
		if err := ws.Write(ctx, websocket.MessageBinary, part); err != nil {
			t.Fatal(err)
		}
	}
	if ack := expect[*packets.ConnackPacket](c); ack.ReturnCode != 0 {
		t.Fatalf("CONNACK %d", ack.ReturnCode)
	}
	// SUBSCRIBE and a PUBLISH to it in one WebSocket message.
	both := (&packets.SubscribePacket{PacketID: 1, Filters: []packets.Subscription{{Filter: "ws/#", QoS: 1}}}).Append(nil)
	both = (&packets.PublishPacket{QoS: 1, PacketID: 2, Topic: []byte("ws/echo"), Payload: []byte("round trip")}).Append(both)
	if err := ws.Write(ctx, websocket.MessageBinary, both); err != nil {
		t.Fatal(err)
	}
	if ack := expect[*packets.SubackPacket](c); ack.PacketID != 1 || !bytes.Equal(ack.ReturnCodes, []byte{1}) {
		t.Fatalf("SUBACK %+v", ack)
	}
	var gotAck, gotMsg bool
	for !gotAck || !gotMsg {
		switch p := c.recv().(type) {
		case *packets.PubackPacket:
			if p.PacketID != 2 {
				t.Fatalf("PUBACK %d, want 2", p.PacketID)
			}
			gotAck = true
		case *packets.PublishPacket:
			if string(p.Topic) != "ws/echo" || string(p.Payload) != "round trip" || p.QoS != 1 {
				t.Fatalf("delivered %+v", p)
			}
			c.send(&packets.PubackPacket{PacketID: p.PacketID})
			gotMsg = true
		default:
			t.Fatalf("unexpected %T", p)
		}
	}

	// Across transports: TCP to WebSocket and back. With the mosquitto
	// clients when there are, else with a TCP Go client.
	haveMosquitto := true
	for _, name := range []string{"mosquitto_pub", "mosquitto_sub"} {
		if _, err := exec.LookPath(name); err != nil {
			haveMosquitto = false
		}
	}
	if haveMosquitto {
		hp := hostPort(t, tcpAddr)
		mosqOK(t, "", "mosquitto_pub", args(hp, []string{"-i", "tcp-pub", "-q", "1", "-t", "ws/from-tcp", "-m", "hello ws"})...)
		p := expect[*packets.PublishPacket](c)
		if string(p.Topic) != "ws/from-tcp" || string(p.Payload) != "hello ws" {
			t.Fatalf("delivered %+v", p)
		}
		c.send(&packets.PubackPacket{PacketID: p.PacketID})

		sub := startMosq(t, "mosquitto_sub", args(hp, []string{"-i", "tcp-sub", "-t", "tcp/#", "-C", "1", "-F", "%t %p"})...)
		waitSubscribed(t, s, "tcp-sub", "tcp/#")
		c.publish(&packets.PublishPacket{Topic: []byte("tcp/from-ws"), Payload: []byte("hello tcp")})
		sub.waitLine("tcp/from-ws hello tcp", waitTime)
	} else {
		tc := connected(t, tcpAddr, "tcp-client", true)
		tc.publish(&packets.PublishPacket{Topic: []byte("ws/from-tcp"), Payload: []byte("hello ws")})
		if p := expect[*packets.PublishPacket](c); string(p.Payload) != "hello ws" {
			t.Fatalf("delivered %+v", p)
		}
	}
	c.send(&packets.DisconnectPacket{})
	waitOffline(t, s, "ws-client")

	// MQTT-6.0.0-1: a text frame closes the connection, unanswered.
	ws2, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{Subprotocols: []string{"mqtt"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws2.CloseNow()
	connect2 := (&packets.ConnectPacket{ProtocolName: "MQTT", ProtocolLevel: 4, ClientID: "ws-text", CleanSession: true}).Append(nil)
	if err := ws2.Write(ctx, websocket.MessageText, connect2); err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(ctx, waitTime)
	defer rcancel()
	if typ, msg, err := ws2.Read(rctx); err == nil {
		t.Fatalf("after a text frame: got a %v message % x, want the connection closed", typ, msg)
	} else if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("after a text frame the connection is still open")
	}

	// WebSocket over TLS, on its configured path.
	caPEM, err := os.ReadFile(pki.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	httpc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	wss, _, err := websocket.Dial(ctx, "wss://"+addrs[2]+"/secure", &websocket.DialOptions{Subprotocols: []string{"mqtt"}, HTTPClient: httpc})
	if err != nil {
		t.Fatalf("dial wss: %v", err)
	}
	defer wss.CloseNow()
	snc := websocket.NetConn(ctx, wss, websocket.MessageBinary)
	sc := &client{t: t, nc: snc, r: packets.NewReader(snc, 1<<20)}
	if ack := sc.connect(&packets.ConnectPacket{ClientID: "wss-client", CleanSession: true}); ack.ReturnCode != 0 {
		t.Fatalf("CONNACK %d over wss", ack.ReturnCode)
	}
	sc.send(&packets.PingreqPacket{})
	expect[*packets.PingrespPacket](sc)

	// Another path is not the MQTT endpoint.
	if _, resp, err := websocket.Dial(ctx, "ws://"+addrs[0]+"/other", &websocket.DialOptions{Subprotocols: []string{"mqtt"}}); err == nil {
		t.Fatal("websocket handshake succeeded on a path other than /mqtt")
	} else if resp == nil || resp.StatusCode != 404 {
		t.Fatalf("dial /other: %v, want HTTP 404", err)
	}
}

// TestServeUsesListenerConfig: Serve documents that it serves ln "with the
// settings of the first configured listener of ln's kind", so a tcp
// listener configured with allow_anonymous true admits anonymous clients
// on Serve even with a password file.
func TestServeUsesListenerConfig(t *testing.T) {
	dir := t.TempDir()
	h, err := auth.HashPassword([]byte("pw"), auth.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	pwFile := filepath.Join(dir, "passwd")
	if err := os.WriteFile(pwFile, []byte("alice:"+h+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	yes := true
	_, addr := startBroker(t, Config{
		Listeners: []ListenerConfig{{Type: "tcp", Address: "127.0.0.1:0", AllowAnonymous: &yes}},
		Auth:      auth.Config{PasswordFile: pwFile},
	}, "")
	c := dial(t, addr)
	if ack := c.connect(&packets.ConnectPacket{ClientID: "anon", CleanSession: true}); ack.ReturnCode != 0 {
		t.Fatalf("anonymous client refused with CONNACK %d on a listener configured with allow_anonymous: true", ack.ReturnCode)
	}
}

// TestStartAddrs: once Start returns, Addrs reports every listener, in the
// configured order (Start used to return before its serve goroutines had
// registered them, so Addrs was empty or in any order).
func TestStartAddrs(t *testing.T) {
	for range 20 {
		s, addrs := startListeners(t, Config{Listeners: []ListenerConfig{
			{Type: "tcp", Address: "127.0.0.1:0"},
			{Type: "websocket", Address: "127.0.0.1:0"},
			{Type: "tcp", Address: "127.0.0.1:0"},
		}}, "")
		// The websocket listener answers HTTP; the others speak MQTT.
		resp, err := http.Get("http://" + addrs[1] + DefaultWebSocketPath)
		if err != nil {
			t.Fatalf("Addrs()[1] = %s is not the websocket listener: %v", addrs[1], err)
		}
		resp.Body.Close()
		for _, a := range []string{addrs[0], addrs[2]} {
			connected(t, a, "", true).send(&packets.DisconnectPacket{})
		}
		ctx, cancel := context.WithTimeout(context.Background(), waitTime)
		err = s.Shutdown(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestTakeoverRightAfterConnack: a CONNECT with the client id of a client
// that has just got its CONNACK closes that client's connection
// (MQTT-3.1.4-2), however soon it comes.
func TestTakeoverRightAfterConnack(t *testing.T) {
	_, addr := startBroker(t, Config{}, "")
	open := 0
	for i := range 300 {
		id := fmt.Sprint("takeover-", i)
		a := connected(t, addr, id, true)
		b := connected(t, addr, id, true)
		_ = a.nc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, _, err := a.r.ReadPacket(); errors.Is(err, os.ErrDeadlineExceeded) {
			open++
		}
		a.nc.Close()
		b.nc.Close()
	}
	if open > 0 {
		t.Fatalf("%d of 300 taken-over connections left open", open)
	}
}
