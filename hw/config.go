package hw

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"

	"github.com/sngate/sngate/hw/gpio"
	"github.com/sngate/sngate/hw/serial"
	"github.com/sngate/sngate/internal/configerr"
)

// PortConfig is one serial port of the gateway: where it is, how the line
// is set, and how MQTT-SN travels on it.
type PortConfig struct {
	// Name names the port in logs, metrics and peer addresses.
	Name          string `yaml:"name"`
	serial.Config `yaml:",inline"`
	// Framing: raw (bare MQTT-SN, as mqtt-sn-tools and most Arduino
	// sketches write it), slip (RFC 1055) or xbee (Digi API frames).
	Framing string     `yaml:"framing"`
	XBee    XBeeConfig `yaml:"xbee"`
	// GPIO of this radio: its reset line (reset_pin, reset_active_low,
	// reset_pulse), pulsed at start and when the radio stops answering.
	GPIO gpio.Config `yaml:"gpio"`
}

// XBeeConfig is what the radio on an xbee port must be set to; it is
// checked at start (AT commands AP and AO).
type XBeeConfig struct {
	// APIMode is the radio's AP: 1 (unescaped) or 2 (escaped, the
	// default, safer on a line with XON/XOFF bytes).
	APIMode int `yaml:"api_mode"`
	// APIOptions is the radio's AO: 0 (receive frames 0x90, the default)
	// or 1 (explicit 0x91); both are read.
	APIOptions int `yaml:"api_options"`
}

// Defaults for fields left zero.
const DefaultAPIMode = 2

// FieldError is a configuration error about one key, so that the loader
// can point at its line.
type FieldError = configerr.FieldError

var validName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidatePorts reports every problem of a list of ports, keyed from the
// list ("0.framing").
func ValidatePorts(ports []PortConfig) error {
	var errs []error
	names := map[string]bool{}
	for i, p := range ports {
		bad := func(key, format string, args ...any) {
			errs = append(errs, &FieldError{Key: fmt.Sprintf("%d.%s", i, key), Msg: fmt.Sprintf(format, args...)})
		}
		if !validName.MatchString(p.Name) {
			bad("name", "%q must be 1 to 64 letters, digits, '-' or '_'", p.Name)
		} else if names[p.Name] {
			bad("name", "%q is used by another port", p.Name)
		}
		names[p.Name] = true
		switch p.Framing {
		case FramingRaw, FramingSLIP, FramingXBee:
		default:
			bad("framing", "%q is not one of raw, slip, xbee", p.Framing)
		}
		if m := p.XBee.APIMode; m != 0 && m != 1 && m != 2 {
			bad("xbee.api_mode", "%d is not 1 or 2", m)
		}
		if o := p.XBee.APIOptions; o != 0 && o != 1 {
			bad("xbee.api_options", "%d is not 0 or 1", o)
		}
		if p.GPIO.UplinkLED != "" || p.GPIO.ActivityLED != "" {
			bad("gpio", "LEDs belong in the top-level gpio section; a port has only its reset line")
		}
		if p.GPIO.ResetPin != "" && p.Framing != FramingXBee {
			bad("gpio.reset_pin", "only an xbee port has a radio to reset")
		}
		errs = append(errs, configerr.Under(fmt.Sprintf("%d.gpio", i), p.GPIO.Validate())...)
		errs = append(errs, configerr.Under(strconv.Itoa(i), p.Config.Validate())...)
	}
	return errors.Join(errs...)
}
