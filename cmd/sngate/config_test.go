package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sngate/sngate/bridge"
	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/broker/auth"
	"github.com/sngate/sngate/gateway"
	"github.com/sngate/sngate/hw"
	"github.com/sngate/sngate/hw/gpio"
	"github.com/sngate/sngate/internal/observe"
)

// defaultGateway is the gateway section default.yaml spells out.
func defaultGateway() gateway.Config {
	return gateway.Config{
		Listen: ":1884", GatewayID: 1, MaxClients: 10000, MaxTopicsPerClient: 256, MaxSleepBuffer: 100,
		RetryInterval: 10 * time.Second, MaxRetries: 3, PredefinedTopics: []gateway.PredefinedTopic{},
		PacketsPerSecond: new(100),
	}
}

// defaultBroker is the broker section default.yaml spells out.
func defaultBroker() broker.Config {
	return broker.Config{
		Listeners:         []broker.ListenerConfig{{Type: "tcp", Address: "127.0.0.1:1883"}},
		MaxClients:        10000,
		MaxPacketSize:     1 << 20,
		MaxInflight:       20,
		MaxQueuedMessages: 1000,
		SysInterval:       10 * time.Second,
		CommitWindow:      2 * time.Millisecond,
		Auth:              auth.Config{ACL: []auth.Rule{}},
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDefaults(t *testing.T) {
	c := Defaults()
	want := Config{Log: LogConfig{Level: "info", Format: "auto"}, DataDir: "./data", Broker: defaultBroker(), Gateway: defaultGateway(),
		Bridge: bridge.Config{Connections: []bridge.ConnectionConfig{}}, Serial: []hw.PortConfig{}, GPIO: gpio.Config{}, Metrics: observe.Config{}}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Defaults() = %+v, want %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
}

func TestLoadConfigOverDefaults(t *testing.T) {
	path := writeFile(t, "sngate.yaml", "log:\n  level: debug\n")
	c, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Log: LogConfig{Level: "debug", Format: "auto"}, DataDir: "./data", Broker: defaultBroker(), Gateway: defaultGateway(),
		Bridge: bridge.Config{Connections: []bridge.ConnectionConfig{}}, Serial: []hw.PortConfig{}, GPIO: gpio.Config{}, Metrics: observe.Config{}}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got %+v, want %+v (keys absent from the file keep their defaults)", c, want)
	}
}

func TestLoadConfigOverride(t *testing.T) {
	path := writeFile(t, "sngate.yaml", "data_dir: /from/file\n")
	set := func(v string) override {
		return override{flag: "--data-dir", key: "data_dir", set: func(c *Config) { c.DataDir = v }}
	}
	c, err := loadConfig(path, set("/from/flag"))
	if err != nil || c.DataDir != "/from/flag" {
		t.Errorf("got %q, %v; want the flag's value", c.DataDir, err)
	}
	_, err = loadConfig(path, set(""))
	if err == nil || err.Error() != "--data-dir: data_dir: must not be empty" {
		t.Errorf("error %v does not blame the flag", err)
	}
}

// TestCheck runs "sngate check" on files and checks each error names the
// file, the line and the reason.
func TestCheck(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    []string // error lines after "PATH:"; nil: config ok
	}{
		{name: "empty", content: ""},
		{name: "comments only", content: "# nothing to change\n"},
		{name: "full", content: "log:\n  level: warn\n  format: json\ndata_dir: /var/lib/sngate\n"},
		{name: "null section", content: "log:\n"},
		{
			name:    "unknown key",
			content: "log:\n  level: info\n\ndat_dir: /tmp\n",
			want:    []string{"4: field dat_dir not found in type main.Config"},
		},
		{
			name:    "unknown nested key",
			content: "log:\n  level: info\n  colour: true\n",
			want:    []string{"3: field colour not found in type main.LogConfig"},
		},
		{
			name:    "invalid enum",
			content: "# my gateway\n\nlog:\n  format: text\n  level: loud\n",
			want:    []string{`5: log.level: "loud" is not one of debug, info, warn, error`},
		},
		{
			name:    "invalid format",
			content: "log: {format: xml}\n",
			want:    []string{`1: log.format: "xml" is not one of auto, text, json`},
		},
		{
			name:    "wrong type scalar for section",
			content: "data_dir: /tmp\nlog: 5\n",
			want:    []string{"2: log: must be a mapping, got !!int `5`"},
		},
		{
			name:    "wrong type list for string",
			content: "log:\n  level:\n    - debug\n",
			want:    []string{"3: log.level: must be a string, got a list"},
		},
		{
			name:    "wrong type in flow style",
			content: "log: {format: text, level: [debug]}\n",
			want:    []string{"1: log.level: must be a string, got a list"},
		},
		{
			name:    "wrong type mapping for string",
			content: "data_dir:\n  path: /tmp\n",
			want:    []string{"2: data_dir: must be a string, got a mapping"},
		},
		{
			name:    "empty data dir",
			content: "data_dir: \"\"\n",
			want:    []string{"1: data_dir: must not be empty"},
		},
		{
			name:    "several problems",
			content: "log:\n  level: loud\n  format: xml\n",
			want: []string{
				`2: log.level: "loud" is not one of debug, info, warn, error`,
				`3: log.format: "xml" is not one of auto, text, json`,
			},
		},
		{
			name:    "syntax error",
			content: "log:\n  level: [debug\n",
			want:    []string{"2: did not find expected ',' or ']'"},
		},
		{
			name:    "syntax error on the last line",
			content: "data_dir: [a,",
			want:    []string{"1: did not find expected node content"},
		},
		{
			name:    "duplicate key",
			content: "log:\n  level: info\n  level: debug\n",
			want:    []string{`3: mapping key "level" already defined at line 2`},
		},
		{
			name:    "not a mapping",
			content: "hello\n",
			want:    []string{"1: must be a mapping, got !!str `hello`"},
		},
		{
			name:    "two documents",
			content: "log:\n  level: info\n---\ndata_dir: x\n",
			want:    []string{"3: only one YAML document is allowed"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, "sngate.yaml", tt.content)
			code, out, errOut := sngate(t, "check", "-c", path)
			if tt.want == nil {
				if code != 0 || out != "config ok\n" || errOut != "" {
					t.Errorf("code %d, stdout %q, stderr %q; want config ok", code, out, errOut)
				}
				return
			}
			if code != 1 || out != "" {
				t.Errorf("code %d, stdout %q; want 1 and nothing", code, out)
			}
			var want strings.Builder
			for _, w := range tt.want {
				want.WriteString(path + ":" + w + "\n")
			}
			if errOut != want.String() {
				t.Errorf("stderr:\n%s\nwant:\n%s", errOut, want.String())
			}
		})
	}
}

func TestCheckMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.yaml")
	code, _, errOut := sngate(t, "check", "--config", path)
	if code != 1 || !strings.Contains(errOut, path) || !strings.Contains(errOut, "no such file") {
		t.Errorf("code %d, stderr %q", code, errOut)
	}
}

func TestCheckDefaults(t *testing.T) {
	t.Setenv(envConfig, "")
	code, out, _ := sngate(t, "check")
	if code != 0 || out != "config ok\n" {
		t.Errorf("code %d, stdout %q", code, out)
	}
}

func TestConfigFromEnvironment(t *testing.T) {
	bad := writeFile(t, "bad.yaml", "log:\n  level: loud\n")
	good := writeFile(t, "good.yaml", "log:\n  level: debug\n")
	t.Setenv(envConfig, bad)
	code, _, errOut := sngate(t, "check")
	if code != 1 || !strings.HasPrefix(errOut, bad+":2: log.level: ") {
		t.Errorf("$%s not read: code %d, stderr %q", envConfig, code, errOut)
	}
	// The flag wins over the environment.
	code, out, _ := sngate(t, "check", "-c", good)
	if code != 0 || out != "config ok\n" {
		t.Errorf("-c did not override $%s: code %d, stdout %q", envConfig, code, out)
	}
}

func TestKeyAtLine(t *testing.T) {
	doc := "a: 1\nb:\n  c: 2\n  d:\n    - x\n    - y\ne: {f: 3}\n"
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(doc), &n); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		line int
		tag  string
		want string
	}{
		{1, "!!int", "a"},
		{2, "!!map", "b"}, // only the key is on line 2: its value starts on line 3
		{3, "!!map", "b"},
		{3, "!!int", "b.c"},
		{5, "!!seq", "b.d"},
		{5, "!!str", "b.d[0]"},
		{6, "!!str", "b.d[1]"},
		{7, "!!map", "e"},
		{7, "!!int", "e.f"},
		{7, "!!bool", "e"}, // no value with that tag: the first key on the line
		{8, "!!str", ""},
	}
	for _, tt := range tests {
		if got := keyAtLine(&n, tt.line, tt.tag); got != tt.want {
			t.Errorf("keyAtLine(%d, %s) = %q, want %q", tt.line, tt.tag, got, tt.want)
		}
	}
	for key, want := range map[string]int{"a": 1, "b.c": 3, "b.d": 4, "b.zz": 2, "zz": 0, "e.f": 7} {
		if got := keyLine(&n, key); got != want {
			t.Errorf("keyLine(%q) = %d, want %d", key, got, want)
		}
	}
}

func TestBrokerConfigErrorsNameFileAndLine(t *testing.T) {
	path := writeFile(t, "sngate.yaml", `broker:
  listeners:
    - address: 127.0.0.1:1883
    - type: udp
      address: 127.0.0.1:1884
  max_inflight: -1
  acl:
    - user: alice
      topic: "a/#/b"
`)
	_, err := loadConfig(path)
	if err == nil {
		t.Fatal("bad broker section accepted")
	}
	for _, want := range []string{
		path + `:4: broker.listeners.1.type: "udp" is not one of tcp, tls, websocket`,
		path + `:6: broker.max_inflight: -1 must not be negative`,
		path + `:9: broker.acl.0.topic:`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestBridgeConfigErrorsNameFileAndLine(t *testing.T) {
	path := writeFile(t, "sngate.yaml", `bridge:
  connections:
    - name: cloud
      url: mqtts://iot.example.com:8883
      protocol: mqtt4
      tls:
        ca_file: /nonexistent/ca.pem
      queue:
        policy: drop-newest
      rules:
        - direction: out
          topic: sensors/#
          qos: 3
`)
	_, err := loadConfig(path)
	if err == nil {
		t.Fatal("bad bridge section accepted")
	}
	for _, want := range []string{
		path + `:5: bridge.connections.0.protocol: "mqtt4" is not one of mqtt5, mqtt311`,
		path + `:7: bridge.connections.0.tls.ca_file: stat /nonexistent/ca.pem: no such file or directory`,
		path + `:9: bridge.connections.0.queue.policy: "drop-newest" is not one of drop-oldest, refuse-new`,
		path + `:13: bridge.connections.0.rules.0.qos: 3 is not 0, 1 or 2`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestSerialConfigErrorsNameFileAndLine(t *testing.T) {
	path := writeFile(t, "sngate.yaml", `serial:
  - name: uart0
    path: /dev/ttyAMA0
    parity: sometimes
    framing: cobs
  - name: zb
    usb: {vid: "04x3", pid: "6015"}
    framing: xbee
    xbee:
      api_mode: 3
`)
	_, err := loadConfig(path)
	if err == nil {
		t.Fatal("bad serial section accepted")
	}
	for _, want := range []string{
		path + `:4: serial.0.parity: "sometimes" is not none, even, odd, mark or space`,
		path + `:5: serial.0.framing: "cobs" is not one of raw, slip, xbee`,
		path + `:7: serial.1.usb.vid:`,
		path + `:10: serial.1.xbee.api_mode: 3 is not 1 or 2`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// TestCheckReportsEveryProblemInFileOrder: wrong types and unknown keys do
// not hide the settings that decode but do not validate.
func TestCheckReportsEveryProblemInFileOrder(t *testing.T) {
	path := writeFile(t, "sngate.yaml", `gateway:
  listen: "nowhere"
  retry_interval: 10 parsecs
broker:
  bogus: 1
  max_inflight: -3
`)
	_, err := loadConfig(path)
	if err == nil {
		t.Fatal("accepted")
	}
	lines := strings.Split(err.Error(), "\n")
	want := []string{
		path + `:2: gateway.listen: "nowhere" is not host:port`,
		path + ":3: gateway.retry_interval: must be a duration",
		path + ":5: field bogus not found",
		path + ":6: broker.max_inflight: -3 must not be negative",
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%s", len(lines), len(want), err)
	}
	for i := range want {
		if !strings.HasPrefix(lines[i], want[i]) {
			t.Errorf("line %d = %q, want prefix %q", i, lines[i], want[i])
		}
	}
}
