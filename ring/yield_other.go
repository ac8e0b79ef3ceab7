//go:build !linux

package ring

import "runtime"

// osYield gives the processor to other goroutines; elsewhere than Linux
// the ring does not ask the kernel.
func osYield() { runtime.Gosched() }
