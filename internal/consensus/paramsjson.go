package consensus

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// DurationParam describes one duration among an engine's genesis
// parameters (consensus.params): in the genesis a Go duration string
// ("500ms", "2s", "1m"); in governance (SetParameter GovName) a number of
// milliseconds. ZeroOK admits 0 besides [Min, Max].
type DurationParam struct {
	Name    string
	GovName string
	Min     time.Duration
	Max     time.Duration
	ZeroOK  bool
	Default time.Duration
	Doc     string
}

// Check reports a value outside the parameter's range, naming the field.
func (p DurationParam) Check(d time.Duration) error {
	if (d == 0 && p.ZeroOK) || (d >= p.Min && d <= p.Max) {
		return nil
	}
	zero := ""
	if p.ZeroOK {
		zero = "0 or "
	}
	return BadParams("consensus.params.%s: must be %sbetween %v and %v, got %v", p.Name, zero, p.Min, p.Max, d)
}

// ErrBadParams is matched (errors.Is) by every error about
// consensus.params; their text starts with the field's name.
var ErrBadParams = errors.New("invalid consensus.params")

type paramsError struct{ msg string }

func (e paramsError) Error() string        { return e.msg }
func (e paramsError) Is(target error) bool { return target == ErrBadParams }

// BadParams is an error about consensus.params that matches ErrBadParams.
func BadParams(format string, args ...any) error {
	return paramsError{msg: fmt.Sprintf(format, args...)}
}

// DecodeParamObject splits an engine's consensus.params into its fields.
// Empty input or null is no field. A field not in known is refused by
// name, with the list of those the engine takes.
func DecodeParamObject(engine string, raw json.RawMessage, known []string) (map[string]json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return map[string]json.RawMessage{}, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, BadParams("consensus.params: want a JSON object of the %s engine's parameters: %v", engine, err)
	}
	var unknown []string
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		if !slices.Contains(known, name) {
			unknown = append(unknown, fmt.Sprintf("%q", name))
		}
	}
	if len(unknown) > 0 {
		return nil, BadParams("consensus.params: unknown field %s: the %s engine takes %s",
			strings.Join(unknown, ", "), engine, strings.Join(known, ", "))
	}
	return fields, nil
}

// DecodeDuration decodes and checks the duration field p of fields; ok is
// false when the field is absent.
func DecodeDuration(fields map[string]json.RawMessage, p DurationParam) (d time.Duration, ok bool, err error) {
	raw, ok := fields[p.Name]
	if !ok {
		return 0, false, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, true, BadParams("consensus.params.%s: want a duration string such as \"500ms\" or \"2s\", got %s", p.Name, raw)
	}
	if d, err = time.ParseDuration(s); err != nil {
		return 0, true, BadParams("consensus.params.%s: want a duration such as \"500ms\" or \"2s\", got %q", p.Name, s)
	}
	if err := p.Check(d); err != nil {
		return 0, true, err
	}
	return d, true, nil
}

// DecodeUint decodes the non-negative integer field name of fields, at
// most maxV; ok is false when the field is absent.
func DecodeUint(fields map[string]json.RawMessage, name string, maxV uint64) (v uint64, ok bool, err error) {
	raw, ok := fields[name]
	if !ok {
		return 0, false, nil
	}
	if err := json.Unmarshal(raw, &v); err != nil || v > maxV {
		return 0, true, BadParams("consensus.params.%s: must be an integer between 0 and %d, got %s", name, maxV, raw)
	}
	return v, true, nil
}

// GovDuration is the duration governance set for p in values (in
// milliseconds), and whether it set one. A value outside the range (which
// governance refuses) is clamped into it.
func GovDuration(values map[string]uint64, p DurationParam) (time.Duration, bool) {
	ms, ok := values[p.GovName]
	if !ok {
		return 0, false
	}
	d := time.Duration(min(ms, uint64(24*time.Hour/time.Millisecond))) * time.Millisecond
	if d == 0 && p.ZeroOK {
		return 0, true
	}
	return min(max(d, p.Min), p.Max), true
}
