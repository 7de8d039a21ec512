package broker

import (
	"fmt"

	"github.com/sngate/sngate/internal/topic"
)

func validFilter(f string) error {
	if err := topic.ValidateFilter(f); err != nil {
		return fmt.Errorf("broker: topic filter %q: %w", f, err)
	}
	return nil
}

func validName(name string) error {
	if err := topic.ValidateName(name); err != nil {
		return fmt.Errorf("broker: topic %q: %w", name, err)
	}
	return nil
}
