package hw

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pgpio "periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/sngate/sngate/hw/gpio"
)

// recordingPin is a periph fake that remembers every level written.
type recordingPin struct {
	*gpiotest.Pin
	mu     sync.Mutex
	levels []pgpio.Level
}

func (p *recordingPin) Out(l pgpio.Level) error {
	p.mu.Lock()
	p.levels = append(p.levels, l)
	p.mu.Unlock()
	return p.Pin.Out(l)
}

func (p *recordingPin) highs() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, l := range p.levels {
		if l == pgpio.High {
			n++
		}
	}
	return n
}

// TestDriveLEDs: the uplink LED follows the bridge's state (on, off,
// blinking while draining) and the activity LED flashes when the traffic counter moves (periph fakes).
func TestDriveLEDs(t *testing.T) {
	up := &recordingPin{Pin: &gpiotest.Pin{N: "GPIO5"}}
	act := &recordingPin{Pin: &gpiotest.Pin{N: "GPIO6"}}
	pins := map[string]pgpio.PinIO{"GPIO5": up, "GPIO6": act}
	g, err := gpio.Open(gpio.Config{UplinkLED: "GPIO5", ActivityLED: "GPIO6"},
		gpio.Options{Lookup: func(name string) (pgpio.PinIO, error) { return pins[name], nil }, UplinkBlink: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	var state atomic.Int32 // gpio.UplinkState
	var traffic atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		DriveLEDs(ctx, g, LEDSources{
			Uplink:  func() gpio.UplinkState { return gpio.UplinkState(state.Load()) },
			Traffic: traffic.Load,
		}, 5*time.Millisecond)
	}()
	defer func() { cancel(); <-done }()

	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(waitTime)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("no %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	state.Store(int32(gpio.UplinkOn))
	waitFor("uplink LED on", func() bool { return up.Read() == pgpio.High })
	state.Store(int32(gpio.UplinkOff))
	waitFor("uplink LED off", func() bool { return up.Read() == pgpio.Low })
	// Draining: the uplink LED blinks (on, off, on again).
	ons := up.highs()
	state.Store(int32(gpio.UplinkBlinking))
	waitFor("uplink LED blinking", func() bool { return up.highs() >= ons+2 })
	state.Store(int32(gpio.UplinkOff))
	waitFor("uplink LED off after blinking", func() bool { return up.Read() == pgpio.Low })
	// Off means staying off: a blinking LED is low half the time too.
	// Likewise the activity LED, while the counter stands still.
	stillDark := func(what string, p *recordingPin) {
		t.Helper()
		before := p.highs()
		time.Sleep(20 * 5 * time.Millisecond) // 20 polls and blinks
		if p.highs() != before || p.Read() != pgpio.Low {
			t.Fatalf("%s lit %d more times, now %v; want it dark", what, p.highs()-before, p.Read())
		}
	}
	stillDark("uplink LED after blinking", up)
	stillDark("activity LED without traffic", act)
	before := act.highs()
	traffic.Add(1)
	waitFor("activity flash", func() bool { return act.highs() > before })
}
