//go:build !linux

package shm

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

func defaultDir() string { return os.TempDir() }

// reserve extends the file and writes every page: without fallocate this
// is how a full filesystem shows up as ENOSPC now rather than a fault later.
func reserve(fd int, size int) error {
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		return err
	}
	return writeZeros(fd, size)
}

// reserveHoles does nothing here: without fallocate, pages cannot be
// reserved without writing them, and Open never writes.
func reserveHoles(fd int, size int) error { return nil }

// reopen opens the segment's path again. Classic POSIX locks belong to the
// process, not to the descriptor, so a second holder in the same process
// does not conflict with the first.
func (s *Segment) reopen(flag int) (*os.File, error) {
	if _, err := s.fd(); err != nil {
		return nil, err
	}
	fd, err := unix.Open(s.path, flag|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, fmt.Errorf("shm: %q: reopen for locking: %w", s.name, err)
	}
	return os.NewFile(uintptr(fd), s.path), nil
}

const lockOpen = unix.F_SETLK

func lockQuery(f *os.File, lk *unix.Flock_t) error {
	return retryEINTR(func() error { return unix.FcntlFlock(f.Fd(), unix.F_GETLK, lk) })
}

// fileID identifies a file beyond its name.
type fileID struct{ dev, ino uint64 }

func identify(fd int) (fileID, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fileID{}, err
	}
	return fileID{uint64(st.Dev), uint64(st.Ino)}, nil
}

func identifyPath(path string) (fileID, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return fileID{}, err
	}
	return fileID{uint64(st.Dev), uint64(st.Ino)}, nil
}
