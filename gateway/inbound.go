package gateway

import (
	"context"
	"time"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/internal/topic"
	"github.com/sngate/sngate/mqttsn"
)

func secs(s uint16) time.Duration { return time.Duration(s) * time.Second }

// handle acts on one message from the client.
func (c *client) handle(p mqttsn.Packet) {
	c.mu.Lock()
	if c.state == stGone {
		c.mu.Unlock()
		return
	}
	c.superviseLocked()
	state := c.state
	c.mu.Unlock()

	switch p := p.(type) {
	case *mqttsn.WillTopic:
		c.onWillTopic(p)
		return
	case *mqttsn.WillMsg:
		c.onWillMsg(p)
		return
	case *mqttsn.Pingreq:
		c.onPing(p)
		return
	case *mqttsn.Disconnect:
		c.onDisconnect(p)
		return
	}
	switch p.(type) {
	case *mqttsn.Regack, *mqttsn.Puback, *mqttsn.Pubrec, *mqttsn.Pubcomp:
		if state == stActive || state == stAwake { // an awake client acks what it collects
			c.onAnswer(p)
			return
		}
	}
	if state != stActive {
		// An awake client only collects (§6.14); in the will exchange
		// nothing else belongs.
		c.g.metrics.unexpected.Add(1)
		return
	}
	switch p := p.(type) {
	case *mqttsn.Register:
		c.onRegister(p)
	case *mqttsn.Publish:
		c.onPublish(p)
	case *mqttsn.Pubrel:
		c.mu.Lock()
		delete(c.inbound2, p.MsgID)
		c.sendLocked(&mqttsn.Pubcomp{MsgID: p.MsgID})
		c.mu.Unlock()
	case *mqttsn.Subscribe:
		c.onSubscribe(p)
	case *mqttsn.Unsubscribe:
		c.onUnsubscribe(p)
	case *mqttsn.WillTopicUpd, *mqttsn.WillMsgUpd:
		c.onWillUpdate(p)
	default:
		c.g.metrics.unexpected.Add(1)
	}
}

func (c *client) onPing(p *mqttsn.Pingreq) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p.ClientID != "" && c.state == stAsleep {
		// Awake: send what was buffered, then PINGRESP (§6.14).
		c.state = stAwake
		c.superviseLocked()
		c.sendNextLocked()
		return
	}
	if c.state == stAwake {
		return // a resent PINGREQ: PINGRESP follows the buffered messages
	}
	c.sendLocked(&mqttsn.Pingresp{})
}

func (c *client) onDisconnect(p *mqttsn.Disconnect) {
	c.mu.Lock()
	if p.HasDuration && (c.state == stActive || c.state == stAsleep || c.state == stAwake) {
		c.state = stAsleep
		c.sleepFor = secs(p.Duration)
		c.superviseLocked()
		c.persistLocked()
		c.sendLocked(&mqttsn.Disconnect{}) // never with a duration (§7 pitfall 10)
		c.mu.Unlock()
		return
	}
	c.sendLocked(&mqttsn.Disconnect{})
	c.mu.Unlock()
	c.end(false) // a clean DISCONNECT: no will
}

func (c *client) onRegister(p *mqttsn.Register) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id, ok := c.topics.idFor(p.TopicName)
	rc := mqttsn.Accepted
	if !ok {
		rc = mqttsn.RejectedCongestion // the client's table is full
	}
	c.persistLocked() // not waited for: see persist.go
	c.sendLocked(&mqttsn.Regack{TopicID: id, MsgID: p.MsgID, ReturnCode: rc})
}

// topicName resolves the topic of a client's PUBLISH.
func (c *client) topicName(t mqttsn.TopicIDType, id uint16) (string, bool) {
	switch t {
	case mqttsn.TopicShort:
		return mqttsn.ShortTopicName(id), true
	case mqttsn.TopicPredefined:
		name, ok := c.pre.byID[id]
		return name, ok
	}
	return c.topics.name(id)
}

func (c *client) onPublish(p *mqttsn.Publish) {
	c.mu.Lock()
	name, ok := c.topicName(p.TopicIDType, p.TopicID)
	if !ok {
		c.sendLocked(&mqttsn.Puback{TopicID: p.TopicID, MsgID: p.MsgID, ReturnCode: mqttsn.RejectedInvalidID})
		c.mu.Unlock()
		return
	}
	if p.QoS == mqttsn.QoS2 {
		if c.inbound2[p.MsgID] { // resent before PUBREL: answer, do not deliver again
			c.sendLocked(&mqttsn.Pubrec{MsgID: p.MsgID})
			c.mu.Unlock()
			return
		}
		c.inbound2[p.MsgID] = true
	}
	bc := c.bc
	c.mu.Unlock()

	msg := broker.Message{Topic: name, Payload: append([]byte{}, p.Data...), QoS: byte(p.QoS), Retain: p.Retain}
	if p.QoS == mqttsn.QoS0 {
		_ = bc.Publish(c.g.ctx, msg)
		return
	}
	// QoS 1/2: the broker answers once the message is durable; the client
	// has one such PUBLISH open at a time, so a goroutine per message is
	// one per client at most.
	topicID, msgID, qos := p.TopicID, p.MsgID, p.QoS
	c.g.goOwned(func(ctx context.Context) {
		err := bc.Publish(ctx, msg)
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.state == stGone {
			return
		}
		switch {
		case err != nil:
			c.sendLocked(&mqttsn.Puback{TopicID: topicID, MsgID: msgID, ReturnCode: mqttsn.RejectedCongestion})
		case qos == mqttsn.QoS1:
			c.sendLocked(&mqttsn.Puback{TopicID: topicID, MsgID: msgID, ReturnCode: mqttsn.Accepted})
		default:
			c.sendLocked(&mqttsn.Pubrec{MsgID: msgID})
		}
	})
}

// filterOf resolves the topic of a SUBSCRIBE or UNSUBSCRIBE.
func (c *client) filterOf(t mqttsn.TopicIDType, name string, id uint16) (string, bool) {
	switch t {
	case mqttsn.TopicNormal:
		return name, true
	case mqttsn.TopicShort:
		return mqttsn.ShortTopicName(id), true
	}
	name, ok := c.pre.byID[id]
	return name, ok
}

func (c *client) onSubscribe(p *mqttsn.Subscribe) {
	c.mu.Lock()
	filter, ok := c.filterOf(p.TopicIDType, p.TopicName, p.TopicID)
	if !ok {
		c.sendLocked(&mqttsn.Suback{TopicID: p.TopicID, MsgID: p.MsgID, ReturnCode: mqttsn.RejectedInvalidID})
		c.mu.Unlock()
		return
	}
	// The id the gateway will publish with: assigned now for a plain name
	// (§6.9), 0 for a wildcard filter, the id itself otherwise.
	topicID := p.TopicID
	if p.TopicIDType == mqttsn.TopicNormal {
		topicID = 0
		if !topic.IsFilterWildcard(filter) {
			id, ok := c.topics.idFor(filter)
			if !ok {
				c.sendLocked(&mqttsn.Suback{MsgID: p.MsgID, ReturnCode: mqttsn.RejectedCongestion})
				c.mu.Unlock()
				return
			}
			topicID = id
			c.persistLocked()
		}
	}
	c.holding++ // retained messages come during Subscribe: they wait for SUBACK
	bc := c.bc
	c.mu.Unlock()

	msgID, qos := p.MsgID, byte(p.QoS)
	c.g.goOwned(func(ctx context.Context) {
		codes, err := bc.Subscribe(ctx, broker.Subscription{Filter: filter, QoS: qos})
		c.mu.Lock()
		defer c.mu.Unlock()
		c.holding--
		if c.state == stGone {
			return
		}
		ack := &mqttsn.Suback{TopicID: topicID, MsgID: msgID}
		switch {
		case err != nil:
			ack.ReturnCode = mqttsn.RejectedCongestion
		case codes[0] == 0x80:
			ack.ReturnCode = mqttsn.RejectedUnsupported // refused by the ACL
		default:
			ack.QoS = mqttsn.QoS(codes[0])
		}
		c.sendLocked(ack)
		c.sendNextLocked()
	})
}

func (c *client) onUnsubscribe(p *mqttsn.Unsubscribe) {
	c.mu.Lock()
	filter, ok := c.filterOf(p.TopicIDType, p.TopicName, p.TopicID)
	bc := c.bc
	c.mu.Unlock()
	msgID := p.MsgID
	if !ok { // nothing to unsubscribe from; UNSUBACK has no return code
		c.mu.Lock()
		c.sendLocked(&mqttsn.Unsuback{MsgID: msgID})
		c.mu.Unlock()
		return
	}
	c.g.goOwned(func(ctx context.Context) {
		_ = bc.Unsubscribe(ctx, filter)
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.state != stGone {
			c.sendLocked(&mqttsn.Unsuback{MsgID: msgID})
		}
	})
}

// goOwned runs f on a goroutine the gateway waits for at Shutdown.
func (g *Gateway) goOwned(f func(ctx context.Context)) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		f(g.ctx)
	}()
}
