package auth

import (
	"fmt"
	"sync"
	"testing"
)

var (
	anonC  = Client{ClientID: "dev1"}
	aliceC = Client{ClientID: "c-alice", Username: "alice", HasUsername: true}
	bobC   = Client{ClientID: "c-bob", Username: "bob", HasUsername: true}
	carolC = Client{ClientID: "c-carol", Username: "carol", HasUsername: true}
)

func TestNoRulesAllowsEverything(t *testing.T) {
	for _, a := range []*ACL{NewACL(nil), NewACL([]Rule{}), nil} {
		for _, c := range []Client{anonC, aliceC, {}} {
			for _, tp := range []string{"a", "a/b", "$SYS/x"} {
				if !a.CanPublish(c, tp) || !a.CanRead(c, tp) {
					t.Errorf("%+v on %q refused with no rules", c, tp)
				}
			}
			for _, f := range []string{"#", "+/x", "$SYS/#"} {
				if !a.CanSubscribe(c, f) {
					t.Errorf("%+v subscribing %q refused with no rules", c, f)
				}
			}
		}
	}
}

type check struct {
	c       Client
	op      string // pub, read, sub
	topic   string
	allowed bool
}

func runChecks(t *testing.T, a *ACL, checks []check) {
	t.Helper()
	for _, ck := range checks {
		var got bool
		switch ck.op {
		case "pub":
			got = a.CanPublish(ck.c, ck.topic)
		case "read":
			got = a.CanRead(ck.c, ck.topic)
		case "sub":
			got = a.CanSubscribe(ck.c, ck.topic)
		default:
			t.Fatalf("bad op %q", ck.op)
		}
		if got != ck.allowed {
			t.Errorf("%s %q by %+v = %v, want %v", ck.op, ck.topic, ck.c, got, ck.allowed)
		}
		// Perms give the same answers.
		p := a.For(ck.c)
		switch ck.op {
		case "pub":
			got = p.CanPublish(ck.topic)
		case "read":
			got = p.CanRead(ck.topic)
		case "sub":
			got = p.CanSubscribe(ck.topic)
		}
		if got != ck.allowed {
			t.Errorf("Perms: %s %q by %+v = %v, want %v", ck.op, ck.topic, ck.c, got, ck.allowed)
		}
	}
}

func TestUserRules(t *testing.T) {
	a := NewACL([]Rule{
		{User: "alice", Topic: "alice/#"},                    // readwrite by default
		{User: "alice", Topic: "news/+", Access: "read"},     //
		{User: "alice", Topic: "cmd/alice", Access: "write"}, //
		{User: "bob", Topic: "sensors/+/temp", Access: "readwrite"},
	})
	runChecks(t, a, []check{
		{aliceC, "pub", "alice/x", true},
		{aliceC, "pub", "alice", true},
		{aliceC, "read", "alice/x/y", true},
		{aliceC, "sub", "alice/#", true},
		{aliceC, "sub", "alice/+/y", true},
		{aliceC, "pub", "news/today", false}, // read only
		{aliceC, "read", "news/today", true},
		{aliceC, "sub", "news/+", true},
		{aliceC, "sub", "news/#", false},
		{aliceC, "sub", "news/today/x", false},
		{aliceC, "pub", "cmd/alice", true}, // write only
		{aliceC, "read", "cmd/alice", false},
		{aliceC, "sub", "cmd/alice", false},
		{aliceC, "pub", "sensors/1/temp", false}, // bob's
		{aliceC, "sub", "#", false},

		{bobC, "pub", "sensors/1/temp", true},
		{bobC, "read", "sensors/1/temp", true},
		{bobC, "sub", "sensors/+/temp", true},
		{bobC, "sub", "sensors/#", false},
		{bobC, "pub", "sensors/1/hum", false},
		{bobC, "pub", "alice/x", false},

		// Users without rules, anonymous clients, and a client whose
		// client id is a user's name get nothing.
		{carolC, "pub", "alice/x", false},
		{carolC, "sub", "#", false},
		{anonC, "pub", "alice/x", false},
		{Client{ClientID: "alice"}, "pub", "alice/x", false},
		{Client{ClientID: "x", Username: "alice"}, "pub", "alice/x", false}, // HasUsername false
		{Client{ClientID: "x", HasUsername: true}, "pub", "alice/x", false}, // empty user name
	})
}

func TestAnonymousRules(t *testing.T) {
	a := NewACL([]Rule{
		{Anonymous: true, Topic: "public/#", Access: "read"},
		{Anonymous: true, Topic: "public/anon/+", Access: "write"},
		{User: "alice", Topic: "#"},
	})
	runChecks(t, a, []check{
		{anonC, "read", "public/x", true},
		{anonC, "sub", "public/#", true},
		{anonC, "pub", "public/x", false},
		{anonC, "pub", "public/anon/x", true},
		{anonC, "sub", "public/anon/x", true}, // readable through public/#
		{anonC, "pub", "private", false},
		{anonC, "sub", "#", false},
		// Anonymous rules are not for users, even with an empty name.
		{bobC, "read", "public/x", false},
		{Client{ClientID: "x", HasUsername: true}, "read", "public/x", false},
		// A user with "#" gets everything but $ topics.
		{aliceC, "pub", "private", true},
		{aliceC, "sub", "#", true},
		{aliceC, "read", "$SYS/broker/uptime", false},
		{aliceC, "sub", "$SYS/#", false},
	})
}

func TestPatternRules(t *testing.T) {
	a := NewACL([]Rule{
		{Pattern: true, Topic: "devices/%c/#"},
		{Pattern: true, Topic: "users/%u/inbox", Access: "read"},
		{Pattern: true, Topic: "users/%u/outbox/%c", Access: "write"},
		{Pattern: true, Topic: "x/%c-%u", Access: "write"}, // inside a level
		{Pattern: true, Topic: "everyone/+", Access: "read"},
	})
	dev := Client{ClientID: "dev7"}
	odd := func(id, user string) Client { return Client{ClientID: id, Username: user, HasUsername: true} }
	runChecks(t, a, []check{
		{dev, "pub", "devices/dev7/temp", true},
		{dev, "pub", "devices/dev7", true},
		{dev, "sub", "devices/dev7/#", true},
		{dev, "pub", "devices/dev8/temp", false},
		{dev, "sub", "devices/+/temp", false},
		{dev, "read", "everyone/x", true},
		{dev, "pub", "everyone/x", false},
		// No user name: %u rules do not apply, %c rules do.
		{dev, "read", "users//inbox", false},
		{dev, "read", "users/%u/inbox", false},
		{dev, "pub", "x/dev7-", false},

		{aliceC, "read", "users/alice/inbox", true},
		{aliceC, "pub", "users/alice/inbox", false},
		{aliceC, "read", "users/bob/inbox", false},
		{aliceC, "pub", "users/alice/outbox/c-alice", true},
		{aliceC, "pub", "users/alice/outbox/other", false},
		{aliceC, "pub", "devices/c-alice/x", true},
		{aliceC, "pub", "x/c-alice-alice", true},
		{aliceC, "pub", "x/%c-%u", false},

		// Identifiers that would widen or shift the rule do not get it.
		{odd("#", "u"), "pub", "devices/anything/x", false},
		{odd("#", "u"), "pub", "devices/#/x", false},
		{odd("+", "u"), "pub", "devices/x/y", false},
		{odd("a/b", "u"), "pub", "devices/a/b/c", false},
		{odd("id", "#"), "read", "users/x/inbox", false},
		{odd("id", "a/b"), "read", "users/a/b/inbox", false},
		{odd("id", ""), "read", "users//inbox", false},
		{odd("", "u"), "pub", "devices//x", false},
		// ...but still get the rules that do not use the odd value.
		{odd("#", "u"), "read", "users/u/inbox", true},
		{odd("id", "#"), "pub", "devices/id/x", true},
		// Substitution is one pass: a %u in the client id stays.
		{odd("%u", "bob"), "pub", "devices/%u/x", true},
		{odd("%u", "bob"), "pub", "devices/bob/x", false},
	})
}

func TestPatternWithUserRules(t *testing.T) {
	a := NewACL([]Rule{
		{Pattern: true, Topic: "home/%u/#"},
		{User: "admin", Topic: "#"},
		{Anonymous: true, Topic: "guest/#", Access: "read"},
	})
	admin := Client{ClientID: "root", Username: "admin", HasUsername: true}
	runChecks(t, a, []check{
		{admin, "pub", "anything/at/all", true},
		{admin, "pub", "home/admin/x", true},
		{aliceC, "pub", "home/alice/x", true},
		{aliceC, "pub", "anything", false},
		{aliceC, "read", "guest/x", false},
		{anonC, "read", "guest/x", true},
		{anonC, "pub", "home//x", false},
	})
}

func TestDollarTopics(t *testing.T) {
	a := NewACL([]Rule{
		{User: "alice", Topic: "#", Access: "read"},
		{User: "alice", Topic: "+/status", Access: "read"},
		{User: "mon", Topic: "$SYS/#", Access: "read"},
	})
	mon := Client{ClientID: "m", Username: "mon", HasUsername: true}
	runChecks(t, a, []check{
		{aliceC, "read", "$SYS/broker/clients", false},
		{aliceC, "read", "$SYS/status", false},
		{aliceC, "sub", "$SYS/#", false},
		{aliceC, "sub", "$SYS/status", false},
		{aliceC, "sub", "+/status", true},
		{aliceC, "sub", "#", true},
		{mon, "read", "$SYS/broker/clients", true},
		{mon, "sub", "$SYS/#", true},
		{mon, "sub", "$SYS/broker/+", true},
		{mon, "sub", "#", false},
		{mon, "read", "a", false},
	})
}

func TestCanSubscribeInvalidFilter(t *testing.T) {
	a := NewACL([]Rule{{User: "alice", Topic: "#"}})
	for _, f := range []string{"", "a/#/b", "a+", "a/b#", "a\x00"} {
		if a.CanSubscribe(aliceC, f) {
			t.Errorf("invalid filter %q allowed", f)
		}
	}
}

func TestInvalidRulesGrantNothing(t *testing.T) {
	a := NewACL([]Rule{
		{User: "alice", Topic: "#", Access: "all"},   // bad access
		{User: "alice", Anonymous: true, Topic: "#"}, // two kinds
		{Topic: "#"},                    // no kind
		{User: "alice", Topic: "a/#/b"}, // bad filter
		{User: "alice", Topic: "ok", Access: "readwrite"}, // fine
	})
	runChecks(t, a, []check{
		{aliceC, "pub", "x", false},
		{anonC, "pub", "x", false},
		{aliceC, "pub", "ok", true},
	})
}

func TestPermsCache(t *testing.T) {
	a := NewACL([]Rule{{Pattern: true, Topic: "d/%c"}})
	p1 := a.For(aliceC)
	if p2 := a.For(aliceC); p1 != p2 {
		t.Error("second For compiled again")
	}
	// Username is ignored without HasUsername.
	if a.For(Client{ClientID: "x", Username: "u"}) != a.For(Client{ClientID: "x"}) {
		t.Error("anonymous clients with different ignored user names cached apart")
	}
	a.Forget(aliceC)
	if p3 := a.For(aliceC); p3 == p1 || !p3.CanPublish("d/c-alice") {
		t.Error("Forget did not drop the cached rules")
	}
	for i := range maxCache + 10 {
		a.For(Client{ClientID: fmt.Sprint("c", i)})
	}
	if n := a.cacheLen.Load(); n > maxCache {
		t.Errorf("cache holds %d > %d entries", n, maxCache)
	}
	long := Client{ClientID: string(make([]byte, maxCacheKey+1))}
	a.For(long)
	if _, ok := a.cache.Load(long); ok {
		t.Error("long key cached")
	}
	// Without pattern rules nothing is cached.
	b := NewACL([]Rule{{User: "alice", Topic: "#"}})
	b.For(aliceC)
	if b.cacheLen.Load() != 0 {
		t.Error("cached without patterns")
	}
}

func TestConcurrentUse(t *testing.T) {
	a := NewACL([]Rule{{Pattern: true, Topic: "d/%c/#"}, {User: "alice", Topic: "a/#"}})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				c := Client{ClientID: fmt.Sprint("c", (g*2000+i)%5000)}
				if !a.CanPublish(c, "d/"+c.ClientID+"/x") {
					t.Errorf("%s refused", c.ClientID)
					return
				}
				a.CanSubscribe(aliceC, "a/+")
				if i%100 == 0 {
					a.Forget(c)
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkCanPublishNoRules(b *testing.B) {
	a := NewACL(nil)
	c := aliceC
	for b.Loop() {
		if !a.CanPublish(c, "sensors/kitchen/temp") {
			b.Fatal("refused")
		}
	}
}

// fiftyRules are a plausible mix: 30 user rules over 10 users, 10 pattern
// rules and 10 anonymous rules.
func fiftyRules() []Rule {
	var rules []Rule
	for i := range 30 {
		rules = append(rules, Rule{User: fmt.Sprint("user", i%10), Topic: fmt.Sprintf("site/%d/+/zone%d/#", i, i), Access: []string{"read", "write", ""}[i%3]})
	}
	for i := range 10 {
		rules = append(rules, Rule{Pattern: true, Topic: fmt.Sprintf("dev/%%u/%%c/ch%d/+", i)})
	}
	for i := range 10 {
		rules = append(rules, Rule{Anonymous: true, Topic: fmt.Sprintf("public/%d/#", i), Access: "read"})
	}
	return rules
}

func BenchmarkCanPublish50Rules(b *testing.B) {
	a := NewACL(fiftyRules())
	c := Client{ClientID: "gw-7", Username: "user7", HasUsername: true}
	b.Run("allowed-last", func(b *testing.B) {
		for b.Loop() {
			if !a.CanPublish(c, "dev/user7/gw-7/ch9/temp") {
				b.Fatal("refused")
			}
		}
	})
	b.Run("refused", func(b *testing.B) {
		for b.Loop() {
			if a.CanPublish(c, "site/7/x/zone8/temp") {
				b.Fatal("allowed")
			}
		}
	})
	b.Run("perms", func(b *testing.B) {
		p := a.For(c)
		for b.Loop() {
			if !p.CanPublish("dev/user7/gw-7/ch9/temp") {
				b.Fatal("refused")
			}
		}
	})
}
