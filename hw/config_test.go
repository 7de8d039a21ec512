package hw

import (
	"errors"
	"slices"
	"testing"

	"github.com/sngate/sngate/hw/gpio"
	"github.com/sngate/sngate/hw/serial"
	"github.com/sngate/sngate/internal/configerr"
)

// TestValidatePortsKeys: every problem is keyed from the list, the serial
// settings' and the reset line's below the port's index.
func TestValidatePortsKeys(t *testing.T) {
	err := ValidatePorts([]PortConfig{
		{Name: "ok", Config: serial.Config{Path: "/dev/ttyUSB0"}, Framing: FramingRaw},
		{Name: "ok", Config: serial.Config{Baud: -1, DataBits: 9}, Framing: "ppp",
			XBee: XBeeConfig{APIMode: 3, APIOptions: 2}, GPIO: gpio.Config{ResetPin: "GPIO17", ResetPulse: -1}},
	})
	var keys []string
	for _, e := range configerr.Flatten(err) {
		var fe *FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("%v (%T) is not a *FieldError", e, e)
		}
		keys = append(keys, fe.Field())
		if fe.Msg == "" || fe.Msg == e.Error() {
			t.Errorf("%s: message %q still carries its key", fe.Key, fe.Msg)
		}
	}
	want := []string{"1.name", "1.framing", "1.xbee.api_mode", "1.xbee.api_options", "1.gpio.reset_pin",
		"1.gpio.reset_pulse", "1.path", "1.baud", "1.data_bits"}
	if !slices.Equal(keys, want) {
		t.Fatalf("keys %q, want %q", keys, want)
	}
}
