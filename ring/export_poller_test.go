package ring

import "testing"

// ForceNoWaitv makes Pollers use the fallback without futex_waitv until
// the test ends.
func ForceNoWaitv(t testing.TB) {
	old := waitvMissing.Load()
	waitvMissing.Store(true)
	t.Cleanup(func() { waitvMissing.Store(old) })
}
