package consensus

import (
	"fmt"
	"maps"
)

// ParamChange is a set of engine parameters governance decided: Values,
// by name (durations in milliseconds), in force from height From on, in
// place of the genesis values of the same names. Values holds every
// parameter governance set up to that change, not only the one it
// changed, so the change in force at a height says all there is.
type ParamChange struct {
	From   uint64
	Values map[string]uint64
}

// Tunable is an Engine whose parameters governance may change. The node
// calls SetParams, like SetValidators, from inside the commit of the block
// that decided the change; every node makes the same calls at the same
// heights, so every engine switches at From.
type Tunable interface {
	SetParams(from uint64, values map[string]uint64) error
}

// TunableCore is a Core that takes governance's parameter changes.
type TunableCore interface {
	SetParams(from uint64, values map[string]uint64) error
}

// ParamChangeAt is the change in force at height h among changes
// (ascending From), and whether there is one.
func ParamChangeAt(changes []ParamChange, h uint64) (ParamChange, bool) {
	var out ParamChange
	ok := false
	for _, c := range changes {
		if c.From <= h {
			out, ok = c, true
		}
	}
	return ParamChange{From: out.From, Values: maps.Clone(out.Values)}, ok
}

// SetParams implements Tunable: a core that is a TunableCore takes the
// change; any other ignores it (the parameters are another engine's).
func (d *Driver) SetParams(from uint64, values map[string]uint64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.mu.core == nil {
		return fmt.Errorf("%s engine: SetParams before Start or after Stop (give the changes decided before the start to the engine's constructor)", d.cfg.Name)
	}
	if tc, ok := d.mu.core.(TunableCore); ok {
		return tc.SetParams(from, maps.Clone(values))
	}
	return nil
}
