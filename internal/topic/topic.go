// Package topic holds the MQTT topic name and filter rules (MQTT 3.1.1 §4.7)
// that the MQTT-SN codec, the gateway and the broker core must all agree on.
package topic

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// MaxLen is the longest topic name or filter MQTT can carry (a 2-byte length).
const MaxLen = 65535

// Errors returned by ValidateName and ValidateFilter.
var (
	ErrEmpty       = errors.New("empty")
	ErrTooLong     = errors.New("longer than 65535 bytes")
	ErrBadUTF8     = errors.New("not well-formed UTF-8")
	ErrNUL         = errors.New("contains U+0000")
	ErrWildcard    = errors.New("a topic name may not contain + or #")
	ErrBadWildcard = errors.New("+ and # must fill a whole level, and # must be the last")
)

// ValidateString checks the rules every MQTT UTF-8 string follows: well-formed
// UTF-8 without surrogates and without U+0000 (MQTT-1.5.3-1, -2).
func ValidateString(s string) error {
	if len(s) > MaxLen {
		return ErrTooLong
	}
	if strings.IndexByte(s, 0) >= 0 {
		return ErrNUL
	}
	if !utf8.ValidString(s) { // Go's decoder also refuses encoded surrogates
		return ErrBadUTF8
	}
	return nil
}

// ValidateName checks a topic name as published to: at least one character,
// a valid MQTT string, and no wildcard characters (MQTT-4.7.1-1, 4.7.3-1).
func ValidateName(name string) error {
	if name == "" {
		return ErrEmpty
	}
	if err := ValidateString(name); err != nil {
		return err
	}
	if strings.ContainsAny(name, "+#") {
		return ErrWildcard
	}
	return nil
}

// ValidateFilter checks a subscription filter: at least one character, a
// valid MQTT string, '+' only as a whole level and '#' only as the whole last
// level (MQTT-4.7.1-2, 4.7.1-3).
func ValidateFilter(filter string) error {
	if filter == "" {
		return ErrEmpty
	}
	if err := ValidateString(filter); err != nil {
		return err
	}
	rest := filter
	for {
		level, tail, more := strings.Cut(rest, "/")
		if strings.ContainsAny(level, "+#") && len(level) != 1 {
			return ErrBadWildcard
		}
		if level == "#" && more {
			return ErrBadWildcard
		}
		if !more {
			return nil
		}
		rest = tail
	}
}

// IsFilterWildcard reports whether filter contains a wildcard level.
func IsFilterWildcard(filter string) bool {
	return strings.ContainsAny(filter, "+#")
}
