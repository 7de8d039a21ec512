package topics

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

func (r *Retained[V]) nodeCount() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.nodes
}

func countRNodes[V any](n *rnode[V]) int {
	checkTable(&n.kids.table)
	c := 0
	for _, k := range n.kids.list {
		c += 1 + countRNodes(k.val)
	}
	return c
}

// MQTT-3.3.1-5, -7: a retained message is stored per topic and a new one
// replaces it.
func TestMQTT_3_3_1_7_RetainedReplace(t *testing.T) {
	r := NewRetained[string]()
	if r.Set("a/b", "one") {
		t.Fatal("first Set reported a replacement")
	}
	if !r.Set("a/b", "two") {
		t.Fatal("second Set did not report a replacement")
	}
	if v, ok := r.Get("a/b"); !ok || v != "two" {
		t.Fatalf("Get(a/b) = %q, %v", v, ok)
	}
	if r.Len() != 1 {
		t.Fatalf("Len = %d, want 1", r.Len())
	}
	for _, name := range []string{"a", "a/b/c", "a/", "A/b"} {
		if v, ok := r.Get(name); ok {
			t.Errorf("Get(%q) = %q, true", name, v)
		}
	}
	// A message on an inner node and one below it are independent.
	r.Set("a", "parent")
	r.Set("a/b/c", "child")
	var got []string
	r.Match("a/#", func(name, v string) { got = append(got, name+"="+v) })
	slices.Sort(got)
	if want := []string{"a/b/c=child", "a/b=two", "a=parent"}; !slices.Equal(got, want) {
		t.Fatalf("Match(a/#) = %q, want %q", got, want)
	}
	if a := testing.AllocsPerRun(100, func() { r.Set("a/b", "three") }); a != 0 {
		t.Errorf("replacing Set: %v allocs/op, want 0", a)
	}
}

// MQTT-3.3.1-10: the broker deletes a retained message (on an empty
// payload); Delete prunes the nodes it leaves empty.
func TestMQTT_3_3_1_10_RetainedDelete(t *testing.T) {
	r := NewRetained[int]()
	r.Set("a/b/c", 1)
	r.Set("a", 2)
	if r.Delete("a/b") {
		t.Fatal("Delete(a/b) of an inner node without a message reported one")
	}
	if r.Delete("a/b/c/d") || r.Delete("x") {
		t.Fatal("Delete of an absent topic reported one")
	}
	if n := r.nodeCount(); n != 3 {
		t.Fatalf("nodes = %d, want 3", n)
	}
	if !r.Delete("a/b/c") {
		t.Fatal("Delete(a/b/c) found nothing")
	}
	if n := r.nodeCount(); n != 1 {
		t.Fatalf("after Delete(a/b/c): nodes = %d, want 1", n)
	}
	if _, ok := r.Get("a/b/c"); ok {
		t.Fatal("Get after Delete found the message")
	}
	if !r.Delete("a") || r.Len() != 0 || r.nodeCount() != 0 {
		t.Fatalf("after deleting all: Len = %d, nodes = %d", r.Len(), r.nodeCount())
	}

	// Many topics, enough to switch children to maps and back.
	var names []string
	for i := range 50 {
		for _, f := range []string{"d/%d/temp", "d/%d", "d/%d/x/y", "%d", "$SYS/%d", "/%d/"} {
			names = append(names, fmt.Sprintf(f, i))
		}
	}
	for i, n := range names {
		r.Set(n, i)
	}
	if got, want := r.nodeCount(), countRNodes(&r.root); got != want {
		t.Fatalf("nodes counter %d, walk %d", got, want)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	rng.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	for i, n := range names {
		if !r.Delete(n) {
			t.Fatalf("Delete(%q) found nothing", n)
		}
		if i%40 == 0 {
			if got, want := r.nodeCount(), countRNodes(&r.root); got != want {
				t.Fatalf("nodes counter %d, walk %d", got, want)
			}
		}
	}
	if r.Len() != 0 || r.nodeCount() != 0 || r.root.kids.list != nil || r.root.kids.index != nil {
		t.Fatalf("after deleting all: Len = %d, nodes = %d", r.Len(), r.nodeCount())
	}
}

func TestRetainedRange(t *testing.T) {
	r := NewRetained[int]()
	want := map[string]int{}
	for i := range 30 {
		name := fmt.Sprintf("t/%d/%d", i%4, i)
		r.Set(name, i)
		want[name] = i
	}
	r.Set("$SYS/uptime", 99)
	want["$SYS/uptime"] = 99
	got := map[string]int{}
	r.Range(func(name string, v int) bool {
		if _, dup := got[name]; dup {
			t.Errorf("Range visited %q twice", name)
		}
		got[name] = v
		return true
	})
	if !maps.Equal(got, want) {
		t.Fatalf("Range = %v, want %v", got, want)
	}
	n := 0
	r.Range(func(string, int) bool { n++; return n < 5 })
	if n != 5 {
		t.Fatalf("Range went on after false: %d visits", n)
	}
}

func TestRetainedMatchDoesNotAllocate(t *testing.T) {
	r := NewRetained[*int]()
	vals := make([]int, 200)
	for i := range vals {
		r.Set(fmt.Sprintf("devices/%d/temp", i), &vals[i])
		r.Set(fmt.Sprintf("devices/%d/humidity", i), &vals[i])
	}
	r.Set("$SYS/x", &vals[0])
	n := 0
	visit := func(string, *int) { n++ }
	for _, f := range []string{"devices/+/temp", "devices/#", "#", "+/+/temp", "devices/7/temp", "$SYS/#"} {
		if a := testing.AllocsPerRun(50, func() { r.Match(f, visit) }); a != 0 {
			t.Errorf("Match(%q): %v allocs/op, want 0", f, a)
		}
	}
	if n == 0 {
		t.Fatal("visit never called")
	}
	if a := testing.AllocsPerRun(100, func() { r.Get("devices/7/temp") }); a != 0 {
		t.Errorf("Get: %v allocs/op, want 0", a)
	}
}

// Concurrent Set, Delete, Get, Match and Range; run with -race.
func TestRetainedConcurrent(t *testing.T) {
	names := []string{"a/b", "a", "a/b/c", "$SYS/x", "x/y", "q", "a/c"}
	filters := []string{"#", "a/+", "a/#", "+/+", "$SYS/#", "x/y"}
	r := NewRetained[int]()
	var wg, readers sync.WaitGroup
	done := make(chan struct{})
	for g := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 5))
			for range 500 {
				name := names[rng.IntN(len(names))]
				if rng.IntN(2) == 0 {
					r.Set(name, len(name))
				} else {
					r.Delete(name)
				}
			}
		})
	}
	for i := range 4 {
		readers.Go(func() {
			for j := 0; ; j++ {
				select {
				case <-done:
					return
				default:
				}
				f := filters[(i+j)%len(filters)]
				r.Match(f, func(name string, v int) {
					if !MatchFilter(f, name) || v != len(name) {
						t.Errorf("Match(%q) visited %q=%d", f, name, v)
					}
				})
				r.Get(names[j%len(names)])
				r.Range(func(string, int) bool { return true })
			}
		})
	}
	wg.Wait()
	close(done)
	readers.Wait()
	for _, n := range names {
		r.Delete(n)
	}
	if r.Len() != 0 || r.nodeCount() != 0 {
		t.Fatalf("after deleting all: Len = %d, nodes = %d", r.Len(), r.nodeCount())
	}
}
