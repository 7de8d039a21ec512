package bridge

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/sngate/sngate/bridge/queue"
	"github.com/sngate/sngate/bridge/upstream"
	"github.com/sngate/sngate/internal/topic"
)

// Config is the "bridge" section: any number of connections, each to one
// upstream broker.
type Config struct {
	Connections []ConnectionConfig `yaml:"connections"`
}

// ConnectionConfig is one bridge connection: where it goes, how it logs
// in, what it relays, and how much it may keep while the upstream is away.
type ConnectionConfig struct {
	// Name names the queue file (DATA_DIR/bridge/NAME.db), the log lines
	// and the $SYS/bridge/NAME/... topics. Letters, digits, '-' and '_'.
	Name string `yaml:"name"`
	// URL of the upstream: mqtt://, mqtts://, ws:// or wss://, with port.
	URL string `yaml:"url"`
	// Protocol is mqtt5 (default) or mqtt311, for upstreams without MQTT 5
	// such as Azure IoT Hub.
	Protocol string `yaml:"protocol"`
	// ClientID at the upstream; default "sngate-HOSTNAME-NAME".
	ClientID string `yaml:"client_id"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// PasswordFile holds the password (a token, say) so that the config
	// file need not; its content is read at start, trailing newline cut.
	PasswordFile string        `yaml:"password_file"`
	KeepAlive    time.Duration `yaml:"keep_alive"`
	// CleanStart false keeps the upstream session, and with it what the
	// upstream queued for the "in" rules, across outages of the link.
	CleanStart bool `yaml:"clean_start"`
	// SessionExpiry is how long an MQTT 5 upstream keeps the session after
	// the link drops.
	SessionExpiry time.Duration `yaml:"session_expiry"`
	TLS           TLSConfig     `yaml:"tls"`
	// ReconnectMax caps the exponential backoff between attempts (which
	// starts at 1s, with jitter).
	ReconnectMax time.Duration `yaml:"reconnect_max"`
	// Inflight is how many messages may wait for the upstream's
	// acknowledgement at once; it is also the most a crash can duplicate.
	Inflight int         `yaml:"inflight"`
	Queue    QueueConfig `yaml:"queue"`
	Rules    []Rule      `yaml:"rules"`
}

// TLSConfig is the TLS of an mqtts:// or wss:// upstream.
type TLSConfig struct {
	// CAFile verifies the upstream; empty: the system's roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the client certificate for mutual TLS, as
	// AWS IoT requires.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName for SNI and verification; default: the URL's host.
	ServerName string `yaml:"server_name"`
	// ALPN protocols, e.g. [x-amzn-mqtt-ca] for AWS IoT on port 443.
	ALPN []string `yaml:"alpn"`
	// InsecureSkipVerify turns verification off: for tests only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// QueueConfig bounds the disk queue of an "out" direction.
type QueueConfig struct {
	MaxMessages int64 `yaml:"max_messages"` // 0: no limit
	MaxBytes    int64 `yaml:"max_bytes"`    // topic + payload bytes; 0: no limit
	// Policy when full (or the disk is): drop-oldest or refuse-new.
	Policy string `yaml:"policy"`
	// CommitWindow is how long queue writes gather per fsync.
	CommitWindow time.Duration `yaml:"commit_window"`
}

// Rule relays topics in one or both directions, like mosquitto's
// "topic PATTERN DIR QOS LOCAL-PREFIX REMOTE-PREFIX": the local topic is
// LocalPrefix+PATTERN-match and the remote one RemotePrefix+the same.
type Rule struct {
	// Direction: out (local → upstream), in (upstream → local) or both.
	Direction string `yaml:"direction"`
	// Topic is the filter below the prefixes, e.g. "sensors/#".
	Topic        string `yaml:"topic"`
	QoS          byte   `yaml:"qos"`
	LocalPrefix  string `yaml:"local_prefix"`
	RemotePrefix string `yaml:"remote_prefix"`
	// Retain passes the retain flag through; false clears it.
	Retain bool `yaml:"retain"`
	// QueueQoS0 puts QoS 0 messages in the disk queue too; otherwise they
	// are sent while connected and dropped (counted) while not.
	QueueQoS0 bool `yaml:"queue_qos0"`
}

// Defaults for fields left zero.
const (
	DefaultProtocol      = "mqtt5"
	DefaultKeepAlive     = 60 * time.Second
	DefaultSessionExpiry = time.Hour
	DefaultReconnectMax  = 2 * time.Minute
	DefaultInflight      = 100
	DefaultMaxMessages   = 1_000_000
	DefaultMaxBytes      = 128 << 20
	DefaultPolicy        = "drop-oldest"
	// MinReconnect is the first backoff step.
	MinReconnect = time.Second
)

// Rule directions.
const (
	DirOut  = "out"
	DirIn   = "in"
	DirBoth = "both"
)

func (c ConnectionConfig) withDefaults() ConnectionConfig {
	if c.Protocol == "" {
		c.Protocol = DefaultProtocol
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = DefaultKeepAlive
	}
	if c.SessionExpiry == 0 {
		c.SessionExpiry = DefaultSessionExpiry
	}
	if c.ReconnectMax == 0 {
		c.ReconnectMax = DefaultReconnectMax
	}
	if c.Inflight == 0 {
		c.Inflight = DefaultInflight
	}
	if c.Queue.Policy == "" {
		c.Queue.Policy = DefaultPolicy
	}
	if c.ClientID == "" {
		host, _ := os.Hostname()
		if host == "" {
			host = "gateway"
		}
		c.ClientID = "sngate-" + host + "-" + c.Name
	}
	return c
}

// FieldError is a configuration error about one key below the bridge
// section, so that the loader can point at its line.
type FieldError struct {
	Key string
	Msg string
}

func (e *FieldError) Error() string { return e.Key + ": " + e.Msg }

// Field returns the dotted key path.
func (e *FieldError) Field() string { return e.Key }

var validName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Validate reports every setting that cannot work.
func (c *Config) Validate() error {
	var errs []error
	names := map[string]bool{}
	for i, conn := range c.Connections {
		prefix := fmt.Sprintf("connections.%d", i)
		if conn.Name != "" && names[conn.Name] {
			errs = append(errs, &FieldError{Key: prefix + ".name", Msg: fmt.Sprintf("%q is used by another connection", conn.Name)})
		}
		names[conn.Name] = true
		for _, e := range conn.validate() {
			errs = append(errs, &FieldError{Key: prefix + "." + e.Key, Msg: e.Msg})
		}
	}
	return errors.Join(errs...)
}

func (c ConnectionConfig) validate() []*FieldError {
	var errs []*FieldError
	bad := func(key, format string, args ...any) {
		errs = append(errs, &FieldError{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	if !validName.MatchString(c.Name) {
		bad("name", "%q must be 1 to 64 letters, digits, '-' or '_'", c.Name)
	}
	useTLS := false
	if u, err := url.Parse(c.URL); err != nil || u.Host == "" {
		bad("url", "%q is not a URL such as mqtts://broker.example.com:8883", c.URL)
	} else if t, ok := upstream.SchemeTLS(u.Scheme); !ok {
		bad("url", "scheme %q is not one of mqtt, mqtts, ws, wss", u.Scheme)
	} else {
		useTLS = t
	}
	switch c.Protocol {
	case "", "mqtt5", "mqtt311":
	default:
		bad("protocol", "%q is not one of mqtt5, mqtt311", c.Protocol)
	}
	if len(c.ClientID) > 65535 {
		bad("client_id", "is %d bytes, at most 65535", len(c.ClientID))
	}
	if c.Password != "" && c.PasswordFile != "" {
		bad("password_file", "set either password or password_file")
	}
	if c.PasswordFile != "" {
		if _, err := os.Stat(c.PasswordFile); err != nil {
			bad("password_file", "%v", err)
		}
	}
	if c.KeepAlive < 0 || c.KeepAlive > 65535*time.Second || (c.KeepAlive > 0 && c.KeepAlive < time.Second) {
		bad("keep_alive", "%v is not between 1s and 18h12m15s", c.KeepAlive)
	}
	if c.SessionExpiry < 0 || c.SessionExpiry > (1<<32-1)*time.Second {
		bad("session_expiry", "%v is out of range", c.SessionExpiry)
	}
	if c.ReconnectMax < 0 || (c.ReconnectMax > 0 && c.ReconnectMax < MinReconnect) {
		bad("reconnect_max", "%v is less than %v", c.ReconnectMax, MinReconnect)
	}
	if c.Inflight < 0 || c.Inflight > 65535 {
		bad("inflight", "%d is not between 1 and 65535", c.Inflight)
	}
	errs = append(errs, c.TLS.validate(useTLS)...)
	if c.Queue.MaxMessages < 0 {
		bad("queue.max_messages", "must not be negative")
	}
	if c.Queue.MaxBytes < 0 {
		bad("queue.max_bytes", "must not be negative")
	}
	if c.Queue.Policy != "" {
		if _, err := queue.ParsePolicy(c.Queue.Policy); err != nil {
			bad("queue.policy", "%q is not one of drop-oldest, refuse-new", c.Queue.Policy)
		}
	}
	if c.Queue.CommitWindow < 0 || c.Queue.CommitWindow > time.Second {
		bad("queue.commit_window", "%v is not between 0 and 1s", c.Queue.CommitWindow)
	}
	if len(c.Rules) == 0 {
		bad("rules", "a connection needs at least one rule")
	}
	for i, r := range c.Rules {
		for _, e := range r.validate() {
			errs = append(errs, &FieldError{Key: fmt.Sprintf("rules.%d.%s", i, e.Key), Msg: e.Msg})
		}
	}
	return errs
}

func (t TLSConfig) validate(useTLS bool) []*FieldError {
	var errs []*FieldError
	set := t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != "" || len(t.ALPN) > 0 || t.InsecureSkipVerify
	if set && !useTLS {
		errs = append(errs, &FieldError{Key: "tls", Msg: "is set but the url is not mqtts:// or wss://"})
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		errs = append(errs, &FieldError{Key: "tls.cert_file", Msg: "cert_file and key_file go together"})
	}
	for key, path := range map[string]string{"tls.ca_file": t.CAFile, "tls.cert_file": t.CertFile, "tls.key_file": t.KeyFile} {
		if path == "" {
			continue
		}
		if _, err := os.Stat(path); err != nil {
			errs = append(errs, &FieldError{Key: key, Msg: err.Error()})
		}
	}
	return errs
}

func (r Rule) validate() []*FieldError {
	var errs []*FieldError
	bad := func(key, format string, args ...any) {
		errs = append(errs, &FieldError{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	switch r.Direction {
	case DirOut, DirIn, DirBoth:
	default:
		bad("direction", "%q is not one of out, in, both", r.Direction)
	}
	if r.QoS > 2 {
		bad("qos", "%d is not 0, 1 or 2", r.QoS)
	}
	for key, p := range map[string]string{"local_prefix": r.LocalPrefix, "remote_prefix": r.RemotePrefix} {
		if strings.ContainsAny(p, "+#") {
			bad(key, "%q must not hold wildcards", p)
		}
	}
	if r.Topic == "" {
		bad("topic", "must not be empty (use # for everything)")
		return errs
	}
	if err := topic.ValidateFilter(r.LocalPrefix + r.Topic); err != nil {
		bad("topic", "local filter %q: %v", r.LocalPrefix+r.Topic, err)
	}
	if err := topic.ValidateFilter(r.RemotePrefix + r.Topic); err != nil {
		bad("topic", "remote filter %q: %v", r.RemotePrefix+r.Topic, err)
	}
	return errs
}
