package frame

import (
	"errors"
	"fmt"
)

// ErrTooLong is the kind of error ReadFrame returns for a frame that does not
// fit the caller's buffer. The frame has been skipped; the next ReadFrame
// continues with the frame after it, so the error is not fatal.
var ErrTooLong = errors.New("frame longer than the buffer")

// Error describes a frame the reader had to skip, for example
// "frame: slip: frame longer than the 64-byte buffer". It wraps its Kind, so
// callers test it with errors.Is(err, ErrTooLong).
type Error struct {
	Framing string // "raw" or "slip"
	Kind    error  // ErrTooLong
	Detail  string // what exactly was skipped
}

func (e *Error) Error() string { return "frame: " + e.Framing + ": " + e.Detail }

// Unwrap returns the kind, for errors.Is.
func (e *Error) Unwrap() error { return e.Kind }

// tooLong reports a frame of total bytes (0 when the length is unknown, as in
// SLIP before the END arrives) that does not fit a buffer of limit bytes.
func tooLong(framing string, total, limit int) *Error {
	if total > 0 {
		return &Error{Framing: framing, Kind: ErrTooLong,
			Detail: fmt.Sprintf("%d-byte frame skipped, the buffer holds %d", total, limit)}
	}
	return &Error{Framing: framing, Kind: ErrTooLong,
		Detail: fmt.Sprintf("frame longer than the %d-byte buffer skipped", limit)}
}
