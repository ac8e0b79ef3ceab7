package shm

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// Lock is an advisory lock on a byte range of a segment's file, held through
// a descriptor of its own. On Linux it is an open-file-description lock: the
// kernel releases it when Unlock is called or the holding process dies, by
// any means, and only then. The range need not lie inside the file.
type Lock struct {
	mu  sync.Mutex
	f   *os.File
	off int64
	n   int64
}

// TryLock takes an exclusive lock on the n bytes at off, or fails at once
// with ErrLocked if any other holder has a lock overlapping them. Each call
// holds its lock through a new descriptor, so two TryLocks on one range
// conflict even within one process (on Linux).
func (s *Segment) TryLock(off, n int64) (*Lock, error) { return s.tryLock(off, n, unix.F_WRLCK) }

// TryRLock takes a shared lock on the n bytes at off: any number of shared
// holders may coexist, and an exclusive TryLock fails while one is held.
func (s *Segment) TryRLock(off, n int64) (*Lock, error) { return s.tryLock(off, n, unix.F_RDLCK) }

func (s *Segment) tryLock(off, n int64, typ int16) (*Lock, error) {
	if off < 0 || n <= 0 {
		return nil, fmt.Errorf("shm: %q: lock range [%d,+%d): %w", s.name, off, n, ErrOutOfBounds)
	}
	flag := unix.O_RDWR
	if typ == unix.F_RDLCK || s.readOnly {
		flag = unix.O_RDONLY
	}
	f, err := s.reopen(flag)
	if err != nil {
		return nil, err
	}
	lk := unix.Flock_t{Type: typ, Whence: io.SeekStart, Start: off, Len: n}
	err = retryEINTR(func() error { return unix.FcntlFlock(f.Fd(), lockOpen, &lk) })
	if err != nil {
		f.Close()
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
			return nil, fmt.Errorf("shm: %q: lock [%d,+%d): %w", s.name, off, n, ErrLocked)
		}
		return nil, fmt.Errorf("shm: %q: lock [%d,+%d): %w", s.name, off, n, err)
	}
	return &Lock{f: f, off: off, n: n}, nil
}

// Unlock releases the lock. Calling it again returns nil.
func (l *Lock) Unlock() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the last descriptor of the description drops the lock
	l.f = nil
	return err
}

// Locked reports whether any holder other than this Segment's own
// descriptor has a lock overlapping the n bytes at off. On Linux that
// includes locks held by this process through TryLock, and a held lock
// proves its holder alive; a dead process holds none.
func (s *Segment) Locked(off, n int64) (bool, error) {
	f, err := s.fd()
	if err != nil {
		return false, err
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart, Start: off, Len: n}
	if err := lockQuery(f, &lk); err != nil {
		return false, fmt.Errorf("shm: %q: query lock [%d,+%d): %w", s.name, off, n, err)
	}
	return lk.Type != unix.F_UNLCK, nil
}

// writeZeros writes size zero bytes at the start of fd, page by page.
func writeZeros(fd int, size int) error {
	var page [4096]byte
	for off := 0; off < size; {
		n := min(len(page), size-off)
		w, err := unix.Pwrite(fd, page[:n], int64(off))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		off += w
	}
	return nil
}
