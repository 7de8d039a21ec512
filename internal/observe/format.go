package observe

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Sparkline size in CSS pixels: small enough for a table cell.
const (
	sparkWidth  = 120
	sparkHeight = 28
)

// sparkline is an inline SVG polyline of a series, newest on the right;
// Points is empty before there are two samples to join.
type sparkline struct {
	Points, Area string // polyline points; the polygon under it
	Width        int
	Height       int
	Last, Max    int64
	Title        string
}

// newSparkline scales values (oldest first) into a box that holds size of
// them, right-aligned so that a young series grows from the right.
func newSparkline(values []int64, size int, what string) sparkline {
	s := sparkline{Width: sparkWidth, Height: sparkHeight}
	if len(values) < 2 || size < 2 {
		return s
	}
	for _, v := range values {
		s.Max = max(s.Max, v)
	}
	s.Last = values[len(values)-1]
	step := float64(sparkWidth) / float64(size-1)
	top, bottom := 2.0, float64(sparkHeight)-1.5
	var pts strings.Builder
	x0 := float64(sparkWidth) - step*float64(len(values)-1)
	for i, v := range values {
		y := bottom
		if s.Max > 0 {
			y = bottom - (bottom-top)*float64(v)/float64(s.Max)
		}
		if i > 0 {
			pts.WriteByte(' ')
		}
		fmt.Fprintf(&pts, "%.1f,%.1f", x0+step*float64(i), y)
	}
	s.Points = pts.String()
	s.Area = fmt.Sprintf("%.1f,%.1f %s %d,%.1f", x0, float64(sparkHeight), s.Points, sparkWidth, float64(sparkHeight))
	s.Title = fmt.Sprintf("%s: last %d, peak %d over %d samples", what, s.Last, s.Max, len(values))
	return s
}

// formatCount writes an integer with thin spaces between thousands, easy to
// read at a glance: 1 234 567.
func formatCount(n any) string {
	var s string
	switch n := n.(type) {
	case int:
		s = strconv.Itoa(n)
	case int64:
		s = strconv.FormatInt(n, 10)
	case uint64:
		s = strconv.FormatUint(n, 10)
	default:
		return fmt.Sprint(n)
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteString("\u202f")
		}
		b.WriteRune(r)
	}
	return b.String()
}

// formatBytes is a byte count in binary units: 1.5 KiB.
func formatBytes(n int64) string {
	if n < 1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	v, unit := float64(n)/1024, "KiB"
	for _, u := range []string{"MiB", "GiB", "TiB"} {
		if v < 1024 {
			break
		}
		v, unit = v/1024, u
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + unit
}

// formatDuration is a duration to the second in its two largest units:
// 45s, 12m 3s, 4h 12m, 3d 4h; "0s" for anything under a second.
func formatDuration(d time.Duration) string {
	if d < time.Second {
		return "0s"
	}
	d = d.Round(time.Second)
	units := []struct {
		n    time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}}
	var parts []string
	for _, u := range units {
		if d >= u.n || len(parts) > 0 {
			parts = append(parts, strconv.FormatInt(int64(d/u.n), 10)+u.name)
			d %= u.n
		}
		if len(parts) == 2 {
			break
		}
	}
	if len(parts) == 2 && strings.HasPrefix(parts[1], "0") {
		parts = parts[:1]
	}
	return strings.Join(parts, " ")
}
