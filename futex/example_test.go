package futex_test

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/ringwire/ringwire/futex"
)

// The waiter/waker protocol from the package documentation, between two
// goroutines. In ringwire the three words live in a shared mapping and the
// two sides are different processes; the code is the same.
func Example() {
	var (
		data    atomic.Uint32 // stands in for the ring: 0 means empty
		seq     atomic.Uint32 // the futex word
		waiters atomic.Int32  // the waiter's announcement
	)
	got := make(chan uint32)

	go func() { // consumer
		for {
			if v := data.Load(); v != 0 {
				got <- v
				return
			}
			waiters.Add(1) // announce, then read seq, then re-check
			s := seq.Load()
			if data.Load() != 0 {
				waiters.Add(-1)
				continue
			}
			// Timeouts and spurious wake-ups just go round the loop.
			futex.WaitAtomic(&seq, s, time.Second)
			waiters.Add(-1)
		}
	}()

	// producer: publish, then wake only if someone announced itself.
	data.Store(42)
	if waiters.Load() != 0 {
		seq.Add(1)
		futex.WakeAtomic(&seq, futex.All)
	}
	fmt.Println(<-got)
	// Output: 42
}

func ExampleWait_timeout() {
	var word uint32
	err := futex.Wait(&word, 0, 10*time.Millisecond)
	fmt.Println(err)
	fmt.Println(errors.Is(err, os.ErrDeadlineExceeded))
	// Output:
	// futex: wait timed out
	// true
}

func ExampleWait_changed() {
	var word uint32 = 1
	// The word no longer holds 0: Wait returns at once.
	fmt.Println(futex.Wait(&word, 0, time.Hour))
	// Output: <nil>
}
