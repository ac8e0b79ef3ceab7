package natsbridge

import (
	"encoding/binary"
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// seqState is In's record of the last stream sequence committed to the
// ring: a small file mapped shared, so that a store survives the process's
// death (the kernel keeps the page) without a system call per message.
//
// Layout: magic (8 bytes, little-endian), the stream's creation time in
// Unix nanoseconds (8, little-endian), the last committed stream sequence
// (8, in the host's byte order: the file never leaves the host). A stream
// deleted and created again has another creation time, and its sequences
// start over, so a mismatch resets the record.
type seqState struct {
	mem  []byte
	seq  *atomic.Uint64
	path string
}

const seqMagic = 0x7172627269646765 // "egdirbrq"

// openSeqState maps path, creating it if needed, for the stream created at
// created (Unix nanoseconds).
func openSeqState(path string, created int64) (*seqState, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state file: %w", err)
	}
	defer f.Close()
	const size = 4096
	if fi, err := f.Stat(); err != nil {
		return nil, fmt.Errorf("state file: %w", err)
	} else if fi.Size() < size {
		if err := f.Truncate(size); err != nil {
			return nil, fmt.Errorf("state file: %w", err)
		}
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("state file %s: mmap: %w", path, err)
	}
	s := &seqState{mem: mem, path: path, seq: (*atomic.Uint64)(unsafe.Pointer(&mem[16]))}
	if binary.LittleEndian.Uint64(mem[0:]) != seqMagic || int64(binary.LittleEndian.Uint64(mem[8:])) != created {
		s.seq.Store(0)
		binary.LittleEndian.PutUint64(mem[8:], uint64(created))
		binary.LittleEndian.PutUint64(mem[0:], seqMagic)
	}
	return s, nil
}

// Last returns the last committed stream sequence, 0 if none.
func (s *seqState) Last() uint64 {
	if s == nil {
		return 0
	}
	return s.seq.Load()
}

// Store records seq as committed.
func (s *seqState) Store(seq uint64) {
	if s != nil {
		s.seq.Store(seq)
	}
}

// Close unmaps the file.
func (s *seqState) Close() error {
	if s == nil || s.mem == nil {
		return nil
	}
	err := unix.Munmap(s.mem)
	s.mem = nil
	return err
}
