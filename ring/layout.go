package ring

import "github.com/ringwire/ringwire/codec"

// The segment layout, version 2. This block is the one definition of it;
// docs/LAYOUT.md describes the same bytes for implementers in other
// languages, and layout_test.go pins every value.
//
// A ring is a set of lanes. A lane is an SPSC ring: its own head, tail,
// data region and producer signals, written by at most one producer (the
// holder of the lane's lock) and read by the one consumer. An SPSC ring is
// a ring of one lane; an MPSC ring gives each attached producer a lane of
// its own, so that a producer's crash or stall touches only its lane.
//
// All integers are little-endian on every GOARCH. The segment is:
//
//	[0, 1024)                         eight 128-byte blocks of ring control fields
//	[1024, 1024+lanes*256)            the lane table: two blocks per lane
//	[dataOff, dataOff+lanes*capacity) the lanes' data regions; lane i's at
//	                                  dataOff + i*capacity; dataOff is page-aligned
//
// Block 0, the header, is written by Create before magic and never again:
//
//	0   u64 magic "RINGWIRE" (0x45524957474e4952), stored last, atomically
//	8   u32 layout version (2)
//	12  u32 ring flags: bit 0 MPSC, bit 1 frames carry checksums
//	16  u64 lane capacity: data bytes per lane, a power of two in [4096, 2^40]
//	24  u64 data offset: alignUp(1024 + lanes*256, 4096)
//	32  u64 segment size: data offset + lanes*capacity (lanes*capacity <= 2^40)
//	40  u32 max frame length: header + largest payload, <= capacity/2
//	44  u32 lane count: 1 for SPSC, [1, 1024] for MPSC
//	48  i64 creation time, Unix nanoseconds
//	56  u32 creator's process id (informational only: not proof of life)
//	64  u64 instance: a random non-zero id chosen by Create, which names
//	        this ring's messages (instance, lane, position) for deduplication
//
// Block 1 (128), consumer signals, read by producers after every commit:
//
//	128 u32 consumer futex word: a producer adds 1 to it before waking the consumer
//	132 u32 consumer parked: 1 while the consumer announces it may sleep
//	136 u32 consumer state: 0 never attached, 1 attached, 2 closed cleanly
//	140 u32 consumer's process id (informational)
//
// Block 2 (256), consumer statistics, written by the consumer at least at
// every park and close: 256 u64 messages received, 264 u64 bytes received.
//
// Block 3 (384), the ready set: 16 u64 words, a bit per lane (lane i is bit
// i%64 of word i/64). A producer sets its lane's bit after a commit when the
// consumer asked it to (the lane's signal word, below); the consumer swaps
// each word to zero and visits the lanes whose bits were set. So an idle
// lane costs the consumer nothing per poll: it watches a few busy lanes and
// this one block.
//
// Blocks 4-7 (512-1023) are reserved and zero.
//
// Lane i's two blocks start at laneBase(i) = 1024 + i*256.
//
// The producer block, written by the lane's producer:
//
//	+0  u64 tail: the position after the last committed record, published
//	        at a bounded lag (every flushEvery records, every half lap,
//	        before the producer parks, and at close), so head is never more
//	        than a lap past it. A hint for inspection and takeover; the
//	        consumer reads it only to decide whether to wake a parked
//	        producer, when it is exact.
//	+8  u32 producer state: 0 never attached, 1 attached, 2 closed cleanly
//	+12 u32 producer's process id (informational)
//	+16 u64 messages sent
//	+24 u64 bytes sent
//	+32 u64 times the producer found the lane full
//	+40 u32 signal, written by the consumer: 1 asks the producer to set the
//	        lane's ready bit at its next commit (the consumer stopped
//	        polling the lane), 0 when the consumer polls the lane itself
//
// The consumer block (+128), written by the consumer:
//
//	+128 u64 head: the position of the next record to read; records below it
//	         are released
//	+136 u32 producer futex word: the consumer adds 1 to it before waking the
//	         lane's producer
//	+140 u32 producer waiting, written by the producer: 0, or while it
//	         announces that it may sleep, the free bytes it waits for (its
//	         frame and at least a quarter of the lane, capped at 2^32-1): the
//	         consumer wakes it when a release makes that much room for room
//
// Positions are byte counts since the lane was created, monotonically
// increasing; a position's offset in the lane's data region is
// position & (capacity-1).
//
// Records (see package codec): a record's length word (its first 4 bytes)
// is its commit flag: 0 means not yet written, a positive length means the
// whole record is written. The producer stores it last, atomically. Padding
// records fill the end of a data region when a record does not fit there.
// The consumer never writes to a data region: a released record stays as it
// is until its producer writes over it, one lap later.
//
// Locks. Roles and liveness are open-file-description locks (fcntl
// F_OFD_SETLK) on bytes of the segment file, which the kernel drops when
// their holder dies:
//
//	byte 0            shared, held by the creating Ring while it is open (the owner)
//	byte 1            shared, held by every open Ring handle (attached)
//	byte 256          exclusive, the consumer role
//	byte laneBase(i)  exclusive, the producer role of lane i
//
// Invariants of a lane, which every reader checks rather than trusts:
//   - head <= T <= head + capacity - 8, where T is the producer's true tail
//     (the end of its last committed record). The published tail may lag T
//     and so lie below head; readers reject a tail more than the capacity
//     ahead of head.
//   - Records start at 8-byte aligned offsets and never cross the end of
//     the data region: a record that would is preceded by a padding frame
//     that runs exactly to the end, and is written at offset 0. Padding
//     stands nowhere else.
//   - The producer zeroes the length word of the position after a record
//     before it commits the record, so the consumer polling that position
//     never sees a stale length from the previous lap, and a producer that
//     takes the lane over finds the end of the committed records. Hence a
//     producer keeps 8 bytes of the lane free: it writes only while
//     tail + frame + 8 <= head + capacity.
//   - Max frame length <= capacity/2, so a record always fits once the lane
//     has drained, padding included.
const (
	blockSize = 128

	offMagic     = 0
	offVersion   = 8
	offFlags     = 12
	offCapacity  = 16
	offDataOff   = 24
	offSegSize   = 32
	offMaxFrame  = 40
	offLanes     = 44
	offCreated   = 48
	offCreator   = 56
	offInstance  = 64
	headerFields = 72 // bytes of block 0 that hold fields; the rest is zero

	offConsSeq    = 1 * blockSize
	offConsParked = offConsSeq + 4
	offConsState  = offConsSeq + 8
	offConsPID    = offConsSeq + 12

	offStatRecvMsgs  = 2 * blockSize
	offStatRecvBytes = offStatRecvMsgs + 8

	offReady   = 3 * blockSize
	readyWords = 16

	offLaneTable = 8 * blockSize
	laneSize     = 2 * blockSize

	// Producer block of a lane.
	offLaneTail      = 0
	offLaneState     = 8
	offLanePID       = 12
	offLaneSentMsgs  = 16
	offLaneSentBytes = 24
	offLaneFull      = 32
	offLaneSignal    = 40

	// Consumer block of a lane.
	offLaneHead    = blockSize
	offLaneSeq     = blockSize + 8
	offLaneWaiting = blockSize + 12

	lockOwner    = 0
	lockAttached = 1
	lockConsumer = 2 * blockSize

	// magic is "RINGWIRE" read as a little-endian u64.
	magic         = 0x4552495747_4e4952
	layoutVersion = 2

	flagMPSC     = 1 << 0
	flagChecksum = 1 << 1
	knownFlags   = flagMPSC | flagChecksum

	pageSize    = 4096
	minCapacity = 4096
	maxCapacity = 1 << 40
	maxLanes    = readyWords * 64

	// nextHeaderReserve is the room a producer keeps free after each
	// record, for the next record's zeroed length word.
	nextHeaderReserve = codec.Align

	// Role states, in the consumer's and each lane's state word.
	stateNone     = 0
	stateAttached = 1
	stateClosed   = 2
)

// laneBase returns the offset of lane i's first block, which is also the
// byte of its producer lock.
func laneBase(i int) int { return offLaneTable + i*laneSize }

// dataOffset returns where the data regions start for a ring of lanes.
func dataOffset(lanes int) int {
	return alignUp(offLaneTable+lanes*laneSize, pageSize)
}

func alignUp(n, a int) int { return (n + a - 1) &^ (a - 1) }
