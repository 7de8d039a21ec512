//go:build linux

package queue

import (
	"syscall"

	"go.etcd.io/bbolt"
)

// dropMapped tells the kernel that the process no longer needs the pages
// of the file it touched through bbolt's read-only shared mapping: they
// leave the process's resident set (and stay in the page cache, from which
// the next access maps them again). Without it every page a Read or an
// append ever touched counts in the process's RSS until bbolt remaps the
// file; draining a million records would show the whole file as resident.
// Safe while other transactions read: bbolt writes with pwrite, never
// through the mapping, and tx (a read transaction) keeps the mapping from
// being replaced meanwhile.
func dropMapped(tx *bbolt.Tx) error {
	if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, tx.DB().Info().Data, uintptr(tx.Size()), syscall.MADV_DONTNEED); errno != 0 {
		return errno
	}
	return nil
}
