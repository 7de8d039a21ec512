// Package mosquittotest runs a real mosquitto broker for tests: an
// independent MQTT implementation to check sngate's upstream clients
// against, instead of our own broker agreeing with itself.
//
// Start writes a config into t.TempDir, starts /usr/sbin/mosquitto on a free
// loopback port and stops it when the test ends, dumping its log if the test
// failed. The broker can be stopped, killed and started again on the same
// port (and persistence directory) to test reconnects. Collect and Publish
// drive mosquitto_sub and mosquitto_pub as independent peers.
//
// Every broker is configured with:
//
//   - allow_anonymous true;
//   - max_queued_messages 0 (no limit): a Collector that is offline, or slow
//     while a test publishes thousands of messages back to back, must not
//     have messages dropped by the broker's default 1000-message queue
//     limit, or ordering and loss checks would fail for the wrong reason;
//   - max_inflight_messages left at mosquitto's default (20): it is what
//     mosquitto announces as Receive Maximum to MQTT 5 clients, so tests
//     exercise the client's flow control the way cloud brokers (which all
//     set a limit) do. Add "max_inflight_messages N" to Config.Extra to
//     change it.
package mosquittotest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Bounds for waiting on processes and ports. They only bound failures: a
// healthy broker is ready in milliseconds.
const (
	readyTimeout = 15 * time.Second
	stopTimeout  = 10 * time.Second
	pollEvery    = 10 * time.Millisecond
)

// TLS configures the broker's listeners for TLS.
type TLS struct {
	CertFile, KeyFile string // server certificate and key (PEM)
	CAFile            string // CA that signs client certificates; also given to the helper's own clients to verify the server
	// RequireClientCert makes the broker refuse clients without a
	// certificate signed by CAFile.
	RequireClientCert bool
	// ClientCertFile and ClientKeyFile are used by the helper's own
	// mosquitto_sub and mosquitto_pub (Collect, Publish) when
	// RequireClientCert is set.
	ClientCertFile, ClientKeyFile string
}

// Config selects the broker's listeners and options.
type Config struct {
	TLS *TLS // nil: plain TCP listener
	// WebSockets adds a websockets listener (with TLS too when TLS is set).
	// The test is skipped if this mosquitto build lacks websockets support.
	WebSockets bool
	// Persistence keeps sessions and queued messages in a directory under
	// t.TempDir across Stop and Start (mosquitto writes it on SIGTERM, not
	// on Kill). Observed with mosquitto 2.0.11: it saves only the sessions of
	// clients whose current connection has Clean Start 0 (an MQTT 5 session
	// made with Clean Start 1 and a Session Expiry does not survive a restart).
	Persistence bool
	// Extra holds raw config lines, e.g. "max_inflight_messages 1". They
	// are written after the TCP listener's line, so that listener options
	// (max_qos, ...) apply to it (before any listener, mosquitto would open
	// a default listener on port 1883 for them); global options may go
	// anywhere. The websockets listener does not get them.
	Extra []string
}

// Broker is a running (or stopped) mosquitto process with a fixed port.
type Broker struct {
	t        testing.TB
	cfg      Config
	bin      string
	dir      string
	confPath string
	logPath  string
	outPath  string // the process's own stdout and stderr (config errors land here)
	port     int
	wsPort   int

	mu         sync.Mutex
	proc       *process // nil while stopped
	collectors []*Collector
}

// process is one run of a command.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, valid after done
}

func startProcess(cmd *exec.Cmd) (*process, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop signals the process and waits for it, killing it if it does not exit
// within stopTimeout.
func (p *process) stop(sig os.Signal) {
	_ = p.cmd.Process.Signal(sig)
	_ = p.cmd.Process.Signal(syscall.SIGCONT) // a Frozen broker handles sig once resumed
	select {
	case <-p.done:
		return
	case <-time.After(stopTimeout):
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// findBinary returns the path of a mosquitto program, looking in PATH and
// then in the sbin directories Debian and source installs use.
func findBinary(name string) (string, bool) {
	if p, err := exec.LookPath(name); err == nil {
		return p, true
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, true
		}
	}
	return "", false
}

func needBinary(t testing.TB, name string) string {
	t.Helper()
	p, ok := findBinary(name)
	if !ok {
		t.Skipf("%s not found: install mosquitto and mosquitto-clients (apt-get install mosquitto mosquitto-clients) to run this test", name)
	}
	return p
}

// Start starts a mosquitto broker for the test on a free 127.0.0.1 port and
// returns once it accepts connections. It is stopped when the test ends.
func Start(t testing.TB, cfg Config) *Broker {
	t.Helper()
	b := &Broker{t: t, cfg: cfg, bin: needBinary(t, "mosquitto"), dir: t.TempDir()}
	b.confPath = filepath.Join(b.dir, "mosquitto.conf")
	b.logPath = filepath.Join(b.dir, "mosquitto.log")
	b.outPath = filepath.Join(b.dir, "mosquitto.out")
	if cfg.Persistence {
		if err := os.Mkdir(filepath.Join(b.dir, "data"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		b.Stop()
		if t.Failed() {
			b.dumpLog()
		}
	})

	// Free ports are found by binding :0 and closing; another process could
	// take one before mosquitto binds it, so a bind failure is retried with
	// new ports.
	var err error
	for range 5 {
		b.port, b.wsPort = freePort(t), 0
		if cfg.WebSockets {
			b.wsPort = freePort(t)
		}
		if err = b.writeConfig(); err != nil {
			t.Fatal(err)
		}
		if err = b.launch(); err == nil {
			return b
		}
		if !strings.Contains(b.logText(), "Address already in use") {
			break
		}
	}
	if cfg.WebSockets && b.wsUnsupported() {
		t.Skipf("this mosquitto build (%s) has no websockets support: %v", b.bin, err)
	}
	b.dumpLog()
	t.Fatalf("mosquittotest: %v", err)
	return nil
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// wsUnsupported reports whether mosquitto refused the websockets listener
// because it was built without websockets.
func (b *Broker) wsUnsupported() bool {
	s := strings.ToLower(b.logText())
	return strings.Contains(s, "websockets support not available") ||
		(strings.Contains(s, "websockets") && strings.Contains(s, "not supported"))
}

func (b *Broker) writeConfig() error {
	var c strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&c, format+"\n", args...) }
	line("# generated by internal/mosquittotest")
	line("per_listener_settings false")
	// Started as root, mosquitto would switch to the "mosquitto" user, who
	// cannot read t.TempDir; as anyone else, the option is ignored.
	if u, err := user.Current(); err == nil {
		line("user %s", u.Username)
	}
	line("allow_anonymous true")
	line("log_dest file %s", b.logPath)
	for _, typ := range []string{"error", "warning", "notice", "information", "subscribe", "unsubscribe"} {
		line("log_type %s", typ)
	}
	line("connection_messages true")
	line("log_timestamp_format %%H:%%M:%%S")
	line("max_queued_messages 0")
	if b.cfg.Persistence {
		line("persistence true")
		line("persistence_location %s/", filepath.Join(b.dir, "data"))
	} else {
		line("persistence false")
	}
	tlsLines := func() {
		if t := b.cfg.TLS; t != nil {
			line("certfile %s", t.CertFile)
			line("keyfile %s", t.KeyFile)
			if t.CAFile != "" {
				line("cafile %s", t.CAFile)
			}
			line("require_certificate %t", t.RequireClientCert)
		}
	}
	// mosquitto 2.0 refuses to start with only a websockets listener, so
	// the TCP listener always comes first.
	line("listener %d 127.0.0.1", b.port)
	tlsLines()
	for _, l := range b.cfg.Extra {
		line("%s", l)
	}
	if b.cfg.WebSockets {
		line("listener %d 127.0.0.1", b.wsPort)
		line("protocol websockets")
		tlsLines()
	}
	return os.WriteFile(b.confPath, []byte(c.String()), 0o600)
}

// launch starts the process and waits until its listeners accept.
func (b *Broker) launch() error {
	out, err := os.OpenFile(b.outPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer out.Close() // the child has its own descriptor
	cmd := exec.Command(b.bin, "-c", b.confPath)
	cmd.Stdout, cmd.Stderr = out, out
	p, err := startProcess(cmd)
	if err != nil {
		return fmt.Errorf("start %s: %w", b.bin, err)
	}
	ports := []int{b.port}
	if b.wsPort != 0 {
		ports = append(ports, b.wsPort)
	}
	deadline := time.Now().Add(readyTimeout)
	for _, port := range ports {
		for {
			if p.exited() {
				return fmt.Errorf("mosquitto exited while starting (%v); see its log", p.err)
			}
			c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				p.stop(syscall.SIGKILL)
				return fmt.Errorf("mosquitto not accepting on port %d after %v: %w", port, readyTimeout, err)
			}
			time.Sleep(pollEvery)
		}
	}
	b.mu.Lock()
	b.proc = p
	b.mu.Unlock()
	return nil
}

// Addr is the TCP listener's "127.0.0.1:PORT".
func (b *Broker) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(b.port)) }

// URL is "mqtt://127.0.0.1:PORT", or "mqtts://..." with TLS.
func (b *Broker) URL() string {
	if b.cfg.TLS != nil {
		return "mqtts://" + b.Addr()
	}
	return "mqtt://" + b.Addr()
}

// WSURL is the websockets listener's "ws://127.0.0.1:PORT/mqtt" (wss with
// TLS), or "" without Config.WebSockets.
func (b *Broker) WSURL() string {
	if b.wsPort == 0 {
		return ""
	}
	scheme := "ws"
	if b.cfg.TLS != nil {
		scheme = "wss"
	}
	return scheme + "://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(b.wsPort)) + "/mqtt"
}

// Stop ends the broker with SIGTERM (it saves persistence and closes
// connections) and waits for it, and stops the Collectors' processes. It is
// idempotent.
func (b *Broker) Stop() { b.halt(syscall.SIGTERM) }

// Kill ends the broker with SIGKILL: no persistence save, connections
// dropped without a TCP close from the broker's side.
func (b *Broker) Kill() { b.halt(syscall.SIGKILL) }

// Freeze suspends the broker (SIGSTOP): its connections stay open, but it
// reads and answers nothing until Thaw.
func (b *Broker) Freeze() { b.signal(syscall.SIGSTOP) }

// Thaw resumes a Frozen broker (SIGCONT).
func (b *Broker) Thaw() { b.signal(syscall.SIGCONT) }

func (b *Broker) signal(sig os.Signal) {
	b.mu.Lock()
	p := b.proc
	b.mu.Unlock()
	if p == nil {
		b.t.Fatalf("mosquittotest: %v: broker not running", sig)
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		b.t.Fatalf("mosquittotest: %v: %v", sig, err)
	}
}

func (b *Broker) halt(sig os.Signal) {
	b.mu.Lock()
	p := b.proc
	b.proc = nil
	cols := append([]*Collector(nil), b.collectors...)
	b.mu.Unlock()
	if p != nil {
		p.stop(sig)
	}
	for _, c := range cols {
		c.stopProcess()
	}
}

// Running reports whether the broker process is up.
func (b *Broker) Running() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.proc != nil && !b.proc.exited()
}

// Start starts a stopped broker again on the same port with the same config
// and persistence directory, waits until it accepts, and restarts the
// Collectors (waiting until they are subscribed again). Callers must not
// restart a Collector themselves once messages flow: killing mosquitto_sub
// between its printing a QoS 1 message and mosquitto reading the PUBACK
// makes mosquitto deliver it again, a duplicate the bridge did not send.
// mosquitto sets
// SO_REUSEADDR, so the port is free at once; bind failures are still
// retried, boundedly.
func (b *Broker) Start() {
	b.t.Helper()
	if b.Running() {
		return
	}
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		if err = b.launch(); err == nil || !strings.Contains(b.logText(), "Address already in use") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		b.dumpLog()
		b.t.Fatalf("mosquittotest: restart: %v", err)
	}
	b.mu.Lock()
	cols := append([]*Collector(nil), b.collectors...)
	b.mu.Unlock()
	for _, c := range cols {
		c.start()
	}
}

// clientArgs are the connection flags for mosquitto_sub and mosquitto_pub.
func (b *Broker) clientArgs() []string {
	args := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(b.port)}
	if t := b.cfg.TLS; t != nil {
		args = append(args, "--cafile", t.CAFile)
		if t.ClientCertFile != "" {
			args = append(args, "--cert", t.ClientCertFile, "--key", t.ClientKeyFile)
		}
	}
	return args
}

// Publish publishes one message with mosquitto_pub, failing the test if it
// fails.
func (b *Broker) Publish(t testing.TB, topic, payload string, qos byte, retain bool) {
	t.Helper()
	bin := needBinary(t, "mosquitto_pub")
	args := append(b.clientArgs(), "-t", topic, "-q", strconv.Itoa(int(qos)))
	if payload == "" {
		args = append(args, "-n")
	} else {
		args = append(args, "-m", payload)
	}
	if retain {
		args = append(args, "-r")
	}
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("mosquitto_pub %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
}

// WaitLog waits until the broker's log has at least n lines containing
// substr, failing the test after timeout. It lets a test observe what only
// the broker knows (e.g. "Received PUBACK from ID", with "log_type all" in
// Config.Extra).
func (b *Broker) WaitLog(t testing.TB, substr string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := strings.Count(b.logSince(0), substr)
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto log: %d lines with %q after %v, want %d", got, substr, timeout, n)
		}
		time.Sleep(pollEvery)
	}
}

// logSize is the log file's current size, for logSince.
func (b *Broker) logSize() int64 {
	fi, err := os.Stat(b.logPath)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// logSince returns the log from offset on (mosquitto flushes every line).
func (b *Broker) logSince(offset int64) string {
	f, err := os.Open(b.logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	data, _ := io.ReadAll(f)
	return string(data)
}

func (b *Broker) logText() string {
	var s strings.Builder
	for _, p := range []string{b.outPath, b.logPath} {
		if data, err := os.ReadFile(p); err == nil {
			s.Write(data)
		} else if !errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(&s, "(%v)\n", err)
		}
	}
	return s.String()
}

// dumpLog writes the broker's output and log into the test log.
func (b *Broker) dumpLog() {
	b.t.Logf("mosquitto config %s:\n%s", b.confPath, readOr(b.confPath))
	b.t.Logf("mosquitto log (%s):\n%s", b.dir, b.logText())
}

func readOr(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return string(data)
}
