// Package gpio drives the few GPIO lines of a gateway box: the radio's
// reset line and two status LEDs, through periph.io.
//
// Callers never wait on an LED: SetUplink and Activity hand the work to
// one goroutine per LED, which also does the blinking. A box configured
// without pins gets a GPIO that does nothing and never touches periph, so
// the gateway runs unchanged on machines without GPIO. A nil *GPIO does
// nothing too.
package gpio

import (
	"context"
	"errors"
	"fmt"
	"sync"

	pgpio "periph.io/x/conn/v3/gpio"
)

var (
	// ErrNoResetPin is what PulseReset returns without a reset pin: the
	// caller cannot reset the radio and should say so.
	ErrNoResetPin = errors.New("gpio: no reset_pin configured")

	// ErrClosed is what PulseReset returns after Close.
	ErrClosed = errors.New("gpio: closed")
)

// UplinkState is what the uplink LED shows.
type UplinkState int

const (
	UplinkOff      UplinkState = iota // bridge not connected
	UplinkOn                          // connected
	UplinkBlinking                    // connected, draining a backlog
)

func (s UplinkState) String() string {
	switch s {
	case UplinkOff:
		return "off"
	case UplinkOn:
		return "on"
	case UplinkBlinking:
		return "blinking"
	}
	return fmt.Sprintf("UplinkState(%d)", int(s))
}

// GPIO is the opened pins.
type GPIO struct {
	cfg  Config // with defaults
	opts Options

	resetMu  sync.Mutex // one pulse at a time; Close waits for it
	reset    pgpio.PinIO
	resetOn  pgpio.Level // the level that holds the radio in reset
	uplink   *led
	activity *led

	mu     sync.Mutex
	closed bool
	want   UplinkState // what SetUplink asked for last

	uplinkChanged chan struct{} // cap 1: the uplink goroutine has news
	traffic       chan struct{} // cap 1: traffic since the activity goroutine last looked
	done          chan struct{} // closed by Close
	wg            sync.WaitGroup
}

// Open resolves the configured pins and sets them to their idle levels:
// reset released, LEDs off. Without any pin configured it does nothing,
// periph included. A pin that cannot be found or driven fails Open with
// an error naming it.
func Open(cfg Config, opts Options) (*GPIO, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("gpio: invalid configuration: %w", err)
	}
	g := &GPIO{
		cfg:           cfg.withDefaults(),
		uplinkChanged: make(chan struct{}, 1),
		traffic:       make(chan struct{}, 1),
		done:          make(chan struct{}),
	}
	if !cfg.Enabled() {
		return g, nil
	}
	g.opts = opts.withDefaults()
	pins := map[string]pgpio.PinIO{}
	for _, p := range cfg.pins() {
		if p.name == "" {
			continue
		}
		pin, err := g.opts.Lookup(p.name)
		if err == nil && pin == nil {
			err = errors.New("lookup found nothing")
		}
		if err != nil {
			return nil, fmt.Errorf("gpio: pin %s (%s) not found: %w", p.name, p.key, err)
		}
		pins[p.key] = pin
	}
	g.resetOn = pgpio.High
	if g.cfg.resetActiveLow() {
		g.resetOn = pgpio.Low
	}
	if pin := pins["reset_pin"]; pin != nil {
		if err := pin.Out(!g.resetOn); err != nil {
			return nil, fmt.Errorf("gpio: reset_pin %s: releasing reset: %w", cfg.ResetPin, err)
		}
		g.reset = pin
	}
	for _, l := range []struct {
		key string
		dst **led
	}{{"uplink_led", &g.uplink}, {"activity_led", &g.activity}} {
		pin := pins[l.key]
		if pin == nil {
			continue
		}
		if err := pin.Out(pgpio.Low); err != nil {
			return nil, fmt.Errorf("gpio: %s %s: turning it off: %w", l.key, pin.Name(), err)
		}
		*l.dst = &led{what: l.key + " " + pin.Name(), pin: pin, log: g.opts.Log}
	}
	if g.uplink != nil {
		g.wg.Add(1)
		go g.runUplink()
	}
	if g.activity != nil {
		g.wg.Add(1)
		go g.runActivity()
	}
	return g, nil
}

// PulseReset holds the radio in reset for Config.ResetPulse, then lets it
// go. The line is released even when ctx ends the pulse early (that is
// reported as an error: the radio may not have reset).
func (g *GPIO) PulseReset(ctx context.Context) error {
	if g == nil || g.reset == nil {
		return ErrNoResetPin
	}
	g.resetMu.Lock()
	defer g.resetMu.Unlock()
	if g.isClosed() {
		return ErrClosed
	}
	if err := g.reset.Out(g.resetOn); err != nil {
		return fmt.Errorf("gpio: reset_pin %s: asserting reset: %w", g.cfg.ResetPin, err)
	}
	slept := g.opts.Sleep(ctx, g.cfg.ResetPulse)
	if err := g.reset.Out(!g.resetOn); err != nil {
		return fmt.Errorf("gpio: reset_pin %s: releasing reset: %w", g.cfg.ResetPin, err)
	}
	if slept != nil {
		return fmt.Errorf("gpio: reset pulse cut short: %w", slept)
	}
	return nil
}

// SetUplink sets what the uplink LED shows. It does not wait.
func (g *GPIO) SetUplink(s UplinkState) {
	if g == nil {
		return
	}
	g.mu.Lock()
	changed := s != g.want
	g.want = s
	g.mu.Unlock()
	if changed {
		notify(g.uplinkChanged)
	}
}

// Activity flashes the activity LED for traffic. It does not wait, and
// calls coalesce: a burst of traffic shows as steady blinking.
func (g *GPIO) Activity() {
	if g == nil {
		return
	}
	notify(g.traffic)
}

// notify leaves a note in a capacity-1 channel unless one is there.
func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (g *GPIO) isClosed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}

func (g *GPIO) uplinkWanted() UplinkState {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.want
}

// Close turns the LEDs off and stops their goroutines. A reset pulse in
// progress is let finish, so the radio is not left in reset.
func (g *GPIO) Close() error {
	if g == nil {
		return nil
	}
	g.resetMu.Lock()
	g.mu.Lock()
	already := g.closed
	g.closed = true
	g.mu.Unlock()
	g.resetMu.Unlock()
	if already {
		return nil
	}
	close(g.done)
	g.wg.Wait()
	var errs []error
	for _, l := range []*led{g.uplink, g.activity} {
		if l != nil && l.offErr != nil {
			errs = append(errs, fmt.Errorf("gpio: %s: turning it off: %w", l.what, l.offErr))
		}
	}
	return errors.Join(errs...)
}
