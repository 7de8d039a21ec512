package serial

import (
	"errors"
	"fmt"
	"strings"

	"go.bug.st/serial"
)

// Config says which serial port to open and how to set the line. It is
// decoded from the configuration file of whatever uses the port (an XBee
// or raw serial transport).
type Config struct {
	Path     string    `yaml:"path"`      // /dev/ttyAMA0, /dev/serial/by-id/...
	USB      *USBMatch `yaml:"usb"`       // or find the port by USB ids; exactly one of path and usb
	Baud     int       `yaml:"baud"`      // default 9600; non-standard rates work on Linux
	DataBits int       `yaml:"data_bits"` // 5..8, default 8
	Parity   string    `yaml:"parity"`    // none|even|odd|mark|space, default none
	StopBits string    `yaml:"stop_bits"` // "1" or "2", default "1" ("1.5" cannot be set on Linux)
	RTSCTS   bool      `yaml:"rtscts"`    // hardware flow control
}

// USBMatch finds a USB serial adapter by its ids rather than by a device
// name, because /dev/ttyUSBn numbers change with the order adapters are
// plugged in. Serial tells apart two adapters with the same VID:PID.
type USBMatch struct {
	VID    string `yaml:"vid"`    // 4 hex digits, e.g. "0403" (FTDI)
	PID    string `yaml:"pid"`    // 4 hex digits, e.g. "6015"
	Serial string `yaml:"serial"` // the adapter's USB serial number; optional
}

// String is the match as it appears in messages: "0403:6015" or
// "0403:6015 serial A50285BI".
func (m USBMatch) String() string {
	s := normHex(m.VID) + ":" + normHex(m.PID)
	if m.Serial != "" {
		s += " serial " + m.Serial
	}
	return s
}

// Defaults for fields left zero.
const (
	DefaultBaud     = 9600
	DefaultDataBits = 8
	DefaultParity   = "none"
	DefaultStopBits = "1"
)

func (c Config) withDefaults() Config {
	if c.Baud == 0 {
		c.Baud = DefaultBaud
	}
	if c.DataBits == 0 {
		c.DataBits = DefaultDataBits
	}
	if c.Parity == "" {
		c.Parity = DefaultParity
	}
	if c.StopBits == "" {
		c.StopBits = DefaultStopBits
	}
	return c
}

// FieldError is a configuration error about one key of Config, so that the
// configuration loader can point at its line.
type FieldError struct {
	Key string // relative to Config, e.g. "usb.vid"
	Msg string
}

func (e *FieldError) Error() string { return e.Key + ": " + e.Msg }

// Field returns the dotted key path.
func (e *FieldError) Field() string { return e.Key }

// parity maps the parity setting (any case) to go.bug.st/serial's.
func parity(s string) (serial.Parity, bool) {
	switch strings.ToLower(s) {
	case "none":
		return serial.NoParity, true
	case "even":
		return serial.EvenParity, true
	case "odd":
		return serial.OddParity, true
	case "mark":
		return serial.MarkParity, true
	case "space":
		return serial.SpaceParity, true
	}
	return 0, false
}

// Validate reports every setting that cannot work, as *FieldError values
// joined with errors.Join.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &FieldError{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	switch {
	case c.Path == "" && c.USB == nil:
		bad("path", "set path or usb to say which serial port to use")
	case c.Path != "" && c.USB != nil:
		bad("path", "set path or usb, not both")
	}
	if c.USB != nil {
		if !isHex4(c.USB.VID) {
			bad("usb.vid", "%q is not a USB vendor id (4 hex digits, e.g. \"0403\")", c.USB.VID)
		}
		if !isHex4(c.USB.PID) {
			bad("usb.pid", "%q is not a USB product id (4 hex digits, e.g. \"6015\")", c.USB.PID)
		}
	}
	if c.Baud < 0 {
		bad("baud", "%d must be positive (0 = %d)", c.Baud, DefaultBaud)
	}
	if c.DataBits != 0 && (c.DataBits < 5 || c.DataBits > 8) {
		bad("data_bits", "%d is not 5, 6, 7 or 8", c.DataBits)
	}
	if _, ok := parity(c.Parity); c.Parity != "" && !ok {
		bad("parity", "%q is not none, even, odd, mark or space", c.Parity)
	}
	switch c.StopBits {
	case "", "1", "2":
	case "1.5":
		bad("stop_bits", "1.5 stop bits cannot be set on Linux (termios knows 1 and 2); use 1 or 2")
	default:
		bad("stop_bits", "%q is not 1 or 2", c.StopBits)
	}
	return errors.Join(errs...)
}

// mode is the go.bug.st/serial form of the line settings; c has its
// defaults and is valid.
func (c Config) mode() *serial.Mode {
	par, _ := parity(c.Parity)
	stop := serial.OneStopBit
	if c.StopBits == "2" {
		stop = serial.TwoStopBits
	}
	return &serial.Mode{
		BaudRate: c.Baud,
		DataBits: c.DataBits,
		Parity:   par,
		StopBits: stop,
		// InitialStatusBits stays nil: setting it makes go.bug.st/serial
		// call TIOCMGET/TIOCMSET, which ptys reject, and the kernel
		// raises DTR and RTS on open anyway.
	}
}

func isHex4(s string) bool {
	s = normHex(s)
	if len(s) != 4 {
		return false
	}
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdef", r) {
			return false
		}
	}
	return true
}

// normHex makes ids comparable with what sysfs reports: lower case, no
// "0x".
func normHex(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	return strings.TrimPrefix(s, "0x")
}
