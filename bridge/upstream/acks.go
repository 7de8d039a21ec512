package upstream

import "sync"

// inOrderAcks sends acknowledgements of received messages in the order the
// messages were received, whatever order the caller acknowledges them in:
// MQTT requires it (3.1.1 section 4.6, MQTT 5 section 4.6), and
// paho.mqtt.golang's Message.Ack sends at once. (paho.golang orders its
// manual acknowledgements itself.) One per connection.
type inOrderAcks struct {
	mu    sync.Mutex
	queue []*pendingAck // received, in order, not yet sent
}

type pendingAck struct {
	send  func()
	acked bool
}

// add records a received message whose acknowledgement is sent by send,
// and returns the caller's ack function; calls after the first are no-ops.
func (a *inOrderAcks) add(send func()) (ack func()) {
	p := &pendingAck{send: send}
	a.mu.Lock()
	a.queue = append(a.queue, p)
	a.mu.Unlock()
	return func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		if p.acked {
			return
		}
		p.acked = true
		// Sending under the lock keeps acknowledgements from concurrent
		// callers in order on the wire.
		n := 0
		for n < len(a.queue) && a.queue[n].acked {
			a.queue[n].send()
			a.queue[n] = nil
			n++
		}
		a.queue = a.queue[n:]
		if len(a.queue) == 0 {
			a.queue = nil // let the backing array go
		}
	}
}

// waiting is the number of received messages not yet acknowledged upstream.
func (a *inOrderAcks) waiting() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.queue)
}
