package mqttsn

import (
	"context"
	"errors"
)

// Register asks the gateway for the topic id of name (REGISTER/REGACK) and
// remembers it for Publish. Publish registers on its own when needed.
func (c *Client) Register(ctx context.Context, name string) (uint16, error) {
	sess, err := c.sessionContext(stateActive)
	if err != nil {
		return 0, err
	}
	return c.register(ctx, sess, name)
}

func (c *Client) register(ctx, sess context.Context, name string) (uint16, error) {
	if err := acquire(ctx, c.regSlot); err != nil {
		return 0, err
	}
	defer release(c.regSlot)
	if id, ok := c.topics.idOf(name); ok { // registered while we waited our turn
		return id, nil
	}
	msgID := c.allocID()
	defer c.freeID(msgID)
	p, err := c.exchange(ctx, sess, &Register{MsgID: msgID, TopicName: name}, func(p Packet) bool {
		a, ok := p.(*Regack)
		return ok && a.MsgID == msgID
	}, false)
	if err != nil {
		return 0, err
	}
	ack := p.(*Regack)
	if ack.ReturnCode != Accepted {
		return 0, &RejectedError{Op: "REGISTER " + name, ReturnCode: ack.ReturnCode}
	}
	c.topics.add(name, ack.TopicID)
	return ack.TopicID, nil
}

// Publish sends payload to topic at qos (-1, 0, 1 or 2) and returns once the
// exchange its QoS asks for is complete: at once for QoS -1 and 0, after
// PUBACK for 1, after PUBCOMP for 2. A topic given by name is registered
// first if the session has no id for it, and registered again if the gateway
// answers "invalid topic id". QoS -1 needs no connection, only a predefined
// or short topic.
func (c *Client) Publish(ctx context.Context, topic Topic, payload []byte, qos QoS, retain bool) error {
	if !qos.Valid() {
		return errors.New("mqttsn: publish: QoS must be -1, 0, 1 or 2")
	}
	if qos == QoSMinus1 {
		if topic.Type == TopicNormal {
			return errors.New("mqttsn: publish: QoS -1 needs a predefined or short topic")
		}
		id, err := topic.id()
		if err != nil {
			return err
		}
		return c.send(&Publish{QoS: QoSMinus1, Retain: retain, TopicIDType: topic.Type, TopicID: id, Data: payload})
	}
	sess, err := c.sessionContext(stateActive)
	if err != nil {
		return err
	}
	err = c.publish(ctx, sess, topic, payload, qos, retain)
	var rej *RejectedError
	if topic.Type == TopicNormal && errors.As(err, &rej) && rej.ReturnCode == RejectedInvalidID {
		// The gateway lost our registration (a restart, say): register again.
		err = c.publish(ctx, sess, topic, payload, qos, retain)
	}
	return err
}

func (c *Client) publish(ctx, sess context.Context, topic Topic, payload []byte, qos QoS, retain bool) error {
	var id uint16
	var err error
	if topic.Type == TopicNormal {
		var ok bool
		if id, ok = c.topics.idOf(topic.Name); !ok {
			if id, err = c.register(ctx, sess, topic.Name); err != nil {
				return err
			}
		}
	} else if id, err = topic.id(); err != nil {
		return err
	}
	pub := &Publish{QoS: qos, Retain: retain, TopicIDType: topic.Type, TopicID: id, Data: payload}
	if qos == QoS0 {
		return c.send(pub)
	}

	// One QoS 1 or 2 PUBLISH open at a time.
	if err := acquire(ctx, c.pubSlot); err != nil {
		return err
	}
	defer release(c.pubSlot)
	pub.MsgID = c.allocID()
	defer c.freeID(pub.MsgID)
	p, err := c.exchange(ctx, sess, pub, func(p Packet) bool {
		switch a := p.(type) {
		case *Puback:
			return a.MsgID == pub.MsgID
		case *Pubrec:
			return qos == QoS2 && a.MsgID == pub.MsgID
		}
		return false
	}, false)
	if err != nil {
		return err
	}
	if ack, ok := p.(*Puback); ok {
		if ack.ReturnCode != Accepted {
			if ack.ReturnCode == RejectedInvalidID && topic.Type == TopicNormal {
				c.topics.forgetID(id)
			}
			return &RejectedError{Op: "PUBLISH " + topic.String(), ReturnCode: ack.ReturnCode}
		}
		return nil
	}
	// QoS 2: PUBREC came; release the message.
	_, err = c.exchange(ctx, sess, &Pubrel{MsgID: pub.MsgID}, func(p Packet) bool {
		a, ok := p.(*Pubcomp)
		return ok && a.MsgID == pub.MsgID
	}, false)
	return err
}

// handlePublish delivers a message from the gateway and acknowledges it per
// its QoS. A normal topic id the client does not know is refused with
// PUBACK "invalid topic id", so that the gateway registers it again.
func (c *Client) handlePublish(p *Publish) {
	name, ok := c.topics.name(p.TopicIDType, p.TopicID)
	if !ok {
		c.log.Warn("PUBLISH on an unknown topic id", "topic_id", p.TopicID)
		c.sendOrLog(&Puback{TopicID: p.TopicID, MsgID: p.MsgID, ReturnCode: RejectedInvalidID})
		return
	}
	msg := Message{Topic: name, TopicIDType: p.TopicIDType, TopicID: p.TopicID,
		Payload: p.Data, QoS: p.QoS, Retain: p.Retain, Duplicate: p.DUP}
	switch p.QoS {
	case QoS1:
		c.deliver(msg)
		c.sendOrLog(&Puback{TopicID: p.TopicID, MsgID: p.MsgID, ReturnCode: Accepted})
	case QoS2:
		// Deliver once; a resent PUBLISH before PUBREL only gets PUBREC again.
		c.mu.Lock()
		seen := c.qos2In[p.MsgID]
		c.qos2In[p.MsgID] = true
		c.mu.Unlock()
		if !seen {
			c.deliver(msg)
		}
		c.sendOrLog(&Pubrec{MsgID: p.MsgID})
	default:
		c.deliver(msg)
	}
}

func (c *Client) handlePubrel(p *Pubrel) {
	c.mu.Lock()
	delete(c.qos2In, p.MsgID)
	c.mu.Unlock()
	c.sendOrLog(&Pubcomp{MsgID: p.MsgID})
}

// handleRegister accepts the gateway's topic id for a name it is about to
// publish on (after a wildcard subscription, or a persistent reconnect).
func (c *Client) handleRegister(p *Register) {
	c.topics.add(p.TopicName, p.TopicID)
	c.sendOrLog(&Regack{TopicID: p.TopicID, MsgID: p.MsgID, ReturnCode: Accepted})
}

func (c *Client) deliver(m Message) {
	if c.cfg.OnMessage != nil {
		c.cfg.OnMessage(m)
	}
}
