package gpio

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	pgpio "periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

// bound is how long a test waits for something that should happen soon;
// it fails rather than hangs, and asserts nothing about speed.
const bound = 10 * time.Second

// pin is a gpiotest.Pin that also reports every level written to it, in
// order, so tests check the sequence of levels rather than timing.
type pin struct {
	*gpiotest.Pin
	outs chan pgpio.Level
}

func newPin(name string) *pin {
	return &pin{Pin: &gpiotest.Pin{N: name}, outs: make(chan pgpio.Level, 1000)}
}

func (p *pin) Out(l pgpio.Level) error {
	if err := p.Pin.Out(l); err != nil {
		return err
	}
	p.outs <- l
	return nil
}

// expect waits (bounded) for the next levels written.
func (p *pin) expect(t *testing.T, want ...pgpio.Level) {
	t.Helper()
	for i, w := range want {
		select {
		case got := <-p.outs:
			if got != w {
				t.Fatalf("%s: write %d is %v, want %v", p.N, i, got, w)
			}
		case <-time.After(bound):
			t.Fatalf("%s: no write %d (want %v)", p.N, i, w)
		}
	}
}

// quiet checks that nothing more was written; call it only when the
// goroutine driving the pin is known to be idle.
func (p *pin) quiet(t *testing.T) {
	t.Helper()
	select {
	case l := <-p.outs:
		t.Fatalf("%s: unexpected write %v", p.N, l)
	default:
	}
}

// registry is a fake Options.Lookup over fake pins that counts lookups.
type registry struct {
	mu    sync.Mutex
	pins  map[string]*pin
	calls int
}

func newRegistry(pins ...*pin) *registry {
	r := &registry{pins: map[string]*pin{}}
	for _, p := range pins {
		r.pins[p.N] = p
	}
	return r
}

func (r *registry) lookup(name string) (pgpio.PinIO, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if p, ok := r.pins[name]; ok {
		return p, nil
	}
	return nil, nil
}

// clock hands each ticker the code makes to the test, which then ticks it
// by hand: no test sleeps or depends on timing.
type clock struct {
	made chan *ticker
}

func newClock() *clock { return &clock{made: make(chan *ticker)} }

func (c *clock) newTicker(d time.Duration) Ticker {
	t := &ticker{d: d, c: make(chan time.Time), stopped: make(chan struct{})}
	c.made <- t // unbuffered: the test takes it before the code goes on
	return t
}

// ticker waits (bounded) for the code to make a ticker of period d.
func (c *clock) ticker(t *testing.T, d time.Duration) *ticker {
	t.Helper()
	select {
	case tk := <-c.made:
		if tk.d != d {
			t.Fatalf("ticker of %v, want %v", tk.d, d)
		}
		return tk
	case <-time.After(bound):
		t.Fatalf("no ticker of %v made", d)
		return nil
	}
}

// none checks that no ticker is being made right now.
func (c *clock) none(t *testing.T) {
	t.Helper()
	select {
	case tk := <-c.made:
		t.Fatalf("unexpected ticker of %v", tk.d)
	default:
	}
}

type ticker struct {
	d        time.Duration
	c        chan time.Time
	stopOnce sync.Once
	stopped  chan struct{}
}

func (t *ticker) C() <-chan time.Time { return t.c }
func (t *ticker) Stop()               { t.stopOnce.Do(func() { close(t.stopped) }) }

// tick delivers one tick; the code must be listening (bounded).
func (tk *ticker) tick(t *testing.T) {
	t.Helper()
	select {
	case tk.c <- time.Time{}:
	case <-tk.stopped:
		t.Fatal("ticking a stopped ticker")
	case <-time.After(bound):
		t.Fatal("nobody takes the tick")
	}
}

// waitStopped waits (bounded) for the code to stop the ticker.
func (tk *ticker) waitStopped(t *testing.T) {
	t.Helper()
	select {
	case <-tk.stopped:
	case <-time.After(bound):
		t.Fatal("ticker not stopped")
	}
}

// sleeper is a fake Options.Sleep: it records the durations asked for and
// the reset pin's level during each, and returns at once (or ctx's error).
type sleeper struct {
	pin    *pin
	mu     sync.Mutex
	slept  []time.Duration
	levels []pgpio.Level
}

func (s *sleeper) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.slept = append(s.slept, d)
	s.levels = append(s.levels, s.pin.Read())
	return ctx.Err()
}

// gpioGoroutines counts the LED goroutines of g (other tests' may still be
// unwinding).
func gpioGoroutines(g *GPIO) (int, string) {
	self := fmt.Sprintf("(%p)", g)
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	n := 0
	var found []string
	for _, st := range strings.Split(stacks, "\n\n") {
		if strings.Contains(st, "hw/gpio.(*GPIO).run") && strings.Contains(st, self) {
			n++
			found = append(found, st)
		}
	}
	return n, strings.Join(found, "\n\n")
}

// noGoroutines fails if an LED goroutine is still running (bounded wait:
// a goroutine that has signalled its WaitGroup may still be unwinding).
func noGoroutines(t *testing.T, g *GPIO) {
	t.Helper()
	var stacks string
	for deadline := time.Now().Add(bound); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		var n int
		if n, stacks = gpioGoroutines(g); n == 0 {
			return
		}
	}
	t.Fatalf("goroutines left:\n%s", stacks)
}
