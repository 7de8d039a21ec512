package topics

import (
	"slices"
	"testing"

	"github.com/sngate/sngate/internal/topic"
)

// FuzzMatch checks that Tree and Retained agree with MatchFilter (and
// MatchFilter with naiveMatch) for a valid filter and topic name, together
// with a few related filters and names, and that removing them all leaves
// no nodes behind.
func FuzzMatch(f *testing.F) {
	for _, s := range [][2]string{
		{"sport/tennis/player1/#", "sport/tennis/player1"},
		{"sport/#", "sport"},
		{"+/tennis/#", "sport/tennis"},
		{"+/+", "/finance"},
		{"#", "$SYS/x"},
		{"$SYS/#", "$SYS"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, filter, name string) {
		if topic.ValidateFilter(filter) != nil || topic.ValidateName(name) != nil {
			t.Skip()
		}
		filters := []string{filter, name, "#", "+/#", "+", name + "/#"}
		names := []string{name, name + "/x", "$" + name, "/" + name}
		tr := NewTree[int]()
		for i, fl := range filters {
			if topic.ValidateFilter(fl) == nil {
				tr.Subscribe(fl, i, 0)
			}
		}
		r := NewRetained[int]()
		for i, n := range names {
			if topic.ValidateName(n) == nil {
				r.Set(n, i)
			}
		}
		for _, n := range names {
			if topic.ValidateName(n) != nil {
				continue
			}
			var want []int
			for i, fl := range filters {
				if topic.ValidateFilter(fl) != nil {
					continue
				}
				m := MatchFilter(fl, n)
				if m != naiveMatch(fl, n) {
					t.Fatalf("MatchFilter(%q, %q) = %v, naiveMatch disagrees", fl, n, m)
				}
				if m {
					want = append(want, i)
				}
			}
			if got := treeKeys(tr, n); !slices.Equal(got, want) {
				t.Fatalf("Tree.Match(%q) = %v, want %v (filters %q)", n, got, want, filters)
			}
		}
		for _, fl := range filters {
			if topic.ValidateFilter(fl) != nil {
				continue
			}
			var want []string
			for _, n := range names {
				if topic.ValidateName(n) == nil && MatchFilter(fl, n) {
					want = append(want, n)
				}
			}
			slices.Sort(want)
			want = slices.Compact(want)
			if got := retainedTopics(r, fl); !slices.Equal(got, want) {
				t.Fatalf("Retained.Match(%q) = %q, want %q", fl, got, want)
			}
		}
		for i, fl := range filters {
			if topic.ValidateFilter(fl) == nil && !tr.Unsubscribe(fl, i) {
				t.Fatalf("Unsubscribe(%q, %d) found nothing", fl, i)
			}
		}
		for _, n := range names {
			if topic.ValidateName(n) == nil {
				r.Delete(n)
			}
		}
		if tr.Len() != 0 || tr.nodeCount() != 0 || r.Len() != 0 || r.nodeCount() != 0 {
			t.Fatalf("left over: tree Len %d nodes %d, retained Len %d nodes %d",
				tr.Len(), tr.nodeCount(), r.Len(), r.nodeCount())
		}
	})
}
