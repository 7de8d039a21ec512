package hw

import (
	"context"
	"time"

	"github.com/sngate/sngate/hw/gpio"
)

// LEDSources are what the LEDs show: the bridge's state and the
// gateway's traffic, read by polling so that neither knows about LEDs.
type LEDSources struct {
	// Uplink is the state the uplink LED shows; nil leaves it off.
	Uplink func() gpio.UplinkState
	// Traffic is a counter that grows with every message (the gateway's
	// packets in and out); nil leaves the activity LED off.
	Traffic func() int64
}

// DefaultLEDPoll is how often DriveLEDs looks at its sources.
const DefaultLEDPoll = 100 * time.Millisecond

// DriveLEDs updates the LEDs of g from src every poll until ctx ends.
func DriveLEDs(ctx context.Context, g *gpio.GPIO, src LEDSources, poll time.Duration) {
	if poll <= 0 {
		poll = DefaultLEDPoll
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	var lastTraffic int64
	if src.Traffic != nil {
		lastTraffic = src.Traffic()
	}
	for {
		if src.Uplink != nil {
			g.SetUplink(src.Uplink())
		}
		if src.Traffic != nil {
			if n := src.Traffic(); n != lastTraffic {
				lastTraffic = n
				g.Activity()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
