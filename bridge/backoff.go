package bridge

import (
	"math/rand/v2"
	"time"
)

// backoff is the wait before reconnect attempt n (n ≥ 1 after a failure):
// exponential from MinReconnect, capped, with "equal jitter" (half fixed,
// half random) so that many gateways cut off together by one outage do not
// all come back in the same second.
func backoff(n int, max time.Duration) time.Duration {
	d := MinReconnect
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	half := d / 2
	return half + rand.N(half+1)
}
