package gpio

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	pgpio "periph.io/x/conn/v3/gpio"
)

const (
	blink = 7 * time.Millisecond // distinct periods tell the tickers apart
	flash = 3 * time.Millisecond
)

// rig is a GPIO on fake pins, clock and sleep.
type rig struct {
	g                      *GPIO
	reset, uplink, traffic *pin
	clock                  *clock
	sleep                  *sleeper
	reg                    *registry
}

func newRig(t *testing.T, cfg Config) *rig {
	t.Helper()
	r := &rig{reset: newPin("GPIO17"), uplink: newPin("GPIO27"), traffic: newPin("GPIO22"), clock: newClock()}
	r.sleep = &sleeper{pin: r.reset}
	r.reg = newRegistry(r.reset, r.uplink, r.traffic)
	g, err := Open(cfg, Options{
		Lookup:        r.reg.lookup,
		NewTicker:     r.clock.newTicker,
		Sleep:         r.sleep.sleep,
		UplinkBlink:   blink,
		ActivityFlash: flash,
	})
	if err != nil {
		t.Fatal(err)
	}
	r.g = g
	t.Cleanup(func() { g.Close() })
	return r
}

var allPins = Config{ResetPin: "GPIO17", UplinkLED: "GPIO27", ActivityLED: "GPIO22"}

func TestOpenSetsIdleLevels(t *testing.T) {
	r := newRig(t, allPins)
	r.reset.expect(t, pgpio.High) // XBee RESET is active low: released = high
	r.uplink.expect(t, pgpio.Low)
	r.traffic.expect(t, pgpio.Low)
	if r.reg.calls != 3 {
		t.Fatalf("%d lookups", r.reg.calls)
	}
}

func TestPulseReset(t *testing.T) {
	for _, tc := range []struct {
		name         string
		activeLow    *bool
		pulse        time.Duration
		active, idle pgpio.Level
		wantSleptFor time.Duration
	}{
		{"default: active low, 100ms", nil, 0, pgpio.Low, pgpio.High, 100 * time.Millisecond},
		{"active high, 5ms", new(false), 5 * time.Millisecond, pgpio.High, pgpio.Low, 5 * time.Millisecond},
		{"explicitly active low", new(true), time.Second, pgpio.Low, pgpio.High, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, Config{ResetPin: "GPIO17", ResetActiveLow: tc.activeLow, ResetPulse: tc.pulse})
			r.reset.expect(t, tc.idle)
			for range 2 {
				if err := r.g.PulseReset(context.Background()); err != nil {
					t.Fatal(err)
				}
				r.reset.expect(t, tc.active, tc.idle)
			}
			r.reset.quiet(t)
			// Held at the active level for the configured time.
			if want := []time.Duration{tc.wantSleptFor, tc.wantSleptFor}; !slices.Equal(r.sleep.slept, want) {
				t.Fatalf("slept %v, want %v", r.sleep.slept, want)
			}
			if want := []pgpio.Level{tc.active, tc.active}; !slices.Equal(r.sleep.levels, want) {
				t.Fatalf("levels while held %v, want %v", r.sleep.levels, want)
			}
		})
	}
}

// A pulse cut short by ctx still releases the radio, and says so.
func TestPulseResetCancelled(t *testing.T) {
	r := newRig(t, Config{ResetPin: "GPIO17"})
	r.reset.expect(t, pgpio.High)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.g.PulseReset(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("PulseReset = %v", err)
	}
	r.reset.expect(t, pgpio.Low, pgpio.High)
	if r.reset.Read() != pgpio.High {
		t.Fatal("radio left in reset")
	}
}

func TestPulseResetWithoutPinOrAfterClose(t *testing.T) {
	r := newRig(t, Config{UplinkLED: "GPIO27"})
	if err := r.g.PulseReset(context.Background()); !errors.Is(err, ErrNoResetPin) {
		t.Fatalf("PulseReset = %v", err)
	}
	r = newRig(t, Config{ResetPin: "GPIO17"})
	r.g.Close()
	if err := r.g.PulseReset(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("PulseReset after Close = %v", err)
	}
}

func TestUplinkLED(t *testing.T) {
	r := newRig(t, Config{UplinkLED: "GPIO27"})
	l := r.uplink
	l.expect(t, pgpio.Low)

	r.g.SetUplink(UplinkOn)
	l.expect(t, pgpio.High)
	r.g.SetUplink(UplinkOn) // no change, no write
	r.g.SetUplink(UplinkOff)
	l.expect(t, pgpio.Low)
	r.clock.none(t)

	// Blinking: lit at once, then toggling on each tick.
	r.g.SetUplink(UplinkBlinking)
	tk := r.clock.ticker(t, blink)
	l.expect(t, pgpio.High)
	for _, want := range []pgpio.Level{pgpio.Low, pgpio.High, pgpio.Low, pgpio.High} {
		tk.tick(t)
		l.expect(t, want)
	}
	r.g.SetUplink(UplinkBlinking) // already blinking: same ticker
	tk.tick(t)
	l.expect(t, pgpio.Low)

	// Drained: steady on, ticker stopped.
	r.g.SetUplink(UplinkOn)
	l.expect(t, pgpio.High)
	tk.waitStopped(t)

	// Blinking again from on: a new ticker; the LED is lit already.
	r.g.SetUplink(UplinkBlinking)
	tk = r.clock.ticker(t, blink)
	tk.tick(t)
	l.expect(t, pgpio.Low)
	r.g.SetUplink(UplinkOff)
	tk.waitStopped(t)
	l.quiet(t) // it was off already

	r.g.SetUplink(UplinkOn)
	l.expect(t, pgpio.High)
	if err := r.g.Close(); err != nil {
		t.Fatal(err)
	}
	l.expect(t, pgpio.Low)
	noGoroutines(t, r.g)
}

// However many Activity calls, the LED goes through flash cycles at the
// ticker's pace, with one goroutine.
func TestActivityCoalesces(t *testing.T) {
	r := newRig(t, Config{ActivityLED: "GPIO22"})
	l := r.traffic
	l.expect(t, pgpio.Low)

	// A burst: the first call lights the LED at once and starts the
	// ticker; the other 9999, during that flash, add up to one more.
	r.g.Activity()
	tk := r.clock.ticker(t, flash)
	l.expect(t, pgpio.High)
	for range 9999 {
		r.g.Activity()
	}
	if n, stacks := gpioGoroutines(r.g); n != 1 {
		t.Fatalf("%d goroutines:\n%s", n, stacks)
	}
	r.taken(t)
	l.quiet(t) // nothing happens between ticks
	for _, want := range []pgpio.Level{pgpio.Low, pgpio.High, pgpio.Low} {
		tk.tick(t)
		l.expect(t, want)
	}
	tk.tick(t)
	tk.waitStopped(t)
	l.quiet(t)

	// Steady traffic (some between every two ticks) is steady blinking.
	r.g.Activity()
	tk = r.clock.ticker(t, flash)
	l.expect(t, pgpio.High)
	for _, want := range []pgpio.Level{pgpio.Low, pgpio.High, pgpio.Low, pgpio.High, pgpio.Low, pgpio.High} {
		r.g.Activity()
		r.taken(t)
		tk.tick(t)
		l.expect(t, want)
	}
	// Traffic stops: the flash ends, one dark tick, and the ticker stops.
	tk.tick(t)
	l.expect(t, pgpio.Low)
	tk.tick(t)
	tk.waitStopped(t)
	l.quiet(t)
}

// taken waits (bounded) until the LED goroutines have taken the notes
// left for them, so that the next tick cannot overtake a note.
func (r *rig) taken(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for len(r.g.traffic) > 0 || len(r.g.uplinkChanged) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("notes not taken")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCloseTurnsLEDsOffAndStops(t *testing.T) {
	r := newRig(t, allPins)
	r.reset.expect(t, pgpio.High)
	r.uplink.expect(t, pgpio.Low)
	r.traffic.expect(t, pgpio.Low)
	r.g.SetUplink(UplinkBlinking)
	r.g.Activity()
	// Both tickers running (made in either order).
	made := map[time.Duration]*ticker{}
	for range 2 {
		select {
		case tk := <-r.clock.made:
			made[tk.d] = tk
		case <-time.After(bound):
			t.Fatal("tickers not made")
		}
	}
	r.uplink.expect(t, pgpio.High)
	r.traffic.expect(t, pgpio.High)
	if n, stacks := gpioGoroutines(r.g); n != 2 {
		t.Fatalf("%d goroutines:\n%s", n, stacks)
	}

	if err := r.g.Close(); err != nil {
		t.Fatal(err)
	}
	r.uplink.expect(t, pgpio.Low)
	r.traffic.expect(t, pgpio.Low)
	made[blink].waitStopped(t)
	made[flash].waitStopped(t)
	noGoroutines(t, r.g)
	r.reset.quiet(t) // the reset line is left released
	if r.reset.Read() != pgpio.High {
		t.Fatal("radio in reset after Close")
	}
	// Everything after Close is harmless.
	r.g.SetUplink(UplinkOn)
	r.g.Activity()
	if err := r.g.Close(); err != nil {
		t.Fatal(err)
	}
	r.uplink.quiet(t)
	r.traffic.quiet(t)
}

// Without pins, Open does nothing: no lookup (so no periph), no goroutine,
// and every method is a harmless no-op.
func TestNoPinsTouchesNothing(t *testing.T) {
	lookup := func(name string) (pgpio.PinIO, error) {
		t.Errorf("Lookup(%q) called without pins configured", name)
		return nil, errors.New("no")
	}
	newTicker := func(time.Duration) Ticker {
		t.Error("ticker made without pins configured")
		return nil
	}
	cfg := Config{ResetPulse: time.Second}
	if cfg.Enabled() {
		t.Fatal("Enabled without pins")
	}
	g, err := Open(cfg, Options{Lookup: lookup, NewTicker: newTicker})
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		g.Activity()
		g.SetUplink(UplinkBlinking)
		g.SetUplink(UplinkOn)
	}
	if n, stacks := gpioGoroutines(g); n != 0 {
		t.Fatalf("%d goroutines:\n%s", n, stacks)
	}
	if err := g.PulseReset(context.Background()); !errors.Is(err, ErrNoResetPin) {
		t.Fatalf("PulseReset = %v", err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}

	var nilG *GPIO
	nilG.Activity()
	nilG.SetUplink(UplinkOn)
	if err := nilG.PulseReset(context.Background()); !errors.Is(err, ErrNoResetPin) {
		t.Fatalf("nil PulseReset = %v", err)
	}
	if err := nilG.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenPinNotFound(t *testing.T) {
	reg := newRegistry(newPin("GPIO17"))
	_, err := Open(Config{ResetPin: "GPIO17", UplinkLED: "GPIO99"}, Options{Lookup: reg.lookup})
	if err == nil || !strings.Contains(err.Error(), "gpio: pin GPIO99 (uplink_led) not found") {
		t.Fatalf("got %v", err)
	}
	boom := errors.New("periph says no")
	_, err = Open(Config{ActivityLED: "GPIO5"}, Options{Lookup: func(string) (pgpio.PinIO, error) { return nil, boom }})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "gpio: pin GPIO5 (activity_led) not found: periph says no") {
		t.Fatalf("got %v", err)
	}
}

func TestOpenInvalidConfig(t *testing.T) {
	_, err := Open(Config{ResetPin: "GPIO17", UplinkLED: "GPIO17"}, Options{})
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field() != "uplink_led" {
		t.Fatalf("got %v", err)
	}
}
