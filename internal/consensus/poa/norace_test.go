//go:build !race

package poa

// simSeeds is the number of simulation seeds of a normal test run.
const simSeeds = 1000
