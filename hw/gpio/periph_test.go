package gpio

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"periph.io/x/conn/v3/driver"
	"periph.io/x/conn/v3/driver/driverreg"
	pgpio "periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3"
)

// The real default path on a machine without GPIO (this CI VM): a
// configured pin fails Open, naming the pin and saying why.
func TestNoGPIOHere(t *testing.T) {
	if _, err := host.Init(); err != nil {
		t.Fatalf("host.Init: %v", err)
	}
	if len(gpioreg.All()) > 0 {
		t.Skip("this machine has GPIO; the no-GPIO error cannot be seen here")
	}
	_, err := Open(Config{ResetPin: "GPIO17"}, Options{})
	want := "gpio: pin GPIO17 (reset_pin) not found: this machine has no GPIO driver (periph host.Init: "
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("got  %v\nwant %s...", err, want)
	}
	t.Log(err)
}

// With no pin configured, Open with the default Options does not call
// host.Init. periph remembers an Init in process-wide state, so this runs
// in a fresh process: there, driverreg.Register still works after Open,
// which it refuses after host.Init.
func TestNoPinsLeavesPeriphAlone(t *testing.T) {
	if os.Getenv("SNGATE_GPIO_CHILD") == "1" {
		g, err := Open(Config{}, Options{})
		if err != nil {
			fmt.Println("Open:", err)
			os.Exit(2)
		}
		g.SetUplink(UplinkOn)
		g.Activity()
		g.Close()
		if err := driverreg.Register(probe{}); err != nil {
			fmt.Println("periph was initialised:", err)
			os.Exit(3)
		}
		os.Exit(0)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestNoPinsLeavesPeriphAlone$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SNGATE_GPIO_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

// probe is a do-nothing periph driver, only registered to see whether
// periph still accepts registrations.
type probe struct{}

func (probe) String() string          { return "sngate-probe" }
func (probe) Prerequisites() []string { return nil }
func (probe) After() []string         { return nil }
func (probe) Init() (bool, error)     { return false, errors.New("probe only") }

var _ driver.Impl = probe{}

// The error texts, for a machine without GPIO and for one where the name
// is wrong.
func TestNotFoundText(t *testing.T) {
	state := &driverreg.State{
		Skipped: []driverreg.DriverFailure{
			{D: probeNamed("ioctl-gpio"), Err: errors.New("no GPIO chips found")},
			{D: probeNamed("sysfs-i2c"), Err: errors.New("no I²C bus found")},
		},
		Failed: []driverreg.DriverFailure{{D: probeNamed("bcm2835-gpio"), Err: errors.New("open /dev/gpiomem: permission denied")}},
	}
	got := notFound(state, nil)
	want := "this machine has no GPIO driver (periph host.Init: skipped ioctl-gpio: no GPIO chips found; failed bcm2835-gpio: open /dev/gpiomem: permission denied)"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	var pins []pgpio.PinIO
	for i := range 70 {
		pins = append(pins, newPin(fmt.Sprintf("GPIO%d", i)))
	}
	got = notFound(state, pins)
	if !strings.HasPrefix(got, "periph knows 70 pins, none by that name: GPIO0, GPIO1,") || !strings.HasSuffix(got, "GPIO59, and 10 more") {
		t.Fatalf("got %s", got)
	}
}

type probeNamed string

func (p probeNamed) String() string          { return string(p) }
func (p probeNamed) Prerequisites() []string { return nil }
func (p probeNamed) After() []string         { return nil }
func (p probeNamed) Init() (bool, error)     { return false, nil }
