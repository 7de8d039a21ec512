package gpio

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Config names the GPIO pins a gateway box uses, by periph's names
// ("GPIO17"; on a Raspberry Pi also "P1_11"). Every pin is optional; with
// none set, the GPIO is not touched at all.
type Config struct {
	// ResetPin is pulsed to reset the radio: at start and whenever it
	// stops answering.
	ResetPin string `yaml:"reset_pin"`
	// ResetActiveLow says the reset line resets the radio when low, as an
	// XBee's RESET pin does; that is the default. Set it false when a
	// transistor between the GPIO and the radio inverts the signal.
	ResetActiveLow *bool `yaml:"reset_active_low"`
	// ResetPulse is how long reset is held; default 100ms (an XBee needs
	// far less, so there is margin for slow line drivers).
	ResetPulse time.Duration `yaml:"reset_pulse"`
	// UplinkLED is lit while the bridge is connected and blinks while it
	// drains a backlog. LEDs are active high (GPIO → resistor → LED →
	// ground).
	UplinkLED string `yaml:"uplink_led"`
	// ActivityLED flashes on traffic.
	ActivityLED string `yaml:"activity_led"`
}

// Defaults and limits.
const (
	DefaultResetPulse = 100 * time.Millisecond
	MaxResetPulse     = 10 * time.Second // Close waits for a pulse to end
)

// Enabled says whether any pin is configured.
func (c Config) Enabled() bool {
	return c.ResetPin != "" || c.UplinkLED != "" || c.ActivityLED != ""
}

func (c Config) withDefaults() Config {
	if c.ResetPulse == 0 {
		c.ResetPulse = DefaultResetPulse
	}
	return c
}

// resetActiveLow is ResetActiveLow with its default.
func (c Config) resetActiveLow() bool {
	return c.ResetActiveLow == nil || *c.ResetActiveLow
}

// FieldError is a configuration error about one key of Config, so that the
// configuration loader can point at its line.
type FieldError struct {
	Key string
	Msg string
}

func (e *FieldError) Error() string { return e.Key + ": " + e.Msg }

// Field returns the key, relative to Config.
func (e *FieldError) Field() string { return e.Key }

// Validate reports every setting that cannot work, as *FieldError values
// joined with errors.Join. Whether a pin exists is only known at Open.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &FieldError{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	if c.ResetPulse < 0 || c.ResetPulse > MaxResetPulse {
		bad("reset_pulse", "%v is not between 0 (default %v) and %v", c.ResetPulse, DefaultResetPulse, MaxResetPulse)
	}
	used := map[string]string{}
	for _, p := range c.pins() {
		if p.name == "" {
			continue
		}
		if strings.TrimSpace(p.name) != p.name {
			bad(p.key, "%q has spaces around the pin name", p.name)
		}
		if other, ok := used[p.name]; ok {
			bad(p.key, "%s is %s already", p.name, other)
		}
		used[p.name] = p.key
	}
	return errors.Join(errs...)
}

// pinRef is a configured pin and its configuration key.
type pinRef struct{ key, name string }

func (c Config) pins() []pinRef {
	return []pinRef{{"reset_pin", c.ResetPin}, {"uplink_led", c.UplinkLED}, {"activity_led", c.ActivityLED}}
}
