package gateway

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/sngate/sngate/internal/topic"
)

// Config configures the gateway; cmd/sngate decodes it from the "gateway"
// section of the YAML file.
type Config struct {
	Listen            string        `yaml:"listen"`             // UDP address; default ":1884" (IPv4 and IPv6)
	Broadcast         string        `yaml:"broadcast"`          // where ADVERTISE goes; "" = nowhere
	GatewayID         uint8         `yaml:"gateway_id"`         // in ADVERTISE and GWINFO
	AdvertiseInterval time.Duration `yaml:"advertise_interval"` // 0 = no ADVERTISE (the default on UDP)
	ClientIDPrefix    string        `yaml:"client_id_prefix"`   // put before MQTT-SN client ids on the broker

	MaxClients         int           `yaml:"max_clients"`
	MaxTopicsPerClient int           `yaml:"max_topics_per_client"`
	MaxSleepBuffer     int           `yaml:"max_sleep_buffer"` // QoS 0 messages kept for a sleeping client
	RetryInterval      time.Duration `yaml:"retry_interval"`   // Tretry
	MaxRetries         int           `yaml:"max_retries"`      // Nretry

	// PacketsPerSecond limits the datagrams taken from each source address
	// (a forwarder counts as one), in bursts of twice as many; the excess
	// is dropped before it is decoded. nil: DefaultPacketsPerSecond; 0: no
	// limit.
	PacketsPerSecond *int `yaml:"packets_per_second"`

	PredefinedTopics []PredefinedTopic `yaml:"predefined_topics"`
}

// PredefinedTopic is a topic id both the gateway and its clients know in
// advance, for every client or for one client id.
type PredefinedTopic struct {
	ClientID string `yaml:"client_id"` // "" = every client
	ID       uint16 `yaml:"id"`
	Topic    string `yaml:"topic"`
}

// Defaults for fields left zero.
const (
	DefaultListen             = ":1884"
	DefaultGatewayID          = 1
	DefaultMaxClients         = 10000
	DefaultMaxTopicsPerClient = 256
	DefaultMaxSleepBuffer     = 100
	DefaultRetryInterval      = 10 * time.Second
	DefaultMaxRetries         = 3
	DefaultPacketsPerSecond   = 100
)

func (c Config) withDefaults() Config {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.GatewayID == 0 {
		c.GatewayID = DefaultGatewayID
	}
	if c.MaxClients == 0 {
		c.MaxClients = DefaultMaxClients
	}
	if c.MaxTopicsPerClient == 0 {
		c.MaxTopicsPerClient = DefaultMaxTopicsPerClient
	}
	if c.MaxSleepBuffer == 0 {
		c.MaxSleepBuffer = DefaultMaxSleepBuffer
	}
	if c.RetryInterval == 0 {
		c.RetryInterval = DefaultRetryInterval
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = DefaultMaxRetries
	}
	if c.PacketsPerSecond == nil {
		c.PacketsPerSecond = new(DefaultPacketsPerSecond)
	}
	return c
}

// packetsPerSecond is the per-address limit; 0: none.
func (c *Config) packetsPerSecond() int {
	if c.PacketsPerSecond == nil {
		return DefaultPacketsPerSecond
	}
	return *c.PacketsPerSecond
}

// FieldError is a configuration error about one key below the gateway
// section, so that the loader can point at its line.
type FieldError struct {
	Key string
	Msg string
}

func (e *FieldError) Error() string { return e.Key + ": " + e.Msg }

// Field returns the dotted key path.
func (e *FieldError) Field() string { return e.Key }

// Validate reports every setting that cannot work.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &FieldError{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			bad("listen", "%q is not host:port", c.Listen)
		}
	}
	if c.Broadcast != "" {
		if _, _, err := net.SplitHostPort(c.Broadcast); err != nil {
			bad("broadcast", "%q is not host:port", c.Broadcast)
		}
	}
	if c.AdvertiseInterval < 0 || (c.AdvertiseInterval > 0 && c.AdvertiseInterval < time.Second) || c.AdvertiseInterval > 65535*time.Second {
		bad("advertise_interval", "%v is not 0 (off) or between 1s and 18h12m15s", c.AdvertiseInterval)
	}
	if c.AdvertiseInterval > 0 && c.Broadcast == "" {
		bad("broadcast", "advertise_interval needs a broadcast address")
	}
	for _, f := range []struct {
		key string
		v   int
	}{{"max_clients", c.MaxClients}, {"max_topics_per_client", c.MaxTopicsPerClient},
		{"max_sleep_buffer", c.MaxSleepBuffer}, {"max_retries", c.MaxRetries}} {
		if f.v < 0 {
			bad(f.key, "%d must not be negative", f.v)
		}
	}
	if c.MaxTopicsPerClient > 0xFFFE {
		bad("max_topics_per_client", "%d is more than there are topic ids (65534)", c.MaxTopicsPerClient)
	}
	if c.PacketsPerSecond != nil && *c.PacketsPerSecond < 0 {
		bad("packets_per_second", "%d must not be negative (0 = no limit)", *c.PacketsPerSecond)
	}
	if c.RetryInterval < 0 {
		bad("retry_interval", "%v must not be negative", c.RetryInterval)
	}
	errs = append(errs, validatePredefined(c.PredefinedTopics)...)
	return errors.Join(errs...)
}

// validatePredefined checks a predefined topic table, keys relative to the
// gateway section; SetPredefinedTopics checks a reloaded table with it.
func validatePredefined(ts []PredefinedTopic) []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &FieldError{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	type clientID struct {
		client string
		id     uint16
	}
	seen := map[clientID]bool{}
	for i, p := range ts {
		key := fmt.Sprintf("predefined_topics.%d", i)
		if p.ID == 0 || p.ID == 0xFFFF {
			bad(key+".id", "%d is reserved; use 1..65534", p.ID)
		}
		if err := topic.ValidateName(p.Topic); err != nil {
			bad(key+".topic", "%q: %v", p.Topic, err)
		}
		k := clientID{p.ClientID, p.ID}
		if seen[k] {
			bad(key+".id", "id %d is defined twice for client %q", p.ID, p.ClientID)
		}
		seen[k] = true
	}
	return errs
}

// predefined looks topic ids up for one client: its own first, then those
// for every client.
type predefined struct {
	byID   map[uint16]string
	byName map[string]uint16
}

func newPredefined(all []PredefinedTopic, clientID string) predefined {
	p := predefined{byID: map[uint16]string{}, byName: map[string]uint16{}}
	for _, pass := range []string{"", clientID} { // the client's own override the common ones
		for _, t := range all {
			if t.ClientID == pass {
				p.byID[t.ID] = t.Topic
				p.byName[t.Topic] = t.ID
			}
		}
	}
	return p
}
