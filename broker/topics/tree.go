package topics

// subs maps the keys subscribed to one filter to their QoS.
type subs[K comparable] struct{ table[K, byte] }

func (s *subs[K]) each(visit func(key K, qos byte)) {
	for _, e := range s.list {
		visit(e.key, e.val)
	}
}

// tnode is one filter level. The '+' and '#' levels hang off plus and hash
// rather than kids so Match reaches them without a lookup.
type tnode[K comparable] struct {
	kids kids[tnode[K]]
	plus *tnode[K]
	hash *tnode[K]
	subs subs[K]
}

func (n *tnode[K]) empty() bool {
	return n.subs.len() == 0 && n.kids.len() == 0 && n.plus == nil && n.hash == nil
}

func (n *tnode[K]) child(level string) *tnode[K] {
	switch level {
	case "+":
		return n.plus
	case "#":
		return n.hash
	}
	return n.kids.get(level)
}

// Tree maps topic filters to subscribers. K is the subscriber key (the
// broker uses *session pointers). It is safe for concurrent use: Match and
// Len only read-lock it, so Match calls run in parallel without contending
// on a shared counter (see readMostlyLock), while Subscribe and Unsubscribe
// lock it exclusively. The zero value is not usable; call NewTree.
type Tree[K comparable] struct {
	mu    readMostlyLock
	root  tnode[K]
	count int // (filter, key) subscriptions
	nodes int // nodes below root
}

// NewTree returns an empty Tree.
func NewTree[K comparable]() *Tree[K] {
	t := &Tree[K]{}
	t.mu.init()
	return t
}

// Subscribe adds or replaces key's subscription to filter with qos; it
// reports whether it replaced one (MQTT-3.8.4-3). filter must be valid.
func (t *Tree[K]) Subscribe(filter string, key K, qos byte) (replaced bool) {
	t.mu.lock()
	defer t.mu.unlock()
	var owned string
	n := &t.root
	rest := filter
	for {
		level, tail, more := cut(rest)
		c := n.child(level)
		if c == nil {
			c = new(tnode[K])
			switch level {
			case "+":
				n.plus = c
			case "#":
				n.hash = c
			default:
				n.kids.put(ownedLevel(&owned, filter, len(filter)-len(rest), level), c)
			}
			t.nodes++
		}
		n = c
		if !more {
			break
		}
		rest = tail
	}
	replaced = n.subs.put(key, qos)
	if !replaced {
		t.count++
	}
	return replaced
}

// Unsubscribe removes key's subscription to filter, compared character by
// character without wildcard expansion (MQTT-3.10.4-1); it reports whether
// there was one. Nodes left empty are pruned.
func (t *Tree[K]) Unsubscribe(filter string, key K) bool {
	t.mu.lock()
	defer t.mu.unlock()
	if !t.unsubscribe(&t.root, filter, key) {
		return false
	}
	t.count--
	return true
}

func (t *Tree[K]) unsubscribe(n *tnode[K], filter string, key K) bool {
	level, rest, more := cut(filter)
	c := n.child(level)
	if c == nil {
		return false
	}
	var found bool
	if more {
		found = t.unsubscribe(c, rest, key)
	} else {
		found = c.subs.del(key)
	}
	if found && c.empty() {
		switch level {
		case "+":
			n.plus = nil
		case "#":
			n.hash = nil
		default:
			n.kids.del(level)
		}
		t.nodes--
	}
	return found
}

// Match calls visit for every subscription whose filter matches topic. A key
// subscribed through several matching filters is visited once per filter;
// the caller merges (MQTT-3.3.5-1). Match does not allocate. visit runs under
// the tree's read lock and must not call back into the tree.
func (t *Tree[K]) Match(topic string, visit func(key K, qos byte)) {
	s := t.mu.rlock()
	defer t.mu.runlock(s)
	if dollar(topic) {
		// MQTT-4.7.2-1: skip the root's '+' and '#'.
		level, rest, more := cut(topic)
		if c := t.root.kids.get(level); c != nil {
			step(c, rest, more, visit)
		}
		return
	}
	match(&t.root, topic, visit)
}

// match visits the subscriptions at or below n that match the levels of
// rest (at least one level, possibly empty). It iterates down the literal
// path and recurses only into '+' branches.
func match[K comparable](n *tnode[K], rest string, visit func(K, byte)) {
	for {
		if n.hash != nil {
			n.hash.subs.each(visit)
		}
		level, tail, more := cut(rest)
		if n.plus != nil {
			step(n.plus, tail, more, visit)
		}
		c := n.kids.get(level)
		if c == nil {
			return
		}
		if !more {
			last(c, visit)
			return
		}
		n, rest = c, tail
	}
}

// step continues at c, the node that matched one topic level.
func step[K comparable](c *tnode[K], tail string, more bool, visit func(K, byte)) {
	if more {
		match(c, tail, visit)
	} else {
		last(c, visit)
	}
}

// last visits c, which matched the topic's last level, and its '#' child,
// which matches the parent level too (MQTT-4.7.1-2: "sport/#" matches "sport").
func last[K comparable](c *tnode[K], visit func(K, byte)) {
	c.subs.each(visit)
	if c.hash != nil {
		c.hash.subs.each(visit)
	}
}

// Len returns the number of (filter, key) subscriptions.
func (t *Tree[K]) Len() int {
	s := t.mu.rlock()
	defer t.mu.runlock(s)
	return t.count
}
