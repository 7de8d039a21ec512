package serialtest

import "syscall"

// procAttr makes the kernel stop socat when the test process dies, so
// that a test binary killed by a timeout does not leave socat behind.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
