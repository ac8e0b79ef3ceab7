package ring

import (
	"encoding/binary"
	"testing"
)

// TestLayoutOffsets pins the layout: these numbers are a contract with
// other processes and other languages (docs/LAYOUT.md), so changing one
// must fail here first.
func TestLayoutOffsets(t *testing.T) {
	for _, tc := range []struct {
		name      string
		got, want int
	}{
		{"block size", blockSize, 128},
		{"magic", offMagic, 0},
		{"version", offVersion, 8},
		{"flags", offFlags, 12},
		{"capacity", offCapacity, 16},
		{"data offset", offDataOff, 24},
		{"segment size", offSegSize, 32},
		{"max frame", offMaxFrame, 40},
		{"slots", offSlots, 44},
		{"created", offCreated, 48},
		{"creator", offCreator, 56},
		{"tail", offTail, 128},
		{"head", offHead, 256},
		{"consumer futex", offConsSeq, 384},
		{"consumer parked", offConsParked, 388},
		{"consumer state", offConsState, 392},
		{"producer futex", offProdSeq, 512},
		{"producers waiting", offProdWaiters, 516},
		{"producer state", offProdState, 520},
		{"received", offStatRecvMsgs, 640},
		{"received bytes", offStatRecvBytes, 648},
		{"skipped", offStatSkipped, 656},
		{"sent", offStatSentMsgs, 768},
		{"sent bytes", offStatSentBytes, 776},
		{"full", offStatFull, 784},
		{"slot table", offSlotTable, 1024},
		{"slot size", slotSize, 128},
		{"slot state", offSlotState, 0},
		{"slot pid", offSlotPID, 4},
		{"slot claim", offSlotClaim, 8},
		{"slot claim length", offSlotLen, 16},
		{"owner lock", lockOwner, 0},
		{"attached lock", lockAttached, 1},
		{"consumer lock", lockConsumer, 256},
		{"slot 3 lock", int(slotLock(3)), 1024 + 3*128},
		{"SPSC data offset", dataOffset(1), 4096},
		{"64-slot data offset", dataOffset(64), 12288},
		{"4096-slot data offset", dataOffset(4096), 1024 + 4096*128 + 3072},
		{"layout version", layoutVersion, 1},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, tc.got, tc.want)
		}
	}
	var m [8]byte
	binary.LittleEndian.PutUint64(m[:], magic)
	if string(m[:]) != "RINGWIRE" {
		t.Errorf("magic reads %q in memory, want RINGWIRE", m)
	}
	// Hot fields of different writers never share a 128-byte block, and
	// every 64-bit field is 8-byte aligned.
	writers := map[int]string{offTail / blockSize: "tail", offHead / blockSize: "head",
		offConsSeq / blockSize: "consumer signals", offProdSeq / blockSize: "producer signals",
		offStatRecvMsgs / blockSize: "consumer stats", offStatSentMsgs / blockSize: "producer stats"}
	if len(writers) != 6 {
		t.Errorf("hot fields share blocks: %v", writers)
	}
	for _, off := range []int{offMagic, offCapacity, offDataOff, offSegSize, offCreated, offTail, offHead,
		offStatRecvMsgs, offStatRecvBytes, offStatSkipped, offStatSentMsgs, offStatSentBytes, offStatFull, offSlotTable + offSlotClaim} {
		if off%8 != 0 {
			t.Errorf("64-bit field at %d is not 8-byte aligned", off)
		}
	}
}

// TestHeaderBytes pins the bytes Create writes for one geometry: what a
// C, Rust or Python reader of docs/LAYOUT.md must find.
func TestHeaderBytes(t *testing.T) {
	r, err := Create("", Options{Dir: t.TempDir(), Capacity: 8192, Checksum: true, MaxMessage: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b := r.seg.Bytes()
	le := binary.LittleEndian
	for _, tc := range []struct {
		name      string
		got, want uint64
	}{
		{"magic", le.Uint64(b[0:]), 0x45524957474e4952},
		{"version", uint64(le.Uint32(b[8:])), 1},
		{"flags (checksum)", uint64(le.Uint32(b[12:])), 2},
		{"capacity", le.Uint64(b[16:]), 8192},
		{"data offset", le.Uint64(b[24:]), 4096},
		{"segment size", le.Uint64(b[32:]), 4096 + 8192},
		{"max frame", uint64(le.Uint32(b[40:])), 16 + 1000},
		{"slots", uint64(le.Uint32(b[44:])), 1},
		{"file size", uint64(len(b)), 4096 + 8192},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, tc.got, tc.want)
		}
	}
	for i := 60; i < 1024; i++ {
		if b[i] != 0 {
			t.Fatalf("byte %d of a fresh ring is %#x, want 0", i, b[i])
		}
	}
}
