package broker

import (
	"net"
	"sync"
	"sync/atomic"
)

// maxOutputBuffer bounds what one connection may have waiting to be written.
// A client that reads slower than it is sent to loses QoS 0 messages beyond
// it (counted); QoS 1/2 traffic is bounded by the in-flight window instead.
const maxOutputBuffer = 4 << 20

// maxKeptBuffer is the largest write buffer a connection keeps between
// bursts.
const maxKeptBuffer = 128 << 10

// output is a connection's write side. Packets are appended to a buffer
// under a lock by whichever goroutine produces them (the publisher's reader
// goroutine on fan-out) and written by a flusher goroutine that runs only
// while there is something to write, so an idle connection costs no
// goroutine and no buffer.
type output struct {
	nc      net.Conn
	written *atomic.Int64 // bytes written, for metrics
	onError func(error)   // the connection's close path

	mu       sync.Mutex
	buf      []byte
	spare    []byte
	flushing bool
	closed   bool
}

// append runs fn to add packets to the buffer and makes sure they get
// written. It reports false when the connection is closed or, for optional
// (QoS 0) traffic, when the buffer is over its bound.
func (o *output) append(optional bool, fn func([]byte) []byte) bool {
	o.mu.Lock()
	if o.closed || (optional && len(o.buf) > maxOutputBuffer) {
		o.mu.Unlock()
		return false
	}
	o.buf = fn(o.buf)
	start := !o.flushing
	o.flushing = true
	o.mu.Unlock()
	if start {
		go o.flush()
	}
	return true
}

// flush writes the buffer until it is empty, then ends.
func (o *output) flush() {
	for {
		o.mu.Lock()
		if len(o.buf) == 0 || o.closed {
			o.flushing = false
			// Keep the buffers for the next burst unless they grew large:
			// regrowing them for every burst cost more than the writes.
			if cap(o.spare) > maxKeptBuffer {
				o.spare = nil
			}
			if cap(o.buf) > maxKeptBuffer {
				o.buf = nil
			}
			o.mu.Unlock()
			return
		}
		out := o.buf
		o.buf = o.spare[:0]
		o.mu.Unlock()

		n, err := o.nc.Write(out)
		o.written.Add(int64(n))

		o.mu.Lock()
		o.spare = out[:0]
		o.mu.Unlock()
		if err != nil {
			o.mu.Lock()
			o.flushing = false
			o.mu.Unlock()
			o.onError(err)
			return
		}
	}
}

// close stops further writes; what is buffered is dropped.
func (o *output) close() {
	o.mu.Lock()
	o.closed = true
	o.buf = nil
	o.mu.Unlock()
}
