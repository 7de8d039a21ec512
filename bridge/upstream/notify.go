package upstream

import (
	"context"
	"sync"
)

// notifier calls onDone callbacks one at a time, in the order they were
// posted, from its own goroutine. Outcomes become known on the libraries'
// goroutines (mostly the one reading the connection), which must never wait
// for the caller: post never blocks, and the queue is unbounded (in
// practice bounded by the messages in flight).
type notifier struct {
	mu      sync.Mutex
	queue   []func()
	started bool          // the goroutine was started
	stopped bool          // close was called
	exited  bool          // the goroutine has exited: post runs callbacks itself
	wake    chan struct{} // capacity 1: "the queue may be non-empty, or stopped"
	done    chan struct{} // closed when the goroutine has exited
}

func newNotifier() *notifier {
	return &notifier{wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// start starts the goroutine. It is started lazily, by Connect, so that a
// Client that is never connected owns no goroutine.
func (n *notifier) start() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.started || n.stopped {
		return
	}
	n.started = true
	go n.run()
}

// post queues f to run after everything posted before it. Without a
// goroutine (never started, or exited after close), f runs at once on the
// caller's goroutine: that only happens within Close, which fails pending
// messages, or after it.
func (n *notifier) post(f func()) {
	n.mu.Lock()
	if !n.started || n.exited {
		n.mu.Unlock()
		f()
		return
	}
	n.queue = append(n.queue, f)
	n.mu.Unlock()
	n.signal()
}

func (n *notifier) signal() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// complete posts onDone(err).
func (n *notifier) complete(onDone func(error), err error) {
	n.post(func() { onDone(err) })
}

func (n *notifier) run() {
	defer close(n.done)
	for {
		n.mu.Lock()
		batch := n.queue
		n.queue = nil
		if len(batch) == 0 && n.stopped {
			n.exited = true
			n.mu.Unlock()
			return
		}
		n.mu.Unlock()
		for _, f := range batch {
			f()
		}
		if len(batch) == 0 {
			<-n.wake
		}
	}
}

// barrier waits until everything posted before it has run, or ctx ends.
func (n *notifier) barrier(ctx context.Context) error {
	ran := make(chan struct{})
	n.post(func() { close(ran) })
	select {
	case <-ran:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close runs what is queued and stops the goroutine, waiting for it within
// ctx.
func (n *notifier) close(ctx context.Context) error {
	n.mu.Lock()
	n.stopped = true
	started := n.started
	n.mu.Unlock()
	if !started {
		return nil
	}
	n.signal()
	select {
	case <-n.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
