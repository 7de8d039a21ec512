package topic

import (
	"errors"
	"testing"
)

func TestValidateName(t *testing.T) {
	tests := []struct {
		name string
		want error
	}{
		{"a", nil},
		{"a/b/c", nil},
		{"/", nil},
		{"$SYS/x", nil},
		{"", ErrEmpty},
		{"a/+", ErrWildcard},
		{"a/#", ErrWildcard},
		{"a\x00b", ErrNUL},
		{"a\xffb", ErrBadUTF8},
		{"\xed\xa0\x80", ErrBadUTF8}, // encoded surrogate U+D800
		{"\ufeffbom", nil},
	}
	for _, tt := range tests {
		if got := ValidateName(tt.name); !errors.Is(got, tt.want) {
			t.Errorf("ValidateName(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestValidateFilter(t *testing.T) {
	tests := []struct {
		filter string
		want   error
	}{
		{"#", nil},
		{"+", nil},
		{"sport/#", nil},
		{"+/tennis/#", nil},
		{"/+", nil},
		{"+/+", nil},
		{"a//b", nil},
		{"sport/tennis#", ErrBadWildcard},
		{"#/x", ErrBadWildcard},
		{"sport+", ErrBadWildcard},
		{"a/++/b", ErrBadWildcard},
		{"", ErrEmpty},
		{"a\x00", ErrNUL},
	}
	for _, tt := range tests {
		if got := ValidateFilter(tt.filter); !errors.Is(got, tt.want) {
			t.Errorf("ValidateFilter(%q) = %v, want %v", tt.filter, got, tt.want)
		}
	}
}
