package auth

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/sngate/sngate/internal/topic"
)

func TestMatches(t *testing.T) {
	tests := []struct {
		filter, name string
		want         bool
	}{
		{"a", "a", true},
		{"a", "b", false},
		{"a", "a/b", false},
		{"a/b", "a", false},
		{"a/b", "a/b", true},
		{"a/+", "a/b", true},
		{"a/+", "a/", true},
		{"a/+", "a", false},
		{"a/+", "a/b/c", false},
		{"a/#", "a", true},
		{"a/#", "a/", true},
		{"a/#", "a/b/c", true},
		{"a/#", "b/c", false},
		{"a/#", "ab", false},
		{"#", "a", true},
		{"#", "/", true},
		{"#", "a/b/c", true},
		{"+", "a", true},
		{"+", "", true},
		{"+", "/a", false},
		{"+/+", "/a", true},
		{"/+", "/a", true},
		{"/+", "a", false},
		{"+/b/+", "a/b/c", true},
		{"+/b/+", "a/x/c", false},
		{"a//b", "a//b", true},
		{"a/+/b", "a//b", true},
		// $ topics are not matched by a leading wildcard (MQTT-4.7.2-1).
		{"#", "$SYS/x", false},
		{"+/x", "$SYS/x", false},
		{"+", "$", false},
		{"$SYS/#", "$SYS/x", true},
		{"$SYS/+", "$SYS/x", true},
		{"$SYS/x", "$SYS/x", true},
		{"a/#", "a/$x", true},
		{"a/+", "a/$x", true},
		// Case and Unicode are literal.
		{"A", "a", false},
		{"ü/+", "ü/ß", true},
	}
	for _, tt := range tests {
		if got := splitFilter(tt.filter).matches(tt.name); got != tt.want {
			t.Errorf("filter %q matches %q = %v, want %v", tt.filter, tt.name, got, tt.want)
		}
	}
}

func TestCovers(t *testing.T) {
	tests := []struct {
		rule, filter string
		want         bool
	}{
		// Equal filters cover each other.
		{"a", "a", true},
		{"a/b", "a/b", true},
		{"a/+", "a/+", true},
		{"a/#", "a/#", true},
		{"#", "#", true},
		{"+", "+", true},
		{"$SYS/#", "$SYS/#", true},

		// # covers everything below, parent level included.
		{"#", "a", true},
		{"#", "a/b/c", true},
		{"#", "+/+", true},
		{"#", "+/#", true},
		{"#", "/", true},
		{"a/#", "a", true},
		{"a/#", "a/b", true},
		{"a/#", "a/+/b", true},
		{"a/#", "a/+/#", true},
		{"a/#", "a/b/#", true},
		{"a/#", "b", false},
		{"a/#", "+", false},
		{"a/#", "+/b", false},
		{"a/#", "#", false},
		{"a/b/#", "a/#", false},
		{"a/b/#", "a", false},
		{"a/b/#", "a/b", true},

		// + covers one level, literal or +, but not #.
		{"+", "a", true},
		{"+", "", true},
		{"+", "#", false},
		{"+", "a/b", false},
		{"+", "+/+", false},
		{"a/+", "a/b", true},
		{"a/+", "a/+", true},
		{"a/+", "a/#", false},
		{"a/+", "a", false},
		{"a/+", "a/b/c", false},
		{"+/b", "a/b", true},
		{"+/b", "+/b", true},
		{"+/b", "+/c", false},
		{"+/+", "a/b", true},
		{"+/+", "+/b", true},
		{"+/+", "a/+", true},
		{"+/+", "+", false},
		{"+/#", "a", true},
		{"+/#", "a/b/c", true},
		{"+/#", "+", true},
		{"+/#", "#", true},
		{"+/+/#", "#", false},
		{"+/+", "#", false},
		{"+", "#", false},
		{"a/+/#", "a/#", false},
		{"+/+/#", "+/#", false},
		{"+/+/#", "a/b", true},
		{"+/+/#", "a", false},

		// A literal covers only itself.
		{"a/b", "a/+", false},
		{"a/b", "a/#", false},
		{"a/b", "a", false},
		{"a/b", "a/b/c", false},
		{"a", "a/#", false},
		{"a", "#", false},
		{"a", "+", false},
		{"a//b", "a/+/b", false},
		{"a/+/b", "a//b", true},

		// $ topics: a filter starting with a literal $ level matches $
		// topics, which a rule starting with a wildcard never does.
		{"#", "$SYS", false},
		{"#", "$SYS/#", false},
		{"#", "$SYS/x", false},
		{"+/#", "$SYS/x", false},
		{"+/x", "$SYS/x", false},
		{"+", "$", false},
		{"$SYS/#", "$SYS/broker/+", true},
		{"$SYS/#", "$SYS", true},
		{"$SYS/+", "$SYS/x", true},
		{"$SYS/#", "#", false},
		{"$SYS/#", "+/#", false},
		{"$SYS/#", "+/x", false},
		// A filter starting with a wildcard matches no $ topic, so a rule
		// starting with a wildcard still covers it.
		{"#", "+/x", true},
		{"+/x", "+/x", true},
		// $ below the first level is an ordinary character.
		{"a/#", "a/$x", true},
		{"a/+", "a/$x", true},
	}
	for _, tt := range tests {
		if got := splitFilter(tt.rule).covers(splitFilter(tt.filter)); got != tt.want {
			t.Errorf("rule %q covers %q = %v, want %v", tt.rule, tt.filter, got, tt.want)
		}
	}
}

// naiveMatch is topic matching straight from the specification, for
// checking filter.matches.
func naiveMatch(filterStr, name string) bool {
	if strings.HasPrefix(name, "$") && (strings.HasPrefix(filterStr, "+") || strings.HasPrefix(filterStr, "#")) {
		return false
	}
	var rec func(f, n []string) bool
	rec = func(f, n []string) bool {
		switch {
		case len(f) == 0:
			return len(n) == 0
		case f[0] == "#":
			return true
		case len(n) == 0:
			return false
		case f[0] == "+" || f[0] == n[0]:
			return rec(f[1:], n[1:])
		}
		return false
	}
	return rec(strings.Split(filterStr, "/"), strings.Split(name, "/"))
}

// Random filters and names over a small alphabet. Literal levels come from
// litLevels; names may also have the level "z", which no filter has, so
// that a literal filter level can be avoided.
var (
	litLevels  = []string{"a", "b", "", "$s"}
	nameLevels = append(append([]string{}, litLevels...), "z")
)

func randFilter(r *rand.Rand, maxLevels int) string {
	n := 1 + r.IntN(maxLevels)
	levels := make([]string, n)
	for i := range levels {
		switch k := r.IntN(10); {
		case k < 2:
			levels[i] = "+"
		case k < 3 && i == n-1:
			levels[i] = "#"
		default:
			levels[i] = litLevels[r.IntN(len(litLevels))]
		}
	}
	if n == 1 && levels[0] == "" {
		return "a" // "" is not a filter
	}
	return strings.Join(levels, "/")
}

// allNames returns every name of 1 to maxLevels levels over nameLevels.
func allNames(maxLevels int) []string {
	var out []string
	prev := []string{""}
	for n := 1; n <= maxLevels; n++ {
		var next []string
		for _, p := range prev {
			for _, l := range nameLevels {
				s := l
				if n > 1 {
					s = p + "/" + l
				}
				next = append(next, s)
			}
		}
		for _, s := range next {
			if s != "" { // not a topic name, though "/a" is
				out = append(out, s)
			}
		}
		prev = next
	}
	return out
}

func TestMatchesRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	names := allNames(4)
	for range 300 {
		f := randFilter(r, 4)
		if err := topic.ValidateFilter(f); err != nil {
			t.Fatalf("generated bad filter %q: %v", f, err)
		}
		sf := splitFilter(f)
		for _, n := range names {
			if got, want := sf.matches(n), naiveMatch(f, n); got != want {
				t.Fatalf("filter %q matches %q = %v, naive says %v", f, n, got, want)
			}
		}
	}
}

// TestCoversRandom checks covers against brute force: rule covers filter
// exactly when every name filter matches, rule matches. Filters have at most
// 3 levels and use only the literals in litLevels, so names of up to 5
// levels over those literals plus one fresh level ("z") include a witness
// whenever coverage fails.
func TestCoversRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	names := allNames(5)
	covered, notCovered := 0, 0
	for range 3000 {
		rule, filterStr := randFilter(r, 3), randFilter(r, 3)
		if r.IntN(4) == 0 {
			// Make coverage likelier: a filter derived from the rule.
			filterStr = narrow(r, rule)
		}
		f, g := splitFilter(rule), splitFilter(filterStr)
		want := true
		for _, n := range names {
			if g.matches(n) && !f.matches(n) {
				want = false
				break
			}
		}
		if got := f.covers(g); got != want {
			t.Fatalf("rule %q covers %q = %v, brute force says %v", rule, filterStr, got, want)
		}
		if want {
			covered++
		} else {
			notCovered++
		}
	}
	if covered < 300 || notCovered < 300 {
		t.Errorf("weak sample: %d covered, %d not", covered, notCovered)
	}
}

// narrow returns a filter likely covered by rule: wildcards replaced by
// literals or narrower wildcards, sometimes levels added under a #.
func narrow(r *rand.Rand, rule string) string {
	levels := strings.Split(rule, "/")
	var out []string
	for _, l := range levels {
		switch l {
		case "+":
			if r.IntN(2) == 0 {
				l = litLevels[r.IntN(len(litLevels))]
			}
		case "#":
			switch r.IntN(3) {
			case 0:
				return strings.Join(append(out, "+", "#"), "/")
			case 1:
				if len(out) > 0 {
					return strings.Join(out, "/")
				}
			}
		}
		out = append(out, l)
	}
	return strings.Join(out, "/")
}
