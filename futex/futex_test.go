package futex

import (
	"errors"
	"os"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

// within runs f in a goroutine and fails the test if it has not returned
// after d, so that a Wait that wrongly blocks fails instead of hanging.
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s: still blocked after %v", what, d)
	}
}

func checkTimeoutErr(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("%s = %v, want ErrTimeout", what, err)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("%s: errors.Is(%v, os.ErrDeadlineExceeded) = false", what, err)
	}
	var te interface{ Timeout() bool }
	if !errors.As(err, &te) || !te.Timeout() {
		t.Errorf("%s: %v has no Timeout() reporting true", what, err)
	}
}

func TestWaitTimeout(t *testing.T) {
	const timeout = 50 * time.Millisecond
	w := new(uint32)
	start := time.Now()
	err := Wait(w, 0, timeout)
	elapsed := time.Since(start)
	checkTimeoutErr(t, "Wait(50ms)", err)
	if elapsed < timeout {
		t.Errorf("Wait(50ms) returned after %v, before its timeout", elapsed)
	}
	if elapsed > 2*time.Second {
		t.Errorf("Wait(50ms) returned after %v", elapsed)
	}
}

func TestWaitUntilDeadline(t *testing.T) {
	w := new(atomic.Uint32)
	deadline := time.Now().Add(50 * time.Millisecond)
	err := WaitAtomicUntil(w, 0, deadline)
	now := time.Now()
	checkTimeoutErr(t, "WaitUntil(now+50ms)", err)
	if now.Before(deadline) {
		t.Errorf("WaitUntil returned %v before its deadline", deadline.Sub(now))
	}
	if late := now.Sub(deadline); late > 2*time.Second {
		t.Errorf("WaitUntil returned %v after its deadline", late)
	}

	// A deadline in the past never sleeps.
	within(t, time.Second, "WaitUntil(past)", func() {
		checkTimeoutErr(t, "WaitUntil(past)", WaitAtomicUntil(w, 0, time.Now().Add(-time.Hour)))
	})
}

func TestWaitZeroTimeout(t *testing.T) {
	w := new(uint32)
	within(t, time.Second, "Wait(0)", func() {
		checkTimeoutErr(t, "Wait(equal, 0)", Wait(w, 0, 0))
		if err := Wait(w, 1, 0); err != nil {
			t.Errorf("Wait(changed, 0) = %v, want nil", err)
		}
	})
}

func TestWaitChangedValueReturnsAtOnce(t *testing.T) {
	w := new(atomic.Uint32)
	w.Store(7)
	within(t, time.Second, "wait on a changed value", func() {
		if err := WaitAtomic(w, 6, 10*time.Second); err != nil {
			t.Errorf("Wait(changed, 10s) = %v, want nil", err)
		}
		if err := WaitAtomic(w, 6, -1); err != nil {
			t.Errorf("Wait(changed, no deadline) = %v, want nil", err)
		}
		if err := WaitAtomicUntil(w, 6, time.Time{}); err != nil {
			t.Errorf("WaitUntil(changed, zero) = %v, want nil", err)
		}
		if err := WaitAtomicUntil(w, 6, time.Now().Add(-time.Second)); err != nil {
			t.Errorf("WaitUntil(changed, past) = %v, want nil", err)
		}
	})
}

// TestWaitWokenByChange parks a waiter with no deadline and releases it by
// publishing a new value and waking, as a producer does. On Linux the
// futex wakes it; elsewhere the poll loop sees the value.
func TestWaitWokenByChange(t *testing.T) {
	w := new(atomic.Uint32)
	got := make(chan uint32, 1)
	go func() {
		for w.Load() == 0 {
			if err := WaitAtomicUntil(w, 0, time.Time{}); err != nil {
				t.Errorf("WaitUntil(no deadline) = %v", err)
				break
			}
		}
		got <- w.Load()
	}()
	time.Sleep(5 * time.Millisecond) // usually parked by now; correct either way
	w.Store(1)
	if _, err := WakeAtomic(w, All); err != nil {
		t.Fatalf("Wake = %v", err)
	}
	select {
	case v := <-got:
		if v != 1 {
			t.Errorf("waiter saw %d, want 1", v)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waiter not released by store + Wake")
	}
}

func TestBadAddress(t *testing.T) {
	buf := new([4]uint32)
	misaligned := (*uint32)(unsafe.Add(unsafe.Pointer(&buf[1]), 1))
	for _, tc := range []struct {
		name string
		addr *uint32
	}{{"nil", nil}, {"misaligned", misaligned}} {
		if err := Wait(tc.addr, 0, time.Millisecond); !errors.Is(err, ErrBadAddress) {
			t.Errorf("Wait(%s) = %v, want ErrBadAddress", tc.name, err)
		}
		if err := Wait(tc.addr, 0, -1); !errors.Is(err, ErrBadAddress) {
			t.Errorf("Wait(%s, no deadline) = %v, want ErrBadAddress", tc.name, err)
		}
		if err := WaitUntil(tc.addr, 0, time.Time{}); !errors.Is(err, ErrBadAddress) {
			t.Errorf("WaitUntil(%s) = %v, want ErrBadAddress", tc.name, err)
		}
		if n, err := Wake(tc.addr, 1); n != 0 || !errors.Is(err, ErrBadAddress) {
			t.Errorf("Wake(%s) = %d, %v, want 0, ErrBadAddress", tc.name, n, err)
		}
	}
	if err := WaitAtomic(nil, 0, time.Millisecond); !errors.Is(err, ErrBadAddress) {
		t.Errorf("WaitAtomic(nil) = %v, want ErrBadAddress", err)
	}
	if n, err := WakeAtomic(nil, 1); n != 0 || !errors.Is(err, ErrBadAddress) {
		t.Errorf("WakeAtomic(nil) = %d, %v, want 0, ErrBadAddress", n, err)
	}
}

func TestWakeNoWaiters(t *testing.T) {
	w := new(uint32)
	huge := int(^uint(0) >> 1) // above All on 64-bit systems
	for _, n := range []int{-1, 0, 1, All, huge} {
		if got, err := Wake(w, n); got != 0 || err != nil {
			t.Errorf("Wake(no waiters, %d) = %d, %v, want 0, nil", n, got, err)
		}
	}
}

func TestNoAllocs(t *testing.T) {
	w := new(atomic.Uint32)
	w.Store(1)
	p := word(w)
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"Wake(no waiters)", func() { Wake(p, 1) }},
		{"WakeAtomic(no waiters)", func() { WakeAtomic(w, All) }},
		{"Wait(changed)", func() { Wait(p, 0, time.Second) }},
		{"WaitAtomic(changed)", func() { WaitAtomic(w, 0, time.Second) }},
		{"WaitUntil(changed)", func() { WaitUntil(p, 0, time.Now().Add(time.Second)) }},
		{"Wait(timeout 0)", func() { Wait(p, 1, 0) }},
		// Sleeps and times out: the deadline's timespec must not escape.
		{"Wait(1us timeout)", func() { Wait(p, 1, time.Microsecond) }},
		{"WaitUntil(past)", func() { WaitUntil(p, 1, time.Now().Add(-time.Second)) }},
	} {
		if n := testing.AllocsPerRun(200, tc.f); n != 0 {
			t.Errorf("%s: %v allocations per call, want 0", tc.name, n)
		}
	}
}

func BenchmarkWakeNoWaiters(b *testing.B) {
	w := new(uint32)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Wake(w, 1); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWaitChanged(b *testing.B) {
	w := new(uint32)
	*w = 1
	b.ReportAllocs()
	for b.Loop() {
		if err := Wait(w, 0, time.Second); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPingPong measures a round trip between two goroutines that each
// sleep in Wait until the other wakes them: two wake-ups per operation.
func BenchmarkPingPong(b *testing.B) {
	var ping, pong atomic.Uint32
	waitFor := func(w *atomic.Uint32, want uint32) {
		for v := w.Load(); v != want; v = w.Load() {
			if err := WaitAtomic(w, v, time.Second); err != nil && !errors.Is(err, ErrTimeout) {
				panic(err)
			}
		}
	}
	n := uint32(b.N)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := uint32(1); i <= n; i++ {
			waitFor(&ping, i)
			pong.Store(i)
			WakeAtomic(&pong, 1)
		}
	}()
	b.ResetTimer()
	for i := uint32(1); i <= n; i++ {
		ping.Store(i)
		WakeAtomic(&ping, 1)
		waitFor(&pong, i)
	}
	<-done
}
