package mqttsn

import "context"

// UpdateWillTopic replaces the will topic, QoS and retain flag of the live
// session (WILLTOPICUPD/WILLTOPICRESP). An empty topic deletes the will
// altogether.
func (c *Client) UpdateWillTopic(ctx context.Context, topic string, qos QoS, retain bool) error {
	req := &WillTopicUpd{Topic: topic, QoS: qos, Retain: retain}
	if err := c.willExchange(ctx, c.willTopicSlot, req, TypeWillTopicResp); err != nil {
		return err
	}
	c.mu.Lock()
	if topic == "" {
		c.cfg.Will = nil
	} else {
		w := Will{Topic: topic, QoS: qos, Retain: retain}
		if c.cfg.Will != nil {
			w.Message = c.cfg.Will.Message
		}
		c.cfg.Will = &w
	}
	c.mu.Unlock()
	return nil
}

// UpdateWillMessage replaces the will message of the live session
// (WILLMSGUPD/WILLMSGRESP).
func (c *Client) UpdateWillMessage(ctx context.Context, msg []byte) error {
	if err := c.willExchange(ctx, c.willMsgSlot, &WillMsgUpd{Message: msg}, TypeWillMsgResp); err != nil {
		return err
	}
	c.mu.Lock()
	if c.cfg.Will != nil {
		w := *c.cfg.Will
		w.Message = msg
		c.cfg.Will = &w
	}
	c.mu.Unlock()
	return nil
}

func (c *Client) willExchange(ctx context.Context, slot chan struct{}, req Packet, answer MsgType) error {
	sess, err := c.sessionContext(stateActive)
	if err != nil {
		return err
	}
	if err := acquire(ctx, slot); err != nil {
		return err
	}
	defer release(slot)
	p, err := c.exchange(ctx, sess, req, isType(answer), false)
	if err != nil {
		return err
	}
	var rc ReturnCode
	switch a := p.(type) {
	case *WillTopicResp:
		rc = a.ReturnCode
	case *WillMsgResp:
		rc = a.ReturnCode
	}
	if rc != Accepted {
		return &RejectedError{Op: req.Type().String(), ReturnCode: rc}
	}
	return nil
}
