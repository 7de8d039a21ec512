// Package serial opens, configures and keeps a serial port (a UART, a USB
// serial adapter, an XBee on either) for a gateway that must run unattended
// for years: the port survives the adapter being unplugged and plugged back.
//
// # Contract for callers (framers and transports)
//
//   - Read returns as soon as any bytes are there. On an idle line it returns
//     (0, nil) after Options.ReadTimeout: that is how a framer sees the gap
//     between two packets and resyncs. Use one reader at a time.
//   - When the port fails under a Read (adapter unplugged, I/O error), that
//     Read returns (0, nil) — one more gap, so a half-received frame is
//     dropped — and the following Reads block, without spinning, until the
//     port is back, then go on reading the new port. Only Close ends a
//     blocked Read (with ErrClosed).
//   - Write during an outage fails at once with an error matching
//     ErrPortDown: the caller drops the packet and counts it. A Write that
//     cannot finish within Options.WriteTimeout (the far end holds CTS off)
//     fails with ErrWriteTimeout and may have sent part of the buffer; the
//     port stays up.
//   - Reopened returns a channel closed when the port comes back after an
//     outage, so a transport can re-check what is behind it (an XBee must
//     be asked again for its settings). State reports up/down, reopenings
//     and the last error for metrics and status pages.
//   - A lost port is noticed by the Read or Write that fails on it; a
//     transport always has a Read going, so that is at once.
//   - An outage is logged once when it starts ("serial port lost") and once
//     when it ends ("serial port back", with how long it lasted); the
//     reopening attempts in between are silent (State has the last error).
//
// # Why not everything goes through go.bug.st/serial
//
// go.bug.st/serial (v1.6.4) opens the device, turns it into a raw line and
// applies baud rate (including non-standard rates through TCSETS2/BOTHER),
// data bits, parity and stop bits, and takes TIOCEXCL so no other process
// opens the port behind us. Its data path is not fit for a long-lived
// daemon, so Port does its I/O on a second descriptor of the same tty,
// opened non-blocking and served by Go's runtime poller:
//
//   - its Read uses select(2) with a fixed-size fd_set: with a descriptor
//     number ≥ 1024 (reachable: Go raises RLIMIT_NOFILE to the hard limit)
//     it panics with "index out of range";
//   - its Write is a plain blocking write(2) with no timeout, which hangs
//     for good when hardware flow control is on and the radio holds CTS off;
//   - it has no RTS/CTS setting on Linux and explicitly clears CRTSCTS when
//     opening, so Port sets CRTSCTS itself through termios and reads it back;
//   - its enumerator opens every /dev/ttyS* to see whether it is real,
//     which resets those ports to 9600 8N1 without flow control — a serial
//     console, or (for root, whom TIOCEXCL does not stop) the UART another
//     transport of this gateway is using — so the default USB lookup here
//     reads sysfs instead and returns the same PortDetails.
//
// Its modem-bit calls (RTS/DTR, TIOCMGET, and so Mode.InitialStatusBits)
// fail on a pty with "inappropriate ioctl for device"; Port never makes
// them, so ptys (socat pairs in tests, see package serialtest) open like
// real ports. TIOCEXCL works on a pty (root ignores it anywhere). Its
// descriptor is opened without O_CLOEXEC, so child processes inherit it.
package serial
