package configerr

import (
	"errors"
	"testing"
)

func TestUnder(t *testing.T) {
	err := errors.Join(
		&FieldError{Key: "baud", Msg: "must be positive"},
		errors.Join(&FieldError{Key: "gpio.reset_pin", Msg: "no such pin"}, errors.New("no port given")),
	)
	got := Under("serial.0", err)
	want := []string{
		"serial.0.baud: must be positive",
		"serial.0.gpio.reset_pin: no such pin",
		"serial.0: no port given",
	}
	if len(got) != len(want) {
		t.Fatalf("got %d errors %v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i].Error() != want[i] {
			t.Errorf("error %d: %q, want %q", i, got[i], want[i])
		}
	}
	if got := Under("x", nil); got != nil {
		t.Errorf("Under(nil) = %v", got)
	}
}
