package xbee

import (
	"errors"
	"fmt"
)

// Kinds of codec failure. Every error from Decode, Unmarshal and Append is an
// *Error wrapping one of these, so callers can count by kind with errors.Is.
var (
	ErrTooShort = errors.New("frame data too short for its type")
	ErrSize     = errors.New("wrong frame data size for its type")
	ErrTooLong  = errors.New("frame data longer than MaxFrameLen")
	ErrInvalid  = errors.New("invalid frame")
)

// Error describes why frame data could not be decoded or a frame encoded,
// for example "xbee: Receive Packet (0x90): 5 bytes of frame data, need at
// least 12".
type Error struct {
	Type    FrameType // the API identifier, when known
	HasType bool
	Kind    error // one of the Err* kinds above
	Detail  string
}

func (e *Error) Error() string {
	if !e.HasType {
		return "xbee: " + e.Detail
	}
	return "xbee: " + e.Type.String() + ": " + e.Detail
}

// Unwrap returns the kind, for errors.Is.
func (e *Error) Unwrap() error { return e.Kind }

func typeError(t FrameType, kind error, format string, args ...any) *Error {
	return &Error{Type: t, HasType: true, Kind: kind, Detail: fmt.Sprintf(format, args...)}
}

// need checks that the frame data after the API identifier (d) holds at least
// n bytes, or exactly n if exact. Sizes in messages count the API identifier,
// as Digi's manuals do.
func need(t FrameType, d []byte, n int, exact bool) error {
	switch {
	case exact && len(d) != n:
		return typeError(t, ErrSize, "%d bytes of frame data, need exactly %d", 1+len(d), 1+n)
	case len(d) < n:
		return typeError(t, ErrTooShort, "%d bytes of frame data, need at least %d", 1+len(d), 1+n)
	}
	return nil
}
