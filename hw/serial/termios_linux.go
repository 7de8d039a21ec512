package serial

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// setFlowControl turns RTS/CTS hardware flow control on or off through
// termios on f, and reads the setting back: go.bug.st/serial v1.6.4 has no
// such setting on Linux (its Open clears CRTSCTS), and a driver without
// flow control support drops the flag silently. termios belongs to the tty,
// so setting it on our descriptor sets it for go.bug.st's too.
func setFlowControl(f *os.File, rtscts bool) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("setting flow control: %w", err)
	}
	var opErr error
	err = rc.Control(func(fd uintptr) {
		t, err := unix.IoctlGetTermios(int(fd), unix.TCGETS)
		if err != nil {
			opErr = fmt.Errorf("reading termios: %w", err)
			return
		}
		if rtscts {
			t.Cflag |= unix.CRTSCTS
		} else {
			t.Cflag &^= unix.CRTSCTS
		}
		if err := unix.IoctlSetTermios(int(fd), unix.TCSETS, t); err != nil {
			opErr = fmt.Errorf("setting CRTSCTS=%v: %w", rtscts, err)
			return
		}
		t, err = unix.IoctlGetTermios(int(fd), unix.TCGETS)
		if err != nil {
			opErr = fmt.Errorf("reading termios back: %w", err)
			return
		}
		if (t.Cflag&unix.CRTSCTS != 0) != rtscts {
			opErr = errors.New("the driver does not support RTS/CTS hardware flow control (CRTSCTS did not stick); set rtscts: false")
		}
	})
	return errors.Join(err, opErr)
}
