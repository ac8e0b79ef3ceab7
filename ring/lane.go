package ring

import "sync/atomic"

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
