"""Segment files and their OFD locks (Go: package shm)."""

import errno
import fcntl
import mmap
import os
import secrets
import stat
import struct

from .errors import NotSegment, Replaced, RoleBusy

DEFAULT_DIR = "/dev/shm"
MAX_NAME_LEN = 254

F_OFD_GETLK = getattr(fcntl, "F_OFD_GETLK", 36)
F_OFD_SETLK = getattr(fcntl, "F_OFD_SETLK", 37)

# struct flock on Linux x86-64: short l_type, l_whence; off_t l_start, l_len;
# pid_t l_pid; padded to 32 bytes.
_FLOCK = "hhqqi4x"


def clean_name(name):
    """Check name against shm_open's rules and return it without its optional
    leading '/'. Raises ValueError."""
    if not isinstance(name, str):
        raise TypeError("segment name must be a str, not %s" % type(name).__name__)
    n = name[1:] if name.startswith("/") else name
    why = None
    if n == "":
        why = "empty"
    elif len(n.encode()) > MAX_NAME_LEN:
        why = "%d bytes long, the limit is %d" % (len(n.encode()), MAX_NAME_LEN)
    elif "/" in n:
        why = "contains '/' after the first byte"
    elif "\0" in n:
        why = "contains a NUL byte"
    elif n in (".", ".."):
        why = "is a directory reference"
    if why:
        raise ValueError("invalid segment name %r: %s" % (name, why))
    return n


def random_name():
    return "rw_" + secrets.token_hex(8)


def _flock(fd, cmd, typ, byte):
    arg = struct.pack(_FLOCK, typ, os.SEEK_SET, byte, 1, 0)
    while True:
        try:
            return struct.unpack(_FLOCK, fcntl.fcntl(fd, cmd, arg))
        except InterruptedError:
            continue


class Segment:
    """A mapped segment file: descriptor, mapping, identity."""

    def __init__(self, name, path, fd, mm, owner, read_only):
        self.name, self.path, self.fd, self.mm = name, path, fd, mm
        self.owner, self.read_only = owner, read_only
        st = os.fstat(fd)
        self.ident = (st.st_dev, st.st_ino)
        self.size = len(mm)

    @classmethod
    def create(cls, name, size, dir=DEFAULT_DIR, perm=0o600):
        path = os.path.join(dir, name)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, perm)
        try:
            os.fchmod(fd, perm)  # exactly, whatever the umask
            reserve(fd, size)
            mm = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except BaseException:
            os.close(fd)
            try:
                os.unlink(path)
            except OSError:
                pass
            raise
        return cls(name, path, fd, mm, True, False)

    @classmethod
    def open(cls, name, dir=DEFAULT_DIR, read_only=False):
        """Open and map all of an existing segment. Returns None for an empty
        file (a segment an instant from being sized)."""
        path = os.path.join(dir, name)
        flags = (os.O_RDONLY if read_only else os.O_RDWR) | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
        try:
            fd = os.open(path, flags)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise NotSegment("%s: is a symlink" % path) from None
            if e.errno == errno.EISDIR:
                raise NotSegment("%s: is a directory" % path) from None
            raise
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise NotSegment("%s: not a regular file (mode %#o)" % (path, st.st_mode))
            if st.st_size == 0:
                os.close(fd)
                return None
            prot = mmap.PROT_READ if read_only else mmap.PROT_READ | mmap.PROT_WRITE
            mm = mmap.mmap(fd, st.st_size, mmap.MAP_SHARED, prot)
        except BaseException:
            try:
                os.close(fd)
            except OSError:
                pass
            raise
        return cls(name, path, fd, mm, False, read_only)

    # Locks. Each is held through an open file description of its own, opened
    # through /proc/self/fd so that it is the same file even if the name was
    # since unlinked or replaced: OFD locks belong to the description, and the
    # kernel drops them when the last descriptor of it is closed or the
    # process dies.

    def try_lock(self, byte, exclusive):
        """Take a lock on one byte and return its descriptor, or raise
        RoleBusy if another holder has a conflicting one."""
        flag = os.O_RDWR if exclusive and not self.read_only else os.O_RDONLY
        fd = os.open("/proc/self/fd/%d" % self.fd, flag | os.O_CLOEXEC)
        try:
            _flock(fd, F_OFD_SETLK, fcntl.F_WRLCK if exclusive else fcntl.F_RDLCK, byte)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EAGAIN, errno.EACCES):
                raise RoleBusy("%s: lock on byte %d is held" % (self.name, byte)) from None
            raise
        return fd

    @staticmethod
    def unlock(fd):
        os.close(fd)  # the last descriptor of the description: drops the lock

    def locked(self, byte):
        """Whether a holder other than this segment's own descriptor has a lock
        on the byte. A held lock proves its holder alive."""
        return _flock(self.fd, F_OFD_GETLK, fcntl.F_WRLCK, byte)[0] != fcntl.F_UNLCK

    def unlink(self):
        """Remove the name, unless it now refers to another file."""
        try:
            st = os.stat(self.path, follow_symlinks=False)
        except FileNotFoundError:
            raise
        if (st.st_dev, st.st_ino) != self.ident:
            raise Replaced("%s: the name now refers to another segment" % self.path)
        os.unlink(self.path)

    def close(self):
        """Unmap (unless views into the mapping are alive: then the mapping
        goes when the last of them does) and close the descriptor."""
        try:
            self.mm.close()
        except BufferError:
            pass  # exported views keep the mmap object, and the mapping, alive
        self.mm = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def reserve(fd, size):
    """Allocate every page, so that a full tmpfs is ENOSPC now, not SIGBUS at
    the first write."""
    while True:
        try:
            os.posix_fallocate(fd, 0, size)
            return
        except InterruptedError:
            continue
        except OSError as e:
            if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                raise
            break
    os.ftruncate(fd, size)
    zeros = bytes(min(size, 1 << 20))
    off = 0
    while off < size:
        off += os.pwrite(fd, zeros[: min(len(zeros), size - off)], off)
