package auth

import (
	"errors"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// fielder is the configuration loader's contract (cmd/sngate).
type fielder interface {
	error
	Field() string
}

func TestValidateOK(t *testing.T) {
	for _, c := range []Config{
		{},
		{PasswordFile: "/etc/sngate/passwd"},
		{ACL: []Rule{
			{User: "alice", Topic: "alice/#"},
			{User: "bob", Topic: "+/status", Access: "read"},
			{Anonymous: true, Topic: "public/#", Access: "read"},
			{Pattern: true, Topic: "devices/%c/#", Access: "readwrite"},
			{Pattern: true, Topic: "users/%u/+", Access: "write"},
			{Pattern: true, Topic: "x/%c-%u/y"},
			{Pattern: true, Topic: "#"},
			{User: "mon", Topic: "$SYS/#", Access: "read"},
			{User: "a b ü", Topic: "a//b"},
		}},
	} {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
}

func TestValidateErrors(t *testing.T) {
	tests := []struct {
		rule  Rule
		field string
		msg   string
	}{
		{Rule{Topic: "a"}, "acl.1", "set exactly one of user"},
		{Rule{User: "a", Anonymous: true, Topic: "a"}, "acl.1", "set exactly one of user"},
		{Rule{User: "a", Pattern: true, Topic: "a"}, "acl.1", "set exactly one of user"},
		{Rule{Anonymous: true, Pattern: true, Topic: "a"}, "acl.1", "set exactly one of user"},
		{Rule{User: "a\x00", Topic: "a"}, "acl.1.user", "U+0000"},
		{Rule{User: "a"}, "acl.1.topic", "must not be empty"},
		{Rule{User: "a", Topic: "a/#/b"}, "acl.1.topic", `"a/#/b" is not a valid topic filter`},
		{Rule{User: "a", Topic: "a+"}, "acl.1.topic", "not a valid topic filter"},
		{Rule{User: "a", Topic: "dev/%c"}, "acl.1.topic", "only replaced in rules with pattern: true"},
		{Rule{Anonymous: true, Topic: "dev/%u"}, "acl.1.topic", "only replaced in rules with pattern: true"},
		{Rule{Pattern: true, Topic: "dev/+%c"}, "acl.1.topic", `"dev/+%c" is not a valid topic filter`},
		{Rule{Pattern: true, Topic: "%u#"}, "acl.1.topic", "not a valid topic filter"},
		{Rule{User: "a", Topic: "a", Access: "rw"}, "acl.1.access", `"rw" is not one of read, write, readwrite`},
		{Rule{User: "a", Topic: "a", Access: "READ"}, "acl.1.access", "is not one of"},
	}
	for _, tt := range tests {
		c := Config{ACL: []Rule{{User: "ok", Topic: "ok"}, tt.rule}}
		err := c.Validate()
		if err == nil {
			t.Errorf("%+v: no error", tt.rule)
			continue
		}
		errs := err.(interface{ Unwrap() []error }).Unwrap()
		if len(errs) != 1 {
			t.Errorf("%+v: %d errors, want 1: %v", tt.rule, len(errs), err)
			continue
		}
		var f fielder
		if !errors.As(errs[0], &f) {
			t.Errorf("%+v: %T has no Field method", tt.rule, errs[0])
			continue
		}
		if f.Field() != tt.field || !strings.Contains(f.Error(), tt.msg) {
			t.Errorf("%+v: Field %q, error %q; want %q and %q", tt.rule, f.Field(), f.Error(), tt.field, tt.msg)
		}
		if !strings.HasPrefix(f.Error(), f.Field()+": ") {
			t.Errorf("error %q does not start with its field", f.Error())
		}
	}
}

func TestValidateSeveralErrors(t *testing.T) {
	c := Config{ACL: []Rule{
		{Topic: "", Access: "x"},
		{User: "a", Topic: "ok"},
		{User: "b", Topic: "#/a"},
	}}
	err := c.Validate()
	var fields []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		fields = append(fields, e.(fielder).Field())
	}
	want := "acl.0 acl.0.topic acl.0.access acl.2.topic"
	if got := strings.Join(fields, " "); got != want {
		t.Errorf("fields %q, want %q\n%v", got, want, err)
	}
}

func TestConfigYAML(t *testing.T) {
	src := `
password_file: /etc/sngate/passwd
acl:
  - user: alice
    topic: alice/#
  - anonymous: true
    topic: public/#
    access: read
  - pattern: true
    topic: devices/%c/#
    access: write
`
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	want := Config{
		PasswordFile: "/etc/sngate/passwd",
		ACL: []Rule{
			{User: "alice", Topic: "alice/#"},
			{Anonymous: true, Topic: "public/#", Access: "read"},
			{Pattern: true, Topic: "devices/%c/#", Access: "write"},
		},
	}
	if c.PasswordFile != want.PasswordFile || len(c.ACL) != len(want.ACL) {
		t.Fatalf("got %+v", c)
	}
	for i := range c.ACL {
		if c.ACL[i] != want.ACL[i] {
			t.Errorf("rule %d: %+v, want %+v", i, c.ACL[i], want.ACL[i])
		}
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
}
