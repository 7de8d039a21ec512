package queue

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestPolicyNames(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Policy
		wantErr bool
	}{
		{"drop-oldest", DropOldest, false},
		{"refuse-new", RefuseNew, false},
		{"", 0, true},
		{"drop_oldest", 0, true},
		{"Refuse-New", 0, true},
	} {
		p, err := ParsePolicy(tc.in)
		if (err != nil) != tc.wantErr || p != tc.want {
			t.Errorf("ParsePolicy(%q) = %v, %v", tc.in, p, err)
		}
		if err == nil && p.String() != tc.in {
			t.Errorf("%v.String() = %q, want %q", p, p.String(), tc.in)
		}
	}
	if s := Policy(9).String(); s != "Policy(9)" {
		t.Errorf("String of an invalid policy: %q", s)
	}
	if _, err := Policy(9).MarshalText(); err == nil {
		t.Error("MarshalText of an invalid policy succeeded")
	}
}

// TestPolicyYAML: a configuration file says `policy: refuse-new`.
func TestPolicyYAML(t *testing.T) {
	type conf struct {
		Policy Policy `yaml:"policy"`
	}
	var c conf
	if err := yaml.Unmarshal([]byte("policy: refuse-new\n"), &c); err != nil || c.Policy != RefuseNew {
		t.Fatalf("unmarshal: %v, %v", c.Policy, err)
	}
	c = conf{}
	if err := yaml.Unmarshal([]byte("{}"), &c); err != nil || c.Policy != DropOldest {
		t.Fatalf("default: %v, %v", c.Policy, err)
	}
	err := yaml.Unmarshal([]byte("policy: keep-all\n"), &c)
	if err == nil || !strings.Contains(err.Error(), "keep-all") {
		t.Fatalf("bad policy: %v", err)
	}
	out, err := yaml.Marshal(conf{Policy: RefuseNew})
	if err != nil || string(out) != "policy: refuse-new\n" {
		t.Fatalf("marshal: %q, %v", out, err)
	}
}
