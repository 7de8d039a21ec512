package snload

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sngate/sngate/internal/mqttload"
	"github.com/sngate/sngate/internal/topic"
	"github.com/sngate/sngate/mqttsn"
)

// Direction is which way the messages go through the gateway.
type Direction string

const (
	// Up: every MQTT-SN client (a sensor) CONNECTs, REGISTERs a topic of
	// its own (Topic/<index>) and publishes; one MQTT subscriber on
	// Topic/# receives.
	Up Direction = "up"
	// Down: every MQTT-SN client SUBSCRIBEs to one topic name; one MQTT
	// publisher publishes to it, so that each message fans out to all.
	Down Direction = "down"
)

// Header is the stamp at the start of every payload, as in mqttload: the
// send time (8 bytes, nanoseconds since the run started), the sender's
// index and its message sequence number (4 bytes each), big-endian.
const Header = mqttload.Header

// ShortTopic is the two-character short topic name QoS -1 sensors
// publish to: "publish without connection" needs a short or predefined
// topic id, and a short one needs no gateway configuration.
const ShortTopic = "sb"

// Limits of Config values.
const (
	MaxClients = 100000
	MaxSize    = mqttsn.MaxMessageLen - 9 // 4-byte length form, flags, topic id, msg id
	MaxWindow  = 65535
)

// Defaults for zero Config fields.
const (
	DefaultWindow     = 256
	DefaultRetry      = time.Second
	DefaultDrain      = 5 * time.Second
	DefaultDrainQuiet = time.Second
	DefaultTimeout    = 10 * time.Second
	DefaultUpTopic    = "sensors"
	DefaultDownTopic  = "cmd/all"
	// stall is how long a QoS 0 or -1 sender waits without any progress
	// of the deliveries (some may have been lost) before it goes on.
	stall = 100 * time.Millisecond
)

// Config describes one run.
type Config struct {
	Gateway   string // UDP host:port of the MQTT-SN gateway
	Broker    string // TCP host:port of the broker behind it, for the MQTT side
	Direction Direction
	Clients   int // MQTT-SN clients
	// QoS of the MQTT-SN side: -1, 0, 1 or 2 upstream; 0 or 1 downstream.
	// The MQTT side uses the same QoS, at most 1 and at least 0.
	QoS      int
	Size     int           // payload bytes, at least Header
	Warmup   time.Duration // load before measuring, not counted
	Duration time.Duration // how long is measured
	// Rate is each sensor's rate upstream, the publisher's downstream, in
	// messages per second; 0 means as fast as the window (and, at QoS 1
	// and 2, one message in flight per MQTT-SN client) allows.
	Rate float64
	// Window bounds the messages sent but not yet delivered: upstream
	// shared among the sensors (each gets max(1, Window/Clients)),
	// downstream the publisher's. It keeps senders from outrunning the
	// receivers until queues overflow. Default 256; -1 for no bound.
	Window int
	// Retry is the MQTT-SN clients' Tretry: how long they wait for an
	// answer before resending. Default 1s.
	Retry time.Duration
	// Drain bounds the wait, after the measured time, for messages in
	// flight (default 5s); DrainQuiet ends it after that long without a
	// delivery (default 1s).
	Drain      time.Duration
	DrainQuiet time.Duration
	// Topic: upstream the first level of the sensors' topics (default
	// "sensors"), downstream the topic name (default "cmd/all").
	Topic   string
	Timeout time.Duration // per handshake; default 10s
}

// Validate reports the first value Run cannot use.
func (c *Config) Validate() error {
	switch {
	case c.Gateway == "":
		return errors.New("gateway address must not be empty")
	case c.Broker == "":
		return errors.New("broker address must not be empty")
	case c.Direction != Up && c.Direction != Down:
		return fmt.Errorf("direction %q is not %s or %s", c.Direction, Up, Down)
	case c.Clients < 1 || c.Clients > MaxClients:
		return fmt.Errorf("clients %d is not 1..%d", c.Clients, MaxClients)
	case c.Direction == Up && (c.QoS < -1 || c.QoS > 2):
		return fmt.Errorf("qos %d is not -1, 0, 1 or 2", c.QoS)
	case c.Direction == Down && (c.QoS < 0 || c.QoS > 1):
		return fmt.Errorf("qos %d is not 0 or 1 (downstream)", c.QoS)
	case c.Size < Header || c.Size > MaxSize:
		return fmt.Errorf("size %d is not %d..%d bytes (the payload carries a %d-byte timestamp)", c.Size, Header, MaxSize, Header)
	case c.Duration <= 0:
		return fmt.Errorf("duration %v must be positive", c.Duration)
	case c.Warmup < 0:
		return fmt.Errorf("warmup %v must not be negative", c.Warmup)
	case c.Rate < 0:
		return fmt.Errorf("rate %v must not be negative", c.Rate)
	case c.Window < -1 || c.Window > MaxWindow:
		return fmt.Errorf("window %d is not -1..%d", c.Window, MaxWindow)
	case c.Retry < 0 || c.Drain < 0 || c.DrainQuiet < 0 || c.Timeout < 0:
		return errors.New("retry, drain and timeout must not be negative")
	}
	if c.Topic != "" {
		if err := topic.ValidateName(c.Topic); err != nil {
			return fmt.Errorf("topic %q: %v", c.Topic, err)
		}
		if c.Direction == Down && len(c.Topic) == 2 {
			return fmt.Errorf("topic %q: two characters make a short topic name; give a longer one", c.Topic)
		}
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.Retry == 0 {
		c.Retry = DefaultRetry
	}
	if c.Drain == 0 {
		c.Drain = DefaultDrain
	}
	if c.DrainQuiet == 0 {
		c.DrainQuiet = DefaultDrainQuiet
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Topic == "" {
		c.Topic = map[Direction]string{Up: DefaultUpTopic, Down: DefaultDownTopic}[c.Direction]
	}
	return c
}

// Result is what a run measured. Only messages sent within the measured
// time count; their deliveries count whenever they arrive (within the
// drain).
type Result struct {
	Direction Direction     `json:"direction"`
	QoS       int           `json:"qos"`
	Clients   int           `json:"clients"`
	Size      int           `json:"size"`
	Rate      float64       `json:"rate"`   // per sensor (up) or of the publisher (down); 0: unlimited
	Window    int           `json:"window"` // -1: none
	Duration  time.Duration `json:"-"`

	Sent        int64 `json:"sent"`        // messages published in the measured time
	Expected    int64 `json:"expected"`    // Sent upstream, Sent × Clients downstream
	Received    int64 `json:"received"`    // deliveries of those messages, duplicates excluded
	Loss        int64 `json:"loss"`        // Expected − Received
	Duplicates  int64 `json:"duplicates"`  // deliveries repeating or going back in a sender's sequence
	Unacked     int64 `json:"unacked"`     // QoS 1/2 messages without their acknowledgement at the end
	Rejected    int64 `json:"rejected"`    // PUBACKs with a non-zero return code (upstream)
	Retransmits int64 `json:"retransmits"` // MQTT-SN PUBLISH/PUBREL resent after Retry (upstream)
	// Redelivered counts the gateway's resends (DUP set) of the message
	// last received (downstream): its acknowledgement was lost or late.
	Redelivered int64 `json:"redelivered"`

	Throughput float64       `json:"msgs_per_sec"` // Received / Duration
	P50        time.Duration `json:"-"`
	P99        time.Duration `json:"-"`
	Max        time.Duration `json:"-"`
	Mean       time.Duration `json:"-"`
}

// LossRatio returns Loss / Expected, or 0 when nothing was expected.
func (r *Result) LossRatio() float64 {
	if r.Expected == 0 {
		return 0
	}
	return float64(r.Loss) / float64(r.Expected)
}

// window is the measured interval, in nanoseconds since the run's base.
type window struct{ start, end atomic.Int64 }

func (w *window) contains(t int64) bool { return t >= w.start.Load() && t < w.end.Load() }

// flow is how receivers wake a sender waiting for its window.
type flow struct {
	waiting atomic.Bool
	wake    chan struct{} // capacity 1
}

func newFlow() *flow { return &flow{wake: make(chan struct{}, 1)} }

func (f *flow) poke() {
	if f.waiting.Load() {
		select {
		case f.wake <- struct{}{}:
		default:
		}
	}
}

// bench is the state of one run shared by its goroutines.
type bench struct {
	cfg   Config
	runID string
	base  time.Time
	win   window

	start, end, drainBy int64         // since base
	ended               chan struct{} // closed at the end of the measured time
	drained             chan struct{} // closed at drainBy
	stop                chan struct{} // closed to abandon the run
	stopOnce            sync.Once
	lost                chan error // the first lost connection
}

func (b *bench) since() int64 { return int64(time.Since(b.base)) }

func (b *bench) abandon() { b.stopOnce.Do(func() { close(b.stop) }) }

func (b *bench) fail(err error) {
	select {
	case b.lost <- err:
	default:
	}
}

// keepAlive is the keep-alive the MQTT-SN clients announce: longer than
// the run, so that they need not ping.
func (b *bench) keepAlive() uint16 {
	d := b.cfg.Warmup + b.cfg.Duration + b.cfg.Drain + 2*b.cfg.Timeout
	return uint16(min(int64(d/time.Second)*2+60, 65535))
}

// Run connects the receivers, then the senders, runs the load for Warmup +
// Duration and collects the result. The error reports a failure to run
// (connecting, a connection lost); message loss is in the Result.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	cfg = cfg.withDefaults()
	res := Result{Direction: cfg.Direction, QoS: cfg.QoS, Clients: cfg.Clients, Size: cfg.Size,
		Rate: cfg.Rate, Window: cfg.Window, Duration: cfg.Duration}
	gw, err := net.ResolveUDPAddr("udp", cfg.Gateway)
	if err != nil {
		return res, fmt.Errorf("gateway address: %w", err)
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	b := &bench{cfg: cfg, runID: hex.EncodeToString(rnd[:]), base: time.Now(),
		ended: make(chan struct{}), drained: make(chan struct{}), stop: make(chan struct{}), lost: make(chan error, 1)}
	b.win.start.Store(1<<62 - 1) // nothing counts until the window is set
	b.win.end.Store(1<<62 - 1)
	defer b.abandon()
	if cfg.Direction == Up {
		return b.runUp(ctx, gw, res)
	}
	return b.runDown(ctx, gw, res)
}

// startClock sets the measured window after the warmup and the timers
// that end it.
func (b *bench) startClock() (cancel func()) {
	now := b.since()
	b.start = now + int64(b.cfg.Warmup)
	b.end = b.start + int64(b.cfg.Duration)
	b.drainBy = b.end + int64(b.cfg.Drain)
	b.win.start.Store(b.start)
	b.win.end.Store(b.end)
	t1 := time.AfterFunc(time.Duration(b.end-now), func() { close(b.ended) })
	t2 := time.AfterFunc(time.Duration(b.drainBy-now), func() { close(b.drained) })
	return func() { t1.Stop(); t2.Stop() }
}

// wait waits for the senders to end (done), a lost connection or ctx; it
// bounds the wait by the drain and a second.
func (b *bench) wait(ctx context.Context, done <-chan struct{}) error {
	t := time.NewTimer(time.Duration(b.drainBy-b.since()) + time.Second)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case err := <-b.lost:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return errors.New("senders did not stop in time")
	}
}

// drain waits until received() reaches expected, drainBy passes or no
// delivery came for DrainQuiet.
func (b *bench) drain(ctx context.Context, expected int64, received func() int64) error {
	return mqttload.Drain(ctx, expected, received, b.since, b.drainBy, int64(b.cfg.DrainQuiet), b.lost)
}

// watch reports a lost MQTT connection.
func (b *bench) watch(c *mqttload.Client, who string) {
	go func() {
		select {
		case <-c.Done():
			err := c.Err()
			if err == nil {
				err = errors.New("connection closed by the broker")
			}
			b.fail(fmt.Errorf("%s: %w", who, err))
		case <-b.stop:
		}
	}()
}

// pacer spaces a sender's messages rate apart; first is the sender's
// place among n, to spread the senders over one interval.
type pacer struct {
	b        *bench
	interval int64
	next     int64
}

func newPacer(b *bench, rate float64, first, n int) pacer {
	p := pacer{b: b}
	if rate > 0 {
		p.interval = int64(float64(time.Second) / rate)
		p.next = b.since() + p.interval*int64(first)/int64(max(n, 1))
	}
	return p
}

// pace waits for the next slot; false if the run ended first. flush is
// called before sleeping.
func (p *pacer) pace(flush func()) bool {
	if p.interval == 0 {
		return true
	}
	wait := p.next - p.b.since()
	p.next += p.interval
	if behind := p.b.since() - p.next; behind > int64(time.Second) {
		p.next += behind // do not make up for more than a second
	}
	if wait <= 0 {
		return true
	}
	if flush != nil {
		flush()
	}
	t := time.NewTimer(time.Duration(wait))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.b.ended:
		return false
	case <-p.b.stop:
		return false
	}
}

// waitFor waits until progress() reaches target or the run ends (false).
// If lossy, it also gives up (true) once progress stood still for stall:
// a lost QoS 0 message never comes, but slow progress is waited for.
func (b *bench) waitFor(f *flow, target uint32, progress func() uint32, lossy bool) bool {
	defer f.waiting.Store(false)
	var (
		timeout <-chan time.Time
		t       *time.Timer
		last    uint32
	)
	if lossy {
		t = time.NewTimer(stall)
		defer t.Stop()
		timeout = t.C
		last = progress()
	}
	for {
		f.waiting.Store(true)
		p := progress()
		if p >= target {
			return true
		}
		if lossy && p != last {
			last = p
			t.Reset(stall)
		}
		select {
		case <-f.wake:
		case <-timeout:
			return true
		case <-b.ended:
			return false
		case <-b.stop:
			return false
		}
	}
}

// stamp is a decoded payload header.
type stamp struct {
	at       int64
	idx, seq uint32
}

func readStamp(b []byte) (stamp, bool) {
	if len(b) < Header {
		return stamp{}, false
	}
	s := stamp{int64(binary.BigEndian.Uint64(b)), binary.BigEndian.Uint32(b[8:]), binary.BigEndian.Uint32(b[12:])}
	return s, s.seq != 0
}

func putStamp(b []byte, at int64, seq uint32) {
	binary.BigEndian.PutUint64(b, uint64(at))
	binary.BigEndian.PutUint32(b[12:], seq)
}

// mqttQoS is the MQTT side's QoS for an MQTT-SN QoS.
func mqttQoS(q int) byte { return byte(min(max(q, 0), 1)) }

// readError words a failed socket read of an MQTT-SN client.
func readError(who string, err error) error {
	if strings.Contains(err.Error(), "connection refused") {
		return fmt.Errorf("%s: gateway not reachable (ICMP port unreachable): %w", who, err)
	}
	return fmt.Errorf("%s: %w", who, err)
}

// finish fills the derived fields of res.
func finish(res *Result, h *mqttload.Histogram) {
	res.Loss = res.Expected - res.Received
	res.Throughput = float64(res.Received) / res.Duration.Seconds()
	res.P50, res.P99, res.Max, res.Mean = h.Quantile(0.50), h.Quantile(0.99), h.Max(), h.Mean()
}
