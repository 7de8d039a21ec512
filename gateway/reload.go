package gateway

import (
	"errors"
	"fmt"
)

// SetPredefinedTopics replaces the predefined topic ids while clients stay
// connected (SIGHUP). Each connected or sleeping client resolves ids with
// the new table from its next message on; messages already in flight keep
// the id they were sent with. A table that does not validate changes
// nothing.
//
// Changing the topic of an id that sensors use is the operator's call:
// the sensors' firmware must agree, so the gateway logs each change.
func (g *Gateway) SetPredefinedTopics(ts []PredefinedTopic) error {
	if err := errors.Join(validatePredefined(ts)...); err != nil {
		return fmt.Errorf("gateway: predefined topics: %w", err)
	}
	g.mu.Lock()
	old := g.cfg.PredefinedTopics
	g.cfg.PredefinedTopics = ts
	common := newPredefined(ts, "")
	g.common.Store(&common)
	cs := make([]*client, 0, len(g.byID))
	for _, c := range g.byID {
		cs = append(cs, c)
	}
	g.mu.Unlock()
	for _, c := range cs {
		pre := newPredefined(ts, c.id)
		c.mu.Lock()
		c.pre = pre
		c.mu.Unlock()
	}
	g.logPredefinedChanges(old, ts)
	return nil
}

// logPredefinedChanges logs every id added, removed or pointed elsewhere.
func (g *Gateway) logPredefinedChanges(old, next []PredefinedTopic) {
	type key struct {
		client string
		id     uint16
	}
	before := map[key]string{}
	for _, t := range old {
		before[key{t.ClientID, t.ID}] = t.Topic
	}
	for _, t := range next {
		k := key{t.ClientID, t.ID}
		prev, had := before[k]
		delete(before, k)
		switch {
		case !had:
			g.log.Info("predefined topic added", "client_id", t.ClientID, "id", t.ID, "topic", t.Topic)
		case prev != t.Topic:
			g.log.Warn("predefined topic changed: sensors using this id now publish to the new topic",
				"client_id", t.ClientID, "id", t.ID, "was", prev, "topic", t.Topic)
		}
	}
	for k, topic := range before {
		g.log.Warn("predefined topic removed: sensors using this id are refused", "client_id", k.client, "id", k.id, "was", topic)
	}
}
