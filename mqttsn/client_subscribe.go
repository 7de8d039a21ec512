package mqttsn

import (
	"context"
	"errors"

	"github.com/sngate/sngate/internal/topic"
)

// Subscribe asks for messages on topic (a name or filter, a predefined id or
// a short name) up to qos, and returns the QoS the gateway granted. For a
// plain name the topic id in SUBACK is remembered, so messages on it carry
// the name; for a wildcard filter the gateway registers each topic before
// its first message.
func (c *Client) Subscribe(ctx context.Context, t Topic, qos QoS) (QoS, error) {
	if qos < QoS0 || qos > QoS2 {
		return 0, errors.New("mqttsn: subscribe: QoS must be 0, 1 or 2")
	}
	sub := &Subscribe{QoS: qos, TopicIDType: t.Type, TopicName: t.Name}
	if t.Type != TopicNormal {
		sub.TopicName = ""
		id, err := t.id()
		if err != nil {
			return 0, err
		}
		sub.TopicID = id
	}
	p, err := c.subExchange(ctx, sub, func(id uint16) { sub.MsgID = id }, func(p Packet, id uint16) bool {
		a, ok := p.(*Suback)
		return ok && a.MsgID == id
	})
	if err != nil {
		return 0, err
	}
	ack := p.(*Suback)
	if ack.ReturnCode != Accepted {
		return 0, &RejectedError{Op: "SUBSCRIBE " + t.String(), ReturnCode: ack.ReturnCode}
	}
	if t.Type == TopicNormal && !topic.IsFilterWildcard(t.Name) && ack.TopicID != 0 {
		c.topics.add(t.Name, ack.TopicID)
	}
	return ack.QoS, nil
}

// Unsubscribe ends a subscription made with the same Topic.
func (c *Client) Unsubscribe(ctx context.Context, t Topic) error {
	unsub := &Unsubscribe{TopicIDType: t.Type, TopicName: t.Name}
	if t.Type != TopicNormal {
		unsub.TopicName = ""
		id, err := t.id()
		if err != nil {
			return err
		}
		unsub.TopicID = id
	}
	_, err := c.subExchange(ctx, unsub, func(id uint16) { unsub.MsgID = id }, func(p Packet, id uint16) bool {
		a, ok := p.(*Unsuback)
		return ok && a.MsgID == id
	})
	return err
}

// subExchange runs a SUBSCRIBE or UNSUBSCRIBE: one of them open at a time,
// with a fresh message id.
func (c *Client) subExchange(ctx context.Context, req Packet, setID func(uint16), match func(Packet, uint16) bool) (Packet, error) {
	sess, err := c.sessionContext(stateActive)
	if err != nil {
		return nil, err
	}
	if err := acquire(ctx, c.subSlot); err != nil {
		return nil, err
	}
	defer release(c.subSlot)
	id := c.allocID()
	defer c.freeID(id)
	setID(id)
	return c.exchange(ctx, sess, req, func(p Packet) bool { return match(p, id) }, false)
}
