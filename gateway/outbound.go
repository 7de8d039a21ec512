package gateway

import (
	"context"
	"time"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/mqttsn"
)

// deliver is the broker's OnMessage: it queues a message for the client.
// The broker calls it with its session locked, so it only queues and sends
// datagrams; it never calls back into the broker.
func (c *client) deliver(d broker.Delivery) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == stGone {
		return
	}
	if c.state == stAsleep && d.QoS == 0 && c.bufferedQoS0() >= c.g.cfg.MaxSleepBuffer {
		// A sleeper's buffer is bounded; QoS 1/2 messages are bounded by the
		// broker's in-flight window and wait in its queue instead.
		c.g.metrics.droppedSleepBuffer.Add(1)
		return
	}
	c.queue = append(c.queue, d)
	c.sendNextLocked()
}

func (c *client) bufferedQoS0() int {
	n := 0
	for _, d := range c.queue {
		if d.QoS == 0 {
			n++
		}
	}
	return n
}

// sendNextLocked sends queued messages while nothing is in flight: one
// QoS 1/2 PUBLISH (or its REGISTER) at a time. An awake client gets
// PINGRESP once the queue is empty, and goes back to sleep. c.mu is held.
func (c *client) sendNextLocked() {
	if c.out != nil || c.holding > 0 || (c.state != stActive && c.state != stAwake) {
		return
	}
	for len(c.queue) > 0 {
		d := c.queue[0]
		idType, id, known := c.topicFor(d.Message.Topic)
		if !known {
			// The client has no id for this topic: REGISTER it first and
			// wait for REGACK (§6.10).
			tid, ok := c.topics.idFor(d.Message.Topic)
			if !ok {
				c.g.log.Warn("topic table full: message dropped", "client", c.id, "topic", d.Message.Topic)
				c.dropHeadLocked()
				continue
			}
			c.persistLocked()
			c.startLocked(d, &mqttsn.Register{TopicID: tid, MsgID: c.msgID(), TopicName: d.Message.Topic})
			return
		}
		pub := &mqttsn.Publish{QoS: mqttsn.QoS(d.QoS), Retain: d.Retain, TopicIDType: idType, TopicID: id, Data: d.Message.Payload}
		if d.QoS == 0 {
			c.queue = c.queue[1:]
			c.sendLocked(pub)
			continue
		}
		c.queue = c.queue[1:]
		pub.MsgID = c.msgID()
		c.startLocked(d, pub)
		return
	}
	c.queue = nil
	if c.state == stAwake {
		c.sendLocked(&mqttsn.Pingresp{}) // no more buffered messages
		c.state = stAsleep
		c.superviseLocked()
	}
}

// topicFor says how the client addresses topic: a predefined id, a short
// name, or a registered id.
func (c *client) topicFor(topic string) (mqttsn.TopicIDType, uint16, bool) {
	if id, ok := c.pre.byName[topic]; ok {
		return mqttsn.TopicPredefined, id, true
	}
	if id, ok := mqttsn.ShortTopicID(topic); ok {
		return mqttsn.TopicShort, id, true
	}
	id, ok := c.topics.idOf(topic)
	return mqttsn.TopicNormal, id, ok
}

// startLocked sends p as the message in flight, under Tretry.
func (c *client) startLocked(d broker.Delivery, p mqttsn.Packet) {
	c.out = &outbound{d: d, packet: p}
	c.sendLocked(p)
	c.armRetryLocked()
}

func (c *client) armRetryLocked() {
	if c.retry == nil {
		c.retry = time.AfterFunc(c.g.cfg.RetryInterval, c.retransmit)
		return
	}
	c.retry.Reset(c.g.cfg.RetryInterval)
}

// retransmit resends the message in flight with DUP set, or gives the
// client up after Nretry resends (§6.13).
func (c *client) retransmit() {
	c.mu.Lock()
	if c.out == nil || c.state == stGone {
		c.mu.Unlock()
		return
	}
	if c.out.tries >= c.g.cfg.MaxRetries {
		c.mu.Unlock()
		c.lose("no answer to retransmissions")
		return
	}
	c.out.tries++
	if pub, ok := c.out.packet.(*mqttsn.Publish); ok {
		pub.DUP = true
	}
	c.sendLocked(c.out.packet)
	c.armRetryLocked()
	c.mu.Unlock()
}

// dropHeadLocked gives up the first queued message; the broker learns it
// was taken, so that its window moves on.
func (c *client) dropHeadLocked() {
	d := c.queue[0]
	c.queue = c.queue[1:]
	if d.QoS > 0 {
		bc, pid := c.bc, d.PacketID
		c.g.goOwned(func(context.Context) { bc.Ack(pid) }) // not under c.mu
	}
}

// onAnswer handles the client's REGACK, PUBACK, PUBREC and PUBCOMP for the
// message in flight.
func (c *client) onAnswer(p mqttsn.Packet) {
	c.mu.Lock()
	out := c.out
	if out == nil {
		c.mu.Unlock()
		c.g.metrics.unexpected.Add(1)
		return
	}
	var ackBroker uint16
	switch p := p.(type) {
	case *mqttsn.Regack:
		reg, ok := out.packet.(*mqttsn.Register)
		if !ok || reg.MsgID != p.MsgID {
			break
		}
		c.out = nil
		if p.ReturnCode != mqttsn.Accepted {
			// The client refuses the topic: that message is not for it.
			c.topics.forget(reg.TopicID)
			if out.d.QoS > 0 {
				ackBroker = out.d.PacketID
			}
			c.queue = c.queue[1:]
		}
	case *mqttsn.Puback:
		pub, ok := out.packet.(*mqttsn.Publish)
		if !ok || pub.MsgID != p.MsgID {
			break
		}
		c.out = nil
		if p.ReturnCode == mqttsn.RejectedInvalidID && pub.TopicIDType == mqttsn.TopicNormal {
			// The client lost our id: register the topic again and resend.
			c.topics.forget(pub.TopicID)
			c.queue = append([]broker.Delivery{out.d}, c.queue...)
			break
		}
		ackBroker = out.d.PacketID
	case *mqttsn.Pubrec:
		pub, ok := out.packet.(*mqttsn.Publish)
		if !ok || pub.MsgID != p.MsgID {
			break
		}
		out.packet, out.tries = &mqttsn.Pubrel{MsgID: p.MsgID}, 0
		c.sendLocked(out.packet)
		c.armRetryLocked()
	case *mqttsn.Pubcomp:
		rel, ok := out.packet.(*mqttsn.Pubrel)
		if !ok || rel.MsgID != p.MsgID {
			break
		}
		c.out = nil
		ackBroker = out.d.PacketID
	}
	if c.out == nil && c.retry != nil {
		c.retry.Stop()
	}
	c.persistLocked() // an id forgotten above
	bc := c.bc
	c.mu.Unlock()
	if ackBroker != 0 {
		bc.Ack(ackBroker) // may deliver the next message through deliver
	}
	c.mu.Lock()
	c.sendNextLocked()
	c.mu.Unlock()
}
