package gateway

import "time"

// Bad input protection: a token bucket per source address, and throttled
// log lines for what is dropped. Both belong to one Serve loop, which is
// their only user, so they need no locking.

const (
	// limiterMaxAddrs bounds the addresses a limiter tracks. A bucket is
	// forgotten once it is full again (its address was quiet long enough to
	// earn its whole burst back), which loses nothing; only addresses heard
	// in the last two seconds (burst/rate) hold an entry. Should a flood of
	// spoofed addresses fill the table anyway, new addresses share one
	// overflow bucket until entries can be forgotten.
	limiterMaxAddrs = 16384
	// limiterSweepEvery is how often the table is swept in any case, and
	// how often at most while it is full.
	limiterSweepEvery = time.Second
	// logEvery is the least time between two log lines of one kind about
	// dropped datagrams; the lines count what was dropped in between.
	logEvery = 10 * time.Second
)

// limiter rate-limits datagrams per source address.
type limiter struct {
	rate, burst float64 // tokens per second and bucket size; rate 0: unlimited
	max         int
	buckets     map[Addr]*bucket
	overflow    bucket // shared by new addresses while the table is full
	lastSweep   time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

// newLimiter allows perSecond datagrams a second from each address, in
// bursts of twice that; 0 allows everything.
func newLimiter(perSecond int, now time.Time) *limiter {
	l := &limiter{rate: float64(perSecond), burst: 2 * float64(perSecond), max: limiterMaxAddrs,
		buckets: map[Addr]*bucket{}, lastSweep: now}
	l.overflow = bucket{tokens: l.burst, last: now}
	return l
}

// allow takes a token from from's bucket; false: drop the datagram.
func (l *limiter) allow(from Addr, now time.Time) bool {
	if l.rate <= 0 {
		return true
	}
	b := l.buckets[from]
	if b == nil {
		if now.Sub(l.lastSweep) >= limiterSweepEvery {
			l.sweep(now)
		}
		if len(l.buckets) < l.max {
			b = &bucket{tokens: l.burst, last: now}
			l.buckets[from] = b
		} else {
			b = &l.overflow
		}
	}
	return b.take(now, l.rate, l.burst)
}

// sweep forgets the buckets that are full again.
func (l *limiter) sweep(now time.Time) {
	l.lastSweep = now
	for a, b := range l.buckets {
		if b.refill(now, l.rate, l.burst) >= l.burst {
			delete(l.buckets, a)
		}
	}
}

func (b *bucket) refill(now time.Time, rate, burst float64) float64 {
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(burst, b.tokens+d.Seconds()*rate)
		b.last = now
	}
	return b.tokens
}

func (b *bucket) take(now time.Time, rate, burst float64) bool {
	if b.refill(now, rate, burst) < 1 {
		return false
	}
	b.tokens--
	return true
}

// logThrottle lets one log line of a kind through per logEvery.
type logThrottle struct {
	last time.Time
	n    int64
}

// tick counts one event; ok says to log it now, with n events since the
// last line, this one included.
func (t *logThrottle) tick(now time.Time) (n int64, ok bool) {
	t.n++
	if !t.last.IsZero() && now.Sub(t.last) < logEvery {
		return 0, false
	}
	n, t.n, t.last = t.n, 0, now
	return n, true
}
