package gpio

import (
	"context"
	"log/slog"
	"time"

	pgpio "periph.io/x/conn/v3/gpio"
)

// Options are the settings that do not belong in the configuration file,
// mostly seams for tests. The zero value is ready to use.
type Options struct {
	// Lookup finds a configured pin by name. It is called for configured
	// pins only. Default: periph's host.Init (once), then gpioreg.ByName;
	// its errors say what periph found instead.
	Lookup func(name string) (pgpio.PinIO, error)

	// NewTicker makes the tickers that time LED blinking. Default:
	// time.NewTicker.
	NewTicker func(d time.Duration) Ticker

	// Sleep holds the reset pulse. Default: a timer, cut short by ctx.
	Sleep func(ctx context.Context, d time.Duration) error

	// UplinkBlink is the time the uplink LED stays on, and then off, while
	// blinking. Default 250ms.
	UplinkBlink time.Duration

	// ActivityFlash is how long a traffic flash lasts, and the least dark
	// time between two, so steady traffic shows as steady blinking.
	// Default 40ms.
	ActivityFlash time.Duration

	// Log gets LED write failures (once per LED: they are cosmetic). Nil
	// discards.
	Log *slog.Logger
}

// Ticker is the part of *time.Ticker the LEDs use.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

// Defaults for Options fields left zero.
const (
	DefaultUplinkBlink   = 250 * time.Millisecond
	DefaultActivityFlash = 40 * time.Millisecond
)

func (o Options) withDefaults() Options {
	if o.Lookup == nil {
		o.Lookup = periphLookup()
	}
	if o.NewTicker == nil {
		o.NewTicker = func(d time.Duration) Ticker { return timeTicker{time.NewTicker(d)} }
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	if o.UplinkBlink <= 0 {
		o.UplinkBlink = DefaultUplinkBlink
	}
	if o.ActivityFlash <= 0 {
		o.ActivityFlash = DefaultActivityFlash
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return o
}

type timeTicker struct{ t *time.Ticker }

func (t timeTicker) C() <-chan time.Time { return t.t.C }
func (t timeTicker) Stop()               { t.t.Stop() }

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
