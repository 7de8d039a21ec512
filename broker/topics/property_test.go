package topics

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// randLevels builds 1-5 levels from alphabet; with wild, '+' levels and a
// final '#' appear too.
func randLevels(rng *rand.Rand, alphabet []string, wild bool) string {
	n := 1 + rng.IntN(5)
	levels := make([]string, n)
	for i := range levels {
		switch {
		case wild && i == n-1 && rng.IntN(4) == 0:
			levels[i] = "#"
		case wild && rng.IntN(3) == 0:
			levels[i] = "+"
		default:
			levels[i] = alphabet[rng.IntN(len(alphabet))]
		}
	}
	return strings.Join(levels, "/")
}

// TestMatchProperty compares Tree.Match and Retained.Match with MatchFilter
// (itself checked against naiveMatch) over random filters and names, before
// and after removing some of them, and checks that removing everything
// leaves no nodes.
func TestMatchProperty(t *testing.T) {
	small := []string{"a", "b", "", "$x", "$"}
	large := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "", "$SYS", "A", "aa"}
	for _, tc := range []struct {
		name     string
		alphabet []string
	}{{"small", small}, {"large", large}} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(20240601, uint64(len(tc.alphabet))))
			filters := make([]string, 400)
			for i := range filters {
				filters[i] = randLevels(rng, tc.alphabet, true)
			}
			names := make([]string, 1500)
			for i := range names {
				names[i] = randLevels(rng, tc.alphabet, false)
			}
			tr := NewTree[int]()
			for i, f := range filters {
				tr.Subscribe(f, i, byte(i%3))
			}
			r := NewRetained[int]()
			stored := map[string]bool{}
			for i, n := range names {
				r.Set(n, i)
				stored[n] = true
			}
			live := make([]bool, len(filters))
			for i := range live {
				live[i] = true
			}
			check := func() {
				t.Helper()
				matched := 0
				for _, n := range names {
					var want []int
					for i, f := range filters {
						m := MatchFilter(f, n)
						if m != naiveMatch(f, n) {
							t.Fatalf("MatchFilter(%q, %q) = %v, naiveMatch disagrees", f, n, m)
						}
						if m && live[i] {
							want = append(want, i)
						}
					}
					matched += len(want)
					if got := treeKeys(tr, n); !slices.Equal(got, want) {
						t.Fatalf("Tree.Match(%q) = %v, want %v", n, got, want)
					}
				}
				for _, f := range filters {
					var want []string
					for n := range stored {
						if MatchFilter(f, n) {
							want = append(want, n)
						}
					}
					slices.Sort(want)
					if got := retainedTopics(r, f); !slices.Equal(got, want) {
						t.Fatalf("Retained.Match(%q) = %q, want %q", f, got, want)
					}
				}
				if matched == 0 {
					t.Fatal("no name matched any filter: the generator is useless")
				}
			}
			check()
			for i := range filters {
				if rng.IntN(2) == 0 {
					tr.Unsubscribe(filters[i], i)
					live[i] = false
				}
			}
			for _, n := range names {
				if rng.IntN(2) == 0 && stored[n] {
					r.Delete(n)
					delete(stored, n)
				}
			}
			check()
			for i, f := range filters {
				if live[i] != tr.Unsubscribe(f, i) {
					t.Fatalf("Unsubscribe(%q, %d) disagrees with live = %v", f, i, live[i])
				}
			}
			for n := range stored {
				if !r.Delete(n) {
					t.Fatalf("Delete(%q) found nothing", n)
				}
			}
			if tr.Len() != 0 || tr.nodeCount() != 0 || r.Len() != 0 || r.nodeCount() != 0 {
				t.Fatalf("left over: tree Len %d nodes %d, retained Len %d nodes %d",
					tr.Len(), tr.nodeCount(), r.Len(), r.nodeCount())
			}
		})
	}
}
