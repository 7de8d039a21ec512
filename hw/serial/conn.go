package serial

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"time"

	"go.bug.st/serial"
)

// conn is one opening of the device. sp is go.bug.st/serial's port: it
// configured the line and holds TIOCEXCL. f is a second descriptor of the
// same tty, non-blocking and served by the runtime poller, that carries the
// data with deadlines (the package documentation says why).
type conn struct {
	path string
	f    *os.File
	sp   serial.Port
}

// openConn opens and configures the device at path. Bytes that arrived
// before are discarded: what a radio sent before a reset or an unplug
// would only confuse the framer.
func openConn(path string, cfg Config) (*conn, error) {
	// Ours first: go.bug.st/serial takes TIOCEXCL at the end of its Open,
	// after which only root could open the tty again. O_NONBLOCK also keeps
	// open(2) from waiting for carrier detect on a modem line.
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOCTTY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, describeOpenError(path, err)
	}
	sp, err := serial.Open(path, cfg.mode())
	if err != nil {
		f.Close()
		var pe *serial.PortError
		if errors.As(err, &pe) && pe.Code() == serial.InvalidSerialPort {
			return nil, fmt.Errorf("serial: %s is not a serial port that can be set to %s: %w", path, lineString(cfg), err)
		}
		return nil, fmt.Errorf("serial: configuring %s: %w", path, err)
	}
	c := &conn{path: path, f: f, sp: sp}
	if err := setFlowControl(f, cfg.RTSCTS); err != nil {
		c.close()
		return nil, fmt.Errorf("serial: %s: %w", path, err)
	}
	if err := f.SetDeadline(time.Time{}); err != nil {
		c.close()
		return nil, fmt.Errorf("serial: %s does not support read and write timeouts (%w); is it a tty?", path, err)
	}
	if err := sp.ResetInputBuffer(); err != nil {
		c.close()
		return nil, fmt.Errorf("serial: %s: discarding stale input: %w", path, err)
	}
	return c, nil
}

// close closes both descriptors. Closing f wakes a Read or Write blocked
// on it (they fail with os.ErrClosed).
func (c *conn) close() error {
	return errors.Join(c.f.Close(), c.sp.Close())
}

// describeOpenError turns the usual reasons a device does not open into
// advice; the gateway refuses to start with this message.
func describeOpenError(path string, err error) error {
	var hint string
	switch {
	case errors.Is(err, fs.ErrNotExist):
		hint = "no such serial port"
		if ids := serialByID(); ids != "" {
			hint += "; /dev/serial/by-id has " + ids
		}
	case errors.Is(err, fs.ErrPermission):
		hint = "add the gateway's user to the group owning the device (usually dialout)"
	case errors.Is(err, syscall.EBUSY):
		hint = "another process has it open exclusively"
	default:
		return fmt.Errorf("serial: %w", err)
	}
	return fmt.Errorf("serial: %w (%s)", err, hint)
}

// serialByID lists /dev/serial/by-id, the stable names udev gives USB
// adapters, as the likely right value of a mistyped path.
func serialByID() string {
	const dir = "/dev/serial/by-id"
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		return ""
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = dir + "/" + e.Name()
	}
	return strings.Join(names, ", ")
}

// lineString is the line settings in the usual short form: "115200 8N1
// rtscts".
func lineString(cfg Config) string {
	s := fmt.Sprintf("%d %d%s%s", cfg.Baud, cfg.DataBits, strings.ToUpper(cfg.Parity[:1]), cfg.StopBits)
	if cfg.RTSCTS {
		s += " rtscts"
	}
	return s
}
