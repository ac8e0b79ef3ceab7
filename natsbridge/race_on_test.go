//go:build race

package natsbridge

const raceOn = true
