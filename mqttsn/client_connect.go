package mqttsn

import (
	"context"
	"time"
)

// Connect opens the session: CONNECT, the will exchange when the
// configuration has a will (WILLTOPICREQ, WILLTOPIC, WILLMSGREQ, WILLMSG),
// then CONNACK. Each step is retried under RetryInterval and MaxRetries. A
// sleeping client calls Connect to become active again. A non-zero CONNACK
// return code comes back as a *RejectedError.
func (c *Client) Connect(ctx context.Context) error {
	if err := acquire(ctx, c.connSlot); err != nil {
		return err
	}
	defer release(c.connSlot)

	will := c.will()
	connect := &Connect{
		Will:         will != nil,
		CleanSession: c.cfg.CleanSession,
		KeepAlive:    durationSeconds(c.cfg.KeepAlive),
		ClientID:     c.cfg.ClientID,
	}
	w := c.addWaiter(func(p Packet) bool {
		switch p.Type() {
		case TypeConnack, TypeWillTopicReq, TypeWillMsgReq:
			return true
		}
		return false
	})
	defer c.removeWaiter(w)

	// The gateway's next question decides what to send; whatever was sent
	// last is resent when no answer comes.
	var last Packet = connect
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	tries := 0
	for {
		if err := c.send(last); err != nil {
			return err
		}
		timer.Reset(c.cfg.RetryInterval)
		select {
		case p := <-w.ch:
			tries = 0
			switch p := p.(type) {
			case *WillTopicReq:
				last = willTopicFor(will)
			case *WillMsgReq:
				last = willMsgFor(will)
			case *Connack:
				return c.connected(p)
			}
			continue
		case <-ctx.Done():
			return ctx.Err()
		case <-c.ctx.Done():
			return ErrClosed
		case <-timer.C:
		}
		if tries++; tries > c.cfg.MaxRetries {
			return c.noAnswer(last.Type(), tries)
		}
	}
}

// will returns the will the next CONNECT offers; the Update methods change it.
func (c *Client) will() *Will {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfg.Will
}

func willTopicFor(w *Will) *WillTopic {
	if w == nil { // the gateway asks although we offered no will
		return &WillTopic{}
	}
	return &WillTopic{QoS: w.QoS, Retain: w.Retain, Topic: w.Topic}
}

func willMsgFor(w *Will) *WillMsg {
	if w == nil {
		return &WillMsg{}
	}
	return &WillMsg{Message: w.Message}
}

// connected acts on the CONNACK.
func (c *Client) connected(ack *Connack) error {
	if ack.ReturnCode != Accepted {
		return &RejectedError{Op: "CONNECT " + c.cfg.ClientID, ReturnCode: ack.ReturnCode}
	}
	if c.cfg.CleanSession {
		c.topics.reset()
		c.mu.Lock()
		clear(c.qos2In)
		c.mu.Unlock()
	}
	sess := c.startSession()
	if c.cfg.KeepAlive > 0 {
		c.wg.Add(1)
		go c.keepAlive(sess)
	}
	c.log.Debug("connected", "keep_alive", c.cfg.KeepAlive, "clean", c.cfg.CleanSession)
	return nil
}

// keepAlive sends PINGREQ whenever the client has sent nothing for a
// keep-alive period, until the session ends. A PINGREQ left unanswered after
// the retries loses the connection.
func (c *Client) keepAlive(sess context.Context) {
	defer c.wg.Done()
	timer := time.NewTimer(c.cfg.KeepAlive)
	defer timer.Stop()
	for {
		select {
		case <-sess.Done():
			return
		case <-timer.C:
		}
		idle := time.Since(time.Unix(0, c.lastSent.Load()))
		if !c.Connected() { // asleep: the client wakes on its own schedule
			timer.Reset(c.cfg.KeepAlive)
			continue
		}
		if idle < c.cfg.KeepAlive {
			timer.Reset(c.cfg.KeepAlive - idle)
			continue
		}
		if err := c.ping(sess); err != nil && sess.Err() == nil {
			c.log.Warn("keep-alive failed", "err", err)
		}
		timer.Reset(c.cfg.KeepAlive)
	}
}

// ping runs one PINGREQ/PINGRESP exchange in the connected session sess.
func (c *Client) ping(sess context.Context) error {
	if err := acquire(sess, c.pingSlot); err != nil {
		return err
	}
	defer release(c.pingSlot)
	_, err := c.exchange(sess, sess, &Pingreq{}, isType(TypePingresp), false)
	return err
}

// Ping checks now that the gateway answers, as the keep-alive does.
func (c *Client) Ping(ctx context.Context) error {
	sess, err := c.sessionContext(stateActive)
	if err != nil {
		return err
	}
	if err := acquire(ctx, c.pingSlot); err != nil {
		return err
	}
	defer release(c.pingSlot)
	_, err = c.exchange(ctx, sess, &Pingreq{}, isType(TypePingresp), false)
	return err
}

// Disconnect ends the session cleanly: DISCONNECT, answered by the gateway's
// DISCONNECT. The gateway discards the will; with CleanSession false it keeps
// the subscriptions for the next Connect.
func (c *Client) Disconnect(ctx context.Context) error {
	if _, err := c.sessionContext(stateActive, stateAsleep, stateAwake); err != nil {
		return err
	}
	_, err := c.exchange(ctx, nil, &Disconnect{}, isType(TypeDisconnect), false)
	c.endSession(stateDisconnected, ErrNotConnected)
	return err
}

func isType(t MsgType) func(Packet) bool {
	return func(p Packet) bool { return p.Type() == t }
}

// durationSeconds converts d to the 16-bit seconds of a Duration field,
// rounding up and saturating at 65535 (about 18 hours).
func durationSeconds(d time.Duration) uint16 {
	if d <= 0 {
		return 0
	}
	s := (d + time.Second - 1) / time.Second
	if s > 65535 {
		return 65535
	}
	return uint16(s)
}
