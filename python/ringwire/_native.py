"""Atomic instructions and the futex, for Linux on x86-64, through ctypes.

Python has no atomics. Most of what the ring needs is plain aligned loads and
stores, which ring.py makes through memoryview casts to native 'I' and 'Q'
(one untorn 4- or 8-byte mov each; under x86-64's TSO every load is an
acquire and every store a release). What TSO does not give is StoreLoad
ordering (a store followed by a load of another word may be reordered), which
the wake-up protocol needs at two places, and atomic read-modify-writes
(setting a lane's ready bit, adding 1 to a futex word, swapping a ready word
to zero).

ctypes cannot emit an instruction, so this module maps one page of
anonymous memory, copies a handful of tiny functions of machine code into
it, makes it read-only and executable (never writable and executable at
once), and calls them through ctypes function pointers. Each is a LOCK-prefixed
or implicitly locked instruction, which is a full barrier on x86-64:

    fence()             mfence; ret                          0f ae f0 c3
    store32(p, v)       xchg [rdi], esi; ret                 87 37 c3
    store64(p, v)       xchg [rdi], rsi; ret                 48 87 37 c3
    swap64(p, v) -> old mov rax, rsi; xchg [rdi], rax; ret   48 89 f0 48 87 07 c3
    or64(p, v)          lock or [rdi], rsi; ret              f0 48 09 37 c3
    add32(p, v) -> old  mov eax, esi; lock xadd [rdi], eax   89 f0 f0 0f c1 07 c3
    add64(p, v) -> old  mov rax, rsi; lock xadd [rdi], rax   48 89 f0 f0 48 0f c1 07 c3

(System V AMD64 calling convention: first argument in rdi, second in rsi,
result in rax.) store32/store64 are sequentially consistent stores: a store
and a full fence in one instruction, as Go's atomic Store compiles on amd64.

ctypes releases the GIL around every foreign call, so a thread parked in
futex_wait does not block the interpreter.

The futex calls are libc's syscall(SYS_futex = 202, ...), without
FUTEX_PRIVATE_FLAG (the words are shared between processes): FUTEX_WAKE (1),
and FUTEX_WAIT_BITSET (9) with an absolute CLOCK_MONOTONIC deadline and the
match-any bitset, so that a retry after EINTR does not drift.

Everything here is restricted to Linux on x86-64 (64-bit Python):
``supported()`` says whether this is such a platform, and ``native()``
raises ``Unsupported`` elsewhere.
"""

import ctypes
import errno
import os
import platform
import sys
import threading

from .errors import Unsupported

SYS_FUTEX = 202
FUTEX_WAKE = 1
FUTEX_WAIT_BITSET = 9
FUTEX_BITSET_MATCH_ANY = 0xFFFFFFFF
WAKE_ALL = 0x7FFFFFFF

_PROT_READ, _PROT_WRITE, _PROT_EXEC = 1, 2, 4
_MAP_PRIVATE, _MAP_ANONYMOUS = 0x02, 0x20

_CODE = [
    ("fence", b"\x0f\xae\xf0\xc3", None, ()),
    ("store32", b"\x87\x37\xc3", None, (ctypes.c_void_p, ctypes.c_uint32)),
    ("store64", b"\x48\x87\x37\xc3", None, (ctypes.c_void_p, ctypes.c_uint64)),
    ("swap64", b"\x48\x89\xf0\x48\x87\x07\xc3", ctypes.c_uint64, (ctypes.c_void_p, ctypes.c_uint64)),
    ("or64", b"\xf0\x48\x09\x37\xc3", None, (ctypes.c_void_p, ctypes.c_uint64)),
    ("add32", b"\x89\xf0\xf0\x0f\xc1\x07\xc3", ctypes.c_uint32, (ctypes.c_void_p, ctypes.c_uint32)),
    ("add64", b"\x48\x89\xf0\xf0\x48\x0f\xc1\x07\xc3", ctypes.c_uint64, (ctypes.c_void_p, ctypes.c_uint64)),
]


def supported():
    """Whether rings work here: Linux, x86-64, a 64-bit interpreter."""
    return (sys.platform.startswith("linux")
            and platform.machine().lower() in ("x86_64", "amd64")
            and ctypes.sizeof(ctypes.c_void_p) == 8
            and sys.byteorder == "little")


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class Native:
    """The helpers above, and the futex."""

    def __init__(self):
        libc = ctypes.CDLL(None, use_errno=True)
        mmap_ = libc.mmap
        mmap_.restype = ctypes.c_void_p
        mmap_.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long)
        mprotect = libc.mprotect
        mprotect.restype = ctypes.c_int
        mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
        page = mmap_(None, 4096, _PROT_READ | _PROT_WRITE, _MAP_PRIVATE | _MAP_ANONYMOUS, -1, 0)
        if page is None or page == ctypes.c_void_p(-1).value:
            e = ctypes.get_errno()
            raise OSError(e, "ringwire: mmap of the helper page: " + os.strerror(e))
        off = 0
        addrs = {}
        for name, code, _, _ in _CODE:
            ctypes.memmove(page + off, code, len(code))
            addrs[name] = page + off
            off = (off + len(code) + 15) & ~15
        if mprotect(page, 4096, _PROT_READ | _PROT_EXEC) != 0:
            e = ctypes.get_errno()
            raise OSError(e, "ringwire: mprotect of the helper page: " + os.strerror(e))
        self._page = page  # never unmapped: the functions live as long as the process
        for name, _, restype, argtypes in _CODE:
            fn = ctypes.CFUNCTYPE(restype, *argtypes)(addrs[name])
            setattr(self, name, fn)

        sc = libc.syscall
        sc.restype = ctypes.c_long
        sc.argtypes = (ctypes.c_long, ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32,
                       ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint32)
        self._syscall = sc

    def futex_wake(self, addr, n=1):
        """Wake at most n waiters on the futex word at addr."""
        r = self._syscall(SYS_FUTEX, addr, FUTEX_WAKE, n, None, None, 0)
        if r < 0:
            e = ctypes.get_errno()
            raise OSError(e, "futex wake: " + os.strerror(e))
        return r

    def futex_wait(self, addr, val, deadline_ns):
        """Sleep while the word at addr holds val, until woken or the absolute
        CLOCK_MONOTONIC deadline (nanoseconds, as time.monotonic_ns) passes.
        Returns True if woken (possibly spuriously), False on EAGAIN (the word
        already differed), EINTR or the deadline: in every case the caller
        polls again."""
        ts = _Timespec(deadline_ns // 1_000_000_000, deadline_ns % 1_000_000_000)
        r = self._syscall(SYS_FUTEX, addr, FUTEX_WAIT_BITSET, val, ctypes.addressof(ts), None,
                          FUTEX_BITSET_MATCH_ANY)
        if r == 0:
            return True
        e = ctypes.get_errno()
        if e in (errno.EAGAIN, errno.EINTR, errno.ETIMEDOUT):
            return False
        raise OSError(e, "futex wait: " + os.strerror(e))


_native = None
_lock = threading.Lock()


def native():
    """The process's Native, made at first use; Unsupported off Linux x86-64."""
    global _native
    if _native is None:
        if not supported():
            raise Unsupported(
                "ringwire rings need Linux on x86-64 with a 64-bit Python (this is %s %s, %d-bit): "
                "the Python package relies on x86-64's memory ordering and machine-code helpers"
                % (sys.platform, platform.machine(), 8 * ctypes.sizeof(ctypes.c_void_p)))
        with _lock:
            if _native is None:
                _native = Native()
    return _native
