// Package topics holds the broker core's two topic-indexed structures: the
// subscription Tree (filter → subscribers, searched by topic name on every
// PUBLISH) and the Retained store (topic name → message, searched by filter
// on every SUBSCRIBE), plus MatchFilter, the plain filter/name matcher.
//
// Matching follows MQTT 3.1.1 §4.7: levels are split on '/', may be empty and
// are compared byte by byte; '+' fills exactly one level; '#' is the last
// level and matches its parent level and any number of child levels; a filter
// starting with '+' or '#' never matches a name starting with '$'.
//
// Filters and names are expected to be valid (see internal/topic); invalid
// ones never cause a panic, but how they match is unspecified.
package topics

import "strings"

// cut splits off the first level of s. more reports whether a '/' followed
// it, i.e. whether rest (possibly empty) is a further level.
func cut(s string) (level, rest string, more bool) {
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return s[:i], s[i+1:], true
	}
	return s, "", false
}

// dollar reports whether topic starts with '$', which hides it from filters
// that start with a wildcard (MQTT-4.7.2-1).
func dollar(topic string) bool { return len(topic) > 0 && topic[0] == '$' }

// MatchFilter reports whether filter matches topic. It does not allocate and
// is the reference the Tree and Retained matchers are tested against.
func MatchFilter(filter, topic string) bool {
	if dollar(topic) && len(filter) > 0 && (filter[0] == '+' || filter[0] == '#') {
		return false
	}
	for {
		flevel, frest, fmore := cut(filter)
		if flevel == "#" {
			return true
		}
		tlevel, trest, tmore := cut(topic)
		if flevel != "+" && flevel != tlevel {
			return false
		}
		switch {
		case !tmore && !fmore:
			return true
		case !tmore:
			// Topic exhausted: "sport/#" still matches "sport".
			return frest == "#"
		case !fmore:
			return false
		}
		filter, topic = frest, trest
	}
}

// table is the set type used for a node's children (level → node) and a
// filter's subscribers (key → QoS): entries live in a slice, which Match
// iterates without hashing or allocating; a map from key to slice position
// is added once the slice outgrows linear search (maxLinear entries) and
// dropped again when it shrinks to half that, so a set hovering at the limit
// does not thrash. Removal swaps the last entry into the hole.
type table[K comparable, V any] struct {
	list  []entry[K, V]
	index map[K]int32
}

type entry[K comparable, V any] struct {
	key K
	val V
}

const maxLinear = 8

func (t *table[K, V]) len() int { return len(t.list) }

// find returns the position of k in t.list, or -1.
func (t *table[K, V]) find(k K) int {
	if t.index != nil {
		if i, ok := t.index[k]; ok {
			return int(i)
		}
		return -1
	}
	for i := range t.list {
		if t.list[i].key == k {
			return i
		}
	}
	return -1
}

// put sets k's value; it reports whether k was present.
func (t *table[K, V]) put(k K, v V) (replaced bool) {
	if i := t.find(k); i >= 0 {
		t.list[i].val = v
		return true
	}
	t.list = append(t.list, entry[K, V]{k, v})
	switch {
	case t.index != nil:
		t.index[k] = int32(len(t.list) - 1)
	case len(t.list) > maxLinear:
		t.index = make(map[K]int32, 2*len(t.list))
		for i, e := range t.list {
			t.index[e.key] = int32(i)
		}
	}
	return false
}

// del removes k; it reports whether k was present.
func (t *table[K, V]) del(k K) bool {
	i := t.find(k)
	if i < 0 {
		return false
	}
	last := len(t.list) - 1
	if i != last {
		t.list[i] = t.list[last]
		if t.index != nil {
			t.index[t.list[i].key] = int32(i)
		}
	}
	t.list[last] = entry[K, V]{} // drop the references for the GC
	t.list = t.list[:last]
	if t.index != nil {
		delete(t.index, k)
		if len(t.list) <= maxLinear/2 {
			t.index = nil
		}
	}
	switch {
	case last == 0:
		t.list = nil
	case cap(t.list) > 64 && 4*last < cap(t.list):
		t.list = append([]entry[K, V](nil), t.list...) // give memory back
	}
	return true
}

// ownedLevel returns level, which starts at offset off of src, as a slice of
// owned, a private copy of src made on first use. Node keys must not point
// into the caller's string, which may share memory with a large packet buffer
// that would then stay reachable for as long as the node lives.
func ownedLevel(owned *string, src string, off int, level string) string {
	if *owned == "" {
		*owned = strings.Clone(src)
	}
	return (*owned)[off : off+len(level)]
}

// kids maps a node's child levels to the child nodes.
type kids[N any] struct{ table[string, *N] }

func (k *kids[N]) get(level string) *N {
	if i := k.find(level); i >= 0 {
		return k.list[i].val
	}
	return nil
}
