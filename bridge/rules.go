package bridge

import (
	"strings"

	"github.com/sngate/sngate/broker/topics"
)

// rule is a configured Rule with its two full filters.
type rule struct {
	Rule
	local  string // LocalPrefix + Topic: what the bridge subscribes to locally
	remote string // RemotePrefix + Topic: what it subscribes to upstream
}

func compileRules(rs []Rule) (out, in []rule) {
	for _, r := range rs {
		cr := rule{Rule: r, local: r.LocalPrefix + r.Topic, remote: r.RemotePrefix + r.Topic}
		if r.Direction == DirOut || r.Direction == DirBoth {
			out = append(out, cr)
		}
		if r.Direction == DirIn || r.Direction == DirBoth {
			in = append(in, cr)
		}
	}
	return out, in
}

// matchOut finds the first out rule whose local filter matches a local
// topic, and the topic it has upstream.
func matchOut(rules []rule, local string) (*rule, string, bool) {
	for i := range rules {
		r := &rules[i]
		if topics.MatchFilter(r.local, local) {
			return r, r.RemotePrefix + strings.TrimPrefix(local, r.LocalPrefix), true
		}
	}
	return nil, "", false
}

// matchIn finds the first in rule whose remote filter matches an upstream
// topic, and the topic it has locally.
func matchIn(rules []rule, remote string) (*rule, string, bool) {
	for i := range rules {
		r := &rules[i]
		if topics.MatchFilter(r.remote, remote) {
			return r, r.LocalPrefix + strings.TrimPrefix(remote, r.RemotePrefix), true
		}
	}
	return nil, "", false
}

// filtersOf returns the local or remote filter of each rule.
func filtersOf(rs []rule, filter func(rule) string) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = filter(r)
	}
	return out
}

func localFilter(r rule) string  { return r.local }
func remoteFilter(r rule) string { return r.remote }
