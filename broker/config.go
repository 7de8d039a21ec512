package broker

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/sngate/sngate/broker/auth"
)

// Config configures a Server. Zero values take the defaults of Defaults;
// cmd/sngate decodes it from the "broker" section of the YAML file.
type Config struct {
	// Listeners are the network endpoints. With none configured the broker
	// listens on 127.0.0.1:1883 only, as mosquitto 2 does: serving other
	// interfaces is an explicit choice.
	Listeners []ListenerConfig `yaml:"listeners"`

	MaxClients        int   `yaml:"max_clients"`         // connected clients at once; more get CONNACK 0x03
	MaxPacketSize     int   `yaml:"max_packet_size"`     // bytes; a larger packet closes the connection
	MaxInflight       int   `yaml:"max_inflight"`        // unacknowledged QoS 1/2 messages per client
	MaxQueuedMessages int   `yaml:"max_queued_messages"` // per session, beyond the in-flight window
	MaxQueuedBytes    int64 `yaml:"max_queued_bytes"`    // per session, payload bytes; 0 = no limit
	QueueQoS0         bool  `yaml:"queue_qos0"`          // also keep QoS 0 messages for offline persistent sessions
	MaxRetained       int   `yaml:"max_retained"`        // retained topics; 0 = no limit

	// SysInterval is how often the $SYS/broker topics are published; 0 uses
	// the default, negative turns them off.
	SysInterval time.Duration `yaml:"sys_interval"`

	// CommitWindow is how long the store gathers writes into one
	// transaction (group commit). Larger windows mean fewer fsyncs and more
	// latency for acknowledgements that wait on durability.
	CommitWindow time.Duration `yaml:"commit_window"`

	Auth auth.Config `yaml:",inline"`
}

// ListenerConfig is one network listener.
type ListenerConfig struct {
	Type    string `yaml:"type"`    // tcp (default), tls, websocket
	Address string `yaml:"address"` // host:port
	Path    string `yaml:"path"`    // websocket only; default /mqtt

	// AllowAnonymous admits clients without a user name; nil means true
	// unless a password file is configured.
	AllowAnonymous *bool `yaml:"allow_anonymous"`

	CertFile          string `yaml:"cert_file"`           // tls, and websocket over TLS
	KeyFile           string `yaml:"key_file"`            //
	ClientCAFile      string `yaml:"client_ca_file"`      // verify client certificates against this CA
	RequireClientCert bool   `yaml:"require_client_cert"` // refuse clients without a valid certificate
}

// Defaults for Config fields left zero.
const (
	DefaultAddress           = "127.0.0.1:1883"
	DefaultMaxClients        = 10000
	DefaultMaxPacketSize     = 1 << 20
	DefaultMaxInflight       = 20
	DefaultMaxQueuedMessages = 1000
	DefaultSysInterval       = 10 * time.Second
	DefaultCommitWindow      = 2 * time.Millisecond
	DefaultWebSocketPath     = "/mqtt"
)

// withDefaults returns c with zero values replaced by the defaults.
func (c Config) withDefaults() Config {
	if len(c.Listeners) == 0 {
		c.Listeners = []ListenerConfig{{Type: "tcp", Address: DefaultAddress}}
	}
	ls := make([]ListenerConfig, len(c.Listeners))
	for i, l := range c.Listeners {
		if l.Type == "" {
			l.Type = "tcp"
		}
		if l.Type == "websocket" && l.Path == "" {
			l.Path = DefaultWebSocketPath
		}
		ls[i] = l
	}
	c.Listeners = ls
	if c.MaxClients == 0 {
		c.MaxClients = DefaultMaxClients
	}
	if c.MaxPacketSize == 0 {
		c.MaxPacketSize = DefaultMaxPacketSize
	}
	if c.MaxInflight == 0 {
		c.MaxInflight = DefaultMaxInflight
	}
	if c.MaxQueuedMessages == 0 {
		c.MaxQueuedMessages = DefaultMaxQueuedMessages
	}
	if c.SysInterval == 0 {
		c.SysInterval = DefaultSysInterval
	}
	if c.CommitWindow == 0 {
		c.CommitWindow = DefaultCommitWindow
	}
	return c
}

// FieldError is a configuration error about one key, named by its dotted
// path below the broker section, so the loader can point at its line.
type FieldError struct {
	Key string
	Msg string
}

func (e *FieldError) Error() string { return e.Key + ": " + e.Msg }

// Field returns the dotted key path.
func (e *FieldError) Field() string { return e.Key }

func fieldErr(key, format string, args ...any) error {
	return &FieldError{Key: key, Msg: fmt.Sprintf(format, args...)}
}

// Validate reports every setting that cannot work, each as a *FieldError
// (joined with errors.Join).
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) { errs = append(errs, fieldErr(key, format, args...)) }
	for i, l := range c.Listeners {
		key := fmt.Sprintf("listeners.%d", i)
		switch l.Type {
		case "", "tcp", "tls", "websocket":
		default:
			bad(key+".type", "%q is not one of tcp, tls, websocket", l.Type)
		}
		if _, _, err := net.SplitHostPort(l.Address); err != nil {
			bad(key+".address", "%q is not host:port", l.Address)
		}
		if l.Type == "tls" && (l.CertFile == "" || l.KeyFile == "") {
			bad(key+".cert_file", "a tls listener needs cert_file and key_file")
		} else if (l.CertFile == "") != (l.KeyFile == "") {
			bad(key+".key_file", "cert_file and key_file go together")
		}
		if l.RequireClientCert && l.ClientCAFile == "" {
			bad(key+".client_ca_file", "require_client_cert needs client_ca_file")
		}
		if l.Path != "" && l.Type != "websocket" {
			bad(key+".path", "path is for websocket listeners")
		}
	}
	for _, f := range []struct {
		key string
		v   int64
	}{
		{"max_clients", int64(c.MaxClients)}, {"max_packet_size", int64(c.MaxPacketSize)},
		{"max_inflight", int64(c.MaxInflight)}, {"max_queued_messages", int64(c.MaxQueuedMessages)},
		{"max_queued_bytes", c.MaxQueuedBytes}, {"max_retained", int64(c.MaxRetained)},
	} {
		if f.v < 0 {
			bad(f.key, "%d must not be negative", f.v)
		}
	}
	if c.MaxPacketSize > 268435460 {
		bad("max_packet_size", "%d is more than MQTT can carry (268435460)", c.MaxPacketSize)
	}
	if int64(c.MaxInflight)+int64(c.MaxQueuedMessages) > 65535 {
		bad("max_queued_messages", "max_inflight + max_queued_messages = %d, more than there are packet ids (65535)",
			int64(c.MaxInflight)+int64(c.MaxQueuedMessages))
	}
	if c.CommitWindow < 0 || c.CommitWindow > time.Second {
		bad("commit_window", "%v is not between 0 and 1s", c.CommitWindow)
	}
	errs = append(errs, c.Auth.Validate())
	return errors.Join(errs...)
}
