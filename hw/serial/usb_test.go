package serial

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.bug.st/serial/enumerator"
)

// fakePorts is a stand-in for enumerator.GetDetailedPortsList.
func fakePorts(ports ...*enumerator.PortDetails) func() ([]*enumerator.PortDetails, error) {
	return func() ([]*enumerator.PortDetails, error) { return ports, nil }
}

func usbPort(name, vid, pid, serial string) *enumerator.PortDetails {
	return &enumerator.PortDetails{Name: name, IsUSB: true, VID: vid, PID: pid, SerialNumber: serial}
}

func TestFindUSB(t *testing.T) {
	ftdiA := usbPort("/dev/ttyUSB0", "0403", "6015", "A1")
	ftdiB := usbPort("/dev/ttyUSB1", "0403", "6015", "B2")
	cp210x := usbPort("/dev/ttyUSB2", "10c4", "ea60", "0001")
	uart := &enumerator.PortDetails{Name: "/dev/ttyS0"}
	for _, tc := range []struct {
		name  string
		ports []*enumerator.PortDetails
		match USBMatch
		want  string   // path found, or
		err   error    // the error it wraps,
		msg   []string // saying all this
	}{
		{name: "one", ports: []*enumerator.PortDetails{uart, ftdiA, cp210x},
			match: USBMatch{VID: "0403", PID: "6015"}, want: "/dev/ttyUSB0"},
		{name: "ids in other forms", ports: []*enumerator.PortDetails{uart, cp210x},
			match: USBMatch{VID: "0x10C4", PID: "EA60"}, want: "/dev/ttyUSB2"},
		{name: "serial chooses", ports: []*enumerator.PortDetails{ftdiA, ftdiB},
			match: USBMatch{VID: "0403", PID: "6015", Serial: "B2"}, want: "/dev/ttyUSB1"},
		{name: "not found lists what is there", ports: []*enumerator.PortDetails{uart, cp210x, nil},
			match: USBMatch{VID: "0403", PID: "6015"}, err: ErrNoDevice,
			msg: []string{"USB 0403:6015", "found /dev/ttyS0 (not USB), /dev/ttyUSB2 (USB 10c4:ea60 serial 0001)"}},
		{name: "wrong serial", ports: []*enumerator.PortDetails{ftdiA},
			match: USBMatch{VID: "0403", PID: "6015", Serial: "B2"}, err: ErrNoDevice,
			msg: []string{"USB 0403:6015 serial B2", "/dev/ttyUSB0 (USB 0403:6015 serial A1)"}},
		{name: "nothing at all", match: USBMatch{VID: "0403", PID: "6015"}, err: ErrNoDevice,
			msg: []string{"found no serial ports"}},
		{name: "ambiguous without serial", ports: []*enumerator.PortDetails{ftdiA, cp210x, ftdiB},
			match: USBMatch{VID: "0403", PID: "6015"}, err: ErrAmbiguous,
			msg: []string{"/dev/ttyUSB0 (USB 0403:6015 serial A1), /dev/ttyUSB1 (USB 0403:6015 serial B2)", "set usb.serial"}},
		{name: "ambiguous, no serial numbers", ports: []*enumerator.PortDetails{
			usbPort("/dev/ttyUSB0", "1a86", "7523", ""), usbPort("/dev/ttyUSB1", "1a86", "7523", "")},
			match: USBMatch{VID: "1a86", PID: "7523"}, err: ErrAmbiguous,
			msg: []string{"no distinct USB serial numbers", "/dev/serial/by-path"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := findUSB(fakePorts(tc.ports...), tc.match)
			if tc.err == nil {
				if err != nil || got != tc.want {
					t.Fatalf("got %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v does not wrap %v", err, tc.err)
			}
			for _, m := range tc.msg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("%q\ndoes not say %q", err, m)
				}
			}
		})
	}
}

func TestFindUSBListError(t *testing.T) {
	boom := errors.New("sysfs on fire")
	_, err := findUSB(func() ([]*enumerator.PortDetails, error) { return nil, boom }, USBMatch{VID: "0403", PID: "6015"})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "USB 0403:6015") {
		t.Fatalf("got %v", err)
	}
}

// Open refuses to start on a USB match that finds nothing or too much,
// saying what it found; the default enumerator is never consulted.
func TestOpenUSBErrors(t *testing.T) {
	cfg := Config{USB: &USBMatch{VID: "0403", PID: "6015"}}
	opts := Options{ListPorts: fakePorts(usbPort("/dev/ttyUSB3", "10c4", "ea60", "X"))}
	_, err := opts.Open(context.Background(), cfg, nil)
	if !errors.Is(err, ErrNoDevice) || !strings.Contains(err.Error(), "/dev/ttyUSB3 (USB 10c4:ea60 serial X)") {
		t.Fatalf("got %v", err)
	}
	opts.ListPorts = fakePorts(usbPort("/dev/ttyUSB0", "0403", "6015", ""), usbPort("/dev/ttyUSB1", "0403", "6015", ""))
	if _, err := opts.Open(context.Background(), cfg, nil); !errors.Is(err, ErrAmbiguous) {
		t.Fatalf("got %v", err)
	}
}
