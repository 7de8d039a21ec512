package bridge

import (
	"context"
	"strconv"
	"time"

	"github.com/sngate/sngate/bridge/queue"
	"github.com/sngate/sngate/broker"
)

// ConnectionStats is the state of one bridge connection, for logs,
// $SYS/bridge/NAME/... and metrics.
type ConnectionStats struct {
	Name      string
	Connected bool
	// The disk queue of the out rules.
	QueueMessages int64
	QueueBytes    int64
	OldestAge     time.Duration // of the oldest queued message; 0 when empty
	// Sent counts messages the upstream acknowledged (QoS 1/2) or took
	// (QoS 0); Received, messages from upstream published locally.
	Sent     uint64
	Received uint64
	// Dropped is the sum of the reasons below.
	Dropped       uint64
	DroppedOldest uint64 // by drop-oldest, when the queue or the disk was full
	Refused       uint64 // by refuse-new
	Rejected      uint64 // refused by the upstream (e.g. not authorized)
	DroppedQoS0   uint64 // QoS 0 not queued on disk, while disconnected or behind
	Reconnects    uint64
	// LastError says why the last connection attempt failed or the last
	// connection ended; "" before any.
	LastError string
}

func (c *connection) queueStats() queue.Stats {
	if c.q == nil {
		return queue.Stats{}
	}
	return c.q.Stats()
}

func (c *connection) stats() ConnectionStats {
	q := c.queueStats()
	st := ConnectionStats{
		Name:          c.cfg.Name,
		Connected:     c.connected.Load(),
		QueueMessages: q.Messages,
		QueueBytes:    q.Bytes,
		Sent:          c.counters.sent.Load(),
		Received:      c.counters.received.Load(),
		DroppedOldest: q.DroppedOldest,
		Refused:       q.Refused,
		Rejected:      c.counters.rejected.Load(),
		DroppedQoS0:   c.counters.droppedQoS0.Load(),
		Reconnects:    c.counters.reconnects.Load(),
	}
	if e := c.lastError.Load(); e != nil {
		st.LastError = *e
	}
	if !q.Oldest.IsZero() {
		st.OldestAge = time.Since(q.Oldest)
	}
	st.Dropped = st.DroppedOldest + st.Refused + st.Rejected + st.DroppedQoS0
	return st
}

// publishStatus publishes $SYS/bridge/NAME/... retained every interval,
// and at once when the connection state changes.
func (c *connection) publishStatus(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	// Connection changes are checked more often than the full status.
	poll := time.NewTicker(min(interval, 250*time.Millisecond))
	defer poll.Stop()
	prefix := "$SYS/bridge/" + c.cfg.Name + "/"
	lastConnected := false
	publish := func() {
		st := c.stats()
		lastConnected = st.Connected
		u := func(n uint64) string { return strconv.FormatUint(n, 10) }
		for _, kv := range [...][2]string{
			{"connected", boolString(st.Connected)},
			{"queue/messages", strconv.FormatInt(st.QueueMessages, 10)},
			{"queue/bytes", strconv.FormatInt(st.QueueBytes, 10)},
			{"queue/oldest_age", strconv.FormatInt(int64(st.OldestAge.Seconds()), 10)},
			{"sent", u(st.Sent)},
			{"received", u(st.Received)},
			{"dropped", u(st.Dropped)},
			{"reconnects", u(st.Reconnects)},
		} {
			m := broker.Message{Topic: prefix + kv[0], Payload: []byte(kv[1]), Retain: true}
			if err := c.local.Publish(ctx, m); err != nil {
				return
			}
		}
	}
	publish()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			publish()
		case <-poll.C:
			if c.connected.Load() != lastConnected {
				publish()
			}
		}
	}
}

func boolString(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
