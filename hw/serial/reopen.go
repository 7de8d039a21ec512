package serial

import (
	"math/rand/v2"
	"time"
)

// reopen closes the lost connection old and opens the port again, with
// backoff, until it works or Close. It runs in its own goroutine, counted
// in p.wg, one per outage.
func (p *Port) reopen(old *conn) {
	defer p.wg.Done()
	// Closing here rather than in failed keeps Close's wg.Wait a promise
	// that no descriptor is left open. It also wakes a Read or Write
	// still blocked on the other direction.
	old.close()
	delay := p.opts.MinBackoff
	timer := time.NewTimer(jitter(delay))
	defer timer.Stop()
	for attempt := 1; ; attempt++ {
		select {
		case <-p.done:
			return
		case <-timer.C:
		}
		c, err := p.dial()
		if err == nil {
			p.back(c, attempt)
			return
		}
		p.mu.Lock()
		p.state.Attempts = attempt
		p.state.LastError = err
		p.mu.Unlock()
		delay = min(2*delay, p.opts.MaxBackoff)
		timer.Reset(jitter(delay))
	}
}

// back puts c in service after attempts tries, unless Close came first.
func (p *Port) back(c *conn, attempts int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.close()
		return
	}
	downFor := time.Since(p.state.Since)
	p.cur = c
	p.state.Up = true
	p.state.Device = c.path
	p.state.Since = time.Now()
	p.state.Reopens++
	p.state.Attempts = 0
	p.log.Info("serial port back", "port", p.stringLocked(), "down_for", roundMS(downFor), "attempts", attempts)
	// After the log line, so that whoever wakes up on it finds it logged.
	close(p.reopened)
	p.reopened = make(chan struct{})
}

// roundMS keeps log lines readable without turning a short outage into
// "0s".
func roundMS(d time.Duration) time.Duration {
	if d < time.Millisecond {
		return d
	}
	return d.Round(time.Millisecond)
}

// jitter is "equal jitter" (half fixed, half random), so that gateways
// losing their adapters together, or two ports of one gateway, do not retry
// in lockstep.
func jitter(d time.Duration) time.Duration {
	half := d / 2
	return half + rand.N(half+1)
}
