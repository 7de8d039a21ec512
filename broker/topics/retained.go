package topics

import (
	"strings"
	"sync"
)

// rnode is one topic level. A node holding a retained message keeps the
// full topic name so Match can report it without building it.
type rnode[V any] struct {
	kids  kids[rnode[V]]
	topic string
	val   V
	has   bool
}

// Retained holds the retained message of each topic, V being the broker's
// message type. It is safe for concurrent use: Get, Match, Len and Range take
// a read lock, Set and Delete the write lock. It uses a plain RWMutex rather
// than the Tree's per-P lock because it is written on every retained PUBLISH
// and read mostly on SUBSCRIBE. The zero value is not usable; call
// NewRetained.
type Retained[V any] struct {
	mu    sync.RWMutex
	root  rnode[V]
	count int // retained messages
	nodes int // nodes below root
}

// NewRetained returns an empty store.
func NewRetained[V any]() *Retained[V] { return &Retained[V]{} }

// Set stores v as topic's retained message, replacing any previous one
// (MQTT-3.3.1-5, -7); it reports whether it replaced one. topic must be a
// valid topic name. Replacing does not allocate.
func (r *Retained[V]) Set(topic string, v V) (replaced bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var owned string
	n := &r.root
	rest := topic
	for {
		level, tail, more := cut(rest)
		c := n.kids.get(level)
		if c == nil {
			c = new(rnode[V])
			n.kids.put(ownedLevel(&owned, topic, len(topic)-len(rest), level), c)
			r.nodes++
		}
		n = c
		if !more {
			break
		}
		rest = tail
	}
	if n.has {
		n.val = v
		return true
	}
	if owned == "" {
		owned = strings.Clone(topic) // a private copy, as in ownedLevel
	}
	n.topic, n.val, n.has = owned, v, true
	r.count++
	return false
}

// Delete removes topic's retained message (MQTT-3.3.1-10); it reports
// whether there was one. Nodes left empty are pruned.
func (r *Retained[V]) Delete(topic string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.delete(&r.root, topic) {
		return false
	}
	r.count--
	return true
}

func (r *Retained[V]) delete(n *rnode[V], rest string) bool {
	level, tail, more := cut(rest)
	c := n.kids.get(level)
	if c == nil {
		return false
	}
	if more {
		if !r.delete(c, tail) {
			return false
		}
	} else {
		if !c.has {
			return false
		}
		var zero V
		c.topic, c.val, c.has = "", zero, false
	}
	if !c.has && c.kids.len() == 0 {
		n.kids.del(level)
		r.nodes--
	}
	return true
}

// Get returns topic's retained message.
func (r *Retained[V]) Get(topic string) (V, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	n := &r.root
	rest := topic
	for {
		level, tail, more := cut(rest)
		n = n.kids.get(level)
		if n == nil {
			var zero V
			return zero, false
		}
		if !more {
			return n.val, n.has
		}
		rest = tail
	}
}

// Match calls visit for every retained topic that filter matches, walking
// the trie by filter levels; filters starting with '+' or '#' skip topics
// starting with '$' (MQTT-4.7.2-1). Match does not allocate. visit runs
// under the store's read lock and must not call back into it.
func (r *Retained[V]) Match(filter string, visit func(topic string, v V)) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	rmatch(&r.root, filter, true, visit)
}

// rmatch visits the messages at or below n whose remaining levels match
// filter. root is true while n is the root, where '$' levels are hidden
// from wildcards.
func rmatch[V any](n *rnode[V], filter string, root bool, visit func(string, V)) {
	for {
		level, tail, more := cut(filter)
		switch level {
		case "#":
			// MQTT-4.7.1-2: n itself (the parent level) and everything below.
			if n.has {
				visit(n.topic, n.val)
			}
			for _, k := range n.kids.list {
				if !root || !dollar(k.key) {
					all(k.val, visit)
				}
			}
			return
		case "+":
			for _, k := range n.kids.list {
				if !root || !dollar(k.key) {
					rstep(k.val, tail, more, visit)
				}
			}
			return
		}
		c := n.kids.get(level)
		if c == nil {
			return
		}
		if !more {
			if c.has {
				visit(c.topic, c.val)
			}
			return
		}
		n, filter, root = c, tail, false
	}
}

// rstep continues at c, the node one filter level matched.
func rstep[V any](c *rnode[V], tail string, more bool, visit func(string, V)) {
	if more {
		rmatch(c, tail, false, visit)
	} else if c.has {
		visit(c.topic, c.val)
	}
}

// all visits every message at or below n.
func all[V any](n *rnode[V], visit func(string, V)) {
	if n.has {
		visit(n.topic, n.val)
	}
	for _, k := range n.kids.list {
		all(k.val, visit)
	}
}

// Len returns the number of retained messages.
func (r *Retained[V]) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.count
}

// Range calls visit for every retained message, in no particular order,
// until visit returns false; it is meant for persistence snapshots. visit
// runs under the store's read lock and must not call back into it.
func (r *Retained[V]) Range(visit func(topic string, v V) bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	rangeAll(&r.root, visit)
}

func rangeAll[V any](n *rnode[V], visit func(string, V) bool) bool {
	if n.has && !visit(n.topic, n.val) {
		return false
	}
	for _, k := range n.kids.list {
		if !rangeAll(k.val, visit) {
			return false
		}
	}
	return true
}
