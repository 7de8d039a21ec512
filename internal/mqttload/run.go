package mqttload

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sngate/sngate/broker/packets"
)

// Mode is the shape of a benchmark.
type Mode string

const (
	// FanIn: every publisher publishes to a topic of its own, and every
	// subscriber subscribes to one wildcard filter matching them all
	// (typically many publishers and one subscriber).
	FanIn Mode = "fan-in"
	// FanOut: every publisher publishes to one topic, and every subscriber
	// subscribes to exactly that topic (typically one publisher and many
	// subscribers).
	FanOut Mode = "fan-out"
)

// Header is the size of the stamp at the start of every payload: the send
// time (8 bytes, nanoseconds since the run started), the publisher's index
// and its message sequence number (4 bytes each), big-endian.
const Header = 16

// Limits of Config values.
const (
	MaxClients  = 10000
	MaxSize     = 16 << 20
	MaxInflight = 65535
)

// Config describes one benchmark run.
type Config struct {
	Addr        string // host:port of the broker
	Mode        Mode
	Publishers  int
	Subscribers int
	QoS         byte // 0 or 1, for publishing and subscribing
	Size        int  // payload bytes, at least Header
	// Warmup runs the load before measuring; what is sent during it is
	// not counted.
	Warmup   time.Duration
	Duration time.Duration // how long is measured
	// Rate is each publisher's rate in messages per second; 0 means as
	// fast as the connection (and, at QoS 1, the in-flight window) allows.
	Rate float64
	// Inflight is each QoS 1 publisher's window: the messages it has
	// published that are not yet acknowledged (PUBACK) or not yet
	// delivered to every subscriber. Bounding deliveries too keeps the
	// publishers from outrunning the subscribers, which would fill the
	// broker's session queues until it drops messages. Default 64.
	Inflight int
	// OpenLoop bounds the QoS 1 window by PUBACKs only, so publishers may
	// run ahead of the subscribers (and the broker drop messages).
	OpenLoop bool
	// Drain bounds the wait, after the measured time, for the PUBACKs and
	// deliveries of messages already sent. Default 5s. For QoS 0 the wait
	// also ends after DrainQuiet without a delivery.
	Drain time.Duration
	// DrainQuiet ends the drain when no delivery arrived for this long.
	// Default 1s.
	DrainQuiet time.Duration
	// Topic is the first level of the benchmark's topics; a random level
	// follows it, so that runs do not see each other. Default
	// "sngate-bench".
	Topic     string
	KeepAlive time.Duration // sent in CONNECT; default 60s, negative for none
	Timeout   time.Duration // connect and handshake timeout; default 10s
}

// Defaults for zero Config fields.
const (
	DefaultInflight   = 64
	DefaultDrain      = 5 * time.Second
	DefaultDrainQuiet = time.Second
	DefaultTopic      = "sngate-bench"
	DefaultKeepAlive  = 60 * time.Second
)

// Validate reports the first value Run cannot use.
func (c *Config) Validate() error {
	switch {
	case c.Mode != FanIn && c.Mode != FanOut:
		return fmt.Errorf("mode %q is not %s or %s", c.Mode, FanIn, FanOut)
	case c.Publishers < 1 || c.Publishers > MaxClients:
		return fmt.Errorf("publishers %d is not 1..%d", c.Publishers, MaxClients)
	case c.Subscribers < 1 || c.Subscribers > MaxClients:
		return fmt.Errorf("subscribers %d is not 1..%d", c.Subscribers, MaxClients)
	case c.QoS > 1:
		return fmt.Errorf("qos %d is not 0 or 1", c.QoS)
	case c.Size < Header || c.Size > MaxSize:
		return fmt.Errorf("size %d is not %d..%d bytes (the payload carries a %d-byte timestamp)", c.Size, Header, MaxSize, Header)
	case c.Duration <= 0:
		return fmt.Errorf("duration %v must be positive", c.Duration)
	case c.Warmup < 0:
		return fmt.Errorf("warmup %v must not be negative", c.Warmup)
	case c.Rate < 0:
		return fmt.Errorf("rate %v must not be negative", c.Rate)
	case c.Inflight < 0 || c.Inflight > MaxInflight:
		return fmt.Errorf("inflight %d is not 1..%d", c.Inflight, MaxInflight)
	case c.Drain < 0 || c.DrainQuiet < 0:
		return errors.New("drain times must not be negative")
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Inflight == 0 {
		c.Inflight = DefaultInflight
	}
	if c.Drain == 0 {
		c.Drain = DefaultDrain
	}
	if c.DrainQuiet == 0 {
		c.DrainQuiet = DefaultDrainQuiet
	}
	if c.Topic == "" {
		c.Topic = DefaultTopic
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = DefaultKeepAlive
	}
	if c.KeepAlive < 0 {
		c.KeepAlive = 0
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

// Result is what a run measured. Only messages sent within the measured
// time count; their deliveries count whenever they arrive (within the
// drain).
type Result struct {
	Mode        Mode          `json:"mode"`
	QoS         byte          `json:"qos"`
	Publishers  int           `json:"publishers"`
	Subscribers int           `json:"subscribers"`
	Size        int           `json:"size"`
	Rate        float64       `json:"rate"` // per publisher; 0: unlimited
	Inflight    int           `json:"inflight,omitempty"`
	OpenLoop    bool          `json:"open_loop,omitempty"`
	Duration    time.Duration `json:"-"`

	Sent       int64 `json:"sent"`       // messages published in the measured time
	Expected   int64 `json:"expected"`   // Sent × Subscribers
	Received   int64 `json:"received"`   // deliveries of those messages, duplicates excluded
	Loss       int64 `json:"loss"`       // Expected − Received
	Duplicates int64 `json:"duplicates"` // deliveries repeating or going back in a publisher's sequence
	Unacked    int64 `json:"unacked"`    // QoS 1 messages without PUBACK at the end

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

// window is the measured interval, in nanoseconds since the run's base
// time. Atomics, because the subscribers' readers learn that it is set only
// through the broker.
type window struct {
	start, end atomic.Int64
}

func (w *window) contains(t int64) bool { return t >= w.start.Load() && t < w.end.Load() }

// subscriber is one subscribing connection and what its reader recorded.
type subscriber struct {
	c        *Client
	received atomic.Int64 // deliveries of measured messages
	// progress[i] is the sequence number of the last message of
	// publisher i delivered here, for the publishers' end-to-end window.
	progress []atomic.Uint32
	flows    []flow
	// Reader goroutine only until it has ended.
	hist    Histogram
	lastSeq []uint32 // per publisher; 0 before its first message
	dups    int64
	foreign int64 // payloads without a valid stamp
}

// flow is how subscribers wake a publisher waiting for its end-to-end
// window.
type flow struct {
	waiting atomic.Bool
	wake    chan struct{} // capacity 1
}

// publisher is one publishing connection.
type publisher struct {
	c     *Client
	index uint32
	flow  *flow
	subs  []*subscriber // to read their progress; nil for an open loop
	// delivered is the last message every subscriber has received, as
	// last seen; publisher goroutine only.
	delivered uint32
	topic     string
	win       chan struct{} // QoS 1: one token per unacknowledged PUBLISH
	bogus     atomic.Int64  // PUBACKs beyond the window
	sent      int64         // measured messages published; read after the goroutine ends
	err       error
}

// Run connects the subscribers, then the publishers, runs the load for
// Warmup + Duration and collects the result. The error reports a failure
// to run (connecting, a connection lost); message loss is in the Result.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	cfg = cfg.withDefaults()
	res := Result{Mode: cfg.Mode, QoS: cfg.QoS, Publishers: cfg.Publishers, Subscribers: cfg.Subscribers,
		Size: cfg.Size, Rate: cfg.Rate, Duration: cfg.Duration}
	if cfg.QoS == 1 {
		res.Inflight, res.OpenLoop = cfg.Inflight, cfg.OpenLoop
	}

	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	runID := hex.EncodeToString(rnd[:])
	prefix := cfg.Topic + "/" + runID
	base := time.Now()
	since := func() int64 { return int64(time.Since(base)) }
	var win window
	win.start.Store(1<<62 - 1) // nothing counts until the window is set
	win.end.Store(1<<62 - 1)

	opts := func(id string) Options {
		return Options{ClientID: id, KeepAlive: cfg.KeepAlive, Timeout: cfg.Timeout}
	}

	// Subscribers first, so that they see every message.
	subs := make([]*subscriber, cfg.Subscribers)
	flows := make([]flow, cfg.Publishers)
	for i := range flows {
		flows[i].wake = make(chan struct{}, 1)
	}
	var clients []*Client
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	filter := prefix + "/in/+"
	if cfg.Mode == FanOut {
		filter = prefix + "/out"
	}
	err := DialAll(ctx, cfg.Subscribers, dialParallel, func(i int) error {
		c, err := Dial(ctx, cfg.Addr, opts(runID+"-s"+strconv.Itoa(i)))
		if err != nil {
			return fmt.Errorf("subscriber %d: %w", i, err)
		}
		subs[i] = &subscriber{c: c, lastSeq: make([]uint32, cfg.Publishers),
			progress: make([]atomic.Uint32, cfg.Publishers), flows: flows}
		if err := c.Subscribe(ctx, filter, cfg.QoS); err != nil {
			return fmt.Errorf("subscriber %d: %w", i, err)
		}
		return nil
	})
	for _, s := range subs {
		if s != nil {
			clients = append(clients, s.c)
		}
	}
	if err != nil {
		return res, err
	}
	for _, s := range subs {
		s.c.Start(func(p *packets.PublishPacket) { s.record(p, since(), &win) }, nil)
	}

	pubs := make([]*publisher, cfg.Publishers)
	err = DialAll(ctx, cfg.Publishers, dialParallel, func(i int) error {
		c, err := Dial(ctx, cfg.Addr, opts(runID+"-p"+strconv.Itoa(i)))
		if err != nil {
			return fmt.Errorf("publisher %d: %w", i, err)
		}
		p := &publisher{c: c, index: uint32(i), topic: prefix + "/out", flow: &flows[i]}
		if cfg.Mode == FanIn {
			p.topic = prefix + "/in/" + strconv.Itoa(i)
		}
		if cfg.QoS == 1 {
			p.win = make(chan struct{}, cfg.Inflight)
			if !cfg.OpenLoop {
				p.subs = subs
			}
		}
		pubs[i] = p
		return nil
	})
	for _, p := range pubs {
		if p != nil {
			clients = append(clients, p.c)
		}
	}
	if err != nil {
		return res, err
	}
	for _, p := range pubs {
		p.c.Start(nil, p.onPuback)
	}

	// The measured window starts after the warmup.
	now := since()
	start := now + int64(cfg.Warmup)
	end := start + int64(cfg.Duration)
	win.start.Store(start)
	win.end.Store(end)
	drainBy := end + int64(cfg.Drain)
	ended := make(chan struct{}) // closed at the end of the window
	endTimer := time.AfterFunc(time.Duration(end-now), func() { close(ended) })
	defer endTimer.Stop()

	stop := make(chan struct{}) // closed to abandon the run
	var stopOnce sync.Once
	abandon := func() { stopOnce.Do(func() { close(stop) }) }
	defer abandon()
	var wg sync.WaitGroup
	for _, p := range pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.err = p.run(&cfg, since, start, end, drainBy, ended, stop)
			if p.err != nil {
				abandon()
			}
		}()
	}
	pubsDone := make(chan struct{})
	go func() { wg.Wait(); close(pubsDone) }()

	// Wait for the publishers: they stop at the end of the window and, at
	// QoS 1, wait for their PUBACKs until drainBy. A lost connection ends
	// the run.
	lost := make(chan error, 1)
	for _, c := range clients {
		go func() {
			select {
			case <-c.Done():
				if e := c.Err(); e != nil {
					select {
					case lost <- e:
					default:
					}
				} else {
					select {
					case lost <- errors.New("connection closed by the broker"):
					default:
					}
				}
			case <-stop:
			}
		}()
	}
	var runErr error
	untilDrain := time.NewTimer(time.Duration(drainBy-since()) + time.Second)
	defer untilDrain.Stop()
	select {
	case <-pubsDone:
	case err := <-lost:
		runErr = err
	case <-ctx.Done():
		runErr = ctx.Err()
	case <-untilDrain.C:
		runErr = errors.New("publishers did not stop in time")
	}
	if runErr == nil {
		for _, p := range pubs {
			if p.err != nil {
				runErr = p.err
				break
			}
		}
	}

	// Drain: wait for the deliveries of the measured messages. The
	// publishers have ended unless runErr is set.
	if runErr == nil {
		var sent int64
		for _, p := range pubs {
			sent += p.sent
		}
		received := func() int64 {
			var got int64
			for _, s := range subs {
				got += s.received.Load()
			}
			return got
		}
		runErr = Drain(ctx, sent*int64(cfg.Subscribers), received, since, drainBy, int64(cfg.DrainQuiet), lost)
	}

	abandon()
	for _, c := range clients {
		if runErr == nil {
			_ = c.Disconnect()
		} else {
			c.Close()
		}
	}
	clients = nil
	<-pubsDone // closing the connections unblocked any publisher

	for _, p := range pubs {
		res.Sent += p.sent
	}
	res.Expected = res.Sent * int64(cfg.Subscribers)
	var h Histogram
	var foreign int64
	for _, s := range subs {
		res.Received += s.received.Load()
		res.Duplicates += s.dups
		foreign += s.foreign
		h.Merge(&s.hist)
	}
	for _, p := range pubs {
		if p.win != nil {
			res.Unacked += int64(len(p.win))
		}
		if n := p.bogus.Load(); n > 0 && runErr == nil {
			runErr = fmt.Errorf("publisher %d: %d PUBACKs for messages not in flight", p.index, n)
		}
	}
	if foreign > 0 && runErr == nil {
		runErr = fmt.Errorf("%d messages without a valid benchmark stamp", foreign)
	}
	res.Loss = res.Expected - res.Received
	res.Throughput = float64(res.Received) / cfg.Duration.Seconds()
	res.P50, res.P99, res.Max, res.Mean = h.Quantile(0.50), h.Quantile(0.99), h.Max(), h.Mean()
	return res, runErr
}

// dialParallel is how many connections a load run opens at a time.
const dialParallel = 32

// DialAll runs dial for 0..n-1, parallel at a time, and returns the first
// error; after one, or when ctx ends, it starts no more. The MQTT and
// MQTT-SN load generators open their clients with it.
func DialAll(ctx context.Context, n, parallel int, dial func(i int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	sem := make(chan struct{}, parallel)
	for i := range n {
		sem <- struct{}{}
		mu.Lock()
		failed := first != nil
		mu.Unlock()
		if failed || ctx.Err() != nil {
			<-sem
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := dial(i); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}

// Drain waits until received() reaches expected, drainBy passes or no
// delivery came for quiet (drainBy and quiet in the nanoseconds of
// since()), or a lost connection or ctx ends it with their error. The MQTT
// and MQTT-SN load generators end their runs with it.
func Drain(ctx context.Context, expected int64, received, since func() int64, drainBy, quiet int64, lost <-chan error) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var last int64 = -1
	lastChange := since()
	for {
		got := received()
		now := since()
		if got != last {
			last, lastChange = got, now
		}
		if got >= expected || now >= drainBy || now-lastChange >= quiet {
			return nil
		}
		select {
		case <-tick.C:
		case err := <-lost:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// record handles one delivery on the subscriber's reader goroutine.
func (s *subscriber) record(p *packets.PublishPacket, now int64, win *window) {
	b := p.Payload
	if len(b) < Header {
		s.foreign++
		return
	}
	stamp := int64(binary.BigEndian.Uint64(b))
	idx := binary.BigEndian.Uint32(b[8:])
	seq := binary.BigEndian.Uint32(b[12:])
	if int(idx) >= len(s.lastSeq) || seq == 0 {
		s.foreign++
		return
	}
	if seq <= s.lastSeq[idx] {
		s.dups++
		return
	}
	s.lastSeq[idx] = seq
	s.progress[idx].Store(seq)
	if f := &s.flows[idx]; f.waiting.Load() {
		select {
		case f.wake <- struct{}{}:
		default:
		}
	}
	if win.contains(stamp) {
		s.hist.Record(time.Duration(now - stamp))
		s.received.Add(1)
	}
}

func (p *publisher) onPuback(uint16) {
	if p.win == nil {
		p.bogus.Add(1)
		return
	}
	select {
	case <-p.win:
	default:
		p.bogus.Add(1)
	}
}

// minProgress returns the last of the publisher's messages that every
// subscriber has received.
func (p *publisher) minProgress() uint32 {
	m := uint32(1<<32 - 1)
	for _, s := range p.subs {
		m = min(m, s.progress[p.index].Load())
	}
	return m
}

// waitDelivered waits until every subscriber has received message seq, or
// the window ends. It reports whether to go on publishing.
func (p *publisher) waitDelivered(seq uint32, ended, stop <-chan struct{}) (bool, error) {
	if p.delivered = p.minProgress(); p.delivered >= seq {
		return true, nil
	}
	if err := p.c.Flush(); err != nil {
		return false, err
	}
	defer p.flow.waiting.Store(false)
	for {
		p.flow.waiting.Store(true)
		if p.delivered = p.minProgress(); p.delivered >= seq {
			return true, nil
		}
		select {
		case <-p.flow.wake:
		case <-ended:
			return false, nil
		case <-stop:
			return false, nil
		case <-p.c.Done():
			return false, p.connErr()
		}
	}
}

// run publishes until the window ends, then waits for the PUBACKs of what
// is in flight (QoS 1) until drainBy.
func (p *publisher) run(cfg *Config, since func() int64, start, end, drainBy int64, ended, stop <-chan struct{}) error {
	payload := make([]byte, cfg.Size)
	binary.BigEndian.PutUint32(payload[8:], p.index)
	var (
		seq      uint32
		pid      uint16
		interval int64
		next     int64
	)
	if cfg.Rate > 0 {
		interval = int64(float64(time.Second) / cfg.Rate)
		// Spread the publishers' first messages over one interval.
		next = since() + interval*int64(p.index)/int64(max(cfg.Publishers, 1))
	}
	pace := func() bool {
		wait := next - since()
		next += interval
		if behind := since() - next; behind > int64(time.Second) {
			next += behind // do not make up for more than a second
		}
		if wait <= 0 {
			return true
		}
		if err := p.c.Flush(); err != nil {
			return true // Publish reports it
		}
		return p.sleep(time.Duration(wait), ended, stop)
	}
	for {
		if interval > 0 && !pace() {
			break
		}
		if ok, err := p.acquire(seq+1, uint32(cfg.Inflight), ended, stop); err != nil {
			return err
		} else if !ok {
			break
		}
		now := since()
		if now >= end {
			p.releaseToken()
			break
		}
		seq++
		binary.BigEndian.PutUint64(payload, uint64(now))
		binary.BigEndian.PutUint32(payload[12:], seq)
		if cfg.QoS == 1 {
			if pid++; pid == 0 {
				pid = 1
			}
		}
		if err := p.c.Publish(p.topic, cfg.QoS, pid, payload); err != nil {
			return err
		}
		if now >= start {
			p.sent++
		}
	}
	if err := p.c.Flush(); err != nil {
		return err
	}
	// Wait for the PUBACKs of what is in flight.
	for p.win != nil && len(p.win) > 0 && since() < drainBy {
		if !p.sleep(time.Millisecond, nil, stop) {
			return nil
		}
		select {
		case <-p.c.Done():
			return p.connErr()
		default:
		}
	}
	return nil
}

// acquire takes a place in the QoS 1 window for message seq: a PUBACK
// token and, unless the loop is open, the delivery of message seq-window
// to every subscriber. It flushes before it waits. It reports false if the
// window ended (or the run was abandoned) first.
func (p *publisher) acquire(seq, window uint32, ended, stop <-chan struct{}) (bool, error) {
	if p.win == nil {
		select {
		case <-stop:
			return false, nil
		default:
			return true, nil
		}
	}
	select {
	case p.win <- struct{}{}:
	default:
		if err := p.c.Flush(); err != nil {
			return false, err
		}
		select {
		case p.win <- struct{}{}:
		case <-ended:
			return false, nil
		case <-stop:
			return false, nil
		case <-p.c.Done():
			return false, p.connErr()
		}
	}
	if p.subs == nil || seq <= window || p.delivered >= seq-window {
		return true, nil
	}
	// The window is full: wait until half of it is free, so that the
	// publisher sends bursts rather than one message per delivery.
	ok, err := p.waitDelivered(seq-(window+1)/2, ended, stop)
	if !ok {
		p.releaseToken()
	}
	return ok, err
}

// releaseToken gives back a PUBACK token taken for a message not sent.
func (p *publisher) releaseToken() {
	if p.win != nil {
		<-p.win
	}
}

// sleep waits d; false if ended or stop came first.
func (p *publisher) sleep(d time.Duration, ended, stop <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ended:
		return false
	case <-stop:
		return false
	}
}

func (p *publisher) connErr() error {
	if err := p.c.Err(); err != nil {
		return fmt.Errorf("publisher %d: %w", p.index, err)
	}
	return fmt.Errorf("publisher %d: connection closed by the broker", p.index)
}
