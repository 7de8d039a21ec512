package mqttload

import (
	"math/bits"
	"time"
)

// Histogram counts durations in log-linear buckets: every power of two is
// split into 128 equal sub-buckets, so a quantile is exact to within 1/128
// (0.8%) whatever the number of samples, in a fixed 35 KiB. Values up to
// 2^40 ns (about 18 minutes) are kept; longer ones count in the last bucket.
// A Histogram is not safe for concurrent use: give each goroutine its own and
// Merge them.
type Histogram struct {
	counts [histBuckets]uint64
	n      uint64
	max    time.Duration
	sum    time.Duration
}

const (
	subBits     = 7 // 128 sub-buckets per power of two
	subCount    = 1 << subBits
	maxBits     = 40 // values up to 2^40 ns
	histBuckets = (maxBits - subBits + 1) * subCount
)

// bucketOf returns the bucket index of a value in nanoseconds.
func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	if v >= 1<<maxBits {
		return histBuckets - 1
	}
	shift := bits.Len64(v) - subBits - 1 // v>>shift is in [128, 256)
	return (shift+1)<<subBits + int(v>>shift) - subCount
}

// bucketHigh returns the largest value that falls into bucket i.
func bucketHigh(i int) uint64 {
	if i < subCount {
		return uint64(i)
	}
	shift := i>>subBits - 1
	m := uint64(i&(subCount-1) + subCount)
	return (m+1)<<shift - 1
}

// Record adds one duration; negative ones count as 0.
func (h *Histogram) Record(d time.Duration) {
	d = max(d, 0)
	h.counts[bucketOf(uint64(d))]++
	h.n++
	h.sum += d
	h.max = max(h.max, d)
}

// Merge adds o's samples to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// Count returns the number of samples.
func (h *Histogram) Count() uint64 { return h.n }

// Max returns the largest sample.
func (h *Histogram) Max() time.Duration { return h.max }

// Mean returns the average sample, or 0 without samples.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return h.sum / time.Duration(h.n)
}

// Quantile returns the value below or at which a fraction q (0..1) of the
// samples lie: the upper bound of the bucket holding that rank, never more
// than Max. It returns 0 without samples.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		if seen += c; seen >= rank {
			return min(time.Duration(bucketHigh(i)), h.max)
		}
	}
	return h.max
}
