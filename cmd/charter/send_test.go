package main

import "testing"

func TestParseEther(t *testing.T) {
	for _, c := range []struct {
		in, want string
		ok       bool
	}{
		{"1", "1000000000000000000", true},
		{"0.25", "250000000000000000", true},
		{"21000wei", "21000", true},
		{"0", "0", true},
		{"-1", "", false},
		{"1e-19", "", false},
		{"abc", "", false},
		{"1.5wei", "", false},
	} {
		got, err := parseEther(c.in)
		if (err == nil) != c.ok || (c.ok && got.String() != c.want) {
			t.Errorf("parseEther(%q) = %v, %v; want %s ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
}
