package bridge

import (
	"context"
	"time"

	"github.com/sngate/sngate/bridge/upstream"
)

// stableLink is how long a connection must last for the backoff to start
// over at its first step: an upstream that accepts and then drops the
// link at once (a policy refusing the client, say) is retried as slowly as
// one that refuses outright.
const stableLink = time.Minute

// run connects to the upstream, relays until the link drops, waits the
// backoff, and again, until ctx ends.
func (c *connection) run(ctx context.Context) {
	s := newSender(c)
	attempt := 0
	for first := true; ; first = false {
		if attempt > 0 {
			wait := backoff(attempt, c.cfg.ReconnectMax)
			c.log.Debug("reconnecting after backoff", "attempt", attempt, "wait", wait.Round(time.Millisecond))
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		if ctx.Err() != nil {
			return
		}
		present, err := c.up.Connect(ctx, c.rules.Load().upstreamSubscriptions())
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			msg := err.Error()
			c.lastError.Store(&msg)
			if attempt == 0 {
				c.log.Warn("upstream unreachable", "url", c.cfg.URL, "err", err)
			} else {
				c.log.Debug("connection attempt failed", "attempt", attempt, "err", err)
			}
			attempt++
			continue
		}
		if !first {
			c.counters.reconnects.Add(1)
		}
		c.connected.Store(true)
		q := c.queueStats()
		c.log.Info("upstream connected", "url", c.cfg.URL, "session_present", present, "backlog", q.Messages)
		since := time.Now()
		s.serve(ctx)
		c.connected.Store(false)
		if ctx.Err() != nil {
			return
		}
		lostErr := c.up.Err()
		if lostErr != nil {
			msg := lostErr.Error()
			c.lastError.Store(&msg)
		}
		c.log.Warn("upstream connection lost", "err", lostErr, "after", time.Since(since).Round(time.Second))
		if time.Since(since) >= stableLink {
			attempt = 1
		} else {
			attempt++
		}
	}
}

// upstreamSubscriptions are the in rules' remote filters.
func (rs *ruleSet) upstreamSubscriptions() []upstream.Subscription {
	subs := make([]upstream.Subscription, len(rs.in))
	for i, r := range rs.in {
		subs[i] = upstream.Subscription{Filter: r.remote, QoS: r.QoS}
	}
	return subs
}
