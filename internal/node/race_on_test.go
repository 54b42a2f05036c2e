//go:build race

package node

// raceEnabled: the race detector slows everything several times; the
// heaviest network tests run a smaller variant.
const raceEnabled = true
