package observe

import (
	"testing"
	"time"
)

func TestFormat(t *testing.T) {
	durations := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"}, {300 * time.Millisecond, "0s"}, {45 * time.Second, "45s"}, {90 * time.Second, "1m 30s"},
		{12*time.Minute + 3*time.Second, "12m 3s"}, {4 * time.Hour, "4h"}, {4*time.Hour + 12*time.Minute + 30*time.Second, "4h 12m"},
		{76 * time.Hour, "3d 4h"}, {48*time.Hour + 5*time.Minute, "2d"},
	}
	for _, tt := range durations {
		if got := formatDuration(tt.d); got != tt.want {
			t.Errorf("formatDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
	counts := []struct {
		n    any
		want string
	}{
		{0, "0"}, {999, "999"}, {int64(1000), "1\u202f000"}, {uint64(1234567), "1\u202f234\u202f567"}, {int64(-12345), "-12\u202f345"},
	}
	for _, tt := range counts {
		if got := formatCount(tt.n); got != tt.want {
			t.Errorf("formatCount(%v) = %q, want %q", tt.n, got, tt.want)
		}
	}
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 5 << 20: "5.0 MiB", 3 << 30: "3.0 GiB"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestSparkline(t *testing.T) {
	if s := newSparkline([]int64{5}, 60, "x"); s.Points != "" {
		t.Errorf("one sample drew %q", s.Points)
	}
	s := newSparkline([]int64{0, 10}, 2, "sent")
	if s.Points != "0.0,26.5 120.0,2.0" || s.Last != 10 || s.Max != 10 {
		t.Errorf("sparkline %+v", s)
	}
	// A young series is drawn at the right; a flat zero one at the bottom.
	s = newSparkline([]int64{0, 0}, 5, "sent")
	if s.Points != "90.0,26.5 120.0,26.5" {
		t.Errorf("points %q", s.Points)
	}
}
