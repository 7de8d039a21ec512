package gpio

import (
	"errors"
	"slices"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestConfigYAML(t *testing.T) {
	var c Config
	err := yaml.Unmarshal([]byte("reset_pin: GPIO17\nreset_active_low: false\nreset_pulse: 250ms\nuplink_led: GPIO27\nactivity_led: GPIO22\n"), &c)
	if err != nil {
		t.Fatal(err)
	}
	if c.ResetPin != "GPIO17" || c.resetActiveLow() || c.ResetPulse != 250*time.Millisecond ||
		c.UplinkLED != "GPIO27" || c.ActivityLED != "GPIO22" || !c.Enabled() {
		t.Fatalf("%+v", c)
	}
	var d Config
	if err := yaml.Unmarshal([]byte("reset_pin: GPIO17\n"), &d); err != nil {
		t.Fatal(err)
	}
	if !d.resetActiveLow() || d.withDefaults().ResetPulse != DefaultResetPulse {
		t.Fatalf("defaults: %+v", d.withDefaults())
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		keys []string
	}{
		{"empty", Config{}, nil},
		{"all", allPins, nil},
		{"negative pulse", Config{ResetPin: "GPIO17", ResetPulse: -time.Millisecond}, []string{"reset_pulse"}},
		{"endless pulse", Config{ResetPin: "GPIO17", ResetPulse: time.Minute}, []string{"reset_pulse"}},
		{"pin twice", Config{ResetPin: "GPIO17", UplinkLED: "GPIO27", ActivityLED: "GPIO27"}, []string{"activity_led"}},
		{"spaces", Config{UplinkLED: " GPIO27"}, []string{"uplink_led"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			var keys []string
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				for _, e := range j.Unwrap() {
					var fe *FieldError
					if !errors.As(e, &fe) {
						t.Fatalf("%T is not a *FieldError", e)
					}
					keys = append(keys, fe.Field())
				}
			} else if err != nil {
				t.Fatalf("%v is not joined", err)
			}
			if !slices.Equal(keys, tc.keys) {
				t.Fatalf("fields %v, want %v (%v)", keys, tc.keys, err)
			}
		})
	}
}
