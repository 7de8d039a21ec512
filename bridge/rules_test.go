package bridge

import "testing"

// TestRuleMapping follows mosquitto's "topic PATTERN DIR QOS LOCAL REMOTE":
// local = local_prefix + match, remote = remote_prefix + match.
func TestRuleMapping(t *testing.T) {
	out, in := compileRules([]Rule{
		{Direction: DirOut, Topic: "sensors/#", RemotePrefix: "gw1/"},
		{Direction: DirBoth, Topic: "+/status", LocalPrefix: "dev/", RemotePrefix: "fleet/gw1/"},
		{Direction: DirIn, Topic: "cmd/#", LocalPrefix: "", RemotePrefix: "gw1/"},
	})
	if len(out) != 2 || len(in) != 2 {
		t.Fatalf("%d out rules, %d in rules; want 2 and 2", len(out), len(in))
	}
	for _, tc := range []struct {
		local, remote string
		ok            bool
	}{
		{"sensors/t1", "gw1/sensors/t1", true},
		{"sensors", "gw1/sensors", true}, // # matches the parent level
		{"dev/pump/status", "fleet/gw1/pump/status", true},
		{"pump/status", "", false},
		{"cmd/valve", "", false}, // in only
	} {
		_, remote, ok := matchOut(out, tc.local)
		if ok != tc.ok || remote != tc.remote {
			t.Errorf("out %q = %q, %v; want %q, %v", tc.local, remote, ok, tc.remote, tc.ok)
		}
	}
	for _, tc := range []struct {
		remote, local string
		ok            bool
	}{
		{"gw1/cmd/valve", "cmd/valve", true},
		{"fleet/gw1/pump/status", "dev/pump/status", true},
		{"gw1/sensors/t1", "", false}, // out only
		{"gw2/cmd/valve", "", false},
	} {
		_, local, ok := matchIn(in, tc.remote)
		if ok != tc.ok || local != tc.local {
			t.Errorf("in %q = %q, %v; want %q, %v", tc.remote, local, ok, tc.local, tc.ok)
		}
	}
}

// TestBackoff: from 1s doubling to the cap, never below half a step, never
// above the cap.
func TestBackoff(t *testing.T) {
	max := 2 * 60e9
	for n, step := range []float64{1e9, 2e9, 4e9, 8e9, 16e9, 32e9, 64e9, max, max, max} {
		for range 50 {
			d := float64(backoff(n+1, 120e9))
			if d < step/2 || d > step {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", n+1, d/1e9, step/2e9, step/1e9)
			}
		}
	}
	// Jitter: attempts at the same step do not all wait the same.
	seen := map[int64]bool{}
	for range 20 {
		seen[int64(backoff(5, 120e9))] = true
	}
	if len(seen) < 2 {
		t.Fatal("backoff has no jitter")
	}
}
