package main

import (
	"bytes"
	"cmp"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/sngate/sngate/bridge"
	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/gateway"
	"github.com/sngate/sngate/hw"
	"github.com/sngate/sngate/hw/gpio"
	"github.com/sngate/sngate/internal/configerr"
	"github.com/sngate/sngate/internal/observe"
)

// defaultYAML is the built-in configuration. It is the single source of the
// default values: Defaults decodes it, and a user file is decoded over it.
//
//go:embed default.yaml
var defaultYAML []byte

// defaultName names the embedded file in error messages.
const defaultName = "default.yaml (built in)"

// envConfig names the environment variable that may name the config file when
// no -c/--config flag is given.
const envConfig = "SNGATE_CONFIG"

// Config is the whole sngate configuration: one section per subsystem. Each
// section is the Config type of its own package as packages come in (for
// example Gateway gateway.Config `yaml:"gateway"`), with yaml tags in
// snake_case and a Validate method; see Config.Validate for the contract.
type Config struct {
	Log LogConfig `yaml:"log"`
	// Broker is the local MQTT broker core.
	Broker broker.Config `yaml:"broker"`
	// Gateway is the MQTT-SN gateway in front of it.
	Gateway gateway.Config `yaml:"gateway"`
	// Bridge relays topics to and from upstream (cloud) brokers.
	Bridge bridge.Config `yaml:"bridge"`
	// Serial lists the serial ports (UARTs, USB adapters, XBee radios)
	// that are MQTT-SN transports of the gateway, next to UDP.
	Serial []hw.PortConfig `yaml:"serial"`
	// GPIO drives the uplink and activity LEDs (a radio's reset line is
	// set on its serial port).
	GPIO gpio.Config `yaml:"gpio"`
	// Metrics serves /metrics (Prometheus) and /healthz; off by default.
	Metrics observe.Config `yaml:"metrics"`
	// DataDir is where state is kept. Relative paths are relative to the
	// working directory.
	DataDir string `yaml:"data_dir"`
}

// LogConfig is the "log" section.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug | info | warn | error
	Format string `yaml:"format"` // auto (text on a terminal, else json) | text | json
}

var (
	logLevels  = []string{"debug", "info", "warn", "error"}
	logFormats = []string{"auto", "text", "json"}
)

// Defaults returns the built-in configuration (default.yaml).
func Defaults() Config {
	var c Config
	if _, err := decodeYAML(defaultName, defaultYAML, &c); err != nil {
		// default.yaml is compiled in and covered by tests.
		panic("sngate: bad built-in config: " + err.Error())
	}
	return c
}

// FieldError is a validation error about one configuration key. Key is the
// dotted path of the key relative to whatever validated it ("level" inside
// the log section, "log.level" once Config.Validate has prefixed it).
//
// Sections in other packages need not use this type: any error with a
// Field() string method is treated the same way, so the loader can point at
// the key's line in the user's file.
type FieldError = configerr.FieldError

// fielder is what the loader looks for in validation errors.
type fielder interface {
	error
	Field() string
}

// Validate checks the log section.
func (l LogConfig) Validate() error {
	var errs []error
	if err := oneOf("level", l.Level, logLevels); err != nil {
		errs = append(errs, err)
	}
	if err := oneOf("format", l.Format, logFormats); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Validate checks the whole configuration. The contract for sections: each
// has a Validate() error method whose errors name the offending key relative
// to the section via a Field() method (see FieldError); Validate prefixes
// the section's key. Errors without a Field method are reported against the
// section itself.
func (c *Config) Validate() error {
	var errs []error
	errs = append(errs, configerr.Under("log", c.Log.Validate())...)
	errs = append(errs, configerr.Under("broker", c.Broker.Validate())...)
	errs = append(errs, configerr.Under("gateway", c.Gateway.Validate())...)
	errs = append(errs, configerr.Under("bridge", c.Bridge.Validate())...)
	errs = append(errs, configerr.Under("serial", hw.ValidatePorts(c.Serial))...)
	errs = append(errs, configerr.Under("gpio", c.GPIO.Validate())...)
	errs = append(errs, configerr.Under("metrics", c.Metrics.Validate())...)
	if c.GPIO.ResetPin != "" {
		errs = append(errs, &FieldError{Key: "gpio.reset_pin", Msg: "a reset line belongs to a radio: set it under its serial port's gpio"})
	}
	if strings.TrimSpace(c.DataDir) == "" {
		errs = append(errs, &FieldError{Key: "data_dir", Msg: "must not be empty"})
	}
	return errors.Join(errs...)
}

func oneOf(key, value string, allowed []string) error {
	for _, a := range allowed {
		if value == a {
			return nil
		}
	}
	return &FieldError{Key: key, Msg: fmt.Sprintf("%q is not one of %s", value, strings.Join(allowed, ", "))}
}

// ConfigError is a configuration error located in a file: File:Line: Msg.
// Line is 0 when unknown.
type ConfigError struct {
	File string
	Line int
	Msg  string
}

func (e *ConfigError) Error() string {
	switch {
	case e.File == "":
		return "config: " + e.Msg
	case e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	default:
		return e.File + ": " + e.Msg
	}
}

// override is a command-line flag that replaces a config value after the
// file is read. Validation errors about its key are blamed on the flag.
type override struct {
	flag string // as the user types it, e.g. "--data-dir"
	key  string // dotted config key, e.g. "data_dir"
	set  func(*Config)
}

// configPath decides which config file to read: the flag value, else
// $SNGATE_CONFIG, else none (built-in defaults only). source describes the
// choice for the log.
func configPath(flagValue string) (path, source string) {
	if flagValue != "" {
		return flagValue, flagValue
	}
	if env := getenv(envConfig); env != "" {
		return env, env + " (from $" + envConfig + ")"
	}
	return "", "built-in defaults"
}

// getenv is os.Getenv; a variable so that nothing else reads the environment.
var getenv = os.Getenv

// loadConfig returns the defaults with the file at path (if any) decoded over
// them and the overrides applied, validated. Every error is a *ConfigError
// or several joined, one per line, each naming file, line and reason.
func loadConfig(path string, overrides ...override) (Config, error) {
	cfg := Defaults()
	var doc *yaml.Node
	var errs []error
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return cfg, &ConfigError{Msg: err.Error()}
		}
		var decodeErr error
		doc, decodeErr = decodeYAML(path, data, &cfg)
		if decodeErr != nil && doc == nil {
			return cfg, decodeErr
		}
		errs = append(errs, configerr.Flatten(decodeErr)...)
	}
	for _, o := range overrides {
		o.set(&cfg)
	}
	for _, e := range configerr.Flatten(cfg.Validate()) {
		errs = append(errs, locate(e, path, doc, overrides))
	}
	// One problem a line, in the order of the file.
	slices.SortStableFunc(errs, func(a, b error) int { return cmp.Compare(errLine(a), errLine(b)) })
	return cfg, errors.Join(errs...)
}

func errLine(err error) int {
	var ce *ConfigError
	if errors.As(err, &ce) {
		return ce.Line
	}
	return 0
}

// locate turns a validation error into a *ConfigError pointing at the key's
// line in the user's file, or at the flag that set it.
func locate(err error, file string, doc *yaml.Node, overrides []override) error {
	f, ok := err.(fielder)
	if !ok {
		return &ConfigError{File: file, Msg: err.Error()}
	}
	for _, o := range overrides {
		if o.key == f.Field() {
			return &ConfigError{File: o.flag, Msg: err.Error()}
		}
	}
	if doc == nil {
		// Not from a user file: the built-in defaults are at fault.
		return &ConfigError{File: defaultName, Msg: err.Error()}
	}
	return &ConfigError{File: file, Line: keyLine(doc, f.Field()), Msg: err.Error()}
}

// decodeYAML strictly decodes data into out, on top of what out holds, and
// returns the document's node tree (nil for an empty document) for locating
// keys later. name is used in errors.
//
// The bytes are decoded twice: once into a yaml.Node (for lines), once with a
// strict yaml.Decoder, because yaml.Node.Decode cannot refuse unknown keys.
func decodeYAML(name string, data []byte, out *Config) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlError(name, data, err, nil)
	}
	if doc.Kind == 0 {
		return nil, nil // empty, or only comments
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(out); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			// Unknown keys and wrong types: yaml decoded everything else,
			// so the caller can validate the rest and report it all.
			return &doc, yamlError(name, data, err, &doc)
		}
		return nil, yamlError(name, data, err, &doc)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == io.EOF:
	case err != nil:
		return nil, yamlError(name, data, err, &doc)
	default:
		return nil, &ConfigError{File: name, Line: extra.Line, Msg: "only one YAML document is allowed"}
	}
	return &doc, nil
}

var (
	syntaxErrRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	typeErrRE   = regexp.MustCompile(`^line (\d+): (.*)$`)
	unmarshalRE = regexp.MustCompile("^cannot unmarshal (!!\\w+)(?: `(.*)`)? into (.+)$")
)

// parserProblems are the messages of the YAML parser (as opposed to its
// scanner). yaml.v3 reports their line zero-based, so one is added.
var parserProblems = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"did not find expected <stream-start>":   true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found duplicate %TAG directive":         true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}

// yamlError rewrites a yaml error into file:line: reason form, one
// *ConfigError per problem.
func yamlError(name string, data []byte, err error, doc *yaml.Node) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		var errs []error
		for _, s := range te.Errors {
			ce := &ConfigError{File: name, Msg: s}
			if m := typeErrRE.FindStringSubmatch(s); m != nil {
				ce.Line, _ = strconv.Atoi(m[1])
				ce.Msg = m[2]
				if u := unmarshalRE.FindStringSubmatch(ce.Msg); u != nil {
					ce.Msg = wrongType(keyAtLine(doc, ce.Line, u[1]), u[1], u[2], u[3])
				}
			}
			errs = append(errs, ce)
		}
		return errors.Join(errs...)
	}
	if m := syntaxErrRE.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		if parserProblems[m[2]] {
			lines := bytes.Count(data, []byte("\n"))
			if len(data) > 0 && data[len(data)-1] != '\n' {
				lines++
			}
			line = min(line+1, max(lines, 1))
		}
		return &ConfigError{File: name, Line: line, Msg: m[2]}
	}
	return &ConfigError{File: name, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
}

// wrongType words a yaml "cannot unmarshal" error for a person.
func wrongType(key, tag, value, goType string) string {
	got := tag
	switch tag {
	case "!!map":
		got = "a mapping"
	case "!!seq":
		got = "a list"
	default:
		if value != "" {
			got = fmt.Sprintf("%s `%s`", tag, value)
		}
	}
	msg := fmt.Sprintf("must be %s, got %s", describeType(goType), got)
	if key != "" {
		msg = key + ": " + msg
	}
	return msg
}

// configTypes maps the Go type names that appear in yaml errors to the types
// reachable from Config.
var configTypes = func() map[string]reflect.Type {
	m := map[string]reflect.Type{}
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		if _, seen := m[t.String()]; seen {
			return
		}
		m[t.String()] = t
		switch t.Kind() {
		case reflect.Struct:
			for i := range t.NumField() {
				walk(t.Field(i).Type)
			}
		case reflect.Pointer, reflect.Slice, reflect.Array:
			walk(t.Elem())
		case reflect.Map:
			walk(t.Key())
			walk(t.Elem())
		}
	}
	walk(reflect.TypeFor[Config]())
	return m
}()

func describeType(name string) string {
	if name == "time.Duration" {
		return "a duration such as 30s"
	}
	t, ok := configTypes[name]
	if !ok {
		return name
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "a mapping"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return name
}

// keyLine returns the line of the deepest key of the dotted path key that
// the document has, or 0.
func keyLine(doc *yaml.Node, key string) int {
	n := root(doc)
	line := 0
	for _, part := range strings.Split(key, ".") {
		if n != nil && n.Kind == yaml.SequenceNode { // "listeners.0.address"
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(n.Content) {
				break
			}
			n = deref(n.Content[i])
			line = n.Line
			continue
		}
		if n == nil || n.Kind != yaml.MappingNode {
			break
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == part {
				line = n.Content[i].Line
				next = deref(n.Content[i+1])
			}
		}
		if next == nil {
			break
		}
		n = next
	}
	return line
}

// keyAtLine returns the dotted path of the key whose value starts on line
// and has the given tag (as in yaml's "line 3: cannot unmarshal !!seq"
// errors), falling back to the first key written on that line; "" if none.
func keyAtLine(doc *yaml.Node, line int, tag string) string {
	type cand struct {
		path string
		n    *yaml.Node
	}
	var byValue, byKey []cand
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], deref(n.Content[i+1])
				path := k.Value
				if prefix != "" {
					path = prefix + "." + k.Value
				}
				if k.Line == line {
					byKey = append(byKey, cand{path, v})
				}
				if v.Line == line {
					byValue = append(byValue, cand{path, v})
				}
				walk(v, path)
			}
		case yaml.SequenceNode:
			for i, item := range n.Content {
				path := fmt.Sprintf("%s[%d]", prefix, i)
				item = deref(item)
				if item.Line == line {
					byValue = append(byValue, cand{path, item})
				}
				walk(item, path)
			}
		}
	}
	n := root(doc)
	if n == nil {
		return ""
	}
	walk(n, "")
	for _, c := range byValue {
		if c.n.ShortTag() == tag {
			return c.path
		}
	}
	if len(byKey) > 0 {
		return byKey[0].path
	}
	return ""
}

func root(doc *yaml.Node) *yaml.Node {
	if doc == nil {
		return nil
	}
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil
		}
		return deref(doc.Content[0])
	}
	return doc
}

func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}
