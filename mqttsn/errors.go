package mqttsn

import (
	"errors"
	"fmt"
)

// Kinds of codec failure. Every error from Decode, Unmarshal, Append and
// Marshal is an *Error that wraps one of these, so callers can count drops by
// kind with errors.Is while logging the full message.
var (
	ErrTooShort    = errors.New("message too short")
	ErrSize        = errors.New("wrong message size")
	ErrLength      = errors.New("length field does not match the datagram")
	ErrUnknownType = errors.New("reserved or unknown message type")
	ErrInvalid     = errors.New("invalid field")
	ErrTooLong     = errors.New("message longer than 65535 bytes")
)

// Error describes why a message could not be decoded or encoded, for example
// "mqttsn: PUBLISH: 5 bytes, need at least 7".
type Error struct {
	Type    MsgType // the message type, when it was known
	HasType bool    // false when the header itself was unreadable
	Kind    error   // one of the Err* kinds above
	Detail  string  // what exactly is wrong
}

func (e *Error) Error() string {
	if !e.HasType {
		return "mqttsn: " + e.Detail
	}
	return "mqttsn: " + e.Type.String() + ": " + e.Detail
}

// Unwrap returns the kind, for errors.Is.
func (e *Error) Unwrap() error { return e.Kind }

// headerError reports a problem found before the message type is known.
func headerError(kind error, format string, args ...any) *Error {
	return &Error{Kind: kind, Detail: fmt.Sprintf(format, args...)}
}

// fieldError is what a packet's decode or validate method returns for a bad
// field; Decode and Append attach the message type.
type fieldError struct{ detail string }

func (e *fieldError) Error() string { return e.detail }

func invalidf(format string, args ...any) error {
	return &fieldError{detail: fmt.Sprintf(format, args...)}
}

// sizeError is what a packet's decode method returns when its variable part
// has the wrong length; Decode turns it into totals the reader can check
// against the wire bytes.
type sizeError struct {
	need  int // length of the variable part needed
	exact bool
	or    int // when non-zero: a second exact length that is also accepted (> need)
}

func (e *sizeError) Error() string { return fmt.Sprintf("variable part needs %d bytes", e.need) }

func needAtLeast(v []byte, n int) error {
	if len(v) < n {
		return &sizeError{need: n}
	}
	return nil
}

func needExactly(v []byte, n int) error {
	if len(v) != n {
		return &sizeError{need: n, exact: true}
	}
	return nil
}

// packetError attaches the message type (and, for size errors, the message
// totals) to an error from a packet's decode or validate method. hdr is the
// header length (Length field and MsgType) and varLen the variable part's.
func packetError(t MsgType, hdr, varLen int, err error) *Error {
	var se *sizeError
	if errors.As(err, &se) {
		if se.exact && se.or != 0 {
			return &Error{Type: t, HasType: true, Kind: ErrSize,
				Detail: fmt.Sprintf("%d bytes, need exactly %d or %d", hdr+varLen, hdr+se.need, hdr+se.or)}
		}
		if se.exact {
			return &Error{Type: t, HasType: true, Kind: ErrSize,
				Detail: fmt.Sprintf("%d bytes, need exactly %d", hdr+varLen, hdr+se.need)}
		}
		return &Error{Type: t, HasType: true, Kind: ErrTooShort,
			Detail: fmt.Sprintf("%d bytes, need at least %d", hdr+varLen, hdr+se.need)}
	}
	var e *Error
	if errors.As(err, &e) { // from a nested message: keep it whole
		return e
	}
	return &Error{Type: t, HasType: true, Kind: ErrInvalid, Detail: err.Error()}
}
