package ring

import (
	"sync/atomic"

	"github.com/ringwire/ringwire/codec"
)

// lane is one lane's shared words and data region, resolved once at
// attach. Who writes what (see layout.go): the lane's producer writes
// tail, state, pid, the sent counters and waiting; the consumer writes
// head, seq and signal; the data region is written by the producer only.
type lane struct {
	idx int

	// Producer block.
	tail                      *atomic.Uint64
	state, pid                *atomic.Uint32
	sentMsgs, sentBytes, full *atomic.Uint64
	signal                    *atomic.Uint32

	// Consumer block.
	head         *atomic.Uint64
	seq, waiting *atomic.Uint32

	data  []byte          // exactly capacity bytes
	words []atomic.Uint32 // data as 32-bit words, for length words
}

// lock returns the byte of the lane's producer lock.
func (l *lane) lock() int64 { return int64(laneBase(l.idx)) }

// readyBit returns the lane's word and bit in the ready set.
func readyBit(i int) (word int, bit uint64) { return i / 64, le64(1 << (i % 64)) }

// checkPadding validates a padding frame of length n at offset off of a
// lane, at position pos. A producer pads only the end of a lane, and only
// when a frame does not fit there, so padding starts past offset 0, runs
// exactly to the end, and is shorter than the largest frame.
func (r *Ring) checkPadding(lane int, pos uint64, off, n int) error {
	switch {
	case off == 0:
		return r.corrupt(lane, pos, "padding at offset 0: %w", codec.ErrBadLength)
	case n < 0 || off+n > r.geo.capacity:
		return r.corrupt(lane, pos, "padding of %d bytes at offset %d runs past the end of the lane: %w", n, off, codec.ErrTruncated)
	case n != r.geo.capacity-off || n%codec.Align != 0:
		return r.corrupt(lane, pos, "padding of %d bytes at offset %d does not end the lane: %w", n, off, codec.ErrBadLength)
	case n >= codec.AlignUp(r.geo.maxFrame):
		return r.corrupt(lane, pos, "padding of %d bytes, as long as the largest frame: %w", n, codec.ErrBadLength)
	}
	return nil
}
