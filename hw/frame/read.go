package frame

import (
	"errors"
	"fmt"
	"io"
)

// readRoom is the least free space a reader asks its io.Reader to fill. A
// serial port returns what has arrived, typically a few bytes to a few dozen,
// so this is about not making a system call per byte, not about throughput.
const readRoom = 512

// input is the read side the two readers share: one Read into p, with the
// error sorted into the end of the input (kept, so that ReadFrame returns it
// again on every later call) or anything else (returned once, after the
// frames that the same Read completed).
type input struct {
	src io.Reader
	eof error // io.EOF (or an error wrapping it) once seen
	err error // any other read error, returned by the next ReadFrame
}

// read calls Read once and returns the byte count, never out of range even
// for a broken io.Reader.
func (in *input) read(p []byte) int {
	n, err := in.src.Read(p)
	if n < 0 || n > len(p) {
		in.err = fmt.Errorf("frame: io.Reader returned %d bytes for a %d-byte read", n, len(p))
		return 0
	}
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		in.eof = err
	default:
		in.err = err
	}
	return n
}

// takeErr returns the pending one-shot read error, if any, and clears it.
func (in *input) takeErr() error {
	err := in.err
	in.err = nil
	return err
}
