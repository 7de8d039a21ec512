package bridge

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func validConnection() ConnectionConfig {
	return ConnectionConfig{
		Name: "cloud", URL: "mqtt://127.0.0.1:1883",
		Rules: []Rule{{Direction: DirOut, Topic: "sensors/#", QoS: 1}},
	}
}

func TestConfigValidate(t *testing.T) {
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		change func(*ConnectionConfig)
		key    string // "" = valid
	}{
		{"valid", func(*ConnectionConfig) {}, ""},
		{"tls", func(c *ConnectionConfig) {
			c.URL = "mqtts://iot.example.com:8883"
			c.TLS = TLSConfig{CAFile: caFile, ALPN: []string{"x-amzn-mqtt-ca"}}
		}, ""},
		{"bad name", func(c *ConnectionConfig) { c.Name = "a/b" }, "connections.0.name"},
		{"no url", func(c *ConnectionConfig) { c.URL = "" }, "connections.0.url"},
		{"bad scheme", func(c *ConnectionConfig) { c.URL = "http://x:80" }, "connections.0.url"},
		{"bad protocol", func(c *ConnectionConfig) { c.Protocol = "mqtt4" }, "connections.0.protocol"},
		{"tls on plain url", func(c *ConnectionConfig) { c.TLS.CAFile = caFile }, "connections.0.tls"},
		{"tls alias scheme", func(c *ConnectionConfig) {
			c.URL = "SSL://iot.example.com:8883"
			c.TLS.CAFile = caFile
		}, ""},
		{"tls on websocket", func(c *ConnectionConfig) {
			c.URL = "ws://iot.example.com/mqtt"
			c.TLS.CAFile = caFile
		}, "connections.0.tls"},
		{"missing ca", func(c *ConnectionConfig) {
			c.URL = "mqtts://x:8883"
			c.TLS.CAFile = "/nonexistent/ca.pem"
		}, "connections.0.tls.ca_file"},
		{"cert without key", func(c *ConnectionConfig) {
			c.URL = "mqtts://x:8883"
			c.TLS.CertFile = caFile
		}, "connections.0.tls.cert_file"},
		{"keep alive", func(c *ConnectionConfig) { c.KeepAlive = 100000e9 }, "connections.0.keep_alive"},
		{"reconnect max", func(c *ConnectionConfig) { c.ReconnectMax = 1e6 }, "connections.0.reconnect_max"},
		{"inflight", func(c *ConnectionConfig) { c.Inflight = 70000 }, "connections.0.inflight"},
		{"policy", func(c *ConnectionConfig) { c.Queue.Policy = "drop-newest" }, "connections.0.queue.policy"},
		{"negative max", func(c *ConnectionConfig) { c.Queue.MaxBytes = -1 }, "connections.0.queue.max_bytes"},
		{"no rules", func(c *ConnectionConfig) { c.Rules = nil }, "connections.0.rules"},
		{"direction", func(c *ConnectionConfig) { c.Rules[0].Direction = "up" }, "connections.0.rules.0.direction"},
		{"qos", func(c *ConnectionConfig) { c.Rules[0].QoS = 3 }, "connections.0.rules.0.qos"},
		{"bad filter", func(c *ConnectionConfig) { c.Rules[0].Topic = "a/#/b" }, "connections.0.rules.0.topic"},
		{"wildcard prefix", func(c *ConnectionConfig) { c.Rules[0].RemotePrefix = "gw/+/" }, "connections.0.rules.0.remote_prefix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validConnection()
			tc.change(&c)
			cfg := Config{Connections: []ConnectionConfig{c}}
			err := cfg.Validate()
			if tc.key == "" {
				if err != nil {
					t.Fatalf("valid config refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted, want an error about %s", tc.key)
			}
			if !strings.Contains(err.Error(), tc.key+": ") {
				t.Fatalf("error %q does not name %s", err, tc.key)
			}
		})
	}
	dup := Config{Connections: []ConnectionConfig{validConnection(), validConnection()}}
	if err := dup.Validate(); err == nil || !strings.Contains(err.Error(), "connections.1.name") {
		t.Fatalf("duplicate names: %v", err)
	}
}
