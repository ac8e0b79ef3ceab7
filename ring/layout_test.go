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
		{"lanes", offLanes, 44},
		{"created", offCreated, 48},
		{"creator", offCreator, 56},
		{"instance", offInstance, 64},
		{"consumer futex", offConsSeq, 128},
		{"consumer parked", offConsParked, 132},
		{"consumer state", offConsState, 136},
		{"consumer pid", offConsPID, 140},
		{"received", offStatRecvMsgs, 256},
		{"received bytes", offStatRecvBytes, 264},
		{"ready set", offReady, 384},
		{"ready words", readyWords, 16},
		{"lane table", offLaneTable, 1024},
		{"lane size", laneSize, 256},
		{"lane tail", offLaneTail, 0},
		{"lane state", offLaneState, 8},
		{"lane pid", offLanePID, 12},
		{"lane sent", offLaneSentMsgs, 16},
		{"lane sent bytes", offLaneSentBytes, 24},
		{"lane full", offLaneFull, 32},
		{"lane signal", offLaneSignal, 40},
		{"lane head", offLaneHead, 128},
		{"lane producer futex", offLaneSeq, 136},
		{"lane producer waiting", offLaneWaiting, 140},
		{"owner lock", lockOwner, 0},
		{"attached lock", lockAttached, 1},
		{"consumer lock", lockConsumer, 256},
		{"lane 3 lock", laneBase(3), 1024 + 3*256},
		{"max lanes", maxLanes, 1024},
		{"SPSC data offset", dataOffset(1), 4096},
		{"16-lane data offset", dataOffset(16), 8192},
		{"1024-lane data offset", dataOffset(1024), 1024 + 1024*256 + 3072},
		{"layout version", layoutVersion, 2},
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
	// Hot fields of different writers never share a 128-byte block: the
	// consumer's signals, its statistics, the ready set, and each lane's
	// producer block and consumer block.
	blocks := map[int]string{offConsSeq / blockSize: "consumer signals", offStatRecvMsgs / blockSize: "consumer stats",
		offReady / blockSize: "ready set", (offLaneTable + offLaneTail) / blockSize: "lane 0 producer",
		(offLaneTable + offLaneHead) / blockSize: "lane 0 consumer", (laneBase(1) + offLaneTail) / blockSize: "lane 1 producer"}
	if len(blocks) != 6 {
		t.Errorf("hot fields share blocks: %v", blocks)
	}
	if offReady+readyWords*8 > offReady+blockSize || readyWords*64 != maxLanes {
		t.Errorf("the ready set (%d words) does not fill one block with a bit per lane", readyWords)
	}
	for _, off := range []int{offMagic, offCapacity, offDataOff, offSegSize, offCreated, offInstance,
		offStatRecvMsgs, offStatRecvBytes, offReady, offLaneTable + offLaneTail, offLaneTable + offLaneSentMsgs,
		offLaneTable + offLaneSentBytes, offLaneTable + offLaneFull, offLaneTable + offLaneHead} {
		if off%8 != 0 {
			t.Errorf("64-bit field at %d is not 8-byte aligned", off)
		}
	}
}

// TestHeaderBytes pins the bytes Create writes for one geometry: what a
// C, Rust or Python reader of docs/LAYOUT.md must find.
func TestHeaderBytes(t *testing.T) {
	r, err := Create("", Options{Dir: t.TempDir(), Capacity: 8192, Checksum: true, MaxMessage: 1000, Mode: MPSC, Slots: 3})
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
		{"version", uint64(le.Uint32(b[8:])), 2},
		{"flags (MPSC, checksum)", uint64(le.Uint32(b[12:])), 3},
		{"capacity", le.Uint64(b[16:]), 8192},
		{"data offset", le.Uint64(b[24:]), 4096},
		{"segment size", le.Uint64(b[32:]), 4096 + 3*8192},
		{"max frame", uint64(le.Uint32(b[40:])), 16 + 1000},
		{"lanes", uint64(le.Uint32(b[44:])), 3},
		{"instance is set", boolU(le.Uint64(b[64:]) != 0), 1},
		{"instance as Info says", le.Uint64(b[64:]), r.Instance()},
		{"file size", uint64(len(b)), 4096 + 3*8192},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, tc.got, tc.want)
		}
	}
	for i := headerFields; i < dataOffset(3); i++ {
		if b[i] != 0 {
			t.Fatalf("byte %d of a fresh ring is %#x, want 0", i, b[i])
		}
	}
}

func boolU(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}
