package serial

import (
	"fmt"
	"slices"
	"strings"

	"go.bug.st/serial/enumerator"
)

// findUSB returns the device path of the one adapter that m matches.
// Errors list what was found, so that a wrong id in the configuration
// shows what the right one would have been.
func findUSB(list func() ([]*enumerator.PortDetails, error), m USBMatch) (string, error) {
	ports, err := list()
	if err != nil {
		return "", fmt.Errorf("serial: listing serial ports to find USB %s: %w", m, err)
	}
	var found []*enumerator.PortDetails
	for _, p := range ports {
		if p != nil && m.matches(p) {
			found = append(found, p)
		}
	}
	switch len(found) {
	case 1:
		return found[0].Name, nil
	case 0:
		return "", fmt.Errorf("serial: %w for USB %s; %s", ErrNoDevice, m, describePorts(ports))
	default:
		return "", fmt.Errorf("serial: %w USB %s: %s; %s",
			ErrAmbiguous, m, describeList(found), disambiguate(found))
	}
}

// disambiguate says how to tell apart the adapters that all matched.
func disambiguate(found []*enumerator.PortDetails) string {
	seen := map[string]bool{}
	for _, p := range found {
		if p.SerialNumber == "" || seen[p.SerialNumber] {
			return "they have no distinct USB serial numbers: use path with the adapter's /dev/serial/by-path name (its USB socket) instead"
		}
		seen[p.SerialNumber] = true
	}
	return "set usb.serial to choose one"
}

func (m USBMatch) matches(p *enumerator.PortDetails) bool {
	return p.IsUSB &&
		normHex(p.VID) == normHex(m.VID) &&
		normHex(p.PID) == normHex(m.PID) &&
		(m.Serial == "" || p.SerialNumber == m.Serial)
}

// describePorts says what a failed search saw: "found /dev/ttyUSB0 (USB
// 10c4:ea60 serial 0001), /dev/ttyS0 (not USB)" or "found no serial ports".
func describePorts(ports []*enumerator.PortDetails) string {
	ports = slices.DeleteFunc(slices.Clone(ports), func(p *enumerator.PortDetails) bool { return p == nil })
	if len(ports) == 0 {
		return "found no serial ports"
	}
	return "found " + describeList(ports)
}

func describeList(ports []*enumerator.PortDetails) string {
	var b strings.Builder
	for i, p := range ports {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(p.Name)
		if !p.IsUSB {
			b.WriteString(" (not USB)")
			continue
		}
		fmt.Fprintf(&b, " (USB %s:%s", normHex(p.VID), normHex(p.PID))
		if p.SerialNumber != "" {
			fmt.Fprintf(&b, " serial %s", p.SerialNumber)
		}
		if p.Product != "" {
			fmt.Fprintf(&b, " %q", p.Product)
		}
		b.WriteString(")")
	}
	return b.String()
}
