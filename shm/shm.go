package shm

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Errors returned by this package. They are wrapped with context (the
// segment's name and the cause), so test for them with errors.Is.
var (
	// ErrInvalidName: the name breaks shm_open's rules.
	ErrInvalidName = errors.New("shm: invalid segment name")
	// ErrNotSegment: the name exists but is not a regular file (a directory,
	// a symlink, a device or a FIFO).
	ErrNotSegment = errors.New("shm: not a shared-memory segment")
	// ErrEmpty: the segment has size 0, so there is nothing to map.
	ErrEmpty = errors.New("shm: empty segment")
	// ErrClosed: the Segment was closed.
	ErrClosed = errors.New("shm: segment closed")
	// ErrLocked: TryLock found the range locked by someone else.
	ErrLocked = errors.New("shm: range locked by another holder")
	// ErrReplaced: Unlink found that the name now refers to another segment
	// than the one this Segment maps, and left it alone.
	ErrReplaced = errors.New("shm: name refers to a different segment")
	// ErrOutOfBounds: a View or Ptr would reach outside the buffer.
	ErrOutOfBounds = errors.New("shm: view out of bounds")
	// ErrMisaligned: a View or Ptr would not be aligned for its type.
	ErrMisaligned = errors.New("shm: view misaligned")
	// ErrNotPlain: a View or Ptr was asked for a type that holds pointers.
	ErrNotPlain = errors.New("shm: type is not plain data")
)

// maxNameLen is the longest name accepted: shm_open's names are file names,
// which must be shorter than NAME_MAX (255) bytes.
const maxNameLen = 254

// options collects what Option functions set.
type options struct {
	dir      string
	mode     os.FileMode
	readOnly bool
}

// Option configures Create, Open and Unlink.
type Option func(*options)

// Dir places segments in dir instead of /dev/shm: for tests, containers or a
// dedicated tmpfs. Both sides of a segment must use the same directory.
func Dir(dir string) Option { return func(o *options) { o.dir = dir } }

// Mode sets the permission bits of a segment made by Create (default 0600).
// The mode is applied exactly, regardless of the process umask, so 0660
// shares a segment with the file's group.
func Mode(perm os.FileMode) Option { return func(o *options) { o.mode = perm.Perm() } }

// ReadOnly makes Open map the segment read-only. Writing to its Bytes then
// faults, so a reader that must not write cannot.
func ReadOnly() Option { return func(o *options) { o.readOnly = true } }

func collect(opts []Option) options {
	o := options{dir: defaultDir(), mode: 0o600}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// CleanName checks name against shm_open's rules and returns it without its
// optional leading '/'. The error wraps ErrInvalidName and says why.
func CleanName(name string) (string, error) {
	n := strings.TrimPrefix(name, "/")
	var why string
	switch {
	case n == "":
		why = "empty"
	case len(n) > maxNameLen:
		why = fmt.Sprintf("%d bytes long, the limit is %d", len(n), maxNameLen)
	case strings.Contains(n, "/"):
		why = "contains '/' after the first byte"
	case strings.IndexByte(n, 0) >= 0:
		why = "contains a NUL byte"
	case n == "." || n == "..":
		why = "is a directory reference"
	default:
		return n, nil
	}
	return "", fmt.Errorf("%w %q: %s", ErrInvalidName, name, why)
}

// Segment is a mapped shared-memory segment. Its methods are safe for
// concurrent use, but Bytes must not be used after Close.
type Segment struct {
	name     string
	path     string
	size     int
	owner    bool
	readOnly bool

	mu   sync.Mutex // guards data and f against Close
	data []byte
	f    *os.File // kept open: locks and Unlink's identity check use it
	id   fileID   // the file's identity, for Unlink
}

// Name returns the segment's name, without a leading '/'.
func (s *Segment) Name() string { return s.name }

// Path returns the segment's file path, such as /dev/shm/NAME.
func (s *Segment) Path() string { return s.path }

// Size returns the mapped size in bytes, as it was when the segment was
// created or opened.
func (s *Segment) Size() int { return s.size }

// Owner reports whether this Segment created the segment.
func (s *Segment) Owner() bool { return s.owner }

// ReadOnly reports whether the segment is mapped read-only.
func (s *Segment) ReadOnly() bool { return s.readOnly }

// Bytes returns the mapping. The slice is valid until Close; touching it
// afterwards faults. Another process may change it at any moment.
func (s *Segment) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.data
}

// Create makes a new segment of size bytes, reserves its pages and maps it.
// The segment is zero-filled. If name is empty a unique name is made (see
// Name). The name must not exist: Create fails with an error satisfying
// errors.Is(err, fs.ErrExist) if it does.
//
// If the directory has no room for size bytes, Create returns an error
// wrapping syscall.ENOSPC and removes the file it made.
func Create(name string, size int, opts ...Option) (*Segment, error) {
	o := collect(opts)
	if size <= 0 {
		return nil, fmt.Errorf("shm: create %q: size %d: %w", name, size, ErrEmpty)
	}
	if name == "" {
		// Unique names, as SharedMemory(create=True) makes them; retry on
		// the vanishing chance of a collision.
		for range 16 {
			s, err := create(randomName(), size, o)
			if errors.Is(err, fs.ErrExist) {
				continue
			}
			return s, err
		}
		return nil, fmt.Errorf("shm: create: no free unique name: %w", fs.ErrExist)
	}
	n, err := CleanName(name)
	if err != nil {
		return nil, err
	}
	return create(n, size, o)
}

func randomName() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux.
	return "rw_" + hex.EncodeToString(b[:])
}

func create(name string, size int, o options) (*Segment, error) {
	path := filepath.Join(o.dir, name)
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(o.mode))
	if err != nil {
		return nil, fmt.Errorf("shm: create %q: %w", name, &fs.PathError{Op: "open", Path: path, Err: err})
	}
	f := os.NewFile(uintptr(fd), path)
	fail := func(op string, err error) (*Segment, error) {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("shm: create %q: %s: %w", name, op, err)
	}
	// Apply the mode exactly: open(2) masked it with the umask.
	if err := f.Chmod(o.mode); err != nil {
		return fail("chmod", err)
	}
	if err := reserve(fd, size); err != nil {
		return fail(fmt.Sprintf("reserve %d bytes", size), err)
	}
	data, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fail("mmap", err)
	}
	id, err := identify(fd)
	if err != nil {
		unix.Munmap(data)
		return fail("stat", err)
	}
	return &Segment{name: name, path: path, size: size, owner: true, data: data, f: f, id: id}, nil
}

// Open attaches to the existing segment name and maps all of it; the size
// is read from the file. A missing name gives an error satisfying
// errors.Is(err, fs.ErrNotExist); a directory, symlink or other non-regular
// file (a socket, a FIFO) gives ErrNotSegment, and a zero-size segment
// ErrEmpty. Open never changes the segment's bytes; opened writable, it
// reserves any page the file lacks (a file sized with ftruncate alone), so
// that a full filesystem is an error wrapping syscall.ENOSPC here, never a
// SIGBUS at the first write.
func Open(name string, opts ...Option) (*Segment, error) {
	o := collect(opts)
	n, err := CleanName(name)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(o.dir, n)
	flags := unix.O_RDWR
	prot := unix.PROT_READ | unix.PROT_WRITE
	if o.readOnly {
		flags, prot = unix.O_RDONLY, unix.PROT_READ
	}
	// O_NONBLOCK: a FIFO planted under the name must not hang the opener.
	fd, err := unix.Open(path, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		switch err {
		case unix.ELOOP:
			return nil, fmt.Errorf("shm: open %q: is a symlink: %w", n, ErrNotSegment)
		case unix.EISDIR:
			return nil, fmt.Errorf("shm: open %q: is a directory: %w", n, ErrNotSegment)
		case unix.ENXIO:
			// open(2) of a UNIX-domain socket.
			return nil, fmt.Errorf("shm: open %q: is a socket: %w", n, ErrNotSegment)
		}
		return nil, fmt.Errorf("shm: open %q: %w", n, &fs.PathError{Op: "open", Path: path, Err: err})
	}
	f := os.NewFile(uintptr(fd), path)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("shm: open %q: fstat: %w", n, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		f.Close()
		return nil, fmt.Errorf("shm: open %q: not a regular file (mode %#o): %w", n, st.Mode, ErrNotSegment)
	}
	if st.Size <= 0 {
		f.Close()
		return nil, fmt.Errorf("shm: open %q: %w", n, ErrEmpty)
	}
	if uint64(st.Size) > uint64(maxInt) {
		f.Close()
		return nil, fmt.Errorf("shm: open %q: size %d does not fit in memory: %w", n, st.Size, ErrNotSegment)
	}
	size := int(st.Size)
	if !o.readOnly {
		// A segment made by another tool with ftruncate alone has no pages
		// behind it: on a full filesystem the first write would be a
		// SIGBUS. Reserve them now (allocating holes changes no byte), so
		// that it is ENOSPC here instead.
		if err := reserveHoles(fd, size); err != nil {
			f.Close()
			return nil, fmt.Errorf("shm: open %q: reserve %d bytes: %w", n, size, err)
		}
	}
	data, err := unix.Mmap(fd, 0, size, prot, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("shm: open %q: mmap %d bytes: %w", n, size, err)
	}
	id, err := identify(fd)
	if err != nil {
		unix.Munmap(data)
		f.Close()
		return nil, fmt.Errorf("shm: open %q: stat: %w", n, err)
	}
	return &Segment{name: n, path: path, size: size, readOnly: o.readOnly, data: data, f: f, id: id}, nil
}

const maxInt = int(^uint(0) >> 1)

// Close unmaps the segment and closes its descriptor, releasing every lock
// taken through it. It never removes the segment's name. Calling Close again
// returns nil.
func (s *Segment) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	var errs []error
	if s.data != nil {
		if err := unix.Munmap(s.data); err != nil {
			errs = append(errs, fmt.Errorf("munmap: %w", err))
		}
		s.data = nil
	}
	if err := s.f.Close(); err != nil {
		errs = append(errs, err)
	}
	s.f = nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("shm: close %q: %w", s.name, err)
	}
	return nil
}

// Unlink removes the segment's name, so that no new process can attach; the
// memory lives on until every process has unmapped it. It is the only call
// in this package that removes a name, and it refuses (ErrReplaced) when the
// name has since been given to another segment. It works on a closed
// Segment too. The refusal is exact while the Segment is open; after Close
// the file may have been freed and its inode number recycled, and a segment
// made under the same name within the same clock tick is not told apart.
func (s *Segment) Unlink() error {
	id, err := identifyPath(s.path)
	if err != nil {
		return fmt.Errorf("shm: unlink %q: %w", s.name, &fs.PathError{Op: "stat", Path: s.path, Err: err})
	}
	if id != s.id {
		return fmt.Errorf("shm: unlink %q: %w", s.name, ErrReplaced)
	}
	if err := unix.Unlink(s.path); err != nil {
		return fmt.Errorf("shm: unlink %q: %w", s.name, &fs.PathError{Op: "unlink", Path: s.path, Err: err})
	}
	return nil
}

// Unlink removes the segment called name, as shm_unlink(3) does. It is for
// owners that no longer hold their Segment and for cleanup tools that have
// proven a segment's owner dead.
func Unlink(name string, opts ...Option) error {
	o := collect(opts)
	n, err := CleanName(name)
	if err != nil {
		return err
	}
	path := filepath.Join(o.dir, n)
	if err := unix.Unlink(path); err != nil {
		return fmt.Errorf("shm: unlink %q: %w", n, &fs.PathError{Op: "unlink", Path: path, Err: err})
	}
	return nil
}

// FileSize returns the size the segment's file has now, which another
// process with write access may have changed since it was mapped: a file
// shorter than the mapping makes every access beyond its end a SIGBUS.
// Only a sealed memfd could prevent that; named segments rely on their
// permissions (0600 by default: only the owner's user can shrink them).
func (s *Segment) FileSize() (int64, error) {
	f, err := s.fd()
	if err != nil {
		return 0, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return 0, fmt.Errorf("shm: %q: fstat: %w", s.name, err)
	}
	return st.Size, nil
}

// fd returns the open descriptor, or ErrClosed.
func (s *Segment) fd() (*os.File, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil, fmt.Errorf("shm: %q: %w", s.name, ErrClosed)
	}
	return s.f, nil
}

// retryEINTR calls fn until it returns something other than EINTR.
func retryEINTR(fn func() error) error {
	for {
		if err := fn(); err != syscall.EINTR {
			return err
		}
	}
}
