"""SharedMemory: multiprocessing.shared_memory.SharedMemory's interface, with
the ownership rule that only an explicit unlink() removes a segment.

The standard library's class (before Python 3.13's track=False) registers
every segment it touches, created or merely attached, with the
multiprocessing resource tracker, which unlinks it when that process exits
and warns of "leaked shared_memory objects" (cpython gh-82300). A consumer
that attached to a producer's segment thus destroyed it on exit. This class
never talks to the resource tracker: attaching, close() and process exit
leave the segment in place on every Python version; unlink() removes it, and
should be called by the owner only.
"""

import errno
import mmap
import os
import secrets
import stat

from ._segment import DEFAULT_DIR, clean_name, reserve

__all__ = ["SharedMemory"]

try:  # the standard library's shm_open wrappers (POSIX builds of CPython)
    import _posixshmem
except ImportError:  # pragma: no cover
    _posixshmem = None


def _use_dir():
    return os.path.isdir(DEFAULT_DIR)


class SharedMemory:
    """A named POSIX shared-memory segment (shm_open), mapped read-write.

    SharedMemory(name=None, create=False, size=0): with create=True, make a new
    segment of size bytes (a unique name if name is None; FileExistsError if
    the name exists); otherwise attach to the existing segment name (its size
    is the file's). Names are those of shm_open: "x" is /dev/shm/x on Linux,
    the same namespace as ringwire rings and the standard library's
    SharedMemory, so they interoperate.

    Attributes: name (without a leading '/'), buf (a memoryview of the whole
    segment), size. close() unmaps and never removes; unlink() removes the
    name (the owner's job) and the memory lives on until every process has
    unmapped it. Nothing is registered with multiprocessing's resource
    tracker, so no process removes the segment by exiting. Also a context
    manager (exit closes, never unlinks).

    NumPy over a segment, from two processes:

        >>> import numpy as np, ringwire
        >>> shm = ringwire.SharedMemory(create=True, size=8 * 1000)
        >>> a = np.ndarray((1000,), dtype=np.float64, buffer=shm.buf)
        >>> a[:] = np.arange(1000)
        >>> # in another process, attach by name:
        >>> other = ringwire.SharedMemory(shm.name)
        >>> b = np.ndarray((1000,), dtype=np.float64, buffer=other.buf)
        >>> float(b[999])
        999.0
        >>> del b; other.close()          # the segment stays
        >>> del a; shm.close(); shm.unlink()  # the owner removes it

    An array made over buf must be deleted before close(): close() refuses
    (BufferError) while views of the mapping are alive, rather than unmapping
    memory that an array still points to.
    """

    _PREFIX = "psm_"

    def __init__(self, name=None, create=False, size=0, track=False):
        # track is accepted for source compatibility with Python 3.13's
        # SharedMemory and ignored: segments are never tracked.
        if size < 0:
            raise ValueError("'size' must be a positive integer")
        self._fd = -1
        self._mmap = None
        self._buf = None
        if create:
            if size <= 0:
                raise ValueError("'size' must be a positive number different from zero")
            if name is None:
                for _ in range(64):
                    try:
                        self._fd = self._open(self._PREFIX + secrets.token_hex(8), True)
                        break
                    except FileExistsError:
                        continue
                else:
                    raise FileExistsError(errno.EEXIST, "no free unique name")
            else:
                self._fd = self._open(clean_name(name), True)
            try:
                if _use_dir():
                    reserve(self._fd, size)  # pages reserved now: ENOSPC, not SIGBUS later
                else:
                    os.ftruncate(self._fd, size)
            except BaseException:
                self._abort(unlink=True)
                raise
        else:
            if name is None:
                raise ValueError("'name' can only be None if create=True")
            self._fd = self._open(clean_name(name), False)
            try:
                st = os.fstat(self._fd)
                if not stat.S_ISREG(st.st_mode):
                    raise ValueError("%r is not a shared-memory segment" % name)
                size = st.st_size
                if size == 0:
                    raise ValueError("cannot attach to the empty segment %r" % name)
            except BaseException:
                self._abort(unlink=False)
                raise
        try:
            self._mmap = mmap.mmap(self._fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except BaseException:
            self._abort(unlink=create)
            raise
        self._size = size
        self._buf = memoryview(self._mmap)
        self._owner = bool(create)

    def _open(self, name, create):
        self._name = name
        flags = os.O_RDWR
        if create:
            flags |= os.O_CREAT | os.O_EXCL
        if _use_dir():
            self._path = os.path.join(DEFAULT_DIR, name)
            return os.open(self._path, flags | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o600)
        if _posixshmem is None:  # pragma: no cover
            raise OSError(errno.ENOSYS, "no POSIX shared memory on this platform")
        self._path = None
        return _posixshmem.shm_open("/" + name, flags, mode=0o600)

    def _abort(self, unlink):
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if unlink:
            self._unlink_name()

    def _unlink_name(self):
        if self._path is not None:
            os.unlink(self._path)
        else:  # pragma: no cover
            _posixshmem.shm_unlink("/" + self._name)

    @property
    def name(self):
        """The segment's name, without a leading '/'."""
        return self._name

    @property
    def buf(self):
        """A memoryview of the whole segment (None after close)."""
        return self._buf

    @property
    def size(self):
        """The segment's size in bytes."""
        return self._size

    def close(self):
        """Unmap the segment and close its descriptor; never removes it.
        BufferError while views of buf (NumPy arrays, slices) are alive."""
        if self._buf is not None:
            self._buf.release()
            self._buf = None
        if self._mmap is not None:
            try:
                self._mmap.close()
            except BufferError:
                self._buf = memoryview(self._mmap)
                raise
            self._mmap = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def unlink(self):
        """Remove the segment's name: the owner's job. Processes attached keep
        their mapping until they close it."""
        self._unlink_name()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __reduce__(self):
        return (self.__class__, (self.name, False, self.size))

    def __repr__(self):
        return "%s(%r, size=%d)" % (self.__class__.__name__, self.name, self.size)

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
