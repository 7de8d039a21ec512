//go:build !linux

package queue

import "go.etcd.io/bbolt"

// dropMapped is a no-op where madvise(MADV_DONTNEED) is not wired up.
func dropMapped(*bbolt.Tx) error { return nil }
