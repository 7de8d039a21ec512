package auth

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/sngate/sngate/internal/topic"
)

// Client is who asks: the identity the ACL rules are matched against.
type Client struct {
	ClientID string
	Username string
	// HasUsername is false for clients that sent no user name (anonymous
	// rules apply to them); Username is then ignored.
	HasUsername bool
}

// ACL decides what clients may do. It is safe for concurrent use. A nil
// *ACL, like one made from no rules, allows everything.
type ACL struct {
	allowAll bool

	// Rules without substitution, compiled once.
	byUser map[string]*Perms
	anon   *Perms
	none   *Perms // users with no user rules, when there are no patterns

	// Pattern rules, compiled per client and cached.
	patterns []patternRule
	cache    sync.Map // Client (normalised) -> *Perms
	cacheLen atomic.Int64
}

// maxCache bounds the per-client cache of compiled pattern rules; when it
// is exceeded the cache starts over.
const maxCache = 4096

// maxCacheKey is the longest client identifier plus user name whose rules
// are cached.
const maxCacheKey = 256

type patternRule struct {
	topic       string
	read, write bool
	usesUser    bool // has %u
}

// Perms are the compiled rules that apply to one client. Getting them once
// with ACL.For (at CONNECT, say) and asking them directly saves the lookup
// that ACL's methods do on every call. Perms are immutable and safe for
// concurrent use.
type Perms struct {
	allowAll    bool
	read, write []filter
}

var (
	allowAllPerms = &Perms{allowAll: true}
	denyAllPerms  = &Perms{}
)

// NewACL compiles rules. They should have passed Config.Validate: a rule
// that would not is ignored (it grants nothing). With no rules at all, the
// ACL allows everything.
func NewACL(rules []Rule) *ACL {
	a := &ACL{byUser: map[string]*Perms{}}
	if len(rules) == 0 {
		a.allowAll = true
		return a
	}
	anon := &Perms{}
	for _, r := range rules {
		if len(r.validate()) > 0 {
			continue
		}
		read, write, _ := parseAccess(r.Access)
		switch {
		case r.Pattern:
			a.patterns = append(a.patterns, patternRule{
				topic:    r.Topic,
				read:     read,
				write:    write,
				usesUser: strings.Contains(r.Topic, "%u"),
			})
		case r.Anonymous:
			anon.add(splitFilter(r.Topic), read, write)
		default:
			p := a.byUser[r.User]
			if p == nil {
				p = &Perms{}
				a.byUser[r.User] = p
			}
			p.add(splitFilter(r.Topic), read, write)
		}
	}
	a.anon = anon
	a.none = denyAllPerms
	return a
}

func (p *Perms) add(f filter, read, write bool) {
	if read {
		p.read = append(p.read, f)
	}
	if write {
		p.write = append(p.write, f)
	}
}

// For returns the rules that apply to c. With pattern rules they are
// compiled for c on first use and cached.
func (a *ACL) For(c Client) *Perms {
	if a == nil || a.allowAll {
		return allowAllPerms
	}
	if !c.HasUsername {
		c.Username = ""
	}
	if len(a.patterns) == 0 {
		return a.base(c)
	}
	if p, ok := a.cache.Load(c); ok {
		return p.(*Perms)
	}
	p := a.compile(c)
	if len(c.ClientID)+len(c.Username) > maxCacheKey {
		// Do not let odd clients fill memory with long keys.
		return p
	}
	if _, loaded := a.cache.LoadOrStore(c, p); !loaded {
		if a.cacheLen.Add(1) > maxCache {
			a.cache.Clear()
			a.cacheLen.Store(0)
		}
	}
	return p
}

// Forget drops c's compiled rules from the cache, for when c disconnects.
// It is only an optimisation: For compiles them again if needed.
func (a *ACL) Forget(c Client) {
	if a == nil || len(a.patterns) == 0 {
		return
	}
	if !c.HasUsername {
		c.Username = ""
	}
	if _, loaded := a.cache.LoadAndDelete(c); loaded {
		a.cacheLen.Add(-1)
	}
}

// base returns the rules for c without the pattern rules.
func (a *ACL) base(c Client) *Perms {
	if !c.HasUsername {
		return a.anon
	}
	if p := a.byUser[c.Username]; p != nil {
		return p
	}
	return a.none
}

// compile returns c's base rules plus the pattern rules substituted for c.
func (a *ACL) compile(c Client) *Perms {
	base := a.base(c)
	p := &Perms{
		read:  append([]filter(nil), base.read...),
		write: append([]filter(nil), base.write...),
	}
	idOK := substitutable(c.ClientID)
	userOK := c.HasUsername && substitutable(c.Username)
	r := strings.NewReplacer("%c", c.ClientID, "%u", c.Username)
	for _, pr := range a.patterns {
		usesID := strings.Contains(pr.topic, "%c")
		if (usesID && !idOK) || (pr.usesUser && !userOK) {
			continue
		}
		p.add(splitFilter(r.Replace(pr.topic)), pr.read, pr.write)
	}
	return p
}

// substitutable reports whether a client identifier or user name may be put
// into a pattern rule: it must fill exactly one level and not be a wildcard.
func substitutable(s string) bool {
	return s != "" && !strings.ContainsAny(s, "/+#")
}

// CanPublish reports whether c may publish to the topic name.
func (a *ACL) CanPublish(c Client, topicName string) bool {
	if a == nil || a.allowAll {
		return true
	}
	return a.For(c).CanPublish(topicName)
}

// CanRead reports whether c may receive a message published to the topic
// name: the per-message check, for retained messages and the bridge.
func (a *ACL) CanRead(c Client, topicName string) bool {
	if a == nil || a.allowAll {
		return true
	}
	return a.For(c).CanRead(topicName)
}

// CanSubscribe reports whether c may subscribe to the filter: whether every
// topic it can match is readable. The filter must be covered by a single
// read rule: rule "a/#" covers filter "a/+/b", rule "a/b" does not cover
// "a/#", and a filter starting with '$' is only covered by a rule starting
// with '$' too. An invalid filter is refused.
func (a *ACL) CanSubscribe(c Client, filterStr string) bool {
	if a == nil || a.allowAll {
		return true
	}
	return a.For(c).CanSubscribe(filterStr)
}

// CanPublish reports whether the client may publish to the topic name.
func (p *Perms) CanPublish(topicName string) bool {
	if p.allowAll {
		return true
	}
	for _, f := range p.write {
		if f.matches(topicName) {
			return true
		}
	}
	return false
}

// CanRead reports whether the client may receive a message published to
// the topic name.
func (p *Perms) CanRead(topicName string) bool {
	if p.allowAll {
		return true
	}
	for _, f := range p.read {
		if f.matches(topicName) {
			return true
		}
	}
	return false
}

// CanSubscribe reports whether the client may subscribe to the filter; see
// ACL.CanSubscribe.
func (p *Perms) CanSubscribe(filterStr string) bool {
	if p.allowAll {
		return true
	}
	if len(p.read) == 0 || topic.ValidateFilter(filterStr) != nil {
		return false
	}
	g := splitFilter(filterStr)
	for _, f := range p.read {
		if f.covers(g) {
			return true
		}
	}
	return false
}
