package topics

import (
	"slices"
	"strings"
	"testing"

	"github.com/sngate/sngate/internal/topic"
)

// naiveMatch is an obviously-correct, allocating matcher used to check
// MatchFilter itself.
func naiveMatch(filter, name string) bool {
	if strings.HasPrefix(name, "$") && (strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#")) {
		return false
	}
	f := strings.Split(filter, "/")
	n := strings.Split(name, "/")
	for i, fl := range f {
		if fl == "#" {
			return true // also when i == len(n): "sport/#" matches "sport"
		}
		if i >= len(n) {
			return false
		}
		if fl != "+" && fl != n[i] {
			return false
		}
	}
	return len(f) == len(n)
}

// treeKeys returns the sorted keys Tree.Match visits for name.
func treeKeys(tr *Tree[int], name string) []int {
	var got []int
	tr.Match(name, func(k int, _ byte) { got = append(got, k) })
	slices.Sort(got)
	return got
}

// retainedTopics returns the sorted topics Retained.Match visits for filter.
func retainedTopics(r *Retained[int], filter string) []string {
	var got []string
	r.Match(filter, func(name string, _ int) { got = append(got, name) })
	slices.Sort(got)
	return got
}

type matchCase struct {
	filter, name string
	want         bool
}

// checkCases checks every case with MatchFilter, the naive matcher, a Tree
// holding just the filter and a Retained holding just the name, then all the
// filters in one Tree and all the names in one Retained.
func checkCases(t *testing.T, cases []matchCase) {
	t.Helper()
	all := NewTree[int]()
	allRet := NewRetained[int]()
	for i, c := range cases {
		if err := topic.ValidateFilter(c.filter); err != nil {
			t.Fatalf("case %d: bad filter %q: %v", i, c.filter, err)
		}
		if err := topic.ValidateName(c.name); err != nil {
			t.Fatalf("case %d: bad name %q: %v", i, c.name, err)
		}
		if got := MatchFilter(c.filter, c.name); got != c.want {
			t.Errorf("MatchFilter(%q, %q) = %v, want %v", c.filter, c.name, got, c.want)
		}
		if got := naiveMatch(c.filter, c.name); got != c.want {
			t.Errorf("naiveMatch(%q, %q) = %v, want %v", c.filter, c.name, got, c.want)
		}
		tr := NewTree[int]()
		tr.Subscribe(c.filter, 7, 1)
		if got := len(treeKeys(tr, c.name)) == 1; got != c.want {
			t.Errorf("Tree{%q}.Match(%q) matched = %v, want %v", c.filter, c.name, got, c.want)
		}
		r := NewRetained[int]()
		r.Set(c.name, 1)
		if got := len(retainedTopics(r, c.filter)) == 1; got != c.want {
			t.Errorf("Retained{%q}.Match(%q) matched = %v, want %v", c.name, c.filter, got, c.want)
		}
		all.Subscribe(c.filter, i, 0)
		allRet.Set(c.name, i)
	}
	for _, c := range cases {
		var want []int
		for j, d := range cases {
			if MatchFilter(d.filter, c.name) {
				want = append(want, j)
			}
		}
		if got := treeKeys(all, c.name); !slices.Equal(got, want) {
			t.Errorf("full Tree.Match(%q) = %v, want %v", c.name, got, want)
		}
		var wantNames []string
		for _, d := range cases {
			if MatchFilter(c.filter, d.name) && !slices.Contains(wantNames, d.name) {
				wantNames = append(wantNames, d.name)
			}
		}
		slices.Sort(wantNames)
		if got := retainedTopics(allRet, c.filter); !slices.Equal(got, wantNames) {
			t.Errorf("full Retained.Match(%q) = %q, want %q", c.filter, got, wantNames)
		}
	}
}

// MQTT-4.7.1-2: '#' is the last level, matches the parent and any number of
// child levels.
func TestMQTT_4_7_1_2_MultiLevelWildcard(t *testing.T) {
	checkCases(t, []matchCase{
		// The spec's own example: sport/tennis/player1/#.
		{"sport/tennis/player1/#", "sport/tennis/player1", true},
		{"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
		{"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
		{"sport/tennis/player1/#", "sport/tennis/player2", false},
		{"sport/tennis/player1/#", "sport/tennis", false},
		// "sport/#" also matches the singular "sport".
		{"sport/#", "sport", true},
		{"sport/#", "sport/", true},
		{"sport/#", "sport/tennis/player1", true},
		{"sport/#", "sports", false},
		{"sport/#", "/sport", false},
		// "#" on its own matches every (non-$) name.
		{"#", "sport", true},
		{"#", "sport/tennis/player1", true},
		{"#", "/", true},
		{"#", "/finance", true},
		{"/#", "/finance", true},
		{"/#", "/", true},
		{"/#", "finance", false},
		{"a//#", "a/", true}, // the parent level is the empty one after "a"
		{"a//#", "a", false},
		{"a//#", "a//", true},
		{"a//#", "a//b/c", true},
	})
	// The spec's invalid examples are refused by the validator.
	for _, f := range []string{"sport/tennis#", "sport/tennis/#/ranking", "#/x"} {
		if topic.ValidateFilter(f) == nil {
			t.Errorf("ValidateFilter(%q) accepted an invalid filter", f)
		}
	}
}

// MQTT-4.7.1-3: '+' fills exactly one level, which may be empty.
func TestMQTT_4_7_1_3_SingleLevelWildcard(t *testing.T) {
	checkCases(t, []matchCase{
		{"sport/tennis/+", "sport/tennis/player1", true},
		{"sport/tennis/+", "sport/tennis/player2", true},
		{"sport/tennis/+", "sport/tennis/player1/ranking", false},
		{"sport/tennis/+", "sport/tennis", false},
		{"sport/+", "sport", false},
		{"sport/+", "sport/", true},
		{"+", "sport", true},
		{"+", "sport/tennis", false},
		{"+", "/", false},
		{"+/tennis/#", "sport/tennis", true},
		{"+/tennis/#", "sport/tennis/player1", true},
		{"+/tennis/#", "sport/golf/player1", false},
		{"sport/+/player1", "sport/tennis/player1", true},
		{"sport/+/player1", "sport//player1", true},
		{"sport/+/player1", "sport/tennis/player2", false},
		// "/finance" matches "+/+" and "/+" but not "+".
		{"+/+", "/finance", true},
		{"/+", "/finance", true},
		{"+", "/finance", false},
		{"+/+", "/", true},
		{"+/#", "sport", true},
		{"+/+/#", "sport", false},
		{"+/+/+", "a//", true},
	})
	for _, f := range []string{"sport+", "+sport/x", "a/++"} {
		if topic.ValidateFilter(f) == nil {
			t.Errorf("ValidateFilter(%q) accepted an invalid filter", f)
		}
	}
}

// MQTT-4.7.2-1: filters starting with a wildcard never match names starting
// with '$'; filters naming the '$' level do.
func TestMQTT_4_7_2_1_DollarTopics(t *testing.T) {
	checkCases(t, []matchCase{
		{"#", "$SYS/monitor/Clients", false},
		{"#", "$SYS", false},
		{"#", "$", false},
		{"+", "$SYS", false},
		{"+/#", "$SYS", false},
		{"+/monitor/Clients", "$SYS/monitor/Clients", false},
		{"$SYS/#", "$SYS/monitor/Clients", true},
		{"$SYS/#", "$SYS/x", true},
		{"$SYS/#", "$SYS", true},
		{"$SYS/monitor/+", "$SYS/monitor/Clients", true},
		{"$SYS/+/Clients", "$SYS/monitor/Clients", true},
		{"$SYS", "$SYS", true},
		{"$SYS/#", "$SYS2/x", false},
		// Only the first character counts.
		{"#", "a/$SYS", true},
		{"+/+", "a/$SYS", true},
		{"a/+", "a/$SYS", true},
		{"#", "/$SYS", true},
		{"+/#", "x$", true},
	})
}

// MQTT-4.7.3-4: no normalisation or substitution; matching is byte-exact
// and case-sensitive.
func TestMQTT_4_7_3_4_ByteExact(t *testing.T) {
	checkCases(t, []matchCase{
		{"ACCOUNTS", "ACCOUNTS", true},
		{"ACCOUNTS", "Accounts", false},
		{"Accounts payable", "Accounts payable", true},
		{"Accounts payable", "Accounts  payable", false},
		{"Accounts payable", "Accounts payable ", false},
		{"sport/tennis", "sport/tennis/", false},
		{"sport/tennis/", "sport/tennis", false},
		{"\u00fc", "\u00fc", true},
		{"\u00fc", "u\u0308", false}, // NFC vs NFD
		{"\ufeffbom", "\ufeffbom", true},
		{"\ufeffbom", "bom", false},
		{"a/b", "a%2Fb", false},
	})
}
