package serial

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"go.bug.st/serial"
	"go.yaml.in/yaml/v3"
)

func TestConfigYAML(t *testing.T) {
	// stop_bits is a string so that 1 and 1.5 read the same way whether or
	// not they are quoted.
	const doc = `
usb: {vid: "0403", pid: "6015", serial: A50285BI}
baud: 115200
data_bits: 7
parity: even
stop_bits: 2
rtscts: true
`
	var c Config
	if err := yaml.Unmarshal([]byte(doc), &c); err != nil {
		t.Fatal(err)
	}
	want := Config{USB: &USBMatch{VID: "0403", PID: "6015", Serial: "A50285BI"},
		Baud: 115200, DataBits: 7, Parity: "even", StopBits: "2", RTSCTS: true}
	if c.USB == nil || *c.USB != *want.USB {
		t.Fatalf("usb = %+v", c.USB)
	}
	c.USB, want.USB = nil, nil
	if c != want {
		t.Fatalf("got %+v\nwant %+v", c, want)
	}
	var f Config
	if err := yaml.Unmarshal([]byte("stop_bits: 1.5"), &f); err != nil {
		t.Fatal(err)
	}
	if f.StopBits != "1.5" {
		t.Fatalf("stop_bits: 1.5 decoded as %q", f.StopBits)
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{Path: "/dev/ttyAMA0"}.withDefaults()
	if c.Baud != 9600 || c.DataBits != 8 || c.Parity != "none" || c.StopBits != "1" || c.RTSCTS {
		t.Fatalf("defaults: %+v", c)
	}
	m := c.mode()
	if *m != (serial.Mode{BaudRate: 9600, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit}) {
		t.Fatalf("mode: %+v", m)
	}
	if got := lineString(c); got != "9600 8N1" {
		t.Fatalf("lineString = %q", got)
	}
	m = Config{Path: "x", Parity: "Mark", StopBits: "2"}.withDefaults().mode()
	if m.Parity != serial.MarkParity || m.StopBits != serial.TwoStopBits {
		t.Fatalf("mode: %+v", m)
	}
}

func TestConfigValidate(t *testing.T) {
	usb := func(vid, pid string) *USBMatch { return &USBMatch{VID: vid, PID: pid} }
	for _, tc := range []struct {
		name string
		cfg  Config
		keys []string // the Field() of each error, sorted
		msg  string   // in the joined message
	}{
		{"path", Config{Path: "/dev/ttyUSB0"}, nil, ""},
		{"usb", Config{USB: usb("0403", "6015")}, nil, ""},
		{"usb hex forms", Config{USB: usb("0x10C4", "EA60")}, nil, ""},
		{"all set", Config{Path: "/dev/ttyS0", Baud: 250000, DataBits: 5, Parity: "SPACE", StopBits: "2", RTSCTS: true}, nil, ""},
		{"neither", Config{}, []string{"path"}, "set path or usb"},
		{"both", Config{Path: "/dev/ttyUSB0", USB: usb("0403", "6015")}, []string{"path"}, "not both"},
		{"bad ids", Config{USB: usb("403", "60x5")}, []string{"usb.pid", "usb.vid"}, "4 hex digits"},
		{"empty ids", Config{USB: &USBMatch{Serial: "A1"}}, []string{"usb.pid", "usb.vid"}, ""},
		{"baud", Config{Path: "p", Baud: -1}, []string{"baud"}, "positive"},
		{"data bits", Config{Path: "p", DataBits: 9}, []string{"data_bits"}, "5, 6, 7 or 8"},
		{"parity", Config{Path: "p", Parity: "evn"}, []string{"parity"}, `"evn"`},
		{"stop 1.5", Config{Path: "p", StopBits: "1.5"}, []string{"stop_bits"}, "cannot be set on Linux"},
		{"stop 3", Config{Path: "p", StopBits: "3"}, []string{"stop_bits"}, "not 1 or 2"},
		{"several", Config{Baud: -5, Parity: "x"}, []string{"baud", "parity", "path"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			var keys []string
			for _, e := range unjoin(err) {
				var fe *FieldError
				if !errors.As(e, &fe) {
					t.Fatalf("%T %v is not a *FieldError", e, e)
				}
				keys = append(keys, fe.Field())
			}
			slices.Sort(keys)
			if !slices.Equal(keys, tc.keys) {
				t.Fatalf("fields %v, want %v (%v)", keys, tc.keys, err)
			}
			if tc.msg != "" && !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("%q does not say %q", err, tc.msg)
			}
		})
	}
}

// unjoin undoes errors.Join, the way the configuration loader does.
func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
