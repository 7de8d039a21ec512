package serial

import "time"

// State is a snapshot of a Port for metrics and status pages.
type State struct {
	Up        bool
	Device    string    // the device last opened (for a USB match, the ttyUSBn it resolved to)
	Since     time.Time // when the port last came up or went down
	Outages   int       // times the port was lost since Open
	Reopens   int       // times it came back
	Attempts  int       // failed reopening attempts in the current outage
	LastError error     // what took the port down, then the last failed reopening; nil before the first outage
}
