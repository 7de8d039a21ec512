package mosquittotest

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Received is one message a Collector got.
type Received struct {
	Topic   string
	Payload string
	QoS     byte
	Retain  bool
}

// Collector is a mosquitto_sub process subscribed with a persistent session
// (-c -i ID, MQTT 3.1.1), so that the broker keeps QoS 1 and 2 messages for
// it while it is away. It records what it receives, in order.
//
// It is stopped when its broker stops and started again (and waited for
// until subscribed) when the broker starts, so messages published while the
// broker was down for it are delivered from the session after the restart
// (with Config.Persistence).
type Collector struct {
	b      *Broker
	t      testing.TB
	filter string
	qos    byte
	id     string

	mu      sync.Mutex
	msgs    []Received
	changed chan struct{} // closed and replaced whenever msgs grows
	proc    *subProcess
	stderr  bytes.Buffer
	other   []string // the last lines of other output, for diagnostics
}

// subProcess is one run of mosquitto_sub.
type subProcess struct {
	*process
	reader chan struct{} // closed when stdout has been read to EOF
}

// Collect starts a Collector on filter at qos with the client identifier
// clientID, and returns once mosquitto acknowledged the subscription.
func (b *Broker) Collect(t testing.TB, filter string, qos byte, clientID string) *Collector {
	t.Helper()
	needBinary(t, "mosquitto_sub")
	c := &Collector{b: b, t: t, filter: filter, qos: qos, id: clientID, changed: make(chan struct{})}
	b.mu.Lock()
	b.collectors = append(b.collectors, c)
	b.mu.Unlock()
	t.Cleanup(c.stopProcess)
	c.start()
	return c
}

// start runs mosquitto_sub and waits until it is subscribed.
func (c *Collector) start() {
	c.t.Helper()
	bin := needBinary(c.t, "mosquitto_sub")
	// The payload is printed in hex so that any bytes (newlines too)
	// survive, and the topic comes last because it may contain spaces.
	args := append(c.b.clientArgs(), "-c", "-i", c.id, "-q", strconv.Itoa(int(c.qos)),
		"-t", c.filter, "-F", "MSG %q %r %x %t")
	cmd := exec.Command(bin, args...)
	// An os.Pipe rather than StdoutPipe: cmd.Wait (run as soon as the
	// process exits) must not close the read end before the last lines
	// have been read.
	r, w, err := os.Pipe()
	if err != nil {
		c.t.Fatal(err)
	}
	cmd.Stdout = w
	cmd.Stderr = &lockedWriter{w: &c.stderr, mu: &c.mu}
	logStart := c.b.logSize()
	p, err := startProcess(cmd)
	w.Close()
	if err != nil {
		r.Close()
		c.t.Fatalf("start mosquitto_sub: %v", err)
	}
	sp := &subProcess{process: p, reader: make(chan struct{})}
	c.mu.Lock()
	c.proc = sp
	c.mu.Unlock()
	go c.read(sp, r)

	// mosquitto_sub's stdout is block-buffered until the first message, so
	// the broker's log (flushed per line) tells when the subscription is in
	// place: log_type subscribe writes "<id> <qos> <filter>".
	want := fmt.Sprintf(": %s %d %s\n", c.id, c.qos, c.filter)
	deadline := time.Now().Add(readyTimeout)
	for !strings.Contains(c.b.logSince(logStart), want) {
		if p.exited() {
			<-sp.reader
			c.t.Fatalf("collector %s: mosquitto_sub exited before subscribing: %v\n%s", c.id, p.err, c.diagnostics())
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("collector %s: not subscribed after %v\n%s", c.id, readyTimeout, c.diagnostics())
		}
		time.Sleep(pollEvery)
	}
}

// read parses mosquitto_sub's output until EOF.
func (c *Collector) read(sp *subProcess, r io.ReadCloser) {
	defer close(sp.reader)
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		line := sc.Text()
		c.mu.Lock()
		m, err := parseLine(line)
		if err == nil {
			c.msgs = append(c.msgs, m)
			close(c.changed)
			c.changed = make(chan struct{})
		} else if c.other = append(c.other, fmt.Sprintf("%q: %v", line, err)); len(c.other) > 20 {
			c.other = c.other[len(c.other)-20:]
		}
		c.mu.Unlock()
	}
}

// parseLine parses "MSG %q %r %x %t".
func parseLine(line string) (Received, error) {
	s, ok := strings.CutPrefix(line, "MSG ")
	if !ok {
		return Received{}, errors.New("not a message line")
	}
	f := strings.SplitN(s, " ", 4)
	if len(f) != 4 {
		return Received{}, fmt.Errorf("want 4 fields, got %d", len(f))
	}
	qos, err := strconv.Atoi(f[0])
	if err != nil {
		return Received{}, err
	}
	payload, err := hex.DecodeString(f[2])
	if err != nil {
		return Received{}, err
	}
	return Received{Topic: f[3], Payload: string(payload), QoS: byte(qos), Retain: f[1] == "1"}, nil
}

// stopProcess ends mosquitto_sub (it would otherwise keep reconnecting) and
// waits until its output has been read.
func (c *Collector) stopProcess() {
	c.mu.Lock()
	sp := c.proc
	c.proc = nil
	c.mu.Unlock()
	if sp == nil {
		return
	}
	sp.stop(syscall.SIGTERM)
	<-sp.reader
}

// Messages returns a copy of what has been received so far, in order.
func (c *Collector) Messages() []Received {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Received(nil), c.msgs...)
}

// WaitCount waits until at least n messages have been received and returns
// them, failing the test after timeout.
func (c *Collector) WaitCount(t testing.TB, n int, timeout time.Duration) []Received {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		got, changed := len(c.msgs), c.changed
		c.mu.Unlock()
		if got >= n {
			return c.Messages()
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("collector %s: %d messages after %v, want %d\n%s", c.id, got, timeout, n, c.diagnostics())
		}
	}
}

// FirstOccurrences drops repeated messages (same topic, payload, QoS and
// retain flag), keeping the first of each: QoS 1 is at least once, so
// redeliveries after reconnects are legitimate, and ordering checks are
// about first deliveries.
func FirstOccurrences(msgs []Received) []Received {
	seen := make(map[Received]bool, len(msgs))
	var out []Received
	for _, m := range msgs {
		if !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	return out
}

// diagnostics is mosquitto_sub's other output, for failure messages.
func (c *Collector) diagnostics() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var s strings.Builder
	fmt.Fprintf(&s, "mosquitto_sub %s: stderr: %s", c.id, c.stderr.String())
	for _, l := range c.other {
		s.WriteString("\n  " + l)
	}
	if n := len(c.msgs); n > 0 {
		fmt.Fprintf(&s, "\nlast message: %+v", c.msgs[n-1])
	}
	return s.String()
}

// lockedWriter serializes writes from exec's stderr copier with readers of
// the buffer.
type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
