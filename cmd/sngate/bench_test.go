package main

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sngate/sngate/broker"
)

// benchBroker serves an in-memory broker on a free loopback port.
func benchBroker(t *testing.T) string {
	t.Helper()
	srv, err := broker.New(broker.Config{SysInterval: -1}, broker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return ln.Addr().String()
}

// benchFields parses the key=value fields of a bench mqtt line.
func benchFields(t *testing.T, line string) map[string]string {
	t.Helper()
	f := map[string]string{}
	for _, kv := range strings.Fields(line) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			t.Fatalf("field %q of %q is not key=value", kv, line)
		}
		f[k] = v
	}
	return f
}

func TestBenchMQTTModes(t *testing.T) {
	addr := benchBroker(t)
	latency := regexp.MustCompile(`^[0-9.]+(µs|ms|s)$`)
	for _, mode := range []string{"fan-in", "fan-out"} {
		for _, qos := range []string{"0", "1"} {
			code, out, errOut := sngate(t, "bench", "mqtt", "--addr", addr, "--mode", mode, "--qos", qos,
				"--publishers", "2", "--subscribers", "2", "--size", "32", "--rate", "2000",
				"--duration", "1s", "--warmup", "100ms")
			if code != 0 || errOut != "" {
				t.Fatalf("%s qos %s: exit %d, stderr %q", mode, qos, code, errOut)
			}
			if strings.Count(out, "\n") != 1 {
				t.Fatalf("%s qos %s: want one line, got %q", mode, qos, out)
			}
			f := benchFields(t, out)
			for k, want := range map[string]string{"mode": mode, "qos": qos, "publishers": "2",
				"subscribers": "2", "size": "32", "rate": "2000/s", "duration": "1s", "loss": "0", "dups": "0"} {
				if f[k] != want {
					t.Errorf("%s qos %s: %s=%q, want %q in %q", mode, qos, k, f[k], want, out)
				}
			}
			sent, _ := strconv.Atoi(f["sent"])
			received, _ := strconv.Atoi(f["received"])
			expected, _ := strconv.Atoi(f["expected"])
			rate, _ := strconv.ParseFloat(f["msgs/s"], 64)
			// Any speed will do (no timed assertions): what counts is that
			// nothing is lost and the rate is computed from what was received.
			if sent == 0 || expected != 2*sent || received != expected || rate <= 0 {
				t.Errorf("%s qos %s: sent %d expected %d received %d msgs/s %v", mode, qos, sent, expected, received, rate)
			}
			for _, k := range []string{"p50", "p99", "max"} {
				if !latency.MatchString(f[k]) {
					t.Errorf("%s qos %s: %s=%q is not a latency", mode, qos, k, f[k])
				}
			}
		}
	}
}

func TestBenchMQTTJSON(t *testing.T) {
	addr := benchBroker(t)
	host, port, _ := net.SplitHostPort(addr)
	code, out, errOut := sngate(t, "bench", "mqtt", "--host", host, "--port", port, "--mode", "fan-out",
		"--qos", "1", "--subscribers", "3", "--inflight", "8", "--duration", "1s", "--warmup", "0s", "--json")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	var r struct {
		Mode        string   `json:"mode"`
		QoS         int      `json:"qos"`
		Publishers  int      `json:"publishers"`
		Subscribers int      `json:"subscribers"`
		Inflight    int      `json:"inflight"`
		Sent        int64    `json:"sent"`
		Expected    int64    `json:"expected"`
		Received    int64    `json:"received"`
		Loss        *int64   `json:"loss"`
		LossPct     *float64 `json:"loss_pct"`
		Rate        float64  `json:"msgs_per_sec"`
		P50         float64  `json:"p50_us"`
		P99         float64  `json:"p99_us"`
		Max         float64  `json:"max_us"`
		DurationS   float64  `json:"duration_s"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %q", err, out)
	}
	if r.Mode != "fan-out" || r.QoS != 1 || r.Publishers != 1 || r.Subscribers != 3 || r.Inflight != 8 || r.DurationS != 1 {
		t.Errorf("run not described: %s", out)
	}
	if r.Sent == 0 || r.Expected != 3*r.Sent || r.Received != r.Expected || r.Loss == nil || *r.Loss != 0 ||
		r.LossPct == nil || r.Rate <= 0 || !(0 < r.P50 && r.P50 <= r.P99 && r.P99 <= r.Max) {
		t.Errorf("implausible result: %s", out)
	}
}

func TestBenchIdle(t *testing.T) {
	addr := benchBroker(t)
	pid := strconv.Itoa(os.Getpid()) // the broker runs in this process
	code, out, errOut := sngate(t, "bench", "idle", "--clients", "30", "--addr", addr, "--pid", pid, "--settle", "0s", "--json")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	var r map[string]float64
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %q", err, out)
	}
	if r["clients"] != 30 || r["opened"] != 30 || r["rss_before_bytes"] <= 0 || r["rss_after_bytes"] <= 0 {
		t.Errorf("result %s", out)
	}
	if _, ok := r["rss_per_client_bytes"]; !ok && r["rss_after_bytes"] != r["rss_before_bytes"] {
		t.Errorf("no rss_per_client_bytes: %s", out)
	}

	code, out, errOut = sngate(t, "bench", "idle", "--clients", "5", "--addr", addr, "--settle", "0s")
	if code != 0 || errOut != "" || !strings.HasPrefix(out, "clients=5 connect=") || strings.Contains(out, "rss") {
		t.Errorf("without --pid: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestBenchFailuresExit1(t *testing.T) {
	closed := freeAddr(t)
	for _, args := range [][]string{
		{"bench", "mqtt", "--addr", closed, "--duration", "1s"},
		{"bench", "idle", "--addr", closed, "--clients", "3"},
		{"bench", "idle", "--addr", closed, "--clients", "3", "--pid", "999999999"},
	} {
		code, out, errOut := sngate(t, args...)
		if code != 1 || out != "" {
			t.Errorf("%v: exit %d, stdout %q", args, code, out)
		}
		if !strings.HasPrefix(errOut, "sngate bench ") || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%v: stderr %q, want one line", args, errOut)
		}
	}
}

func TestBenchUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string // in stderr
	}{
		{[]string{"bench"}, "give a command"},
		{[]string{"bench", "frob"}, `unknown command "frob"`},
		{[]string{"bench", "mqtt", "extra"}, `unexpected argument "extra"`},
		{[]string{"bench", "mqtt", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"bench", "mqtt", "--mode", "fan-sideways"}, `--mode "fan-sideways" is not fan-in or fan-out`},
		{[]string{"bench", "mqtt", "--qos", "2"}, "--qos 2 is not 0 or 1"},
		{[]string{"bench", "mqtt", "--size", "15"}, "--size 15 is not 16.."},
		{[]string{"bench", "mqtt", "--publishers", "-1"}, "--publishers -1"},
		{[]string{"bench", "mqtt", "--subscribers", "10001"}, "--subscribers 10001"},
		{[]string{"bench", "mqtt", "--duration", "0s"}, "--duration 0s must be positive"},
		{[]string{"bench", "mqtt", "--warmup", "-1s"}, "--warmup -1s must not be negative"},
		{[]string{"bench", "mqtt", "--rate", "-5"}, "--rate -5 must not be negative"},
		{[]string{"bench", "mqtt", "--inflight", "0"}, "--inflight 0 must be at least 1"},
		{[]string{"bench", "mqtt", "--inflight", "70000"}, "--inflight 70000 is not 1..65535"},
		{[]string{"bench", "mqtt", "--port", "0"}, "--port 0 is not a TCP port"},
		{[]string{"bench", "mqtt", "--addr", "nohost"}, `--addr "nohost" is not HOST:PORT`},
		{[]string{"bench", "mqtt", "--addr", "h:99999"}, "is not a TCP port"},
		{[]string{"bench", "mqtt", "--addr", "h:1", "--port", "2"}, "give --addr or --host/--port, not both"},
		{[]string{"bench", "mqtt", "--topic", ""}, "--topic must not be empty"},
		{[]string{"bench", "idle", "--clients", "0"}, "--clients 0 is not 1..1000000"},
		{[]string{"bench", "idle", "--pid", "-3"}, "--pid -3 is not a process id"},
		{[]string{"bench", "idle", "--keepalive", "0"}, "--keepalive 0 is not 1..65535"},
		{[]string{"bench", "idle", "--timeout", "0s"}, "--timeout 0s must be positive"},
		{[]string{"bench", "idle", "x"}, `unexpected argument "x"`},
	}
	for _, tt := range tests {
		code, out, errOut := sngate(t, tt.args...)
		if code != exitUsage {
			t.Errorf("%v: exit %d, want 2", tt.args, code)
		}
		if out != "" {
			t.Errorf("%v: stdout %q, want nothing", tt.args, out)
		}
		if !strings.Contains(errOut, tt.want) || !strings.Contains(errOut, "Usage: sngate bench") {
			t.Errorf("%v: stderr %q lacks %q and the usage", tt.args, errOut, tt.want)
		}
	}
}

func TestBenchHelp(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"bench", "--help"}, []string{"Usage: sngate bench COMMAND", "mqtt", "idle"}},
		{[]string{"bench", "-h"}, []string{"Usage: sngate bench COMMAND"}},
		{[]string{"bench", "mqtt", "-h"}, []string{"Usage: sngate bench mqtt", "--mode MODE", "--inflight N", "--json"}},
		{[]string{"bench", "idle", "--help"}, []string{"Usage: sngate bench idle", "--clients N", "--pid ID"}},
	} {
		code, out, errOut := sngate(t, tt.args...)
		if code != 0 || errOut != "" {
			t.Errorf("%v: exit %d, stderr %q", tt.args, code, errOut)
		}
		for _, w := range tt.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: usage lacks %q:\n%s", tt.args, w, out)
			}
		}
	}
}
