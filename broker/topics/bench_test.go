package topics

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
)

// session stands in for the broker's session type: keys are pointers.
type session struct{ id int }

// benchTree holds 10,000 subscriptions: per device n < 3333
// "devices/<n>/+/state", "devices/<n>/sensor/temp" and "+/<n>/sensor/#",
// plus one "devices/#". "devices/42/sensor/state" matches three of them.
func benchTree(b *testing.B) (*Tree[*session], []*session) {
	tr := NewTree[*session]()
	ss := make([]*session, 3334)
	for n := range ss {
		ss[n] = &session{n}
	}
	for n := range 3333 {
		d := strconv.Itoa(n)
		tr.Subscribe("devices/"+d+"/+/state", ss[n], 1)
		tr.Subscribe("devices/"+d+"/sensor/temp", ss[n], 1)
		tr.Subscribe("+/"+d+"/sensor/#", ss[(n+1)%3333], 0)
	}
	tr.Subscribe("devices/#", ss[3333], 2)
	if tr.Len() != 10000 {
		b.Fatalf("Len = %d", tr.Len())
	}
	return tr, ss
}

const benchTopic = "devices/42/sensor/state"

func BenchmarkTreeMatch(b *testing.B) {
	tr, _ := benchTree(b)
	n := 0
	visit := func(*session, byte) { n++ }
	tr.Match(benchTopic, visit)
	if n != 3 {
		b.Fatalf("%s matched %d subscriptions, want 3", benchTopic, n)
	}
	b.ReportAllocs()
	for b.Loop() {
		tr.Match(benchTopic, visit)
	}
}

func BenchmarkTreeMatchParallel(b *testing.B) {
	tr, _ := benchTree(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		n := 0
		visit := func(*session, byte) { n++ }
		for pb.Next() {
			tr.Match(benchTopic, visit)
		}
	})
}

// 1,000 sessions on one filter: the subscriber set is a map.
func BenchmarkTreeMatchFanout1000(b *testing.B) {
	tr, ss := benchTree(b)
	extra := make([]session, 1000)
	for i := range extra {
		tr.Subscribe("devices/+/sensor/state", &extra[i], 1)
	}
	_ = ss
	n := 0
	visit := func(*session, byte) { n++ }
	b.ReportAllocs()
	for b.Loop() {
		tr.Match(benchTopic, visit)
	}
}

// Subscribe then Unsubscribe on the 10,000-subscription tree.
func BenchmarkTreeSubscribeUnsubscribe(b *testing.B) {
	b.Run("existing-filter", func(b *testing.B) {
		tr, _ := benchTree(b)
		s := &session{-1}
		b.ReportAllocs()
		for b.Loop() {
			tr.Subscribe("devices/42/+/state", s, 1)
			tr.Unsubscribe("devices/42/+/state", s)
		}
	})
	b.Run("new-nodes", func(b *testing.B) {
		tr, _ := benchTree(b)
		s := &session{-1}
		b.ReportAllocs()
		for b.Loop() {
			tr.Subscribe("devices/42/new/level/x", s, 1)
			tr.Unsubscribe("devices/42/new/level/x", s)
		}
	})
}

// Subscribe then Unsubscribe while two goroutines run Match nonstop: the
// writers' cost under read load.
func BenchmarkTreeSubscribeUnderMatchLoad(b *testing.B) {
	tr, _ := benchTree(b)
	s := &session{-1}
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			visit := func(*session, byte) {}
			for {
				select {
				case <-done:
					return
				default:
				}
				tr.Match(benchTopic, visit)
			}
		})
	}
	b.ReportAllocs()
	for b.Loop() {
		tr.Subscribe("devices/42/+/state", s, 1)
		tr.Unsubscribe("devices/42/+/state", s)
	}
	b.StopTimer()
	close(done)
	wg.Wait()
}

type message struct {
	payload []byte
	qos     byte
}

// benchRetained holds 10,000 retained topics: devices/<n>/temp and
// devices/<n>/humidity for n < 5000.
func benchRetained() *Retained[*message] {
	r := NewRetained[*message]()
	m := &message{payload: []byte("21.5"), qos: 1}
	for n := range 5000 {
		r.Set(fmt.Sprintf("devices/%d/temp", n), m)
		r.Set(fmt.Sprintf("devices/%d/humidity", n), m)
	}
	return r
}

func BenchmarkRetainedMatch(b *testing.B) {
	r := benchRetained()
	n := 0
	visit := func(string, *message) { n++ }
	r.Match("devices/+/temp", visit)
	if n != 5000 {
		b.Fatalf("matched %d, want 5000", n)
	}
	b.ReportAllocs()
	for b.Loop() {
		r.Match("devices/+/temp", visit)
	}
}

func BenchmarkRetainedMatchExact(b *testing.B) {
	r := benchRetained()
	visit := func(string, *message) {}
	b.ReportAllocs()
	for b.Loop() {
		r.Match("devices/4242/temp", visit)
	}
}

func BenchmarkRetainedSetReplace(b *testing.B) {
	r := benchRetained()
	m := &message{}
	b.ReportAllocs()
	for b.Loop() {
		r.Set("devices/4242/temp", m)
	}
}

func BenchmarkMatchFilter(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		MatchFilter("devices/+/sensor/#", benchTopic)
	}
}
