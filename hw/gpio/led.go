package gpio

import (
	"log/slog"
	"time"

	pgpio "periph.io/x/conn/v3/gpio"
)

// led is one LED pin. Only its goroutine touches it after Open.
type led struct {
	what   string // "uplink_led GPIO27", for messages
	pin    pgpio.PinOut
	log    *slog.Logger
	lit    bool
	failed bool  // a write failed already (logged once)
	offErr error // from turning it off at Close
}

// set lights or darkens the LED, writing the pin only on change.
func (l *led) set(on bool) error {
	if on == l.lit {
		return nil
	}
	l.lit = on // even on failure: retrying every tick would flood the log
	if err := l.pin.Out(pgpio.Level(on)); err != nil {
		if !l.failed {
			l.failed = true
			l.log.Warn("gpio: LED write failed", "led", l.what, "err", err)
		}
		return err
	}
	return nil
}

// ticking is a ticker that may be off; the LED goroutines keep none while
// nothing blinks, so an idle box does not wake up for its LEDs.
type ticking struct {
	newTicker func(time.Duration) Ticker
	t         Ticker
}

func (k *ticking) start(d time.Duration) {
	if k.t == nil {
		k.t = k.newTicker(d)
	}
}

func (k *ticking) stop() {
	if k.t != nil {
		k.t.Stop()
		k.t = nil
	}
}

// c is the ticks, or nil (never ready) while stopped.
func (k *ticking) c() <-chan time.Time {
	if k.t == nil {
		return nil
	}
	return k.t.C()
}

// runUplink shows the uplink state: steady on or off, or toggling every
// UplinkBlink while blinking.
func (g *GPIO) runUplink() {
	defer g.wg.Done()
	l := g.uplink
	tick := ticking{newTicker: g.opts.NewTicker}
	defer func() {
		tick.stop()
		l.offErr = l.set(false)
	}()
	for {
		select {
		case <-g.done:
			return
		case <-g.uplinkChanged:
			switch g.uplinkWanted() {
			case UplinkOff:
				tick.stop()
				l.set(false)
			case UplinkOn:
				tick.stop()
				l.set(true)
			case UplinkBlinking:
				if tick.t == nil {
					l.set(true)
					tick.start(g.opts.UplinkBlink)
				}
			}
		case <-tick.c():
			l.set(!l.lit)
		}
	}
}

// runActivity flashes for traffic: on at once, off after one
// ActivityFlash, and on again after another if there was more traffic in
// the meantime — however much. When traffic stops, so does the ticker.
func (g *GPIO) runActivity() {
	defer g.wg.Done()
	l := g.activity
	tick := ticking{newTicker: g.opts.NewTicker}
	more := false // traffic since the current flash began
	defer func() {
		tick.stop()
		l.offErr = l.set(false)
	}()
	for {
		select {
		case <-g.done:
			return
		case <-g.traffic:
			if tick.t == nil {
				l.set(true)
				tick.start(g.opts.ActivityFlash)
			} else {
				more = true
			}
		case <-tick.c():
			switch {
			case l.lit:
				l.set(false)
			case more:
				more = false
				l.set(true)
			default:
				tick.stop()
			}
		}
	}
}
