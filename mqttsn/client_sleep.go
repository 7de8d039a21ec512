package mqttsn

import (
	"context"
	"time"
)

// Sleep tells the gateway the client sleeps for d (DISCONNECT with a
// Duration, answered by DISCONNECT). The gateway buffers messages for the
// client meanwhile; call Wake within d to collect them, or Connect to become
// active again. Calling Sleep while asleep changes the sleep time.
func (c *Client) Sleep(ctx context.Context, d time.Duration) error {
	sess, err := c.sessionContext(stateActive, stateAsleep)
	if err != nil {
		return err
	}
	req := &Disconnect{HasDuration: true, Duration: durationSeconds(d)}
	if req.Duration == 0 {
		req.Duration = 1
	}
	if _, err := c.exchange(ctx, sess, req, isType(TypeDisconnect), false); err != nil {
		return err
	}
	c.setState(stateAsleep)
	return nil
}

// Wake collects what the gateway buffered while the client slept: it sends
// PINGREQ with the client id, receives the buffered messages (through
// OnMessage, acknowledging each) and returns when PINGRESP says there are no
// more. The client is then asleep again for the same duration.
func (c *Client) Wake(ctx context.Context) error {
	sess, err := c.sessionContext(stateAsleep)
	if err != nil {
		return err
	}
	if err := acquire(ctx, c.pingSlot); err != nil {
		return err
	}
	defer release(c.pingSlot)
	c.setState(stateAwake)
	_, err = c.exchange(ctx, sess, &Pingreq{ClientID: c.cfg.ClientID}, isType(TypePingresp), true)
	if err == nil {
		c.setState(stateAsleep)
	}
	return err
}
