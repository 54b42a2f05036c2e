//go:build race

package bft

// raceEnabled scales simulation seed counts down under the race detector,
// which slows the single-threaded simulations about tenfold.
const raceEnabled = true
