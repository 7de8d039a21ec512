//go:build !linux

package serial

import (
	"errors"
	"os"
)

// setFlowControl: go.bug.st/serial has no RTS/CTS setting, and the
// termios call that does it is only written for Linux.
func setFlowControl(_ *os.File, rtscts bool) error {
	if rtscts {
		return errors.New("rtscts is only supported on Linux")
	}
	return nil
}
