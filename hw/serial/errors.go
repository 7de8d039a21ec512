package serial

import "errors"

var (
	// ErrPortDown is what Write returns while the port is lost and being
	// reopened; the caller drops the data.
	ErrPortDown = errors.New("serial port down")

	// ErrWriteTimeout is what Write returns when the line would not take
	// the data within Options.WriteTimeout (hardware flow control holding
	// the port off); the port stays up.
	ErrWriteTimeout = errors.New("serial write timed out")

	// ErrClosed is what Read and Write return after Close.
	ErrClosed = errors.New("serial port closed")

	// ErrNoDevice is wrapped by Open errors when no USB adapter matches.
	ErrNoDevice = errors.New("no matching USB serial adapter")

	// ErrAmbiguous is wrapped by Open errors when several USB adapters
	// match and nothing tells them apart.
	ErrAmbiguous = errors.New("several USB serial adapters match")
)
