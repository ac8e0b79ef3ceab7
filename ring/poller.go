package ring

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringwire/ringwire/futex"
)

// Poller waits on many Consumers at once: Wait returns when at least one
// of them has a message, reached the end of its stream, or lost its
// producer, and says which. It runs no goroutine per ring and makes no
// system call while messages flow: it polls every consumer, spins and
// yields as its Wait strategy says, and only then parks, in one system
// call for all of them.
//
// Parking. Each consumer announces that it may sleep exactly as a
// blocking receive does (it hands its hot lanes to the ready set and sets
// its ring's consumer parked word, after a snapshot of the ring's consumer
// futex word), the Poller polls them all again, and then sleeps on all the
// futex words at once: on Linux 5.16 and later with one futex_waitv system
// call over up to 128 words. A producer's commit on any of the rings wakes
// it, as it would wake that ring's own consumer; no wake-up is lost, for
// the reason given at Ring.await. After the sleep every consumer retracts
// its announcement.
//
// Above 128 consumers, futex_waitv sleeps on the first 128 (in the order
// they were added) and the Poller wakes every PollerSlice to poll the
// others: those see a message up to PollerSlice late while the Poller
// sleeps. Where futex_waitv is missing (kernels before 5.16: ENOSYS, or a
// GOARCH this package does not issue it on) the Poller sleeps on one futex
// word at a time, in turn, for at most PollerSlice each: correct, one
// system call per PollerSlice while idle, and a message on a ring other
// than the one slept on is seen up to PollerSlice late. A Poller of one
// consumer sleeps on its word without a slice.
//
// Liveness: every Wait.PeerCheck the Poller checks each SPSC consumer's
// producer (a lock probe, one system call per consumer) and sweeps each
// MPSC ring for its end of stream, as a blocking receive does; a parked
// Poller wakes at least that often.
//
// A Poller and the Consumers added to it are used from one goroutine:
// Wait and the receives on the consumers alternate (WaitChan hands the
// consumers to the Poller's helper goroutine until Collect). A Consumer
// belongs to at most one Poller.
type Poller struct {
	wait Wait

	cs    []*Consumer
	ready []*Consumer // what Wait returns; capacity len(cs)
	words []pollWord  // the futex words, for the system call
	vbuf  waitvBuf    // the system call's argument

	checked time.Time // the last peer check
	turn    int       // the word the fallback sleeps on next
	closed  bool

	// Cancellation while parked: kick bumps the futex word the Poller
	// sleeps on (see kick). mu guards parked and kickWord.
	mu       sync.Mutex
	parked   bool
	kickWord *atomic.Uint32
	kickFn   func()
	empty    atomic.Uint32   // the word an empty Poller sleeps on
	ctx      context.Context // the ctx whose end calls kickFn
	stop     func() bool     // stops that registration

	// WaitChan's helper goroutine.
	helper    chan context.Context // starts a Wait
	done      chan struct{}        // the caller's: receives when that Wait returned
	fin       chan struct{}        // Collect's: receives when that Wait returned
	interrupt atomic.Bool          // Collect asks the running Wait to return
	result    []*Consumer
	resultErr error
	running   bool
}

// pollWord is one consumer's futex word and the value it had at the
// snapshot before its announcement.
type pollWord struct {
	seq *atomic.Uint32
	val uint32
}

// PollerSlice bounds a Poller's sleep in the fallbacks (more than 128
// consumers, or no futex_waitv): the delay with which a message on a
// ring not slept on is seen while the Poller sleeps.
const PollerSlice = time.Millisecond

// waitvMissing is set once futex_waitv proved unavailable (ENOSYS), and
// by tests that force the fallback.
var waitvMissing atomic.Bool

// ErrUnknownConsumer: Remove was given a consumer that is not in the
// Poller, or Add one that already is.
var ErrUnknownConsumer = errors.New("ring: consumer not in the poller")

// NewPoller returns an empty Poller with the default wait strategy
// (Adaptive); SetWait changes it.
func NewPoller() *Poller {
	p := &Poller{wait: Wait{}.withDefaults(), checked: time.Now()}
	p.kickFn = p.kick
	return p
}

// SetWait sets how Wait waits: Spin and Yield never park, Block parks at
// once, Adaptive spins and yields first; PeerCheck is how often the
// consumers' peers are checked.
func (p *Poller) SetWait(w Wait) { p.wait = w.withDefaults() }

// Add adds a consumer. It fails for a nil or closed consumer, one already
// added, and after Close.
func (p *Poller) Add(c *Consumer) error {
	switch {
	case p.closed:
		return fmt.Errorf("ring: poller add: %w", ErrClosed)
	case c == nil:
		return fmt.Errorf("ring: poller add: nil consumer: %w", ErrBadOptions)
	case c.g.isClosed():
		return c.r.errorf("poller add: consumer %w", ErrClosed)
	}
	for _, x := range p.cs {
		if x == c {
			return c.r.errorf("poller add: already added: %w", ErrUnknownConsumer)
		}
	}
	p.cs = append(p.cs, c)
	p.rebuild()
	return nil
}

// Remove removes a consumer; it does not close it.
func (p *Poller) Remove(c *Consumer) error {
	for i, x := range p.cs {
		if x == c {
			p.cs = append(p.cs[:i], p.cs[i+1:]...)
			p.rebuild()
			return nil
		}
	}
	return fmt.Errorf("ring: poller remove: %w", ErrUnknownConsumer)
}

// Len returns how many consumers the Poller watches.
func (p *Poller) Len() int { return len(p.cs) }

// rebuild sizes the buffers after Add or Remove, so that Wait allocates
// nothing.
func (p *Poller) rebuild() {
	p.ready = make([]*Consumer, 0, len(p.cs))
	p.words = make([]pollWord, len(p.cs))
	for i, c := range p.cs {
		p.words[i].seq = c.r.consSeq
	}
	p.turn = 0
}

// Close stops the helper goroutine of WaitChan and forgets the consumers;
// it does not close them. A Wait running on the helper is interrupted.
func (p *Poller) Close() error {
	if p.closed {
		return nil
	}
	if p.running {
		p.Collect()
	}
	p.closed = true
	if p.helper != nil {
		close(p.helper)
	}
	if p.stop != nil {
		p.stop()
		p.stop, p.ctx = nil, nil
	}
	p.cs, p.ready, p.words = nil, nil, nil
	return nil
}

// Wait blocks until at least one consumer has a message to receive, has
// reached the end of its stream, or has lost its producer (SPSC), or
// until ctx ends (ctx.Err()). It returns the ready consumers, in the order
// they were added: the slice is the Poller's own, overwritten by the next
// Wait (Add and Remove leave it as it is, so a consumer may be removed
// while the slice is iterated), and Wait allocates nothing in steady
// state.
//
// For each ready consumer, receive with a Try form (TryNext, TryRecv,
// TryPeek) or Drain until ErrEmpty: the consumer's receive returns the
// messages first, then what the Poller found, once: io.EOF at the end of
// the stream, ErrPeerDead for a dead SPSC producer, an error for a corrupt
// ring. A closed consumer is always ready (its receives give ErrClosed):
// Remove it. A consumer whose messages are all read ahead (Next) is ready
// only when a further message arrives.
//
// A nil ctx does not wait: Wait(nil) is TryWait.
func (p *Poller) Wait(ctx context.Context) ([]*Consumer, error) {
	if p.closed {
		return nil, fmt.Errorf("ring: poller wait: %w", ErrClosed)
	}
	if p.running {
		return nil, fmt.Errorf("ring: poller wait while WaitChan runs: %w", ErrPending)
	}
	return p.wait1(ctx)
}

// TryWait is Wait that does not wait: it polls every consumer once, with
// the end-of-stream checks (and the peer checks once per PeerCheck), and
// may return none.
func (p *Poller) TryWait() ([]*Consumer, error) { return p.Wait(noWait) }

func (p *Poller) wait1(ctx context.Context) ([]*Consumer, error) {
	if len(p.cs) == 0 {
		return p.ready[:0], p.idle(ctx)
	}
	for _, c := range p.cs {
		c.g.enter() // a closed consumer is ready: scan sees it before any shared access
	}
	defer func() {
		for _, c := range p.cs {
			c.leave(nil)
		}
	}()
	if ctx == nil {
		if n := p.scan(); n > 0 {
			return p.ready, nil
		}
		p.checks(time.Now())
		p.scan()
		return p.ready, nil
	}
	deadline, hasDeadline := ctx.Deadline()
	for i := 0; ; i++ {
		if n := p.scan(); n > 0 {
			return p.ready, nil
		}
		park := p.wait.pause(i)
		if !park && i&255 != 255 {
			continue
		}
		if err := ctx.Err(); err != nil {
			return p.ready[:0], err
		}
		if p.interrupt.Load() {
			return p.ready[:0], nil
		}
		now := time.Now()
		if hasDeadline && !now.Before(deadline) {
			return p.ready[:0], context.DeadlineExceeded
		}
		if p.checks(now) {
			continue // the next scan reports what the checks found
		}
		if !park {
			continue
		}
		if ctx.Done() != nil && p.ctx != ctx {
			// One registration per context, kept across Waits: no
			// allocation per Wait.
			if p.stop != nil {
				p.stop()
			}
			p.ctx, p.stop = ctx, context.AfterFunc(ctx, p.kickFn)
		}
		for k, c := range p.cs {
			p.words[k].val = p.words[k].seq.Load() // snapshot first, then announce
			c.announce()
		}
		if n := p.scan(); n > 0 {
			p.retract()
			return p.ready, nil
		}
		until := p.checked.Add(p.wait.PeerCheck)
		if hasDeadline && deadline.Before(until) {
			until = deadline
		}
		err := p.park(ctx, until)
		p.retract()
		if err != nil {
			return p.ready[:0], err
		}
	}
}

// scan polls every consumer and collects the ready ones in p.ready. It
// makes no system call.
func (p *Poller) scan() int {
	p.ready = p.ready[:0]
	for _, c := range p.cs {
		if c.notice != nil {
			p.ready = append(p.ready, c)
			continue
		}
		ok, err := c.poll()
		if err != nil && !c.g.isClosed() {
			c.notice = err
		}
		if ok || err != nil {
			p.ready = append(p.ready, c)
		}
	}
	return len(p.ready)
}

// checks runs the costlier checks of every consumer: the end-of-stream
// sweep always, the peer's liveness once per PeerCheck. A condition found
// becomes the consumer's notice, unless a message arrived meanwhile (it
// is delivered first). It reports whether any consumer got a notice.
func (p *Poller) checks(now time.Time) bool {
	peer := now.Sub(p.checked) >= p.wait.PeerCheck
	if peer {
		p.checked = now
	}
	found := false
	for _, c := range p.cs {
		if c.notice != nil || c.g.isClosed() {
			found = true
			continue
		}
		err := c.ended()
		if err == nil && peer {
			err = c.peer()
		}
		if err != nil {
			if ok, perr := c.poll(); ok || perr != nil {
				err = perr
			}
			c.notice, found = err, true
		}
	}
	return found
}

// retract withdraws every consumer's announcement.
func (p *Poller) retract() {
	for _, c := range p.cs {
		c.retract()
	}
}

// park sleeps on the consumers' futex words until one moves, until, or
// ctx's end. Waking early is harmless: the caller polls again.
func (p *Poller) park(ctx context.Context, until time.Time) error {
	n := len(p.words)
	for {
		var err error
		switch {
		case !waitvMissing.Load() && n <= futexWaitvMax:
			p.setParked(p.words[0].seq)
			if err = ctx.Err(); err == nil && !p.interrupt.Load() {
				err = waitv(p.words, until, &p.vbuf)
			}
		case !waitvMissing.Load():
			// Above the limit: the first futexWaitvMax words, a slice at
			// a time; the caller polls the rest.
			p.setParked(p.words[0].seq)
			if err = ctx.Err(); err == nil && !p.interrupt.Load() {
				err = waitv(p.words[:futexWaitvMax], earlier(until, time.Now().Add(PollerSlice)), &p.vbuf)
			}
		default:
			// No futex_waitv: one word at a time, in turn.
			w := &p.words[p.turn%n]
			p.turn++
			if n > 1 {
				until = earlier(until, time.Now().Add(PollerSlice))
			}
			p.setParked(w.seq)
			if err = ctx.Err(); err == nil && !p.interrupt.Load() {
				err = futex.WaitAtomicUntil(w.seq, w.val, until)
			}
		}
		p.setParked(nil)
		if errors.Is(err, errNoWaitv) {
			waitvMissing.Store(true)
			continue
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("ring: poller: %w", err)
		}
		return nil
	}
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// setParked publishes the word the Poller is about to sleep on (nil: not
// sleeping), for kick. Set before the last look at ctx, so that a ctx
// ending after that look finds the word and bumps it.
func (p *Poller) setParked(w *atomic.Uint32) {
	p.mu.Lock()
	p.parked, p.kickWord = w != nil, w
	p.mu.Unlock()
}

// kick wakes a parked Wait: it bumps the futex word the Poller sleeps on,
// a consumer's futex word, which only that consumer (this Poller) sleeps
// on. The Wait holds every consumer's guard while parked, so the word's
// mapping is alive.
func (p *Poller) kick() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.parked {
		p.kickWord.Add(1)
		futex.WakeAtomic(p.kickWord, futex.All)
	}
}

// WaitChan runs Wait(ctx) on the Poller's helper goroutine (one per
// Poller, started on first use) and returns a channel that receives a
// value when that Wait returns, for a select loop. Then, or to stop
// waiting, call Collect: it returns what Wait returned, and the consumers
// belong to the caller again. Between WaitChan and Collect do not use the
// Poller or its consumers.
//
// Cost: on top of Wait's own wake-up (a futex wake of a parked thread,
// 20-50 us on a VM), a channel send and the waking of the goroutine that
// selects, about a microsecond; nothing per message while messages flow.
// WaitChan and Collect allocate nothing after the first call.
func (p *Poller) WaitChan(ctx context.Context) <-chan struct{} {
	if p.helper == nil {
		p.helper, p.done, p.fin = make(chan context.Context), make(chan struct{}, 1), make(chan struct{}, 1)
		go p.serve(p.helper, p.done, p.fin)
	}
	if p.running || p.closed {
		panic("ring: Poller.WaitChan while a WaitChan runs or after Close")
	}
	p.running = true
	p.interrupt.Store(false)
	p.helper <- ctx
	return p.done
}

// serve is the helper goroutine: one Wait per request.
func (p *Poller) serve(req <-chan context.Context, done, fin chan<- struct{}) {
	for ctx := range req {
		p.result, p.resultErr = p.wait1(ctx)
		done <- struct{}{}
		fin <- struct{}{}
	}
}

// Collect ends the wait WaitChan started: it interrupts it if it is still
// running, waits for it, and returns its result (an interrupted Wait
// returns no consumer and a nil error). Its channel is drained.
func (p *Poller) Collect() ([]*Consumer, error) {
	if !p.running {
		return nil, fmt.Errorf("ring: poller collect without WaitChan: %w", ErrPending)
	}
	select {
	case <-p.fin:
	default:
		p.interrupt.Store(true)
		p.kick()
		<-p.fin
	}
	select {
	case <-p.done: // the caller did not take it
	default:
	}
	p.running = false
	p.interrupt.Store(false)
	return p.result, p.resultErr
}

// idle is the Wait of a Poller without consumers: it sleeps on the
// Poller's own word until ctx ends or Collect interrupts it.
func (p *Poller) idle(ctx context.Context) error {
	if ctx == nil {
		return nil
	}
	if ctx.Done() != nil && p.ctx != ctx {
		if p.stop != nil {
			p.stop()
		}
		p.ctx, p.stop = ctx, context.AfterFunc(ctx, p.kickFn)
	}
	deadline, _ := ctx.Deadline()
	for {
		v := p.empty.Load()
		p.setParked(&p.empty)
		if err := ctx.Err(); err != nil || p.interrupt.Load() {
			p.setParked(nil)
			return err
		}
		err := futex.WaitAtomicUntil(&p.empty, v, deadline)
		p.setParked(nil)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return context.DeadlineExceeded
		}
	}
}
