//go:build race

package poa

// Under the race detector the simulation runs fewer seeds: the detector
// checks the seed runner's goroutines, which every seed exercises alike,
// and slows each seed about tenfold.
const simSeeds = 100
