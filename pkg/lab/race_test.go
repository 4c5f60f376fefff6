//go:build race

package lab

// raceEnabled skips the labs under -race: they drive separate processes (not
// built with -race) and already run in the plain test run.
const raceEnabled = true
