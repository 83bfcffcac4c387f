//go:build race

package model

// raceEnabled is true when the tests run with -race.
const raceEnabled = true
