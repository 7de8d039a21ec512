package serial

import (
	"context"
	"log/slog"
	"time"

	"go.bug.st/serial/enumerator"
)

// Options are the settings that do not belong in the configuration file.
// The zero value is ready to use; like net.Dialer, Options opens ports:
//
//	p, err := serial.Options{ReadTimeout: 5 * time.Millisecond}.Open(ctx, cfg, log)
type Options struct {
	// ReadTimeout is how long an idle line keeps Read waiting before it
	// returns (0, nil); framers take that as the gap between packets.
	// Default 10ms.
	ReadTimeout time.Duration

	// WriteTimeout bounds one Write; see ErrWriteTimeout. Default 1s.
	// Negative: no bound.
	WriteTimeout time.Duration

	// MinBackoff and MaxBackoff bound the wait between two attempts to
	// reopen a lost port; it doubles from MinBackoff up to MaxBackoff,
	// jittered. Defaults 100ms and 5s.
	MinBackoff, MaxBackoff time.Duration

	// ListPorts lists the serial ports with their USB ids, for Config.USB.
	// Default: read from sysfs, with the same result type as
	// enumerator.GetDetailedPortsList (which is not the default because it
	// reconfigures every /dev/ttyS*; see the package documentation).
	ListPorts func() ([]*enumerator.PortDetails, error)
}

// Defaults for Options fields left zero.
const (
	DefaultReadTimeout  = 10 * time.Millisecond
	DefaultWriteTimeout = time.Second
	DefaultMinBackoff   = 100 * time.Millisecond
	DefaultMaxBackoff   = 5 * time.Second
)

func (o Options) withDefaults() Options {
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = DefaultReadTimeout
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	o.MaxBackoff = max(o.MaxBackoff, o.MinBackoff)
	if o.ListPorts == nil {
		o.ListPorts = listSysfsPorts
	}
	return o
}

// Open opens the port with default Options; see Options.Open.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Port, error) {
	return Options{}.Open(ctx, cfg, log)
}
