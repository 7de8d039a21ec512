package upstream

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sngate/sngate/internal/mosquittotest"
)

// wait bounds every wait in these tests; it is a failure bound only.
const wait = 30 * time.Second

var protocols = []Protocol{MQTT5, MQTT311}

// forEachProtocol runs the same test for both adapters.
func forEachProtocol(t *testing.T, f func(t *testing.T, p Protocol)) {
	for _, p := range protocols {
		t.Run(string(p), func(t *testing.T) { f(t, p) })
	}
}

// checkGoroutines fails the test if goroutines of the libraries or of this
// package (not its tests) are still running when the test ends, after
// everything registered later with t.Cleanup (clients, proxies) is closed.
// Call it first.
func checkGoroutines(t *testing.T) {
	t.Cleanup(func() {
		var leaked []string
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			leaked = ownGoroutines()
			if len(leaked) == 0 || time.Now().After(deadline) {
				break
			}
		}
		if len(leaked) > 0 {
			t.Errorf("%d goroutines left running:\n\n%s", len(leaked), strings.Join(leaked, "\n\n"))
		}
	})
}

func ownGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var own []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "testing.tRunner") || strings.Contains(g, "_test.go") {
			continue // the tests' own goroutines
		}
		if strings.Contains(g, "github.com/eclipse/paho") || strings.Contains(g, "github.com/coder/websocket") ||
			strings.Contains(g, "sngate/bridge/upstream.") {
			own = append(own, g)
		}
	}
	return own
}

// testLogger keeps the clients' debug logs and prints them if the test
// fails.
func testLogger(t *testing.T) *slog.Logger {
	var buf lockedBuffer
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("UPSTREAM_TEST_LOG") != "" {
			t.Logf("client log:\n%s", buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// newClient makes a Client closed at the end of the test. cfg's Protocol,
// ClientID, Logger and KeepAlive are filled in when empty.
func newClient(t *testing.T, p Protocol, cfg Config) Client {
	t.Helper()
	cfg.Protocol = p
	if cfg.ClientID == "" {
		cfg.ClientID = "sngate-" + strings.NewReplacer("/", "-", "#", "-").Replace(t.Name())
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

func connect(t *testing.T, c Client, subs ...Subscription) (sessionPresent bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	present, err := c.Connect(ctx, subs)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	return present
}

func waitLost(t *testing.T, c Client) {
	t.Helper()
	select {
	case <-c.Lost():
	case <-time.After(wait):
		t.Fatal("Lost() not closed")
	}
}

// outcomes records onDone calls.
type outcomes struct {
	mu      sync.Mutex
	got     []result
	changed chan struct{}
}

type result struct {
	id  int
	err error
}

func newOutcomes() *outcomes { return &outcomes{changed: make(chan struct{})} }

func (o *outcomes) onDone(id int) func(error) {
	return func(err error) {
		o.mu.Lock()
		defer o.mu.Unlock()
		o.got = append(o.got, result{id, err})
		close(o.changed)
		o.changed = make(chan struct{})
	}
}

func (o *outcomes) snapshot() []result {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]result(nil), o.got...)
}

// wait waits for n outcomes and fails on more than one for an id.
func (o *outcomes) wait(t *testing.T, n int) []result {
	t.Helper()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		o.mu.Lock()
		got, changed := len(o.got), o.changed
		o.mu.Unlock()
		if got >= n {
			break
		}
		select {
		case <-changed:
		case <-timer.C:
			t.Fatalf("%d onDone calls, want %d", got, n)
		}
	}
	all := o.snapshot()
	seen := map[int]bool{}
	for _, r := range all {
		if seen[r.id] {
			t.Errorf("onDone called twice for message %d", r.id)
		}
		seen[r.id] = true
	}
	return all
}

// inbound records OnMessage calls.
type inbound struct {
	ch chan received
}

type received struct {
	m   Message
	ack func()
}

func newInbound() *inbound { return &inbound{ch: make(chan received, 10000)} }

func (in *inbound) onMessage(m Message, ack func()) { in.ch <- received{m, ack} }

func (in *inbound) next(t *testing.T) received {
	t.Helper()
	select {
	case r := <-in.ch:
		return r
	case <-time.After(wait):
		t.Fatal("no message received")
		return received{}
	}
}

// proxy is a TCP relay between a client and the broker that a test can
// freeze (hold everything in both directions: messages are neither
// delivered nor acknowledged) and cut (close every connection), to make a
// connection end with messages in flight.
type proxy struct {
	ln     net.Listener
	target string

	mu        sync.Mutex
	cond      *sync.Cond
	frozen    bool
	swallow   byte // an MQTT packet type not to pass from client to broker (0: none)
	swallowed int  // how many were not passed
	pipes     map[*pipe]struct{}
	closed    bool
	wg        sync.WaitGroup
}

type pipe struct {
	a, b net.Conn
	cut  bool
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, pipes: map[*pipe]struct{}{}}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) url(scheme string) string { return scheme + "://" + p.ln.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		a, err := p.ln.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial("tcp", p.target)
		if err != nil {
			a.Close()
			continue
		}
		pp := &pipe{a: a, b: b}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			a.Close()
			b.Close()
			return
		}
		p.pipes[pp] = struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		go p.relay(pp, a, b, true)
		go p.relay(pp, b, a, false)
	}
}

// relay copies from one side to the other. Client to broker, it copies
// whole MQTT packets, so that it can swallow one type.
func (p *proxy) relay(pp *pipe, from, to net.Conn, up bool) {
	defer p.wg.Done()
	defer p.cutPipe(pp)
	r := bufio.NewReaderSize(from, 64<<10)
	buf := make([]byte, 32<<10)
	for {
		var chunk []byte
		var err error
		if up {
			chunk, err = readPacket(r)
		} else {
			var n int
			n, err = r.Read(buf)
			chunk = buf[:n]
		}
		if len(chunk) > 0 {
			p.mu.Lock()
			for p.frozen && !pp.cut {
				p.cond.Wait()
			}
			cut, swallow := pp.cut, up && p.swallow != 0 && chunk[0]>>4 == p.swallow
			if swallow {
				p.swallowed++
				p.cond.Broadcast()
			}
			p.mu.Unlock()
			if cut {
				return
			}
			if !swallow {
				if _, err := to.Write(chunk); err != nil {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// readPacket reads one MQTT control packet (fixed header, remaining
// length, rest).
func readPacket(r *bufio.Reader) ([]byte, error) {
	first, err := r.ReadByte()
	if err != nil {
		return nil, err
	}
	pkt := []byte{first}
	length, shift := 0, 0
	for {
		b, err := r.ReadByte()
		if err != nil {
			return nil, err
		}
		pkt = append(pkt, b)
		length |= int(b&0x7f) << shift
		if b&0x80 == 0 {
			break
		}
		if shift += 7; shift > 21 {
			return nil, errors.New("bad remaining length")
		}
	}
	rest := make([]byte, length)
	if _, err := io.ReadFull(r, rest); err != nil {
		return nil, err
	}
	return append(pkt, rest...), nil
}

// swallowUp makes the proxy drop packets of type t (e.g. 6, PUBREL) from
// client to broker; 0 stops it.
func (p *proxy) swallowUp(t byte) {
	p.mu.Lock()
	p.swallow = t
	p.mu.Unlock()
}

func (p *proxy) cutPipe(pp *pipe) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pp.cut {
		return
	}
	pp.cut = true
	pp.a.Close()
	pp.b.Close()
	delete(p.pipes, pp)
	p.cond.Broadcast()
}

// freeze holds all data from now on; thaw lets it flow again.
func (p *proxy) freeze() { p.setFrozen(true) }
func (p *proxy) thaw()   { p.setFrozen(false) }

func (p *proxy) setFrozen(f bool) {
	p.mu.Lock()
	p.frozen = f
	p.cond.Broadcast()
	p.mu.Unlock()
}

// cut closes every current connection, dropping what is held.
func (p *proxy) cut() {
	p.mu.Lock()
	pipes := make([]*pipe, 0, len(p.pipes))
	for pp := range p.pipes {
		pipes = append(pipes, pp)
	}
	p.mu.Unlock()
	for _, pp := range pipes {
		p.cutPipe(pp)
	}
}

// waitSwallowed waits until n packets have been swallowed.
func (p *proxy) waitSwallowed(t *testing.T, n int) {
	t.Helper()
	timeout := time.AfterFunc(wait, func() {
		p.mu.Lock()
		p.swallowed = -1 << 30 // give up
		p.cond.Broadcast()
		p.mu.Unlock()
	})
	defer timeout.Stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.swallowed >= 0 && p.swallowed < n {
		p.cond.Wait()
	}
	if p.swallowed < 0 {
		t.Fatalf("fewer than %d packets swallowed after %v", n, wait)
	}
}

func (p *proxy) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.ln.Close()
	p.cut()
	p.wg.Wait()
}

// silentServer accepts TCP connections and never answers: a CONNACK that
// never comes.
func silentServer(t *testing.T) string {
	return serveTCP(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
}

// serveTCP runs handle for each connection to a loopback listener until
// the test ends, then closes the listener and every connection and waits
// for the handlers. It returns the address.
func serveTCP(t *testing.T, handle func(net.Conn)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func isNotAcknowledged(err error) bool { return errors.Is(err, ErrNotAcknowledged) }

// startBroker starts mosquitto for a test.
func startBroker(t *testing.T, cfg mosquittotest.Config) *mosquittotest.Broker {
	return mosquittotest.Start(t, cfg)
}
