package upstream

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
)

// clientBase is the bookkeeping the two Clients share: their settings, the
// locks, and whether a connection was made and the Client closed.
type clientBase struct {
	cfg    Config
	ep     endpoint
	log    *slog.Logger
	notify *notifier

	closeCtx    context.Context // cancelled by Close, to abort a Connect in progress
	closeCancel context.CancelFunc

	connMu sync.Mutex // serializes Connect and Close
	pubMu  sync.Mutex // serializes Publish: wire order is call order

	mu          sync.Mutex // guards the fields below, and the Client's own
	curLink     *link      // the link of the Client's current (or last) connection; nil before the first
	established bool       // a connection was made in this run: the previous run's session is gone
	closed      bool
}

func (c *clientBase) init(cfg Config, ep endpoint) {
	c.cfg, c.ep, c.log, c.notify = cfg, ep, cfg.Logger, newNotifier()
	c.closeCtx, c.closeCancel = context.WithCancel(context.Background())
}

func (c *clientBase) errorf(op string, err error) error {
	return fmt.Errorf("upstream %s: %s: %w", c.ep, op, err)
}

// markClosed starts a Close: it reports false if one came before, and
// otherwise aborts a Connect in progress.
func (c *clientBase) markClosed() bool {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return false
	}
	c.closed = true
	c.mu.Unlock()
	c.closeCancel()
	return true
}

func (c *clientBase) Lost() <-chan struct{} { return c.current().lost }

func (c *clientBase) Err() error { return c.current().error() }

// current is the current connection's link, the last one's, or before
// the first an ended one (Lost closed, Err ErrNotConnected).
func (c *clientBase) current() *link {
	c.mu.Lock()
	l := c.curLink
	c.mu.Unlock()
	if l == nil {
		return endedLink(c.errorf("connection", ErrNotConnected))
	}
	return l
}
