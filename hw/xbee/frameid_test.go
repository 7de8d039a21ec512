package xbee

import (
	"bytes"
	"testing"
)

// TestFrameIDs checks the cycle 1..255 and that 0 never comes up.
func TestFrameIDs(t *testing.T) {
	var ids FrameIDs
	for i := 1; i <= 600; i++ {
		want := byte((i-1)%255 + 1)
		if got := ids.Next(); got != want {
			t.Fatalf("call %d: %d, want %d", i, got, want)
		}
	}
	// Across the wrap: ..., 254, 255, 1, 2, never 0.
	ids.last.Store(253)
	var got []byte
	for range 4 {
		got = append(got, ids.Next())
	}
	if !bytes.Equal(got, []byte{254, 255, 1, 2}) {
		t.Fatalf("across the counter's wrap: %v", got)
	}
}

func TestFrameIDsConcurrent(t *testing.T) {
	var ids FrameIDs
	const workers, each = 4, 255 * 10
	done := make(chan [256]int, workers)
	for range workers {
		go func() {
			var seen [256]int
			for range each {
				seen[ids.Next()]++
			}
			done <- seen
		}()
	}
	var total [256]int
	for range workers {
		seen := <-done
		for i, n := range seen {
			total[i] += n
		}
	}
	if total[0] != 0 {
		t.Fatalf("frame id 0 handed out %d times", total[0])
	}
	for id := 1; id <= 255; id++ {
		if total[id] != workers*each/255 {
			t.Fatalf("frame id %d handed out %d times, want %d", id, total[id], workers*each/255)
		}
	}
}
