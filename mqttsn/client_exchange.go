package mqttsn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// RejectedError is returned when the gateway answers a request with a
// non-zero return code.
type RejectedError struct {
	Op         string // what was asked, e.g. "REGISTER sensors/t1"
	ReturnCode ReturnCode
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("mqttsn: %s: %v", e.Op, e.ReturnCode)
}

// waiter is an open exchange waiting for the gateway's answer.
type waiter struct {
	match func(Packet) bool
	ch    chan Packet
}

func (c *Client) addWaiter(match func(Packet) bool) *waiter {
	w := &waiter{match: match, ch: make(chan Packet, 1)}
	c.mu.Lock()
	c.waiters = append(c.waiters, w)
	c.mu.Unlock()
	return w
}

func (c *Client) removeWaiter(w *waiter) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.waiters {
		if x == w {
			c.waiters = append(c.waiters[:i], c.waiters[i+1:]...)
			return
		}
	}
}

// deliverToWaiter hands p to the open exchange it answers and reports whether
// there was one. A repeated answer to an exchange is dropped.
func (c *Client) deliverToWaiter(p Packet) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, w := range c.waiters {
		if w.match(p) {
			select {
			case w.ch <- p:
			default:
			}
			return true
		}
	}
	return false
}

// exchange sends req and waits for the answer match accepts, resending req
// every RetryInterval, with DUP set where the message has it and the same
// MsgId, up to MaxRetries times (specification §6.13). When sess is not nil
// and no answer comes, the connection counts as lost. With extend, any message
// from the gateway restarts the retry timer: a waking client's PINGREQ is
// answered only after the buffered messages.
func (c *Client) exchange(ctx, sess context.Context, req Packet, match func(Packet) bool, extend bool) (Packet, error) {
	w := c.addWaiter(match)
	defer c.removeWaiter(w)
	var done <-chan struct{}
	if sess != nil {
		done = sess.Done()
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	tries := 0
	for ; tries <= c.cfg.MaxRetries; tries++ {
		if tries > 0 {
			setDUP(req)
		}
		if err := c.send(req); err != nil {
			return nil, err
		}
		mark := time.Now().UnixNano()
		timer.Reset(c.cfg.RetryInterval)
		for waiting := true; waiting; {
			select {
			case p := <-w.ch:
				return p, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-done:
				return nil, context.Cause(sess)
			case <-c.ctx.Done():
				return nil, ErrClosed
			case <-timer.C:
				waiting = false
				if last := c.lastRecv.Load(); extend && last > mark {
					// The gateway is talking: give it a full Tretry more.
					mark = last
					timer.Reset(c.cfg.RetryInterval - time.Since(time.Unix(0, last)))
					waiting = true
				}
			}
		}
	}
	err := c.noAnswer(req.Type(), tries)
	if sess != nil {
		c.endSession(stateLost, fmt.Errorf("%w: %w", ErrConnectionLost, err))
	}
	return nil, err
}

// noAnswer builds the error for an exchange that got no answer, naming the
// last transport error (such as "connection refused") when there was one.
func (c *Client) noAnswer(t MsgType, tries int) error {
	c.mu.Lock()
	werr := c.writeErr
	c.mu.Unlock()
	if werr != nil {
		return fmt.Errorf("mqttsn: %v: %w after %d tries (last error: %v)", t, ErrNoAnswer, tries, werr)
	}
	return fmt.Errorf("mqttsn: %v: %w after %d tries", t, ErrNoAnswer, tries)
}

func setDUP(p Packet) {
	switch p := p.(type) {
	case *Publish:
		p.DUP = true
	case *Subscribe:
		p.DUP = true
	}
}

// receive reads messages from the gateway until the client is closed and
// hands each to handle.
func (c *Client) receive() {
	defer c.wg.Done()
	buf := make([]byte, MaxMessageLen)
	for {
		n, err := c.tr.Read(buf)
		if err != nil {
			if c.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			if errors.Is(err, io.EOF) {
				c.endSession(stateLost, fmt.Errorf("%w: %v", ErrConnectionLost, err))
				return
			}
			// A connected UDP socket reports ICMP "port unreachable" as a
			// read error; the gateway may come back, so keep reading.
			c.mu.Lock()
			c.writeErr = err
			c.mu.Unlock()
			select {
			case <-c.ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		c.lastRecv.Store(time.Now().UnixNano())
		p, err := Decode(append([]byte(nil), buf[:n]...))
		if err != nil {
			c.log.Warn("dropping malformed message from gateway", "err", err)
			continue
		}
		c.handle(p)
	}
}

// handle acts on one message from the gateway.
func (c *Client) handle(p Packet) {
	switch p := p.(type) {
	case *Publish:
		c.handlePublish(p)
		return
	case *Pubrel:
		c.handlePubrel(p)
		return
	case *Register:
		c.handleRegister(p)
		return
	case *Pingreq: // the gateway checks that we are alive
		c.sendOrLog(&Pingresp{})
		return
	}
	if c.deliverToWaiter(p) {
		return
	}
	switch p := p.(type) {
	case *Disconnect:
		c.endSession(stateLost, fmt.Errorf("%w: the gateway sent DISCONNECT", ErrConnectionLost))
	case *Puback:
		// An error PUBACK for a QoS 0 message: the id is stale.
		if p.ReturnCode == RejectedInvalidID {
			c.topics.forgetID(p.TopicID)
		}
		c.log.Debug("PUBACK without an open exchange", "msg_id", p.MsgID, "rc", p.ReturnCode)
	default:
		c.log.Debug("ignoring unexpected message", "type", p.Type())
	}
}

func (c *Client) sendOrLog(p Packet) {
	if err := c.send(p); err != nil {
		c.log.Warn("send failed", "err", err)
	}
}
