// Package auth is the broker's authentication and authorisation: user names
// and passwords checked against a file of bcrypt hashes (Users), and access
// control lists that say which topics a client may publish to and read
// (ACL).
//
// The ACL rules are allow rules in the style of mosquitto's acl_file: with
// no rules at all everyone may do everything; as soon as there is one rule,
// a client may only do what some rule that applies to it allows.
package auth

import (
	"errors"
	"fmt"
	"strings"

	"github.com/sngate/sngate/internal/topic"
)

// Config is the broker's auth section, decoded from YAML.
type Config struct {
	// PasswordFile names a file of "user:bcrypt-hash" lines (see LoadUsers
	// and 'sngate passwd'). "" means there are no users.
	PasswordFile string `yaml:"password_file"`
	// ACL is the list of allow rules. Empty means everyone may read and
	// write every topic.
	ACL []Rule `yaml:"acl"`
}

// Rule allows a group of clients to read, write or both on the topics a
// filter matches. Exactly one of User, Anonymous and Pattern says whom the
// rule is for.
type Rule struct {
	// User is the exact user name the rule is for.
	User string `yaml:"user"`
	// Anonymous makes the rule apply to clients that sent no user name.
	Anonymous bool `yaml:"anonymous"`
	// Pattern makes the rule apply to every client, with %c in Topic
	// replaced by the client identifier and %u by the user name. A client
	// without a user name never matches a rule that uses %u, and a rule
	// never applies to a client whose substituted identifier or user name
	// is empty or contains '/', '+' or '#' (so that user "a/b" cannot
	// reach into user "a"'s topics, nor user "#" into everyone's).
	Pattern bool `yaml:"pattern"`
	// Topic is an MQTT topic filter: + and # are wildcards, and a filter
	// that starts with a wildcard does not match topics starting with $.
	Topic string `yaml:"topic"`
	// Access is read, write or readwrite; "" means readwrite. Read is
	// subscribing and receiving, write is publishing.
	Access string `yaml:"access"`
}

// Access values.
const (
	AccessRead      = "read"
	AccessWrite     = "write"
	AccessReadWrite = "readwrite"
)

// FieldError is a validation error about one key of the section, named by
// its dotted path relative to the section, list items by index
// ("acl.2.topic"). It satisfies the configuration loader's contract: Error
// is "KEY: MSG" and Field is KEY.
type FieldError struct {
	Key string
	Msg string
}

func (e *FieldError) Error() string { return e.Key + ": " + e.Msg }

// Field returns the dotted key path the error is about.
func (e *FieldError) Field() string { return e.Key }

// Validate checks the section without touching the file system (LoadUsers
// reports problems with the password file). Every error is a *FieldError;
// several are joined with errors.Join.
func (c *Config) Validate() error {
	var errs []error
	for i, r := range c.ACL {
		for _, e := range r.validate() {
			e.Key = fmt.Sprintf("acl.%d", i) + e.Key
			errs = append(errs, e)
		}
	}
	return errors.Join(errs...)
}

// validate checks one rule; the keys of the errors start with "." (or are
// empty, for the rule as a whole).
func (r Rule) validate() []*FieldError {
	var errs []*FieldError
	kinds := 0
	if r.User != "" {
		kinds++
		if err := topic.ValidateString(r.User); err != nil {
			errs = append(errs, &FieldError{".user", err.Error()})
		}
	}
	if r.Anonymous {
		kinds++
	}
	if r.Pattern {
		kinds++
	}
	if kinds != 1 {
		errs = append(errs, &FieldError{"", "set exactly one of user, anonymous: true and pattern: true"})
	}
	if err := r.validateTopic(); err != nil {
		errs = append(errs, &FieldError{".topic", err.Error()})
	}
	if _, _, ok := parseAccess(r.Access); !ok {
		errs = append(errs, &FieldError{".access", fmt.Sprintf("%q is not one of read, write, readwrite", r.Access)})
	}
	return errs
}

func (r Rule) validateTopic() error {
	if r.Topic == "" {
		return errors.New("must not be empty")
	}
	filter := r.Topic
	if r.Pattern {
		filter = strings.NewReplacer("%c", "x", "%u", "x").Replace(filter)
	} else if strings.Contains(filter, "%c") || strings.Contains(filter, "%u") {
		return fmt.Errorf("%q uses %%c or %%u, which are only replaced in rules with pattern: true", r.Topic)
	}
	if err := topic.ValidateFilter(filter); err != nil {
		return fmt.Errorf("%q is not a valid topic filter: %v", r.Topic, err)
	}
	return nil
}

// parseAccess returns what access grants; ok is false for an unknown value.
func parseAccess(access string) (read, write, ok bool) {
	switch access {
	case AccessRead:
		return true, false, true
	case AccessWrite:
		return false, true, true
	case "", AccessReadWrite:
		return true, true, true
	}
	return false, false, false
}
