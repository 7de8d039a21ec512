package gpio

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"periph.io/x/conn/v3/driver/driverreg"
	pgpio "periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3"
)

// periphLookup is the default Options.Lookup. host.Init loads periph's
// drivers (it probes /dev/gpiochip*, /dev/gpiomem and more); it runs on the
// first lookup, so never on a box configured without pins.
func periphLookup() func(name string) (pgpio.PinIO, error) {
	var (
		once    sync.Once
		state   *driverreg.State
		initErr error
	)
	return func(name string) (pgpio.PinIO, error) {
		once.Do(func() { state, initErr = host.Init() })
		if initErr != nil {
			return nil, fmt.Errorf("periph host.Init: %w", initErr)
		}
		if p := gpioreg.ByName(name); p != nil {
			return p, nil
		}
		return nil, errors.New(notFound(state, gpioreg.All()))
	}
}

// maxNames bounds the pin names listed in an error.
const maxNames = 60

// notFound explains why periph has no pin by the name asked for: no GPIO
// driver at all (not a Raspberry Pi, or /dev/gpiochip* not accessible), or
// a name it does not use.
func notFound(state *driverreg.State, all []pgpio.PinIO) string {
	if len(all) == 0 {
		return "this machine has no GPIO driver (periph host.Init: " + driverSummary(state) + ")"
	}
	names := make([]string, 0, min(len(all), maxNames))
	for _, p := range all[:min(len(all), maxNames)] {
		names = append(names, p.Name())
	}
	more := ""
	if len(all) > maxNames {
		more = fmt.Sprintf(", and %d more", len(all)-maxNames)
	}
	return fmt.Sprintf("periph knows %d pins, none by that name: %s%s", len(all), strings.Join(names, ", "), more)
}

// driverSummary says what periph made of the GPIO drivers: which loaded,
// which were skipped and why, which failed.
func driverSummary(state *driverreg.State) string {
	if state == nil {
		return "no state"
	}
	var parts []string
	gpioish := func(name string) bool { return strings.Contains(strings.ToLower(name), "gpio") }
	var loaded []string
	for _, d := range state.Loaded {
		loaded = append(loaded, d.String())
	}
	if len(loaded) > 0 {
		parts = append(parts, "loaded "+strings.Join(loaded, ", "))
	}
	for _, f := range state.Skipped {
		if gpioish(f.D.String()) {
			parts = append(parts, "skipped "+f.String())
		}
	}
	for _, f := range state.Failed {
		parts = append(parts, "failed "+f.String())
	}
	if len(parts) == 0 {
		return "no GPIO driver registered"
	}
	return strings.Join(parts, "; ")
}
