package serial

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.bug.st/serial/enumerator"
)

// listSysfsPorts is the default Options.ListPorts on Linux: the USB serial
// ports, read from sysfs without opening any device (see the package
// documentation for why not enumerator.GetDetailedPortsList).
func listSysfsPorts() ([]*enumerator.PortDetails, error) {
	return listUSBTTYs("/sys/class/tty", "/dev")
}

// listUSBTTYs lists the ttys under classDir (normally /sys/class/tty)
// whose device is a USB interface, the way go.bug.st/serial/enumerator
// does: a "usb-serial" device (ftdi_sio, cp210x, ch341, pl2303: ttyUSBn)
// sits two levels below its USB device, a "usb" one (cdc_acm: ttyACMn)
// one level. Ports that are not USB are left out: only USB ids can match.
func listUSBTTYs(classDir, devDir string) ([]*enumerator.PortDetails, error) {
	entries, err := os.ReadDir(classDir)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", classDir, err)
	}
	var out []*enumerator.PortDetails
	for _, e := range entries {
		dev, err := filepath.EvalSymlinks(filepath.Join(classDir, e.Name(), "device"))
		if err != nil {
			continue // virtual tty (console, pty, vt): no device
		}
		subsystem, err := filepath.EvalSymlinks(filepath.Join(dev, "subsystem"))
		if err != nil {
			continue
		}
		var usbDev string
		switch filepath.Base(subsystem) {
		case "usb-serial":
			usbDev = filepath.Dir(filepath.Dir(dev))
		case "usb":
			usbDev = filepath.Dir(dev)
		default:
			continue
		}
		d := &enumerator.PortDetails{Name: filepath.Join(devDir, e.Name()), IsUSB: true}
		var errs []error
		for _, f := range []struct {
			file string
			dst  *string
		}{{"idVendor", &d.VID}, {"idProduct", &d.PID}, {"serial", &d.SerialNumber}, {"product", &d.Product}} {
			v, err := readSysfsLine(filepath.Join(usbDev, f.file))
			errs = append(errs, err)
			*f.dst = v
		}
		if err := errors.Join(errs...); err != nil {
			// Half-gone while being unplugged; it is not there.
			continue
		}
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b *enumerator.PortDetails) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// readSysfsLine reads the first line of a sysfs attribute; a missing one
// (many adapters have no serial number) reads as "".
func readSysfsLine(path string) (string, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	line, _, err := bufio.NewReader(f).ReadLine()
	if err != nil && len(line) == 0 && !errors.Is(err, io.EOF) {
		return "", err
	}
	return strings.TrimSpace(string(line)), nil
}
