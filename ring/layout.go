package ring

import "github.com/ringwire/ringwire/codec"

// The segment layout, version 1. This block is the one definition of it;
// docs/LAYOUT.md describes the same bytes for implementers in other
// languages, and layout_test.go pins every value.
//
// All integers are little-endian on every GOARCH. The segment is:
//
//	[0, 1024)                  eight 128-byte blocks of control fields
//	[1024, 1024+slots*128)     the producer slot table
//	[dataOff, dataOff+capacity) the data region, page-aligned
//
// Block 0, the header, is written by Create before magic and never again:
//
//	0   u64 magic "RINGWIRE" (0x45524957474e4952), stored last, atomically
//	8   u32 layout version (1)
//	12  u32 ring flags: bit 0 MPSC, bit 1 frames carry checksums
//	16  u64 capacity: data region bytes, a power of two in [4096, 2^40]
//	24  u64 data offset: alignUp(1024 + slots*128, 4096)
//	32  u64 segment size: data offset + capacity
//	40  u32 max frame length: header + largest payload, <= capacity/2
//	44  u32 slot count: 1 for SPSC, [1, 4096] for MPSC
//	48  i64 creation time, Unix nanoseconds
//	56  u32 creator's process id (informational only: not proof of life)
//
// Block 1 (128): tail, u64, written by the producer side: the byte position
// after the last record a producer claimed. Block 2 (256): head, u64,
// written by the consumer: the byte position of the next record to read.
// Both are monotonically increasing positions; a position's offset in the
// data region is position & (capacity-1).
//
// Block 3 (384), consumer signals, read by producers on every send:
//
//	384 u32 consumer futex word: producers add 1 to it before waking the consumer
//	388 u32 consumer parked: 1 while the consumer announces it may sleep
//	392 u32 consumer state: 0 never attached, 1 attached, 2 closed cleanly
//
// Block 4 (512), producer signals, read by the consumer on every release:
//
//	512 u32 producer futex word: the consumer adds 1 to it before waking producers
//	516 u32 producers waiting: how many producers announce they may sleep
//	520 u32 producer state: 0 never attached, 1 attached, 2 closed cleanly
//
// Block 5 (640), consumer statistics, written by the consumer, at least at
// every park and close: 640 u64 messages received, 648 u64 bytes received,
// 656 u64 records skipped.
// Block 6 (768), producer statistics: 768 u64 messages sent, 776 u64 bytes
// sent, 784 u64 times a producer found the ring full.
// Block 7 (896) is reserved and zero.
//
// Each slot of the producer table is 128 bytes, and its first byte is the
// slot's lock byte (see below). Its fields, written by the producer that
// holds the slot:
//
//	+0  u32 state: 0 free, 1 attached, 2 closed cleanly (MPSC; SPSC uses 520)
//	+4  u32 process id of the holder (informational only)
//	+8  u64 claim: the position where this producer's current claim starts,
//	        or all ones when it holds none (MPSC)
//	+16 u32 claim length: the claim's bytes, padding included (MPSC); a
//	        claim is set only when start != all ones and length != 0, so a
//	        never-used slot (0, 0) holds none
//
// An MPSC producer stores its claim (length, then position) before the CAS
// on the tail that claims the space, and clears it after the commit: so the
// owner of a stalled record is the slot whose claim covers the record's
// position, and a slot whose lock is free while its claim is set names a
// dead producer's record. An SPSC ring has one slot, used as the producer's
// lock.
//
// MPSC records. A producer commits with a compare-and-swap of the length
// word from 0 to the length. The consumer zeroes every byte it releases, so
// free space reads as zero. When the consumer skips a record that will not
// be committed (its producer died, or stalled past the unblock timeout), it
// swaps the length word, by compare-and-swap from the value it read, to the
// negated length of the span it skips: a commit that got there first wins
// and is read; otherwise the producer's commit fails, and a consumer that
// takes over later skips exactly that span. The space of a live producer's
// skipped record stays out of the free space until the producer clears its
// claim or dies (a lock probe that fails proves nothing, so the space stays
// pinned). Padding may stand anywhere in an MPSC ring, and may fill a data
// frame's aligned size (an abandoned reservation becomes padding).
//
// Locks. Roles and liveness are open-file-description locks (fcntl
// F_OFD_SETLK) on bytes of the segment file, which the kernel drops when
// their holder dies:
//
//	byte 0                 shared, held by the creating Ring while it is open (the owner)
//	byte 1                 shared, held by every open Ring handle (attached)
//	byte 256               exclusive, the consumer role
//	byte 1024 + i*128      exclusive, producer slot i
//
// Invariants, which every reader checks rather than trusts:
//   - head <= T <= head + capacity - 8, where T is the producer's true tail
//     (the end of its last committed record). The shared SPSC tail may lag
//     T, and so lie below head; readers reject a tail more than the
//     capacity ahead of head. In MPSC the shared tail is the claim cursor:
//     head <= tail <= head + capacity - 8 (the same 8-byte reserve, kept
//     for one capacity rule in both modes).
//   - Records start at 8-byte aligned offsets and never cross the end of
//     the data region: a record that would is preceded by a padding frame
//     that runs exactly to the end, and is written at offset 0.
//   - A record's length word (its first 4 bytes, see package codec) is its
//     commit flag: 0 means not yet written, a positive length means the
//     whole record is written. The producer stores it last, atomically.
//   - In SPSC, the producer zeroes the length word of the position after a
//     record before it commits the record, so the consumer polling that
//     position never sees a stale length from the previous lap. Hence a
//     producer keeps 8 bytes of the ring free: it writes only while
//     tail + frame + 8 <= head + capacity.
//   - Max frame length <= capacity/2, so a record always fits once the ring
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
	offSlots     = 44
	offCreated   = 48
	offCreator   = 56
	headerFields = 64 // bytes of block 0 that hold fields; the rest is zero

	offTail = 1 * blockSize
	offHead = 2 * blockSize

	offConsSeq    = 3 * blockSize
	offConsParked = offConsSeq + 4
	offConsState  = offConsSeq + 8

	offProdSeq     = 4 * blockSize
	offProdWaiters = offProdSeq + 4
	offProdState   = offProdSeq + 8

	offStatRecvMsgs  = 5 * blockSize
	offStatRecvBytes = offStatRecvMsgs + 8
	offStatSkipped   = offStatRecvMsgs + 16
	offStatSentMsgs  = 6 * blockSize
	offStatSentBytes = offStatSentMsgs + 8
	offStatFull      = offStatSentMsgs + 16

	offSlotTable = 8 * blockSize
	slotSize     = blockSize
	offSlotState = 0
	offSlotPID   = 4
	offSlotClaim = 8
	offSlotLen   = 16
	noClaim      = ^uint64(0)

	lockOwner    = 0
	lockAttached = 1
	lockConsumer = offHead

	// magic is "RINGWIRE" read as a little-endian u64.
	magic         = 0x4552495747_4e4952
	layoutVersion = 1

	flagMPSC     = 1 << 0
	flagChecksum = 1 << 1
	knownFlags   = flagMPSC | flagChecksum

	pageSize    = 4096
	minCapacity = 4096
	maxCapacity = 1 << 40
	maxSlots    = 4096

	// nextHeaderReserve is the room a producer keeps free after each record:
	// in SPSC for the next record's zeroed length word; MPSC keeps it too.
	nextHeaderReserve = codec.Align

	// Role states, in offConsState and offProdState.
	stateNone     = 0
	stateAttached = 1
	stateClosed   = 2
)

// dataOffset returns where the data region starts for a table of slots.
func dataOffset(slots int) int {
	return alignUp(offSlotTable+slots*slotSize, pageSize)
}

// slotLock returns the lock byte of producer slot i.
func slotLock(i int) int64 { return int64(offSlotTable + i*slotSize) }

func alignUp(n, a int) int { return (n + a - 1) &^ (a - 1) }
