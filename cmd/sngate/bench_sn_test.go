package main

import (
	"encoding/json"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/broker/brokertest"
	"github.com/sngate/sngate/gateway"
	"github.com/sngate/sngate/gateway/gatewaytest"
)

// benchGateway serves an in-process broker (TCP) and MQTT-SN gateway (UDP)
// on free loopback ports, without a per-address rate limit.
func benchGateway(t *testing.T) (gw, br string) {
	t.Helper()
	b, addr := brokertest.NewServer(t, broker.Config{SysInterval: -1}, broker.Options{})
	// No per-address rate limit: every load client sends far more than a sensor.
	_, gw = gatewaytest.NewServer(t, gateway.Config{PacketsPerSecond: new(0)}, b)
	return gw, addr
}

func TestBenchSN(t *testing.T) {
	gw, br := benchGateway(t)
	latency := regexp.MustCompile(`^[0-9.]+(µs|ms|s)$`)
	for _, tc := range []struct{ dir, qos string }{{"up", "0"}, {"up", "1"}, {"down", "0"}, {"down", "1"}} {
		code, out, errOut := sngate(t, "bench", "sn", "--gateway", gw, "--broker", br, "--direction", tc.dir,
			"--qos", tc.qos, "--clients", "3", "--size", "32", "--rate", "500", "--duration", "1s", "--warmup", "100ms")
		if code != 0 || errOut != "" {
			t.Fatalf("%s qos %s: exit %d, stderr %q", tc.dir, tc.qos, code, errOut)
		}
		if strings.Count(out, "\n") != 1 {
			t.Fatalf("%s qos %s: want one line, got %q", tc.dir, tc.qos, out)
		}
		f := benchFields(t, out)
		for k, want := range map[string]string{"direction": tc.dir, "qos": tc.qos, "clients": "3", "size": "32",
			"rate": "500/s", "window": "256", "duration": "1s", "loss": "0", "dups": "0"} {
			if f[k] != want {
				t.Errorf("%s qos %s: %s=%q, want %q in %q", tc.dir, tc.qos, k, f[k], want, out)
			}
		}
		sent, _ := strconv.Atoi(f["sent"])
		expected, _ := strconv.Atoi(f["expected"])
		received, _ := strconv.Atoi(f["received"])
		per := 1
		if tc.dir == "down" {
			per = 3
		}
		if sent == 0 || expected != per*sent || received != expected { // any speed will do: no loss is the point
			t.Errorf("%s qos %s: sent %d expected %d received %d", tc.dir, tc.qos, sent, expected, received)
		}
		for _, k := range []string{"p50", "p99", "max"} {
			if !latency.MatchString(f[k]) {
				t.Errorf("%s qos %s: %s=%q is not a latency", tc.dir, tc.qos, k, f[k])
			}
		}
	}
}

func TestBenchSNJSON(t *testing.T) {
	gw, br := benchGateway(t)
	code, out, errOut := sngate(t, "bench", "sn", "--gateway", gw, "--broker", br, "--direction", "up",
		"--qos", "-1", "--clients", "2", "--rate", "200", "--duration", "1s", "--warmup", "0s", "--json")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	var r struct {
		Direction string  `json:"direction"`
		QoS       int     `json:"qos"`
		Clients   int     `json:"clients"`
		Sent      int64   `json:"sent"`
		Received  int64   `json:"received"`
		Loss      *int64  `json:"loss"`
		Rate      float64 `json:"msgs_per_sec"`
		P50       float64 `json:"p50_us"`
		P99       float64 `json:"p99_us"`
		DurationS float64 `json:"duration_s"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %q", err, out)
	}
	if r.Direction != "up" || r.QoS != -1 || r.Clients != 2 || r.DurationS != 1 || r.Sent == 0 ||
		r.Loss == nil || r.Received+*r.Loss != r.Sent || r.Rate <= 0 || !(0 < r.P50 && r.P50 <= r.P99) {
		t.Errorf("implausible result: %s", out)
	}
}

func TestBenchSNIdle(t *testing.T) {
	gw, _ := benchGateway(t)
	pid := strconv.Itoa(os.Getpid()) // the gateway runs in this process
	code, out, errOut := sngate(t, "bench", "sn-idle", "--clients", "30", "--gateway", gw, "--pid", pid, "--settle", "0s", "--json")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	var r idleResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %q", err, out)
	}
	if r.Clients != 30 || r.Opened != 30 || r.PID != os.Getpid() || r.RSSBefore <= 0 || r.RSSAfter <= 0 {
		t.Errorf("implausible result: %s", out)
	}
}

func TestBenchSNUsage(t *testing.T) {
	for _, args := range [][]string{
		{"sn", "--qos", "3"},
		{"sn", "--direction", "down", "--qos", "-1"},
		{"sn", "--direction", "sideways"},
		{"sn", "--clients", "0"},
		{"sn", "--size", "8"},
		{"sn", "--duration", "0s"},
		{"sn", "--window", "0"},
		{"sn", "--rate", "-1"},
		{"sn", "--gateway", "nohost"},
		{"sn", "--broker", "h:99999"},
		{"sn", "--topic", "a/+"},
		{"sn", "extra"},
		{"sn", "--bogus"},
		{"sn-idle", "--clients", "0"},
		{"sn-idle", "--keepalive", "70000"},
		{"sn-idle", "--gateway", ":"},
		{"sn-idle", "--pid", "-1"},
	} {
		code, _, errOut := sngate(t, append([]string{"bench"}, args...)...)
		if code != exitUsage {
			t.Errorf("%q: exit %d, want %d (stderr %q)", args, code, exitUsage, errOut)
		}
		if !strings.Contains(errOut, "Usage: sngate bench sn") {
			t.Errorf("%q: no usage in stderr %q", args, errOut)
		}
	}
}
