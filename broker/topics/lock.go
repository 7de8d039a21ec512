package topics

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// readMostlyLock is a reader-writer lock made of one RWMutex per P, each on
// its own cache lines ("big reader" lock). A reader locks one slot; a writer
// locks every slot, in order. With a single sync.RWMutex every RLock and
// RUnlock writes the same reader counter, whose cache line then bounces
// between the cores: on two cores, parallel Match calls managed less
// throughput than one core alone. Here each core mostly writes its own slot.
//
// Which slot a reader takes is only a placement hint, read from a sync.Pool
// (per-P, so the readers on one P keep finding the same slot) and put back
// at once, before locking. The hint is never held while blocked: holding a
// pooled item across a blocking RLock drained the pool and gave writers
// tail latencies of hundreds of milliseconds. When the pool is empty (at
// first, or after GCs clear it) New hands out the next slot round robin; the
// slots are fixed, so nothing is allocated, and two Ps on one slot are
// merely slower. Correctness never depends on the hint: a reader unlocks the
// slot it locked, and a writer excludes readers on every slot.
type readMostlyLock struct {
	slots []lockSlot
	next  atomic.Uint32
	pool  sync.Pool
}

type lockSlot struct {
	sync.RWMutex
	_ [128 - 24]byte // own cache line pair (adjacent-line prefetch)
}

func (l *readMostlyLock) init() {
	l.slots = make([]lockSlot, min(max(runtime.GOMAXPROCS(0), 1), 64))
	l.pool.New = func() any {
		return &l.slots[int(l.next.Add(1)-1)%len(l.slots)]
	}
}

// rlock read-locks one slot and returns it for runlock.
func (l *readMostlyLock) rlock() *lockSlot {
	s := l.pool.Get().(*lockSlot)
	l.pool.Put(s)
	s.RLock()
	return s
}

func (l *readMostlyLock) runlock(s *lockSlot) { s.RUnlock() }

func (l *readMostlyLock) lock() {
	for i := range l.slots {
		l.slots[i].Lock()
	}
}

func (l *readMostlyLock) unlock() {
	for i := len(l.slots) - 1; i >= 0; i-- {
		l.slots[i].Unlock()
	}
}
