package bridge

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/sngate/sngate/bridge/upstream"
)

// reloadTimeout bounds the subscription changes of one reload.
const reloadTimeout = 30 * time.Second

// ruleSet is a connection's rules, compiled; Reload replaces it whole, so
// that the publisher goroutines (accept) and the upstream's (fromUpstream)
// see either the old rules or the new ones.
type ruleSet struct {
	src     []Rule
	out, in []rule
}

func newRuleSet(rs []Rule) *ruleSet {
	out, in := compileRules(rs)
	return &ruleSet{src: rs, out: out, in: in}
}

// Reload applies cfg's rules to the running connections without dropping
// them (SIGHUP): new out rules are subscribed locally before they take
// effect and old ones unsubscribed after, and the in rules' upstream
// subscriptions are changed on the live link (or at the next connect).
// Connections added or removed, or whose other settings changed, keep
// running as they are and are returned by name, with what changed: they
// need a restart. So does a connection that gains its first out rule or
// loses its last, which opens or closes its disk queue. An invalid cfg
// changes nothing.
func (b *Bridge) Reload(cfg Config) (restart []string, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	running := map[string]*connection{}
	for _, c := range b.conns {
		running[c.cfg.Name] = c
	}
	var errs []error
	for _, cc := range cfg.Connections {
		cc = cc.withDefaults()
		c := running[cc.Name]
		delete(running, cc.Name)
		if c == nil {
			restart = append(restart, cc.Name+" (new connection)")
			continue
		}
		if why := c.restartNeeded(cc); why != "" {
			restart = append(restart, cc.Name+" ("+why+")")
			continue
		}
		if err := c.setRules(b.ctx, cc.Rules); err != nil {
			errs = append(errs, fmt.Errorf("bridge %s: %w", cc.Name, err))
		}
	}
	for name := range running {
		restart = append(restart, name+" (removed)")
	}
	return restart, errors.Join(errs...)
}

// restartNeeded says why next cannot be applied to the running c, or "".
func (c *connection) restartNeeded(next ConnectionConfig) string {
	cur := c.cfg
	cur.Rules, next.Rules = nil, nil
	if !reflect.DeepEqual(cur, next) {
		return "connection settings changed"
	}
	return ""
}

// setRules replaces c's rules. Local subscriptions come first, so the new
// rules see every message from their switch on; upstream subscription
// errors are logged, not fatal: the next connect subscribes to the new
// list anyway.
func (c *connection) setRules(ctx context.Context, rs []Rule) error {
	old := c.rules.Load()
	if reflect.DeepEqual(old.src, rs) {
		return nil
	}
	next := newRuleSet(rs)
	if (len(next.out) > 0) != (c.q != nil) {
		return errors.New("the first out rule added or the last removed: needs a restart (the disk queue opens or closes)")
	}
	ctx, cancel := context.WithTimeout(ctx, reloadTimeout)
	defer cancel()

	added, removed := diffFilters(filtersOf(old.out, localFilter), filtersOf(next.out, localFilter))
	if err := c.subscribeLocally(ctx, added); err != nil {
		return err
	}
	c.rules.Store(next)
	if len(removed) > 0 {
		if err := c.local.Unsubscribe(ctx, removed...); err != nil {
			return fmt.Errorf("unsubscribe locally: %w", err)
		}
	}

	upAdded, upRemoved := diffFilters(filtersOf(old.in, remoteFilter), filtersOf(next.in, remoteFilter))
	if len(upAdded) > 0 {
		var subs []upstream.Subscription
		for _, s := range next.upstreamSubscriptions() {
			if slices.Contains(upAdded, s.Filter) {
				subs = append(subs, s)
			}
		}
		c.changeUpstream("subscribe", upAdded, c.up.Subscribe(ctx, subs))
	}
	if len(upRemoved) > 0 {
		c.changeUpstream("unsubscribe", upRemoved, c.up.Unsubscribe(ctx, upRemoved))
	}
	c.log.Info("bridge rules reloaded", "out", len(next.out), "in", len(next.in),
		"local_added", added, "local_removed", removed, "upstream_added", upAdded, "upstream_removed", upRemoved)
	return nil
}

// changeUpstream logs the outcome of a live upstream subscription change.
func (c *connection) changeUpstream(op string, filters []string, err error) {
	switch {
	case err == nil:
	case errors.Is(err, upstream.ErrNotConnected):
		c.log.Info("upstream not connected: the new subscriptions apply when it is", "op", op, "filters", filters)
	default:
		c.log.Warn("upstream subscription change failed: it applies at the next connection", "op", op, "filters", filters, "err", err)
	}
}

// diffFilters returns the filters of next not in old and of old not in
// next, each once, in order.
func diffFilters(old, next []string) (added, removed []string) {
	for _, f := range next {
		if !slices.Contains(old, f) && !slices.Contains(added, f) {
			added = append(added, f)
		}
	}
	for _, f := range old {
		if !slices.Contains(next, f) && !slices.Contains(removed, f) {
			removed = append(removed, f)
		}
	}
	return added, removed
}
