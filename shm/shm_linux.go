package shm

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

func defaultDir() string { return "/dev/shm" }

// reserve allocates every page of the first size bytes of fd, so that a
// full filesystem is ENOSPC now rather than SIGBUS at the first write.
// Filesystems without fallocate get the file extended and every page
// written, which reserves as surely.
func reserve(fd int, size int) error {
	err := retryEINTR(func() error { return unix.Fallocate(fd, 0, 0, int64(size)) })
	if err != unix.EOPNOTSUPP {
		return err
	}
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		return err
	}
	return writeZeros(fd, size)
}

// reserveHoles allocates the pages of the first size bytes of fd that have
// none, without changing a byte. Filesystems without fallocate are left as
// they are.
func reserveHoles(fd int, size int) error {
	err := retryEINTR(func() error { return unix.Fallocate(fd, 0, 0, int64(size)) })
	if err == unix.EOPNOTSUPP {
		return nil
	}
	return err
}

// reopen opens a new open file description of the segment's file, through
// /proc so that it is the same file even if the name was since unlinked or
// replaced. OFD locks are per open file description: each lock holder needs
// its own.
func (s *Segment) reopen(flag int) (*os.File, error) {
	f, err := s.fd()
	if err != nil {
		return nil, err
	}
	p := "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
	fd, err := unix.Open(p, flag|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("shm: %q: reopen for locking: %w", s.name, err)
	}
	return os.NewFile(uintptr(fd), s.path), nil
}

const lockOpen = unix.F_OFD_SETLK

func lockQuery(f *os.File, lk *unix.Flock_t) error {
	return retryEINTR(func() error { return unix.FcntlFlock(f.Fd(), unix.F_OFD_GETLK, lk) })
}

// fileID identifies a file beyond its name. Inode numbers are recycled on
// tmpfs once a file is freed, so the birth time is part of the identity.
type fileID struct {
	dev, ino  uint64
	btimeSec  int64
	btimeNsec uint32
}

func identify(fd int) (fileID, error) {
	return statxID(fd, "", unix.AT_EMPTY_PATH)
}

func identifyPath(path string) (fileID, error) {
	return statxID(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW)
}

func statxID(dirfd int, path string, flags int) (fileID, error) {
	var st unix.Statx_t
	if err := unix.Statx(dirfd, path, flags, unix.STATX_INO|unix.STATX_BTIME, &st); err != nil {
		return fileID{}, err
	}
	id := fileID{dev: unix.Mkdev(st.Dev_major, st.Dev_minor), ino: st.Ino}
	if st.Mask&unix.STATX_BTIME != 0 {
		id.btimeSec, id.btimeNsec = st.Btime.Sec, st.Btime.Nsec
	}
	return id, nil
}
