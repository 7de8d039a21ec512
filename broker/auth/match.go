package auth

import "strings"

// A filter is a topic filter split into its levels once, so that matching
// does not split (or allocate) on every message.
type filter []string

func splitFilter(f string) filter { return strings.Split(f, "/") }

// wildFirst reports whether the filter's first level is a wildcard, which
// keeps it from matching topics that start with '$' (MQTT-4.7.2-1).
func (f filter) wildFirst() bool {
	return len(f) > 0 && (f[0] == "+" || f[0] == "#")
}

// matches reports whether the topic name is matched by f.
func (f filter) matches(name string) bool {
	if len(name) > 0 && name[0] == '$' && f.wildFirst() {
		return false
	}
	rest, more := name, true
	for _, fl := range f {
		if fl == "#" {
			// # matches the parent level too: "a/#" matches "a".
			return true
		}
		if !more {
			return false
		}
		var level string
		level, rest, more = strings.Cut(rest, "/")
		if fl != "+" && fl != level {
			return false
		}
	}
	return !more
}

// covers reports whether every topic name that g matches is also matched by
// f, both being valid filters:
//
//   - "#" in f covers everything from its level down, parent level included;
//   - "+" in f covers any single level of g, "+" included, but not "#"
//     (except that "+/#" covers "#": both match every topic);
//   - a literal level of f covers only the same literal;
//   - a filter starting with a wildcard matches no topic starting with '$',
//     so it covers no g whose first level is a literal starting with '$'.
//
// Coverage is by one filter: a g matched only by the union of several
// filters ("a" and "a/+/#" together match all of "a/#") is not covered.
func (f filter) covers(g filter) bool {
	if len(g) > 0 && !g.wildFirst() && strings.HasPrefix(g[0], "$") && f.wildFirst() {
		return false
	}
	for i, gl := range g {
		if i >= len(f) {
			// f is exhausted without a "#": g's extra levels (or its
			// "#", which matches deeper topics) are not covered.
			return false
		}
		switch fl := f[i]; {
		case fl == "#":
			return true
		case gl == "#":
			// g matches topics of any depth from here, and below the
			// first level also the parent: only "#" in f covers that.
			// At the first level there is no parent, so "+/#" covers
			// "#" too.
			return i == 0 && fl == "+" && len(f) == 2 && f[1] == "#"
		case fl == "+":
			// Covers a literal or "+".
		case fl != gl || gl == "+":
			return false
		}
	}
	// g matches topics of exactly len(g) levels. f matches them if it has
	// the same length, or ends in a "#" right after (which matches the
	// parent level).
	return len(f) == len(g) || (len(f) == len(g)+1 && f[len(g)] == "#")
}
