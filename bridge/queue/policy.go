package queue

import "fmt"

// Policy says what happens when a new record would take the queue over its
// limits (Options.MaxMessages, Options.MaxBytes) or the disk is full.
type Policy int

const (
	// DropOldest, the default, deletes the oldest records to make room: a
	// gateway cut off from the cloud for days keeps the most recent data.
	DropOldest Policy = iota
	// RefuseNew keeps what is queued and refuses the new record: for data
	// where the first readings after an outage matter most.
	RefuseNew
)

var policyNames = [...]string{DropOldest: "drop-oldest", RefuseNew: "refuse-new"}

// ParsePolicy parses a policy as written in the configuration file:
// "drop-oldest" or "refuse-new".
func ParsePolicy(s string) (Policy, error) {
	for p, name := range policyNames {
		if s == name {
			return Policy(p), nil
		}
	}
	return 0, fmt.Errorf("queue: unknown policy %q (want drop-oldest or refuse-new)", s)
}

// String returns the configuration name of p.
func (p Policy) String() string {
	if p.valid() {
		return policyNames[p]
	}
	return fmt.Sprintf("Policy(%d)", int(p))
}

func (p Policy) valid() bool { return p >= 0 && int(p) < len(policyNames) }

// MarshalText makes a Policy appear by name in YAML and JSON.
func (p Policy) MarshalText() ([]byte, error) {
	if !p.valid() {
		return nil, fmt.Errorf("queue: invalid policy %d", int(p))
	}
	return []byte(policyNames[p]), nil
}

// UnmarshalText lets a configuration file say `policy: refuse-new`.
func (p *Policy) UnmarshalText(b []byte) error {
	v, err := ParsePolicy(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}
