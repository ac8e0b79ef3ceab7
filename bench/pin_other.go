//go:build !linux

package bench

import (
	"errors"
	"os/exec"
)

func pinThread(int) (func(), error) {
	return nil, errors.New("-pin needs sched_setaffinity (Linux)")
}

// PinSupported reports whether -pin works on this system.
func PinSupported() bool { return false }

func peerAttr(*exec.Cmd) {}
