package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sngate/sngate/hw/serial/serialtest"
)

// startRun runs "sngate ARGS..." in-process in the background until the
// returned stop function cancels it; stop returns the exit code.
func startRun(t *testing.T, args ...string) (stderr *syncBuffer, stop func() int) {
	t.Helper()
	stderr = &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, strings.NewReader(""), io.Discard, stderr) }()
	t.Cleanup(cancel)
	return stderr, func() int {
		t.Helper()
		cancel()
		select {
		case code := <-done:
			return code
		case <-time.After(10 * time.Second):
			t.Fatalf("sngate did not stop within 10s of cancellation; stderr:\n%s", stderr)
			return -1
		}
	}
}

// waitFor waits until s contains want, for at most 10s.
func waitFor(t *testing.T, s interface{ String() string }, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q within 10s; got:\n%s", want, s.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// anyPortConfig writes a config whose broker listens on a free loopback port,
// so that tests need not have 1883 to themselves; extra is more YAML.
func anyPortConfig(t *testing.T, extra string) string {
	t.Helper()
	return writeFile(t, "sngate.yaml", "broker:\n  listeners:\n    - address: 127.0.0.1:0\ngateway:\n  listen: 127.0.0.1:0\n"+extra)
}

// skipIfPortBusy skips a test of the built-in defaults when something else,
// such as a system mosquitto, holds their port.
func skipIfPortBusy(t *testing.T, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("%s is in use on this machine (%v): the built-in defaults cannot be tested here", addr, err)
	}
	ln.Close()
}

// TestRunNoConfig is "sngate" on a fresh machine: no arguments, no config
// file, data in ./data of the working directory.
func TestRunNoConfig(t *testing.T) {
	skipIfPortBusy(t, "127.0.0.1:1883")
	if pc, err := net.ListenPacket("udp", ":1884"); err != nil {
		t.Skipf("UDP :1884 is in use on this machine (%v): the built-in defaults cannot be tested here", err)
	} else {
		pc.Close()
	}
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv(envConfig, "")

	stderr, stop := startRun(t)
	waitFor(t, stderr, "sngate started")
	// The broker answers MQTT on the default port.
	mqttConnects(t, "127.0.0.1:1883", 5*time.Second)
	// The MQTT-SN gateway answers on UDP :1884.
	snConnects(t, "127.0.0.1:1884", 5*time.Second)
	fi, err := os.Stat(filepath.Join(dir, "data"))
	if err != nil || !fi.IsDir() {
		t.Fatalf("./data not created: %v", err)
	}
	if perm := fi.Mode().Perm(); perm&^0o750 != 0 {
		t.Errorf("./data has mode %v, want at most 0750", perm)
	}
	if code := stop(); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	out := stderr.String()
	// Not a terminal: JSON (log.format auto).
	for _, want := range []string{`"level":"INFO"`, `"version":"dev"`, `"data_dir":"./data"`, `"config":"built-in defaults"`,
		`"msg":"listening","part":"broker","type":"tcp","address":"127.0.0.1:1883"`, `"part":"gateway","transport":"udp [::]:1884"`,
		"sngate stopped", `"reason":"context canceled"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "sngate.db")); err != nil {
		t.Errorf("no store in ./data: %v", err)
	}
}

func TestRunDataDirFlag(t *testing.T) {
	t.Setenv(envConfig, anyPortConfig(t, ""))
	dataDir := filepath.Join(t.TempDir(), "nested", "data")
	stderr, stop := startRun(t, "run", "--data-dir", dataDir)
	waitFor(t, stderr, "sngate started")
	if _, err := os.Stat(dataDir); err != nil {
		t.Errorf("data dir not created: %v", err)
	}
	if code := stop(); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
}

func TestRunJSONFromConfig(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "state")
	cfg := anyPortConfig(t, "log:\n  format: json\n  level: warn\ndata_dir: "+dataDir+"\n")
	// Flags without a command are the default command's.
	stderr, stop := startRun(t, "-c", cfg)
	// Level warn hides the info lines, so wait for the directory.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(dataDir); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("data dir from the config not created; stderr:\n%s", stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code := stop(); code != 0 {
		t.Errorf("exit code %d", code)
	}
	if out := stderr.String(); out != "" {
		t.Errorf("level warn logged %q", out)
	}

	cfg = anyPortConfig(t, "log:\n  format: json\ndata_dir: "+dataDir+"\n")
	stderr, stop = startRun(t, "run", "--config", cfg)
	waitFor(t, stderr, "sngate started")
	stop()
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not JSON: %q: %v", line, err)
		}
		if rec["msg"] == "sngate started" && (rec["data_dir"] != dataDir || rec["config"] != cfg) {
			t.Errorf("started record %v", rec)
		}
	}
}

func TestRunConfigError(t *testing.T) {
	cfg := writeFile(t, "sngate.yaml", "log:\n  level: loud\n")
	code, out, errOut := sngate(t, "run", "-c", cfg)
	if code != 1 || out != "" {
		t.Errorf("code %d, stdout %q; want 1", code, out)
	}
	if want := cfg + `:2: log.level: "loud" is not one of debug, info, warn, error` + "\n"; errOut != want {
		t.Errorf("stderr %q, want %q", errOut, want)
	}
}

func TestRunDataDirNotADirectory(t *testing.T) {
	file := writeFile(t, "file", "")
	code, _, errOut := sngate(t, "run", "-c", anyPortConfig(t, ""), "--data-dir", filepath.Join(file, "data"))
	if code != 1 || !strings.Contains(errOut, "cannot create data dir") {
		t.Errorf("code %d, stderr %q", code, errOut)
	}
}

// TestBinary builds the real binary and drives it as a process: the version
// from -ldflags, and a clean exit on SIGTERM and SIGINT.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "sngate")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	buildSngate(ctx, t, bin, nil, "-ldflags", "-X main.version=v0.0.0-test -X main.commit=feedface")

	out, err := exec.CommandContext(ctx, bin, "version").Output()
	if err != nil {
		t.Fatalf("sngate version: %v", err)
	}
	if !strings.Contains(string(out), "sngate v0.0.0-test\n") || !strings.Contains(string(out), "commit feedface\n") {
		t.Errorf("sngate version printed %q", out)
	}

	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.CommandContext(ctx, bin, "run", "-c", anyPortConfig(t, ""), "--data-dir", filepath.Join(dir, "data"))
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), envConfig+"=")
			cmd.WaitDelay = 5 * time.Second
			p := startProcess(t, cmd)
			p.expect(t, "sngate started", 20*time.Second)
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			p.expect(t, "sngate stopped", 20*time.Second)
			if err := p.wait(); err != nil {
				t.Errorf("sngate run after %v: %v, want exit status 0", sig, err)
			}
		})
	}
}

// buildSngate builds this package into bin with extra go build flags, the
// environment plus env.
func buildSngate(ctx context.Context, t *testing.T, bin string, env []string, flags ...string) {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found")
	}
	build := exec.CommandContext(ctx, goCmd, append(append([]string{"build"}, flags...), "-o", bin, ".")...)
	build.Env = append(os.Environ(), env...)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", strings.Join(env, " "), err, out)
	}
}

// process is a started sngate binary whose stderr is read line by line.
type process struct {
	cmd   *exec.Cmd
	lines chan string
	log   syncBuffer // stderr so far, for failure messages
}

// startProcess starts cmd, killed when the test ends if still running.
func startProcess(t *testing.T, cmd *exec.Cmd) *process {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	p := &process{cmd: cmd, lines: make(chan string, 64)}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.log.Write([]byte(sc.Text() + "\n"))
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	return p
}

// expect waits up to timeout for a line of stderr that contains want; it
// kills the process on a timeout.
func (p *process) expect(t *testing.T, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				t.Fatalf("stderr closed before %q:\n%s", want, p.log.String())
			}
			if strings.Contains(line, want) {
				return
			}
		case <-deadline:
			_ = p.cmd.Process.Kill()
			t.Fatalf("no %q within %v:\n%s", want, timeout, p.log.String())
		}
	}
}

// wait reads stderr to its end and waits for the process to exit.
func (p *process) wait() error {
	for range p.lines {
	}
	return p.cmd.Wait()
}

// mqttConnects sends an MQTT 3.1.1 CONNECT (clean session, keep-alive 60,
// client id "abc") to the broker at addr and wants CONNACK accepted, within
// timeout.
func mqttConnects(t *testing.T, addr string, timeout time.Duration) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		t.Fatalf("broker not listening on %s: %v", addr, err)
	}
	defer nc.Close()
	connect := []byte{0x10, 0x0F, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 60, 0, 3, 'a', 'b', 'c'}
	connack := make([]byte, 4)
	_ = nc.SetDeadline(time.Now().Add(timeout))
	if _, err := nc.Write(connect); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(nc, connack); err != nil || string(connack) != "\x20\x02\x00\x00" {
		t.Fatalf("CONNACK % X, %v", connack, err)
	}
}

// snConnects sends an MQTT-SN CONNECT (clean session, keep-alive 60,
// client id "abc") to the gateway at addr and wants CONNACK accepted,
// within timeout.
func snConnects(t *testing.T, addr string, timeout time.Duration) {
	t.Helper()
	sn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	_ = sn.SetDeadline(time.Now().Add(timeout))
	if _, err := sn.Write([]byte{0x09, 0x04, 0x04, 0x01, 0x00, 0x3C, 'a', 'b', 'c'}); err != nil {
		t.Fatal(err)
	}
	snAck := make([]byte, 16)
	if n, err := sn.Read(snAck); err != nil || string(snAck[:n]) != "\x03\x05\x00" {
		t.Fatalf("MQTT-SN CONNACK % X, %v", snAck[:n], err)
	}
}

func TestRunLogFlags(t *testing.T) {
	tcpPort, udpPort := freePorts(t)
	stderr, stop := startRun(t, "run", "-c", portsConfig(t, tcpPort, udpPort, "log:\n  level: info\n  format: text\n"),
		"--log-format", "json", "--log-level", "debug")
	waitFor(t, stderr, `"msg":"sngate started"`)
	// The flags win over the file: JSON, and a debug line is logged.
	strangerPings(t, udpPort)
	stop()
	if !strings.Contains(stderr.String(), `"level":"DEBUG","msg":"message from an unknown peer"`) {
		t.Errorf("--log-format json --log-level debug logged no JSON debug line:\n%s", stderr)
	}
	code, _, errOut := sngate(t, "run", "--log-format", "yaml")
	if code != 1 || !strings.HasPrefix(errOut, "--log-format: ") || !strings.Contains(errOut, `"yaml" is not one of auto, text, json`) {
		t.Errorf("bad --log-format: code %d, %q", code, errOut)
	}
}

// TestExampleConfigIsTheDefaults: sngate.example.yaml, the documented
// example at the top of the repository, is exactly the built-in defaults,
// so it cannot drift from them.
func TestExampleConfigIsTheDefaults(t *testing.T) {
	example, err := os.ReadFile("../../sngate.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if string(example) != string(defaultYAML) {
		t.Error("sngate.example.yaml differs from cmd/sngate/default.yaml: copy it over (cp cmd/sngate/default.yaml sngate.example.yaml)")
	}
	if _, err := loadConfig("../../sngate.example.yaml"); err != nil {
		t.Errorf("the example does not load: %v", err)
	}
}

// TestRunGPIOWithoutGPIO: LEDs named on a machine with no GPIO (this one)
// stop the start with an error that names the pin.
func TestRunGPIOWithoutGPIO(t *testing.T) {
	if _, err := os.Stat("/dev/gpiochip0"); err == nil {
		t.Skip("this machine has GPIO")
	}
	cfg := anyPortConfig(t, "data_dir: "+t.TempDir()+"\ngpio:\n  uplink_led: GPIO27\n")
	code, _, errOut := sngate(t, "run", "-c", cfg)
	if code != 1 || !strings.Contains(errOut, "GPIO27") || !strings.Contains(errOut, "no GPIO") {
		t.Fatalf("exit %d, stderr %q; want 1 and an error naming GPIO27", code, errOut)
	}
}

// TestLogFormatAuto: log.format auto writes text to a terminal (a pty
// here) and JSON to anything else.
func TestLogFormatAuto(t *testing.T) {
	pair := serialtest.NewPair(t)
	tty, err := os.OpenFile(pair.A, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	if !isTerminal(tty) {
		t.Fatal("a pty is not taken for a terminal")
	}
	var buf syncBuffer
	newLogger(LogConfig{Level: "info", Format: "auto"}, &buf, new(slog.LevelVar)).Info("hello", "k", "v")
	if got := buf.String(); !strings.HasPrefix(got, "{") || !strings.Contains(got, `"k":"v"`) {
		t.Errorf("auto to a buffer wrote %q, want JSON", got)
	}
	if _, ok := newLogger(LogConfig{Level: "info", Format: "auto"}, tty, new(slog.LevelVar)).Handler().(*slog.TextHandler); !ok {
		t.Error("auto to a terminal is not text")
	}
	// A file that is not a terminal, as journald's stream or a log file.
	file, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	if isTerminal(file) {
		t.Fatal("a plain file is taken for a terminal")
	}
	if _, ok := newLogger(LogConfig{Level: "info", Format: "auto"}, file, new(slog.LevelVar)).Handler().(*slog.JSONHandler); !ok {
		t.Error("auto to a file that is not a terminal is not JSON")
	}
}

// TestRunReloadOnSIGHUP: SIGHUP (systemctl reload) applies a new log level
// at once, names the sections that need a restart, and keeps running on a
// file that does not load.
func TestRunReloadOnSIGHUP(t *testing.T) {
	tcpPort, udpPort := freePorts(t)
	base := "gateway:\n  listen: 127.0.0.1:" + strconv.Itoa(udpPort) + "\ndata_dir: " + t.TempDir() +
		"\nbroker:\n  listeners:\n    - address: 127.0.0.1:" + strconv.Itoa(tcpPort) + "\n"
	cfg := writeFile(t, "sngate.yaml", base+"log:\n  level: info\n")
	stderr, stop := startRun(t, "run", "-c", cfg)
	waitFor(t, stderr, "sngate started")
	// A message from an unknown peer is logged at debug level, before the
	// gateway answers it with DISCONNECT.
	const debugLine = `"level":"DEBUG","msg":"message from an unknown peer"`
	strangerPings(t, udpPort)
	if strings.Contains(stderr.String(), debugLine) {
		t.Fatalf("level info logged a debug line:\n%s", stderr)
	}

	if err := os.WriteFile(cfg, []byte(base+"  max_inflight: 50\nlog:\n  level: debug\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, stderr, `"msg":"configuration reloaded","log.level":"debug",`)
	waitFor(t, stderr, `"changed_needing_restart":"broker"}`)
	strangerPings(t, udpPort)
	if !strings.Contains(stderr.String(), debugLine) {
		t.Fatalf("level debug after the reload logged no debug line:\n%s", stderr)
	}

	if err := os.WriteFile(cfg, []byte("log:\n  level: loud\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, stderr, "configuration not reloaded: keeping the running one")
	if code := stop(); code != 0 {
		t.Fatalf("exit %d after the reloads", code)
	}
}

// strangerPings sends the gateway on udpPort a PINGREQ from a peer it does
// not know and waits for its DISCONNECT ("connect again").
func strangerPings(t *testing.T, udpPort int) {
	t.Helper()
	c, err := net.Dial("udp", "127.0.0.1:"+strconv.Itoa(udpPort))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte{0x02, 0x16}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "\x02\x18" {
		t.Fatalf("answer to a stranger's PINGREQ: % X, %v; want DISCONNECT", buf[:n], err)
	}
}

// TestRunMetrics: with metrics.listen set, sngate run serves Prometheus
// metrics and a health check.
func TestRunMetrics(t *testing.T) {
	addr := freeAddr(t)
	cfg := anyPortConfig(t, "data_dir: "+t.TempDir()+"\nmetrics:\n  listen: "+addr+"\n")
	stderr, stop := startRun(t, "run", "-c", cfg)
	defer stop()
	waitFor(t, stderr, "sngate started")
	for path, want := range map[string]string{
		"/metrics": "sngate_broker_clients_connected",
		"/healthz": "broker and gateway: ok",
	} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %d, body lacks %q:\n%s", path, resp.StatusCode, want, body)
		}
	}
}
