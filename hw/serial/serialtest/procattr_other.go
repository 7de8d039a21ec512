//go:build !linux

package serialtest

import "syscall"

// procAttr: only Linux can tie socat's life to the test process.
func procAttr() *syscall.SysProcAttr { return nil }
