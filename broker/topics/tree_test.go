package topics

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

type visit struct {
	key int
	qos byte
}

func treeVisits(tr *Tree[int], name string) []visit {
	var got []visit
	tr.Match(name, func(k int, q byte) { got = append(got, visit{k, q}) })
	slices.SortFunc(got, func(a, b visit) int {
		if a.key != b.key {
			return a.key - b.key
		}
		return int(a.qos) - int(b.qos)
	})
	return got
}

func (t *Tree[K]) nodeCount() int {
	s := t.mu.rlock()
	defer t.mu.runlock(s)
	return t.nodes
}

// checkTable panics unless tb's index, if any, agrees with its list and the
// index exists exactly when the hysteresis says it may.
func checkTable[K comparable, V any](tb *table[K, V]) {
	if tb.index == nil {
		if len(tb.list) > maxLinear {
			panic(fmt.Sprintf("%d entries without an index", len(tb.list)))
		}
		return
	}
	if len(tb.index) != len(tb.list) || len(tb.list) <= maxLinear/2 {
		panic(fmt.Sprintf("index of %d for %d entries", len(tb.index), len(tb.list)))
	}
	for i, e := range tb.list {
		if tb.index[e.key] != int32(i) {
			panic("index disagrees with list")
		}
	}
}

// countNodes walks the tree, checking every table, to check the nodes
// counter.
func countNodes[K comparable](n *tnode[K]) int {
	checkTable(&n.kids.table)
	checkTable(&n.subs.table)
	c := 0
	for _, k := range n.kids.list {
		c += 1 + countNodes(k.val)
	}
	for _, k := range []*tnode[K]{n.plus, n.hash} {
		if k != nil {
			c += 1 + countNodes(k)
		}
	}
	return c
}

// MQTT-3.8.4-3: subscribing to the same filter again replaces the
// subscription and its QoS.
func TestMQTT_3_8_4_3_ReplaceSubscription(t *testing.T) {
	tr := NewTree[int]()
	if tr.Subscribe("a/+", 1, 0) {
		t.Fatal("first Subscribe reported a replacement")
	}
	if tr.Subscribe("a/+", 2, 1) {
		t.Fatal("another key's Subscribe reported a replacement")
	}
	if !tr.Subscribe("a/+", 1, 2) {
		t.Fatal("second Subscribe of the same filter and key did not report a replacement")
	}
	if tr.Subscribe("a/#", 1, 1) {
		t.Fatal("a different filter reported a replacement")
	}
	if got := tr.Len(); got != 3 {
		t.Fatalf("Len = %d, want 3", got)
	}
	want := []visit{{1, 1}, {1, 2}, {2, 1}}
	if got := treeVisits(tr, "a/b"); !slices.Equal(got, want) {
		t.Fatalf("Match(a/b) = %v, want %v", got, want)
	}
	// Replacement also works past the slice-to-map switch.
	for k := range 3 * maxLinear {
		tr.Subscribe("m", k, 0)
	}
	for k := range 3 * maxLinear {
		if !tr.Subscribe("m", k, 2) {
			t.Fatalf("key %d: no replacement in map mode", k)
		}
	}
	for _, v := range treeVisits(tr, "m") {
		if v.qos != 2 {
			t.Fatalf("key %d kept qos %d", v.key, v.qos)
		}
	}
}

// MQTT-3.3.5-1: one key subscribed through several matching filters is
// visited once per filter, each with its own QoS; the caller merges.
func TestMQTT_3_3_5_1_OverlappingSubscriptions(t *testing.T) {
	tr := NewTree[int]()
	tr.Subscribe("a/+", 1, 0)
	tr.Subscribe("a/#", 1, 2)
	tr.Subscribe("#", 1, 1)
	tr.Subscribe("a/b", 1, 0)
	tr.Subscribe("+/b", 2, 1)
	tr.Subscribe("a/c", 3, 1)
	want := []visit{{1, 0}, {1, 0}, {1, 1}, {1, 2}, {2, 1}}
	if got := treeVisits(tr, "a/b"); !slices.Equal(got, want) {
		t.Fatalf("Match(a/b) = %v, want %v", got, want)
	}
	want = []visit{{1, 1}, {1, 2}}
	if got := treeVisits(tr, "a"); !slices.Equal(got, want) {
		t.Fatalf("Match(a) = %v, want %v", got, want)
	}
}

// MQTT-3.10.4-1: Unsubscribe compares filters character by character, with
// no wildcard expansion.
func TestMQTT_3_10_4_1_UnsubscribeLiteral(t *testing.T) {
	tr := NewTree[int]()
	tr.Subscribe("a/+", 1, 1)
	tr.Subscribe("a/#", 1, 1)
	for _, f := range []string{"a/b", "a", "a/+/#", "+/+", "#", "A/+", "a/+/"} {
		if tr.Unsubscribe(f, 1) {
			t.Errorf("Unsubscribe(%q) removed something", f)
		}
	}
	if tr.Unsubscribe("a/+", 2) {
		t.Error("Unsubscribe with another key removed something")
	}
	if !tr.Unsubscribe("a/+", 1) {
		t.Fatal("Unsubscribe(a/+) found nothing")
	}
	if tr.Unsubscribe("a/+", 1) {
		t.Fatal("second Unsubscribe(a/+) removed something")
	}
	if got := treeVisits(tr, "a/b"); !slices.Equal(got, []visit{{1, 1}}) {
		t.Fatalf("after Unsubscribe(a/+): Match(a/b) = %v", got)
	}
	if tr.Len() != 1 {
		t.Fatalf("Len = %d, want 1", tr.Len())
	}
}

func TestUnsubscribePrunes(t *testing.T) {
	tr := NewTree[int]()
	tr.Subscribe("a/b/c", 1, 0)
	tr.Subscribe("a/b", 1, 0)
	if n := tr.nodeCount(); n != 3 {
		t.Fatalf("nodes = %d, want 3", n)
	}
	tr.Unsubscribe("a/b/c", 1)
	if n := tr.nodeCount(); n != 2 {
		t.Fatalf("after Unsubscribe(a/b/c): nodes = %d, want 2 (a/b still used)", n)
	}
	tr.Unsubscribe("a/b", 1)
	if n, l := tr.nodeCount(), tr.Len(); n != 0 || l != 0 {
		t.Fatalf("after removing all: nodes = %d, Len = %d", n, l)
	}

	// Many filters and keys, enough to switch children and subscriber sets
	// to maps and back, removed in random order.
	rng := rand.New(rand.NewPCG(1, 2))
	type fk struct {
		f string
		k int
	}
	var subs []fk
	for i := range 40 {
		for _, f := range []string{"d/%d/+/state", "d/%d/#", "+/%d", "d/%d", "d//%d/#"} {
			for k := range 1 + i%3 {
				subs = append(subs, fk{fmt.Sprintf(f, i), k})
			}
		}
	}
	for k := range 3 * maxLinear {
		subs = append(subs, fk{"fan/+/out", k}, fk{"#", k})
	}
	for _, s := range subs {
		tr.Subscribe(s.f, s.k, 1)
	}
	if got := tr.Len(); got != len(subs) {
		t.Fatalf("Len = %d, want %d", got, len(subs))
	}
	if got, want := tr.nodeCount(), countNodes(&tr.root); got != want {
		t.Fatalf("nodes counter %d, walk %d", got, want)
	}
	rng.Shuffle(len(subs), func(i, j int) { subs[i], subs[j] = subs[j], subs[i] })
	for i, s := range subs {
		if !tr.Unsubscribe(s.f, s.k) {
			t.Fatalf("Unsubscribe(%q, %d) found nothing", s.f, s.k)
		}
		if i%50 == 0 {
			if got, want := tr.nodeCount(), countNodes(&tr.root); got != want {
				t.Fatalf("nodes counter %d, walk %d", got, want)
			}
		}
	}
	if n, l := tr.nodeCount(), tr.Len(); n != 0 || l != 0 {
		t.Fatalf("after removing all: nodes = %d, Len = %d", n, l)
	}
	if !tr.root.empty() || tr.root.kids.list != nil || tr.root.kids.index != nil {
		t.Fatalf("root not empty: %+v", tr.root)
	}
}

func TestTreeMatchDoesNotAllocate(t *testing.T) {
	tr := NewTree[*int]()
	keys := make([]int, 100)
	for i := range keys {
		k := &keys[i]
		tr.Subscribe(fmt.Sprintf("devices/%d/+/state", i), k, 1)
		tr.Subscribe(fmt.Sprintf("devices/%d/#", i), k, 1)
		tr.Subscribe("devices/+/sensor/state", k, 0) // map-mode subscriber set
		tr.Subscribe("#", k, 0)
	}
	n := 0
	visit := func(*int, byte) { n++ }
	for _, name := range []string{"devices/42/sensor/state", "devices/7", "$SYS/x", "nothing/here", "devices/1/a/b/c/d"} {
		allocs := testing.AllocsPerRun(200, func() { tr.Match(name, visit) })
		if allocs != 0 {
			t.Errorf("Match(%q): %v allocs/op, want 0", name, allocs)
		}
	}
	if n == 0 {
		t.Fatal("visit never called")
	}
	if a := testing.AllocsPerRun(200, func() { MatchFilter("devices/+/sensor/#", "devices/42/sensor/state") }); a != 0 {
		t.Errorf("MatchFilter: %v allocs/op, want 0", a)
	}
}

// Concurrent Subscribe, Unsubscribe and Match; run with -race. Each Match
// checks that every visit is a filter that really matches.
func TestTreeConcurrent(t *testing.T) {
	type key struct{ g, f int }
	filters := []string{"a/+", "a/#", "#", "+/b", "a/b", "a/b/c", "+/+/+", "$SYS/#", "x/y", "a"}
	names := []string{"a/b", "a", "a/b/c", "$SYS/x", "x/y", "q"}
	tr := NewTree[key]()
	const writers, readers, rounds = 4, 4, 400
	var wg sync.WaitGroup
	var stop sync.WaitGroup
	done := make(chan struct{})
	for g := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 9))
			held := map[int]bool{}
			for range rounds {
				f := rng.IntN(len(filters))
				if held[f] {
					if !tr.Unsubscribe(filters[f], key{g, f}) {
						t.Errorf("writer %d lost %q", g, filters[f])
					}
					delete(held, f)
				} else {
					if tr.Subscribe(filters[f], key{g, f}, byte(f%3)) {
						t.Errorf("writer %d: %q already there", g, filters[f])
					}
					held[f] = true
				}
			}
			for f := range held {
				tr.Unsubscribe(filters[f], key{g, f})
			}
		})
	}
	for r := range readers {
		stop.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				name := names[(i+r)%len(names)]
				tr.Match(name, func(k key, q byte) {
					if !MatchFilter(filters[k.f], name) || q != byte(k.f%3) {
						t.Errorf("Match(%q) visited %q qos %d", name, filters[k.f], q)
					}
				})
				_ = tr.Len()
			}
		})
	}
	wg.Wait()
	close(done)
	stop.Wait()
	if n, l := tr.nodeCount(), tr.Len(); n != 0 || l != 0 {
		t.Fatalf("after all writers left: nodes = %d, Len = %d", n, l)
	}
}
