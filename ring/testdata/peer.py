#!/usr/bin/env python3
"""A ringwire SPSC peer in pure Python (standard library only).

Written from docs/LAYOUT.md and docs/FRAME.md alone, as a test of those
documents: ring/python_peer_test.go runs it against the Go implementation.
The section numbers (§8.6 ...) refer to docs/LAYOUT.md.

Usage:
  peer.py info    PATH
  peer.py consume PATH [--timeout S] [--check-pattern MAXLEN] [--die-after N]
  peer.py produce PATH --count N --max-len M [--timeout S] [--die-after N]

PATH is the segment file (/dev/shm/NAME, or a file in another directory).

consume takes the consumer role, reads every message until the producer
closes the ring and the ring is empty (end of stream), and prints
  {"count": N, "bytes": B, "sha256": HEX, "head": H}
where sha256 is over, for each message in order, its length as a
little-endian u32 followed by its payload. With --check-pattern it also
checks each message against the test pattern (below) and reports
"first_bad", the index of the first message that differs, or -1.

produce takes the producer role, sends --count messages of the test pattern
and closes; it prints the same summary of what it sent.

info validates the header and prints its fields and the ring's state.

The test pattern, shared with the Go test: pool[k] = ((k*131) ^ (k>>3)) & 0xff
for k in [0, 4096+M); message i is pool[s : s+n] with n = (i*7919) % (M+1)
and s = (i*37) % 4096.

Errors print {"error": KIND, "detail": TEXT} and exit with status 1. KIND is
one of the Go sentinels' names: not-exist, not-segment, not-ready, foreign,
version, truncated, corrupt, busy, closed, peer-dead, too-large,
unsupported, timeout. --die-after N makes the peer exit abruptly (status 3,
no clean close, as if killed) after N messages.

Memory model. Python has no atomics, so this peer relies on what CPython
does on x86-64 (and x86): the control and length words are read and written
through memoryview casts to native 'I' and 'Q', whose element accesses
compile to one aligned 4- or 8-byte load or store: untorn. Under x86's TSO
every load is an acquire and every store a release, which is all the data
path needs (LAYOUT.md §9). (struct.unpack_from('<I') is not used on those
words: it reads byte by byte and could tear.) What x86 does not give a plain
store followed by a load is the StoreLoad ordering of the wake-up protocol,
so this peer uses the conservative waker of §8.7: it loads the announcement
after each store as usual, and in addition adds 1 to the peer's futex word
and wakes it, unconditionally, before it goes idle (before it sleeps or
waits, and at close). The add-and-wake is one FUTEX_WAKE_OP system call
through ctypes, which is atomic in the kernel. This peer itself never
sleeps on a futex: it polls with short sleeps and never announces itself,
which the protocol allows; its peer then never needs to wake it.
On a weakly ordered CPU (arm64, ...) plain loads are not acquires, and a
real peer there needs C11-style atomics; the Go test runs this peer on x86
only.
"""

import argparse
import errno
import fcntl
import hashlib
import json
import mmap
import os
import platform
import stat
import struct
import sys
import time

# ---- LAYOUT.md §11: constants ------------------------------------------------

MAGIC = 0x45524957474E4952  # "RINGWIRE" read as a little-endian u64
VERSION = 1

OFF_MAGIC = 0
OFF_VERSION = 8
OFF_FLAGS = 12
OFF_CAPACITY = 16
OFF_DATAOFF = 24
OFF_SEGSIZE = 32
OFF_MAXFRAME = 40
OFF_SLOTS = 44
OFF_CREATED = 48
OFF_CREATOR = 56

OFF_TAIL = 128
OFF_HEAD = 256
OFF_CONS_SEQ = 384
OFF_CONS_PARKED = 388
OFF_CONS_STATE = 392
OFF_PROD_SEQ = 512
OFF_PROD_WAITERS = 516
OFF_PROD_STATE = 520
OFF_STAT_RECV_MSGS = 640
OFF_STAT_RECV_BYTES = 648
OFF_STAT_SKIPPED = 656
OFF_STAT_SENT_MSGS = 768
OFF_STAT_SENT_BYTES = 776
OFF_STAT_FULL = 784

OFF_SLOT_TABLE = 1024
SLOT_SIZE = 128
OFF_SLOT_PID = 4

LOCK_OWNER = 0
LOCK_ATTACHED = 1
LOCK_CONSUMER = 256
LOCK_PRODUCER = OFF_SLOT_TABLE  # slot 0

FLAG_MPSC = 1
FLAG_CHECKSUM = 2
KNOWN_FLAGS = FLAG_MPSC | FLAG_CHECKSUM

PAGE = 4096
MIN_CAPACITY = 4096
MAX_CAPACITY = 1 << 40
MAX_SLOTS = 4096
RESERVE = 8  # the next record's length word (§7, invariant 2)

STATE_NONE = 0
STATE_ATTACHED = 1
STATE_CLOSED = 2

# FRAME.md
TYPE_DATA = 1
TYPE_PADDING = 2
FRAME_FLAG_CHECKSUM = 1
HEADER_SIZE = 8
CHECKSUM_SIZE = 8

# Linux
F_OFD_GETLK = getattr(fcntl, "F_OFD_GETLK", 36)
F_OFD_SETLK = getattr(fcntl, "F_OFD_SETLK", 37)
FUTEX_WAKE = 1
FUTEX_WAKE_OP = 5
FUTEX_OP_ADD = 1
FUTEX_OP_CMP_EQ = 0
# FUTEX_OP(FUTEX_OP_ADD, 1, FUTEX_OP_CMP_EQ, 0): *word += 1, atomically.
FUTEX_OP_ADD_ONE = (FUTEX_OP_ADD << 28) | (FUTEX_OP_CMP_EQ << 24) | (1 << 12) | 0
WAKE_ALL = 0x7FFFFFFF
SYS_FUTEX = {
    "x86_64": 202, "amd64": 202, "i386": 240, "i686": 240,
    "aarch64": 98, "arm64": 98, "riscv64": 98, "loongarch64": 98,
}

PEER_CHECK = 0.05  # seconds between liveness checks while waiting
SPIN = 200  # empty polls before sleeping between polls
NAP = 0.0001  # seconds slept between polls once idle

LITTLE = sys.byteorder == "little"


class RingError(Exception):
    def __init__(self, kind, detail):
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


class NotReady(Exception):
    def __init__(self, detail, foreign_at_timeout=False):
        super().__init__(detail)
        # The verdict if the timeout expires on this answer (§8.2).
        self.foreign_at_timeout = foreign_at_timeout


def align8(n):
    return (n + 7) & ~7


def align_up(n, a):
    return (n + a - 1) & ~(a - 1)


def _swap32(v):
    return int.from_bytes(v.to_bytes(4, "little"), "big")


def _swap64(v):
    return int.from_bytes(v.to_bytes(8, "little"), "big")


# ---- XXH64, seed 0 (FRAME.md: the checksum) ----------------------------------

_P1 = 11400714785074694791
_P2 = 14029467366897019727
_P3 = 1609587929392839161
_P4 = 9650029242287828579
_P5 = 2870177450012600261
_M = (1 << 64) - 1


def _rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & _M


def _round(acc, lane):
    acc = (acc + lane * _P2) & _M
    return (_rotl(acc, 31) * _P1) & _M


def _merge(h, v):
    h ^= _round(0, v)
    return (h * _P1 + _P4) & _M


def xxh64(data, seed=0):
    n = len(data)
    i = 0
    if n >= 32:
        v1 = (seed + _P1 + _P2) & _M
        v2 = (seed + _P2) & _M
        v3 = seed & _M
        v4 = (seed - _P1) & _M
        stripes = n // 32
        lanes = struct.unpack_from("<%dQ" % (4 * stripes), data, 0)
        for j in range(0, 4 * stripes, 4):
            v1 = _round(v1, lanes[j])
            v2 = _round(v2, lanes[j + 1])
            v3 = _round(v3, lanes[j + 2])
            v4 = _round(v4, lanes[j + 3])
        i = 32 * stripes
        h = (_rotl(v1, 1) + _rotl(v2, 7) + _rotl(v3, 12) + _rotl(v4, 18)) & _M
        h = _merge(h, v1)
        h = _merge(h, v2)
        h = _merge(h, v3)
        h = _merge(h, v4)
    else:
        h = (seed + _P5) & _M
    h = (h + n) & _M
    while i + 8 <= n:
        (lane,) = struct.unpack_from("<Q", data, i)
        h ^= _round(0, lane)
        h = (_rotl(h, 27) * _P1 + _P4) & _M
        i += 8
    if i + 4 <= n:
        (lane,) = struct.unpack_from("<I", data, i)
        h ^= (lane * _P1) & _M
        h = (_rotl(h, 23) * _P2 + _P3) & _M
        i += 4
    while i < n:
        h ^= (data[i] * _P5) & _M
        h = (_rotl(h, 11) * _P1) & _M
        i += 1
    h ^= h >> 33
    h = (h * _P2) & _M
    h ^= h >> 29
    h = (h * _P3) & _M
    h ^= h >> 32
    return h


# ---- OFD locks (§6) ------------------------------------------------------------

# struct flock: short l_type, l_whence; off_t l_start, l_len; pid_t l_pid.
_FLOCK = "@hhqqi4x"


def _flock(fd, cmd, typ, byte):
    arg = struct.pack(_FLOCK, typ, os.SEEK_SET, byte, 1, 0)
    return struct.unpack(_FLOCK, fcntl.fcntl(fd, cmd, arg))


def lock_byte(fd, byte, exclusive):
    """Take an OFD lock on one byte; raise RingError("busy") if held."""
    try:
        _flock(fd, F_OFD_SETLK, fcntl.F_WRLCK if exclusive else fcntl.F_RDLCK, byte)
    except OSError as e:
        if e.errno in (errno.EAGAIN, errno.EACCES):
            raise RingError("busy", "lock on byte %d is held" % byte)
        raise


def unlock_byte(fd, byte):
    _flock(fd, F_OFD_SETLK, fcntl.F_UNLCK, byte)


def byte_held(fd, byte):
    """Whether another open file description holds a lock on the byte."""
    return _flock(fd, F_OFD_GETLK, fcntl.F_WRLCK, byte)[0] != fcntl.F_UNLCK


# ---- futex waker (§8.7) ----------------------------------------------------------

class Waker:
    """Adds 1 to a futex word in the segment and wakes its sleepers, in one
    FUTEX_WAKE_OP system call (atomic in the kernel). Without ctypes or a
    known system call number it does nothing and says so once: the Go side
    then notices new data or room only at its peer-check timeout."""

    def __init__(self, mm):
        self._buf = None
        self._warned = False
        self.nr = SYS_FUTEX.get(platform.machine().lower())
        try:
            import ctypes
        except ImportError:
            self.ctypes = None
            return
        self.ctypes = ctypes
        if self.nr is None:
            return
        self._buf = (ctypes.c_char * len(mm)).from_buffer(mm)
        self.base = ctypes.addressof(self._buf)
        libc = ctypes.CDLL(None, use_errno=True)
        self._syscall = libc.syscall
        self._syscall.restype = ctypes.c_long

    def bump_and_wake(self, off, count):
        if self._buf is None:
            self._warn("no ctypes or unknown futex system call number")
            return
        c = self.ctypes
        addr = self.base + off
        # futex(addr, FUTEX_WAKE_OP, count, nr_wake2=0, addr, ADD 1): no
        # FUTEX_PRIVATE_FLAG, the word is shared with another process.
        r = self._syscall(c.c_long(self.nr), c.c_void_p(addr), c.c_long(FUTEX_WAKE_OP),
                          c.c_long(count), c.c_void_p(0), c.c_void_p(addr),
                          c.c_long(FUTEX_OP_ADD_ONE))
        if r < 0:
            self._warn("futex: %s" % os.strerror(c.get_errno()))

    def _warn(self, why):
        if not self._warned:
            self._warned = True
            print("peer.py: cannot wake the Go side (%s); it will poll" % why, file=sys.stderr)

    def close(self):
        self._buf = None


# ---- the ring ---------------------------------------------------------------------

class Ring:
    def __init__(self, path, fd, mm, read_only):
        self.path = path
        self.fd = fd
        self.mm = mm
        self.read_only = read_only
        self.mv = memoryview(mm)
        # Native 4- and 8-byte views: one untorn access per element (see the
        # module comment). The file size is a multiple of 8 once validated.
        self.u32 = self.mv[: len(mm) & ~7].cast("I")
        self.u64 = self.mv[: len(mm) & ~7].cast("Q")
        self.locks = []
        self.waker = None

    # Atomic words (§1: little-endian; §9: x86 loads acquire, stores release).
    def ld32(self, off):
        v = self.u32[off >> 2]
        return v if LITTLE else _swap32(v)

    def st32(self, off, v):
        self.u32[off >> 2] = v if LITTLE else _swap32(v)

    def ld64(self, off):
        v = self.u64[off >> 3]
        return v if LITTLE else _swap64(v)

    def st64(self, off, v):
        self.u64[off >> 3] = (v if LITTLE else _swap64(v)) & _M

    # §8.2
    @staticmethod
    def open(path, timeout, read_only=False):
        deadline = time.monotonic() + timeout
        pause = 50e-6
        while True:
            try:
                return Ring._open_once(path, read_only)
            except NotReady as e:
                if time.monotonic() >= deadline:
                    if e.foreign_at_timeout:
                        raise RingError("foreign", "magic 0 and header bytes a creator would not write")
                    raise RingError("not-ready", str(e))
                time.sleep(pause)
                pause = min(2 * pause, 0.01)

    @staticmethod
    def _open_once(path, read_only):
        flags = (os.O_RDONLY if read_only else os.O_RDWR) | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
        try:
            fd = os.open(path, flags)
        except FileNotFoundError:
            raise RingError("not-exist", "%s does not exist" % path)
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.EISDIR):
                raise RingError("not-segment", "%s: %s" % (path, e.strerror))
            raise
        mm = None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise RingError("not-segment", "%s is not a regular file" % path)
            if st.st_size == 0:
                raise NotReady("empty segment")
            prot = mmap.PROT_READ if read_only else mmap.PROT_READ | mmap.PROT_WRITE
            mm = mmap.mmap(fd, st.st_size, mmap.MAP_SHARED, prot)
            Ring._validate(mm)
            r = Ring(path, fd, mm, read_only)
            r._geometry()
            return r
        except BaseException:
            if mm is not None:
                mm.close()
            os.close(fd)
            raise

    @staticmethod
    def _validate(mm):
        size = len(mm)
        if size < 8:
            raise RingError("foreign", "%d bytes, too small for a ring header" % size)
        # The magic is read with one 8-byte load (the publication point).
        with memoryview(mm) as mv, mv[:8].cast("Q") as w:
            m = w[0] if LITTLE else _swap64(w[0])
        if m == 0 and size >= 64:
            # A creator writes only the header fields, version first, before
            # it stores the magic (§8.1).
            (version,) = struct.unpack_from("<I", mm, OFF_VERSION)
            if version not in (0, VERSION):
                raise RingError("foreign", "magic 0, version word %#x" % version)
            if any(mm[64:min(size, OFF_SLOT_TABLE)]):
                raise RingError("foreign", "magic 0 with data in the control blocks")
            raise NotReady("header not published",
                           foreign_at_timeout=version != VERSION and any(mm[:64]))
        if m == 0:
            raise NotReady("header not published")
        if m != MAGIC:
            raise RingError("foreign", "magic %#018x" % m)
        if size < OFF_SLOT_TABLE:
            raise RingError("truncated", "%d bytes, less than the 1024-byte header" % size)
        (version, flags, capacity, data_off, seg_size, max_frame, slots) = struct.unpack_from(
            "<IIQQQII", mm, OFF_VERSION)
        if version != VERSION:
            raise RingError("version", "layout version %d, this peer reads %d" % (version, VERSION))
        if flags & ~KNOWN_FLAGS:
            raise RingError("corrupt", "unknown flags %#x" % flags)
        if capacity < MIN_CAPACITY or capacity > MAX_CAPACITY or capacity & (capacity - 1):
            raise RingError("corrupt", "capacity %d is not a power of two in [4096, 2^40]" % capacity)
        if slots < 1 or slots > MAX_SLOTS or (not flags & FLAG_MPSC and slots != 1):
            raise RingError("corrupt", "%d producer slots" % slots)
        want = align_up(OFF_SLOT_TABLE + slots * SLOT_SIZE, PAGE)
        if data_off != want:
            raise RingError("corrupt", "data offset %d, want %d" % (data_off, want))
        if seg_size != data_off + capacity:
            raise RingError("corrupt", "segment size %d, want %d" % (seg_size, data_off + capacity))
        hl = HEADER_SIZE + (CHECKSUM_SIZE if flags & FLAG_CHECKSUM else 0)
        if max_frame < hl or max_frame > capacity // 2:
            raise RingError("corrupt", "max frame %d outside [%d, %d]" % (max_frame, hl, capacity // 2))
        if size < seg_size:
            raise RingError("truncated", "%d bytes, header says %d" % (size, seg_size))

    def _geometry(self):
        (self.version, self.flags, self.capacity, self.data_off, self.seg_size,
         self.max_frame, self.slots, self.created, self.creator) = struct.unpack_from(
            "<IIQQQIIqI", self.mm, OFF_VERSION)
        self.mask = self.capacity - 1
        self.checksum = bool(self.flags & FLAG_CHECKSUM)
        self.frame_flags = FRAME_FLAG_CHECKSUM if self.checksum else 0
        self.hl = HEADER_SIZE + (CHECKSUM_SIZE if self.checksum else 0)
        self.max_payload = self.max_frame - self.hl

    def attach(self):
        """The attached lock (§8.2 step 5), and the SPSC-only check."""
        if self.flags & FLAG_MPSC:
            raise RingError("unsupported", "MPSC ring: this peer implements SPSC only")
        lock_byte(self.fd, LOCK_ATTACHED, exclusive=False)
        self.locks.append(LOCK_ATTACHED)
        self.waker = Waker(self.mm)

    def close(self):
        for b in reversed(self.locks):
            unlock_byte(self.fd, b)
        self.locks = []
        if self.waker is not None:
            self.waker.close()
        self.u32.release()
        self.u64.release()
        self.mv.release()
        self.mm.close()
        os.close(self.fd)

    def add_stat(self, off, n):
        # Single writer of its statistics block (§3, blocks 5 and 6).
        if n:
            self.st64(off, self.ld64(off) + n)

    def corrupt(self, pos, what):
        return RingError("corrupt", "position %d: %s" % (pos, what))

    def frame_at(self, pos):
        """Validate the committed frame at position pos (FRAME.md "Validation",
        with the data region as the buffer and maxLength = maxFrame, plus the
        ring's rules of §5). Returns (type, length, size); the length word was
        already loaded by the caller and is re-read here as plain bytes."""
        off = pos & self.mask
        base = self.data_off + off
        length, typ, flags = struct.unpack_from("<iHH", self.mm, base)
        room = self.capacity - off
        if length <= 0:
            raise self.corrupt(pos, "length %d" % length)
        if typ == TYPE_DATA:
            if flags & ~FRAME_FLAG_CHECKSUM & 0xFFFF:
                raise self.corrupt(pos, "reserved frame flags %#x" % flags)
        elif typ == TYPE_PADDING:
            if flags != 0:
                raise self.corrupt(pos, "padding frame with flags %#x" % flags)
        else:
            raise self.corrupt(pos, "frame type %d" % typ)
        hl = HEADER_SIZE + (CHECKSUM_SIZE if flags & FRAME_FLAG_CHECKSUM else 0)
        if room < hl:
            raise self.corrupt(pos, "truncated header")
        if length < hl or length > self.max_frame or (typ == TYPE_PADDING and length % 8):
            raise self.corrupt(pos, "length %d (header %d, max frame %d)" % (length, hl, self.max_frame))
        size = align8(length)
        if size > room:
            raise self.corrupt(pos, "frame of %d bytes crosses the end of the data region" % size)
        if typ == TYPE_PADDING:
            if off == 0 or off + size != self.capacity:
                raise self.corrupt(pos, "padding of %d bytes at offset %d does not end the data region" % (size, off))
        elif flags != self.frame_flags:
            raise self.corrupt(pos, "frame flags %#x in a ring whose frames have %#x" % (flags, self.frame_flags))
        return typ, length, size

    # §8.9
    def peer_dead(self, state_off, lock_off):
        if self.ld32(state_off) != STATE_ATTACHED:
            return False
        if byte_held(self.fd, lock_off):
            return False
        return self.ld32(state_off) == STATE_ATTACHED


# ---- consumer (§8.3, §8.6, §8.8) --------------------------------------------------

def consume(ring, args, out):
    lock_byte(ring.fd, LOCK_CONSUMER, exclusive=True)  # §8.3
    ring.locks.append(LOCK_CONSUMER)
    h = ring.ld64(OFF_HEAD)
    if h % 8:
        raise ring.corrupt(h, "head not 8-aligned")
    t = ring.ld64(OFF_TAIL)
    if t > h and t - h > ring.capacity:
        raise ring.corrupt(h, "tail %d is more than the capacity ahead" % t)
    ring.st32(OFF_CONS_STATE, STATE_ATTACHED)

    mm, data_off, mask, hl = ring.mm, ring.data_off, ring.mask, ring.hl
    u32 = ring.u32
    waker = ring.waker
    digest = hashlib.sha256()
    count = nbytes = 0
    pat = Pattern(args.check_pattern) if args.check_pattern is not None else None
    first_bad = -1
    owed = False  # a head store not yet followed by an unconditional wake
    idle = 0
    deadline = time.monotonic() + args.timeout
    next_check = 0.0
    while True:
        off = h & mask
        word = data_off + off
        raw = u32[word >> 2] if LITTLE else _swap32(u32[word >> 2])  # §8.6 step 1
        if raw == 0:
            # Empty at h. Before going idle, make up for a wake-up a missing
            # StoreLoad barrier may have lost (§8.7).
            if owed:
                waker.bump_and_wake(OFF_PROD_SEQ, WAKE_ALL)
                owed = False
            if ring.ld32(OFF_PROD_STATE) == STATE_CLOSED:  # §8.8
                if ring.ld32(word) == 0:
                    break
                continue
            idle += 1
            if idle > SPIN:
                time.sleep(NAP)
                now = time.monotonic()
                if now >= next_check:
                    next_check = now + PEER_CHECK
                    if now >= deadline:
                        raise RingError("timeout", "no end of stream after %gs (head %d)" % (args.timeout, h))
                    if ring.peer_dead(OFF_PROD_STATE, LOCK_PRODUCER) and ring.ld32(word) == 0:
                        raise RingError("peer-dead", "producer died (head %d)" % h)
            continue
        idle = 0
        if raw & 0x80000000:
            raise ring.corrupt(h, "negative length %d in an SPSC ring" % (raw - (1 << 32)))
        typ, length, size = ring.frame_at(h)
        if typ == TYPE_PADDING:  # §8.6 step 5
            h += size
            ring.st64(OFF_HEAD, h)
            owed = True
            continue
        base = data_off + off
        payload = mm[base + hl: base + length]  # a copy
        if ring.checksum:
            (want,) = struct.unpack_from("<Q", mm, base + 8)
            got = xxh64(payload)
            if got != want:
                raise ring.corrupt(h, "checksum %#x, frame says %#x" % (got, want))
        h += size  # §8.6 step 8: release
        ring.st64(OFF_HEAD, h)
        if ring.ld32(OFF_PROD_WAITERS) != 0:  # step 9
            waker.bump_and_wake(OFF_PROD_SEQ, WAKE_ALL)
            owed = False
        else:
            owed = True
        digest.update(struct.pack("<I", len(payload)))
        digest.update(payload)
        if pat is not None and first_bad < 0 and payload != pat.msg(count):
            first_bad = count
        count += 1
        nbytes += len(payload)
        if args.die_after and count == args.die_after:
            os._exit(3)

    # Close (§8.8): statistics, state, wake, unlock.
    ring.add_stat(OFF_STAT_RECV_MSGS, count)
    ring.add_stat(OFF_STAT_RECV_BYTES, nbytes)
    ring.st32(OFF_CONS_STATE, STATE_CLOSED)
    waker.bump_and_wake(OFF_PROD_SEQ, WAKE_ALL)
    unlock_byte(ring.fd, LOCK_CONSUMER)
    ring.locks.remove(LOCK_CONSUMER)
    out.update(count=count, bytes=nbytes, sha256=digest.hexdigest(), head=h)
    if pat is not None:
        out["first_bad"] = first_bad


# ---- producer (§8.4, §8.5, §8.8) --------------------------------------------------

class Producer:
    def __init__(self, ring, timeout):
        self.r = ring
        self.deadline = time.monotonic() + timeout
        self.timeout = timeout
        r = ring
        lock_byte(r.fd, LOCK_PRODUCER, exclusive=True)  # §8.4 step 1
        r.locks.append(LOCK_PRODUCER)
        h, t = r.ld64(OFF_HEAD), r.ld64(OFF_TAIL)
        if h % 8 or t % 8:
            raise r.corrupt(t, "cursors not 8-aligned: head %d, tail %d" % (h, t))
        if t > h and t - h > r.capacity:
            raise r.corrupt(t, "tail more than the capacity ahead of head %d" % h)
        t = max(t, h)  # step 2: records below head were consumed
        for _ in range(r.capacity // 8):
            if r.ld32(r.data_off + (t & r.mask)) == 0:
                break
            _, _, size = r.frame_at(t)
            t += size
            if t - h > r.capacity:
                raise r.corrupt(t, "committed records beyond head+capacity")
        self.T, self.hc = t, h
        r.st32(OFF_PROD_STATE, STATE_ATTACHED)  # step 3
        struct.pack_into("<I", r.mm, OFF_SLOT_TABLE + OFF_SLOT_PID, os.getpid())
        self.owed = False
        self.sent = self.sent_bytes = self.full = 0

    def send(self, payload):
        r = self.r
        n = len(payload)
        if n > r.max_payload:
            raise RingError("too-large", "message of %d bytes, the ring's maximum is %d" % (n, r.max_payload))
        hl, cap, mask, data_off = r.hl, r.capacity, r.mask, r.data_off
        size = align8(hl + n)
        idle = 0
        next_check = 0.0
        while True:  # §8.5 steps 1-3
            if r.ld32(OFF_CONS_STATE) == STATE_CLOSED:
                raise RingError("closed", "the consumer closed the ring")
            off = self.T & mask
            gap = cap - off if off + size > cap else 0
            need = gap + size + RESERVE
            if self.T + need - self.hc <= cap:
                break
            h = r.ld64(OFF_HEAD)
            if h > self.T or self.T - h > cap or h % 8:
                raise r.corrupt(h, "head is beyond the tail %d or more than the capacity behind it" % self.T)
            self.hc = h
            if self.T + need - self.hc <= cap:
                break
            # Full: publish the tail, and wake the consumer before going idle.
            if idle == 0:
                self.full += 1
                r.st64(OFF_TAIL, self.T)
                if self.owed:
                    r.waker.bump_and_wake(OFF_CONS_SEQ, 1)
                    self.owed = False
            idle += 1
            if idle > SPIN:
                time.sleep(NAP)
                now = time.monotonic()
                if now >= next_check:
                    next_check = now + PEER_CHECK
                    if now >= self.deadline:
                        raise RingError("timeout", "no room after %gs (tail %d)" % (self.timeout, self.T))
                    if r.peer_dead(OFF_CONS_STATE, LOCK_CONSUMER):
                        raise RingError("peer-dead", "consumer died (tail %d)" % self.T)
        mm = r.mm
        if gap:  # step 4
            r.st32(data_off, 0)  # pre-zero where the record goes
            struct.pack_into("<HH", mm, data_off + off + 4, TYPE_PADDING, 0)
            r.st32(data_off + off, gap)  # commit the padding
            self.T += gap
            off = 0
        base = data_off + off
        end = base + hl + n
        mm[base + hl: end] = payload  # step 5
        if size > hl + n:
            mm[end: base + size] = bytes(base + size - end)  # alignment padding, zeroed
        if r.checksum:
            struct.pack_into("<HHQ", mm, base + 4, TYPE_DATA, FRAME_FLAG_CHECKSUM, xxh64(payload))
        else:
            struct.pack_into("<HH", mm, base + 4, TYPE_DATA, 0)
        r.st32(data_off + ((self.T + size) & mask), 0)  # step 6: pre-zero the next length word
        r.st32(base, hl + n)  # step 7: commit
        self.T += size  # step 8
        r.st64(OFF_TAIL, self.T)  # step 9
        if r.ld32(OFF_CONS_PARKED) != 0:  # step 10
            r.waker.bump_and_wake(OFF_CONS_SEQ, 1)
            self.owed = False
        else:
            self.owed = True
        self.sent += 1
        self.sent_bytes += n

    def close(self):  # §8.8
        r = self.r
        r.st64(OFF_TAIL, self.T)
        r.add_stat(OFF_STAT_SENT_MSGS, self.sent)
        r.add_stat(OFF_STAT_SENT_BYTES, self.sent_bytes)
        r.add_stat(OFF_STAT_FULL, self.full)
        r.st32(OFF_PROD_STATE, STATE_CLOSED)
        r.waker.bump_and_wake(OFF_CONS_SEQ, 1)
        unlock_byte(r.fd, LOCK_PRODUCER)
        r.locks.remove(LOCK_PRODUCER)


def produce(ring, args, out):
    p = Producer(ring, args.timeout)
    pat = Pattern(args.max_len)
    digest = hashlib.sha256()
    nbytes = 0
    for i in range(args.count):
        msg = pat.msg(i)
        p.send(msg)
        digest.update(struct.pack("<I", len(msg)))
        digest.update(msg)
        nbytes += len(msg)
        if args.die_after and i + 1 == args.die_after:
            os._exit(3)
    p.close()
    out.update(count=args.count, bytes=nbytes, sha256=digest.hexdigest(), tail=p.T)


class Pattern:
    """The deterministic test messages (see the module comment)."""

    def __init__(self, max_len):
        self.max_len = max_len
        self.pool = bytes(((k * 131) ^ (k >> 3)) & 0xFF for k in range(4096 + max_len))

    def msg(self, i):
        n = (i * 7919) % (self.max_len + 1)
        s = (i * 37) % 4096
        return self.pool[s: s + n]


# ---- info --------------------------------------------------------------------------

def info(ring, out):
    out.update(
        version=ring.version, flags=ring.flags, capacity=ring.capacity, data_offset=ring.data_off,
        segment_size=ring.seg_size, max_frame=ring.max_frame, slots=ring.slots,
        created_ns=ring.created, creator_pid=ring.creator, max_payload=ring.max_payload,
        head=ring.ld64(OFF_HEAD), tail=ring.ld64(OFF_TAIL),
        consumer_state=ring.ld32(OFF_CONS_STATE), producer_state=ring.ld32(OFF_PROD_STATE),
        owner_alive=byte_held(ring.fd, LOCK_OWNER), attached=byte_held(ring.fd, LOCK_ATTACHED),
        consumer_alive=byte_held(ring.fd, LOCK_CONSUMER), producer_alive=byte_held(ring.fd, LOCK_PRODUCER),
        producer_pid=struct.unpack_from("<I", ring.mm, OFF_SLOT_TABLE + OFF_SLOT_PID)[0],
        received=ring.ld64(OFF_STAT_RECV_MSGS), received_bytes=ring.ld64(OFF_STAT_RECV_BYTES),
        sent=ring.ld64(OFF_STAT_SENT_MSGS), sent_bytes=ring.ld64(OFF_STAT_SENT_BYTES),
        full=ring.ld64(OFF_STAT_FULL),
    )


def main(argv):
    ap = argparse.ArgumentParser(description="ringwire SPSC peer")
    sub = ap.add_subparsers(dest="mode", required=True)
    pi = sub.add_parser("info")
    pi.add_argument("path")
    pi.add_argument("--timeout", type=float, default=1.0)
    pc = sub.add_parser("consume")
    pc.add_argument("path")
    pc.add_argument("--timeout", type=float, default=60.0)
    pc.add_argument("--check-pattern", type=int, metavar="MAXLEN")
    pc.add_argument("--die-after", type=int, default=0)
    pp = sub.add_parser("produce")
    pp.add_argument("path")
    pp.add_argument("--count", type=int, required=True)
    pp.add_argument("--max-len", type=int, required=True)
    pp.add_argument("--timeout", type=float, default=60.0)
    pp.add_argument("--die-after", type=int, default=0)
    args = ap.parse_args(argv)

    out = {}
    ring = None
    try:
        if args.mode == "info":
            ring = Ring.open(args.path, args.timeout, read_only=True)
            info(ring, out)
        else:
            ring = Ring.open(args.path, min(args.timeout, 1.0))
            ring.attach()
            if args.mode == "consume":
                consume(ring, args, out)
            else:
                produce(ring, args, out)
    except RingError as e:
        print(json.dumps({"error": e.kind, "detail": e.detail}))
        return 1
    finally:
        if ring is not None:
            ring.close()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
