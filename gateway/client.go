package gateway

import (
	"sync"
	"time"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/mqttsn"
)

// clientState is where a client is in the specification's state diagram
// (§6.14), plus the will exchange of a connection.
type clientState int

const (
	stWillTopic clientState = iota // CONNECT with will: WILLTOPIC awaited
	stWillMsg                      // WILLMSG awaited
	stActive
	stAsleep
	stAwake
	stGone
)

// client is one MQTT-SN client and its broker session.
//
// Locking: c.mu guards the fields below it. Broker methods are never called
// with c.mu held: the broker calls deliver, which takes c.mu, from inside
// some of them.
type client struct {
	g     *Gateway
	id    string
	clean bool
	bc    *broker.LocalClient // nil until the will exchange is done

	mu        sync.Mutex
	at        peer
	state     clientState
	keepAlive time.Duration
	sleepFor  time.Duration
	will      *broker.Message
	topics    *topicTable
	pre       predefined
	timer     *time.Timer // keep-alive or sleep supervision
	since     time.Time   // connected (or loaded from the store, asleep)
	heard     time.Time   // last message from the client

	queue    []broker.Delivery // for the client, not yet sent
	out      *outbound         // the one message in flight to the client
	retry    *time.Timer
	nextID   uint16
	holding  int // > 0 while a SUBACK is pending: deliveries wait behind it
	inbound2 map[uint16]bool
}

// outbound is the message in flight to the client, kept for resending.
type outbound struct {
	d      broker.Delivery
	packet mqttsn.Packet // REGISTER, PUBLISH or PUBREL
	tries  int
}

func (c *client) peer() peer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.at
}

func (c *client) setPeer(p peer) {
	c.mu.Lock()
	c.at = p
	c.mu.Unlock()
}

func (c *client) sleeping() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state == stAsleep || c.state == stAwake
}

// sendLocked sends p to the client.
func (c *client) sendLocked(p mqttsn.Packet) { c.g.send(c.at, p) }

func (c *client) msgID() uint16 {
	c.nextID++
	if c.nextID == 0 {
		c.nextID = 1
	}
	return c.nextID
}

// tolerance is the grace the specification gives a client's own timer
// (§7.2): +50 % for durations up to a minute, +10 % above.
func tolerance(d time.Duration) time.Duration {
	if d <= time.Minute {
		return d * 3 / 2
	}
	return d + d/10
}

// supervise restarts the keep-alive or sleep timer after the client was
// heard. c.mu is held.
func (c *client) superviseLocked() {
	c.heard = time.Now()
	var d time.Duration
	switch c.state {
	case stActive, stWillTopic, stWillMsg:
		d = c.keepAlive
	case stAsleep:
		d = c.sleepFor
	case stAwake: // the client wakes on its own Tretry; no timer
	}
	if d <= 0 {
		if c.timer != nil {
			c.timer.Stop()
		}
		return
	}
	d = tolerance(d)
	if c.timer == nil {
		c.timer = time.AfterFunc(d, c.expired)
		return
	}
	c.timer.Reset(d)
}

// expired: the keep-alive or sleep timer ran out: the client is lost and
// its will published (§6.11, §6.14).
func (c *client) expired() {
	c.mu.Lock()
	lost := c.state != stGone && c.state != stAwake
	c.mu.Unlock()
	if lost {
		c.lose("timer expired")
	}
}

// end detaches the client from the broker, with or without its will, and
// forgets it. A persistent session's topic ids stay for its return.
func (c *client) end(publishWill bool) {
	c.mu.Lock()
	if c.state == stGone {
		c.mu.Unlock()
		return
	}
	bc := c.bc
	c.state = stGone
	c.persistLocked() // no longer asleep
	if c.timer != nil {
		c.timer.Stop()
	}
	if c.retry != nil {
		c.retry.Stop()
	}
	topics := c.topics
	c.mu.Unlock()
	c.g.forget(c)
	if !c.clean {
		c.g.keepTopics(c.id, topics)
	}
	if bc != nil {
		bc.Disconnect(publishWill)
		c.g.metrics.clientsConnected.Add(-1)
	}
}
