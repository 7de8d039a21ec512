package bridge

import (
	"context"

	"github.com/sngate/sngate/bridge/upstream"
	"github.com/sngate/sngate/broker"
)

// inboundMessage is a message from upstream on its way to the local broker.
type inboundMessage struct {
	msg broker.Message
	ack func()
}

// fromUpstream takes a message of an in rule from the upstream client
// (upstream.Config.OnMessage). It is on the library's goroutine: it hands
// the message to the inbound publisher, waiting only while that one is
// behind (which holds the upstream back, as it should).
func (c *connection) fromUpstream(m upstream.Message, ack func()) {
	r, local, ok := matchIn(c.rules.Load().in, m.Topic)
	if !ok {
		ack() // not ours: a subscription of an earlier configuration
		return
	}
	im := inboundMessage{
		msg: broker.Message{Topic: local, Payload: m.Payload, QoS: min(m.QoS, r.QoS), Retain: r.Retain && m.Retain},
		ack: ack,
	}
	select {
	case c.inbound <- im:
	case <-c.ctx.Done(): // shutting down: not acknowledged, so sent again
	}
}

// publishInbound publishes messages from upstream locally, in order, and
// acknowledges each upstream once the broker has it durably.
func (c *connection) publishInbound(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case im := <-c.inbound:
			if err := c.local.Publish(ctx, im.msg); err != nil {
				// Not acknowledged: the upstream sends it again.
				c.log.Warn("message from upstream not published locally", "topic", im.msg.Topic, "err", err)
				continue
			}
			c.counters.received.Add(1)
			im.ack()
		}
	}
}
