// Package configerr is the plumbing of configuration errors that name a
// key: a section's Validate returns errors with a Field() method giving the
// key relative to the section, and whoever holds the section prefixes it
// (Under), down to the loader in cmd/sngate, which points at the key's
// line in the user's file.
package configerr

import "strings"

// FieldError is a configuration error about one key, named by its dotted
// path ("serial.0.baud").
type FieldError struct {
	Key string
	Msg string
}

func (e *FieldError) Error() string { return e.Key + ": " + e.Msg }

// Field returns the dotted key path.
func (e *FieldError) Field() string { return e.Key }

// fielder is an error naming a key, of any package.
type fielder interface {
	error
	Field() string
}

// Flatten undoes errors.Join, recursively; nil gives none.
func Flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, Flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// Under flattens err and keys every error below section: "section.key" for
// an error with a Field, "section" itself for one without.
func Under(section string, err error) []error {
	var out []error
	for _, e := range Flatten(err) {
		key, msg := section, e.Error()
		if f, ok := e.(fielder); ok {
			if f.Field() != "" {
				key = section + "." + f.Field()
			}
			msg = strings.TrimPrefix(msg, f.Field()+": ")
		}
		out = append(out, &FieldError{Key: key, Msg: msg})
	}
	return out
}
