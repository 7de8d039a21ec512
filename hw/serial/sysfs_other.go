//go:build !linux

package serial

import "go.bug.st/serial/enumerator"

// listSysfsPorts is the default Options.ListPorts where there is no sysfs.
func listSysfsPorts() ([]*enumerator.PortDetails, error) {
	return enumerator.GetDetailedPortsList()
}
