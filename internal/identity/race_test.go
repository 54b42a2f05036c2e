//go:build race

package identity

// raceEnabled: the race detector slows pure-Go scrypt about threefold.
const raceEnabled = true
