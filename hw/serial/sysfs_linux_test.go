package serial

import (
	"os"
	"path/filepath"
	"testing"

	"go.bug.st/serial/enumerator"
)

// A fake /sys/class/tty with the shapes the kernel uses: an FTDI adapter
// (usb-serial, ttyUSB0), a CDC ACM modem (usb, ttyACM0), a UART (platform,
// ttyS0) and a virtual console (no device).
func TestListUSBTTYs(t *testing.T) {
	root := t.TempDir()
	mk := func(rel, content string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if content != "" {
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	link := func(target, rel string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(root, target), p); err != nil {
			t.Fatal(err)
		}
	}
	// Subsystems.
	mk("bus/usb-serial/.keep", "x")
	mk("bus/usb/.keep", "x")
	mk("bus/platform/.keep", "x")
	// FTDI: usb device 1-1.2, interface 1-1.2:1.0, usb-serial port ttyUSB0.
	ftdi := "devices/usb1/1-1.2"
	mk(ftdi+"/idVendor", "0403\n")
	mk(ftdi+"/idProduct", "6015\n")
	mk(ftdi+"/serial", "D30A9CWX\n")
	mk(ftdi+"/product", "FT231X USB UART\n")
	link("bus/usb-serial", ftdi+"/1-1.2:1.0/ttyUSB0/subsystem")
	link(ftdi+"/1-1.2:1.0/ttyUSB0", "class/tty/ttyUSB0/device")
	// CDC ACM without a serial number: the tty's device is the interface.
	acm := "devices/usb1/1-1.3"
	mk(acm+"/idVendor", "2341\n")
	mk(acm+"/idProduct", "0043\n")
	link("bus/usb", acm+"/1-1.3:1.0/subsystem")
	link(acm+"/1-1.3:1.0", "class/tty/ttyACM0/device")
	// UART and console.
	link("bus/platform", "devices/platform/serial8250/subsystem")
	link("devices/platform/serial8250", "class/tty/ttyS0/device")
	mk("class/tty/tty0/dev", "4:0\n")

	got, err := listUSBTTYs(filepath.Join(root, "class/tty"), "/dev")
	if err != nil {
		t.Fatal(err)
	}
	want := []enumerator.PortDetails{
		{Name: "/dev/ttyACM0", IsUSB: true, VID: "2341", PID: "0043"},
		{Name: "/dev/ttyUSB0", IsUSB: true, VID: "0403", PID: "6015", SerialNumber: "D30A9CWX", Product: "FT231X USB UART"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d ports: %v", len(got), describeList(got))
	}
	for i := range want {
		if *got[i] != want[i] {
			t.Errorf("port %d: got %+v, want %+v", i, *got[i], want[i])
		}
	}
}

// The real sysfs of this machine reads without error (it may have no USB
// ports at all).
func TestListSysfsPortsHere(t *testing.T) {
	if _, err := os.Stat("/sys/class/tty"); err != nil {
		t.Skip("no /sys/class/tty")
	}
	ports, err := listSysfsPorts()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("USB serial ports here: %s", describePorts(ports))
}
