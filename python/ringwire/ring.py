"""Rings: Ring, Producer, Consumer. Layout version 2, as ring/*.go implement it.

A ring is a set of lanes; a lane is an SPSC ring with its own head, tail and
data region, written by at most one producer (the holder of the lane's lock)
and read by the one consumer. An SPSC ring is a ring of one lane; an MPSC ring
gives each attached producer a lane of its own.

Memory model (Linux x86-64 only, see _native.py): shared words are read and
written through memoryview casts to native 'I' and 'Q', one aligned mov each;
x86-64 orders them as acquire loads and release stores. The stores that must
be ordered before a later load of another word (a commit before the load of
the consumer's signals, a head store before the load of the producer's
announcement, an announcement before the re-check) are made with an
xchg-based store, and read-modify-writes with lock-prefixed instructions.
"""

import struct
import os
import threading
import time
import weakref

from . import layout as L
from ._native import WAKE_ALL, native
from ._segment import DEFAULT_DIR, Segment, clean_name, random_name
from ._xxh64 import xxh64
from .codec import FLAG_CHECKSUM, TYPE_DATA, TYPE_PADDING
from .errors import (BadOptions, CorruptRing, EndOfStream, ForeignSegment, NotOwner,
                     NotReady, Pending, PeerDead, RingClosed, RingEmpty, RingError,
                     RingFull, RoleBusy, TooLarge, Truncated, VersionMismatch)

__all__ = ["Ring", "Producer", "Consumer", "Wait", "SPSC", "MPSC"]

SPSC = "spsc"
MPSC = "mpsc"

_MAX_INT32_ALIGNED = 0x7FFFFFFF & ~7
_unpack_hh = struct.Struct("<HH").unpack_from
_unpack_q = struct.Struct("<Q").unpack_from
_pack_hh = struct.Struct("<HH").pack_into
_pack_hhq = struct.Struct("<HHQ").pack_into

_ROLE_STATES = ("none", "alive", "closed", "dead")


class Wait:
    """A side's wait strategy (Go: ring.Wait).

    mode: "adaptive" (the default) polls ``spin`` times, yields the processor
    ``yields`` times (sched_yield), then parks on the futex; "block" parks at
    once; "spin" never parks (a CPU fully busy while waiting).
    peer_check: seconds between liveness checks of the peer while waiting, and
    the longest a parked side sleeps between them.
    """

    __slots__ = ("mode", "spin", "yields", "peer_check")

    def __init__(self, mode="adaptive", spin=200, yields=16, peer_check=L.DEFAULT_PEER_CHECK):
        if mode not in ("adaptive", "block", "spin"):
            raise BadOptions("wait mode %r: want adaptive, block or spin" % (mode,))
        self.mode, self.spin, self.yields = mode, int(spin), int(yields)
        self.peer_check = float(peer_check) if peer_check and peer_check > 0 else L.DEFAULT_PEER_CHECK

    def __repr__(self):
        return "Wait(%r, spin=%d, yields=%d, peer_check=%g)" % (self.mode, self.spin, self.yields, self.peer_check)


def _wait_of(w):
    if w is None:
        return Wait()
    if isinstance(w, Wait):
        return w
    if isinstance(w, str):
        return Wait(w)
    raise BadOptions("wait must be a Wait or a mode name, not %r" % (w,))


class _Geometry:
    __slots__ = ("mpsc", "checksum", "capacity", "mask", "data_off", "seg_size", "max_frame",
                 "lanes", "created", "creator", "instance", "frame_flags", "hdr", "version", "flags")

    @property
    def max_payload(self):
        return self.max_frame - self.hdr


def _geometry(capacity, mode, lanes, checksum, max_message):
    g = _Geometry()
    if mode not in (SPSC, MPSC):
        raise BadOptions("mode %r: want 'spsc' or 'mpsc'" % (mode,))
    g.mpsc, g.checksum = mode == MPSC, bool(checksum)
    if capacity is None or capacity == 0:
        capacity = L.DEFAULT_CAPACITY
    if not isinstance(capacity, int) or capacity < 0 or capacity > L.MAX_CAPACITY:
        raise BadOptions("capacity %r outside [%d, %d]" % (capacity, L.MIN_CAPACITY, L.MAX_CAPACITY))
    capacity = max(L.MIN_CAPACITY, 1 << (capacity - 1).bit_length())
    g.capacity, g.mask = capacity, capacity - 1
    if not g.mpsc:
        if lanes not in (None, 0, 1):
            raise BadOptions("SPSC ring with %r lanes" % (lanes,))
        g.lanes = 1
    else:
        g.lanes = L.DEFAULT_LANES if not lanes else lanes
        if not isinstance(g.lanes, int) or g.lanes < 1 or g.lanes > L.MAX_LANES:
            raise BadOptions("%r lanes outside [1, %d]" % (lanes, L.MAX_LANES))
    if g.lanes * capacity > L.MAX_CAPACITY:
        raise BadOptions("%d lanes of %d bytes exceed %d bytes" % (g.lanes, capacity, L.MAX_CAPACITY))
    g.frame_flags = FLAG_CHECKSUM if g.checksum else 0
    g.hdr = 16 if g.checksum else 8
    limit = min(capacity // 2, _MAX_INT32_ALIGNED)
    max_message = max_message or 0
    if max_message < 0:
        raise BadOptions("max message %d" % max_message)
    if max_message == 0:
        g.max_frame = limit
    elif max_message > limit or L.align_up(g.hdr + max_message, 8) > limit:
        raise BadOptions("max message %d needs a capacity of at least %d"
                         % (max_message, 2 * L.align_up(g.hdr + max_message, 8)))
    else:
        g.max_frame = g.hdr + max_message
    g.data_off = L.data_offset(g.lanes)
    g.seg_size = g.data_off + g.lanes * capacity
    g.version = L.LAYOUT_VERSION
    g.flags = (L.FLAG_MPSC if g.mpsc else 0) | (L.FLAG_CHECKSUM if g.checksum else 0)
    return g


def _all_zero(b):
    return not any(b)


def validate(b):
    """Check a segment's header against the layout's rules (Go: validate) and
    return its geometry. b is a bytes-like object of the whole segment."""
    size = len(b)
    if size < 8:
        raise ForeignSegment("%d bytes, too small for a ring header" % size)
    with memoryview(b) as mv, mv[:8].cast("B").cast("Q") as w:
        m = w[0]  # one 8-byte load: the publication point
    if m == 0 and size >= L.HEADER_FIELDS:
        (v,) = struct.unpack_from("<I", b, L.OFF_VERSION)
        if v != 0 and v != L.LAYOUT_VERSION:
            raise ForeignSegment("magic 0, version word %#x" % v)
        if not _all_zero(b[L.HEADER_FIELDS:min(size, L.OFF_LANE_TABLE)]):
            raise ForeignSegment("magic 0 with data in the control blocks")
        raise NotReady("header not published")
    if m == 0:
        raise NotReady("header not published")
    if m != L.MAGIC:
        raise ForeignSegment("magic %#018x" % m)
    if size < L.OFF_LANE_TABLE:
        raise Truncated("%d bytes, less than the %d-byte header" % (size, L.OFF_LANE_TABLE))
    (version, flags, capacity, data_off, seg_size, max_frame, lanes, created, creator,
     instance) = struct.unpack_from(L.HEADER_FORMAT, b, L.OFF_VERSION)
    if version != L.LAYOUT_VERSION:
        raise VersionMismatch("layout version %d, this package reads %d" % (version, L.LAYOUT_VERSION))

    def bad(msg):
        return CorruptRing("header: " + msg)

    if flags & ~L.KNOWN_FLAGS:
        raise bad("unknown flags %#x" % flags)
    if capacity < L.MIN_CAPACITY or capacity > L.MAX_CAPACITY or capacity & (capacity - 1):
        raise bad("capacity %d is not a power of two in [%d, %d]" % (capacity, L.MIN_CAPACITY, L.MAX_CAPACITY))
    if lanes < 1 or lanes > L.MAX_LANES or (not flags & L.FLAG_MPSC and lanes != 1):
        raise bad("%d lanes" % lanes)
    if lanes * capacity > L.MAX_CAPACITY:
        raise bad("%d lanes of %d bytes" % (lanes, capacity))
    if data_off != L.data_offset(lanes):
        raise bad("data offset %d, want %d for %d lanes" % (data_off, L.data_offset(lanes), lanes))
    if seg_size != data_off + lanes * capacity:
        raise bad("segment size %d, want %d" % (seg_size, data_off + lanes * capacity))
    checksum = bool(flags & L.FLAG_CHECKSUM)
    hdr = 16 if checksum else 8
    if max_frame < hdr or max_frame > capacity // 2:
        raise bad("max frame %d outside [%d, %d]" % (max_frame, hdr, capacity // 2))
    if size < seg_size:
        raise Truncated("%d bytes, header says %d" % (size, seg_size))
    g = _Geometry()
    g.version, g.flags = version, flags
    g.mpsc, g.checksum = bool(flags & L.FLAG_MPSC), checksum
    g.capacity, g.mask = capacity, capacity - 1
    g.data_off, g.seg_size, g.max_frame, g.lanes = data_off, seg_size, max_frame, lanes
    g.created, g.creator, g.instance = created, creator, instance
    g.frame_flags = FLAG_CHECKSUM if checksum else 0
    g.hdr = hdr
    return g


def _not_ready_or_foreign(name, dir, err):
    """The verdict on a header still unpublished when the attach timeout ran
    out (Go: notReadyOrForeign)."""
    try:
        seg = Segment.open(name, dir, read_only=True)
    except (OSError, RingError):
        return err
    if seg is None:
        return err
    try:
        b = seg.mm
        if len(b) < L.HEADER_FIELDS:
            return err
        (v,) = struct.unpack_from("<I", b, L.OFF_VERSION)
        if ((v == L.LAYOUT_VERSION or _all_zero(b[:L.HEADER_FIELDS]))
                and _all_zero(b[L.HEADER_FIELDS:min(len(b), L.OFF_LANE_TABLE)])):
            return err
        return ForeignSegment("magic 0 and header bytes that create would not write")
    finally:
        seg.close()


class _Guard:
    """Lets close() come from any thread while the handle's own thread may be
    inside a call (Go: guard). finalize runs exactly once, on whichever side
    wins."""

    __slots__ = ("busy", "closed", "done", "lk")

    def __init__(self):
        self.busy = False
        self.closed = False
        self.done = False
        self.lk = threading.Lock()

    def enter(self):
        self.busy = True
        return not self.closed

    def leave(self):
        self.busy = False
        return self.closed and self._take()

    def close(self):
        with self.lk:
            if self.closed:
                return False, False
            self.closed = True
        return (not self.busy and self._take()), True

    def _take(self):
        with self.lk:
            if self.done:
                return False
            self.done = True
            return True


class Ring:
    """A handle on a ring in a shared-memory segment.

    Make one with ``Ring.create`` (the owner) or ``Ring.open``; take roles with
    ``producer()`` and ``consumer()``. ``close()`` releases the handle, its
    roles and its locks and never removes the segment; ``unlink()`` removes
    the name, and only the owner may call it. A Ring is a context manager.

    Rings need Linux on x86-64 with a 64-bit Python; elsewhere create and
    open raise Unsupported.
    """

    def __init__(self, seg, geo, wait):
        self._seg = seg
        self._geo = geo
        self.wait = wait
        self._nat = native()
        self._refs = 1
        self._mu = threading.Lock()
        self._closed = False
        self._locks = []
        self._handles = []
        mm = seg.mm
        self._mv = memoryview(mm)
        n = len(mm) & ~7
        self._u32 = self._mv[:n].cast("I")
        self._u64 = self._mv[:n].cast("Q")
        self._cbuf = None
        self._addr = 0
        if not seg.read_only:
            import ctypes
            self._cbuf = (ctypes.c_char * n).from_buffer(mm)
            self._addr = ctypes.addressof(self._cbuf)

    # ---- making and attaching ----

    @classmethod
    def create(cls, name=None, capacity=L.DEFAULT_CAPACITY, mode=SPSC, lanes=None, checksum=False,
               max_message=0, dir=DEFAULT_DIR, perm=0o600, wait=None):
        """Make a ring in a new segment called name (None: a unique name) and
        attach to it as its owner.

        capacity: each lane's data bytes, rounded up to a power of two in
        [4096, 2^40]. mode: "spsc" or "mpsc". lanes: an MPSC ring's lane count
        (how many producers may be attached at once; default 16, at most
        1024). checksum: frames carry an XXH64 of their payload, verified by
        the consumer. max_message: the largest payload (0: half a lane less
        the header). The segment's pages are reserved now, so a full /dev/shm
        is an OSError (ENOSPC) here rather than a crash later; the header is
        published last, so an opener never sees a half-built ring.
        """
        nat = native()
        g = _geometry(capacity, mode, lanes, checksum, max_message)
        w = _wait_of(wait)
        if name is None or name == "":
            seg = None
            for _ in range(16):
                try:
                    seg = Segment.create(random_name(), g.seg_size, dir, perm)
                    break
                except FileExistsError:
                    continue
            if seg is None:
                raise FileExistsError("no free unique name in %s" % dir)
        else:
            seg = Segment.create(clean_name(name), g.seg_size, dir, perm)
        try:
            owner = seg.try_lock(L.LOCK_OWNER, exclusive=False)
        except BaseException:
            seg.close()
            os.unlink(seg.path)
            raise
        g.created = time.time_ns()
        g.creator = os.getpid()
        while True:
            g.instance = int.from_bytes(os.urandom(8), "little")
            if g.instance:
                break
        struct.pack_into(L.HEADER_FORMAT, seg.mm, L.OFF_VERSION, L.LAYOUT_VERSION, g.flags, g.capacity,
                         g.data_off, g.seg_size, g.max_frame, g.lanes, g.created, g.creator, g.instance)
        try:
            r = cls(seg, g, w)
            r._locks.append(seg.try_lock(L.LOCK_ATTACHED, exclusive=False))
        except BaseException:
            Segment.unlock(owner)
            seg.close()
            os.unlink(seg.path)
            raise
        r._locks.append(owner)
        # Publish: the magic last, with a store that orders every write above
        # before it.
        nat.store64(r._addr + L.OFF_MAGIC, L.MAGIC)
        return r

    @classmethod
    def open(cls, name, dir=DEFAULT_DIR, timeout=L.DEFAULT_ATTACH_TIMEOUT, read_only=False, wait=None):
        """Attach to the ring called name. The header is validated before
        anything in the segment is trusted: magic (ForeignSegment), layout
        version (VersionMismatch), size (Truncated), geometry (CorruptRing). A
        ring still being created is waited for up to timeout seconds
        (NotReady). A missing name raises FileNotFoundError. Open never
        changes the segment. read_only maps it read-only, for info() and
        stats(); such a handle takes no roles."""
        native()
        name = clean_name(name)
        w = _wait_of(wait)
        if timeout is None or timeout <= 0:
            timeout = L.DEFAULT_ATTACH_TIMEOUT
        deadline = time.monotonic() + timeout
        pause = 50e-6
        while True:
            try:
                seg = Segment.open(name, dir, read_only)
                if seg is None:
                    raise NotReady("empty segment")
                try:
                    g = validate(seg.mm)
                except BaseException:
                    seg.close()
                    raise
            except NotReady as e:
                if time.monotonic() >= deadline:
                    raise _not_ready_or_foreign(name, dir, e)
                time.sleep(pause)
                pause = min(2 * pause, 0.01)
                continue
            try:
                r = cls(seg, g, w)
                if not read_only:
                    r._locks.append(seg.try_lock(L.LOCK_ATTACHED, exclusive=False))
            except BaseException:
                seg.close()
                raise
            return r

    # ---- properties ----

    @property
    def name(self):
        return self._seg.name

    @property
    def path(self):
        return self._seg.path

    @property
    def mode(self):
        return MPSC if self._geo.mpsc else SPSC

    @property
    def capacity(self):
        """Each lane's data region in bytes."""
        return self._geo.capacity

    @property
    def lanes(self):
        return self._geo.lanes

    @property
    def max_message(self):
        return self._geo.max_payload

    @property
    def checksum(self):
        return self._geo.checksum

    @property
    def instance(self):
        return self._geo.instance

    @property
    def owner(self):
        """Whether this handle created the ring."""
        return self._seg.owner

    @property
    def closed(self):
        return self._closed

    # ---- words ----

    def _ld32(self, off):
        return self._u32[off >> 2]

    def _ld64(self, off):
        return self._u64[off >> 3]

    # ---- roles ----

    def _acquire(self):
        with self._mu:
            if self._refs <= 0:
                return False
            self._refs += 1
            return True

    def _release(self):
        with self._mu:
            self._refs -= 1
            last = self._refs == 0
        if last:
            self._unmap()

    def _unmap(self):
        self._cbuf = None
        for v in (self._u32, self._u64, self._mv):
            try:
                v.release()
            except BufferError:
                pass
        self._seg.close()

    def _forget(self, h):
        with self._mu:
            if h in self._handles:
                self._handles.remove(h)

    def producer(self):
        """Claim a producer role: the lane of an SPSC ring, or the first free
        lane of an MPSC ring. RoleBusy while every lane is held by a live
        producer. A lane whose last producer died is free: the new producer
        continues after the last record that one committed."""
        if self._seg.read_only:
            raise BadOptions("producer on a read-only handle")
        with self._mu:
            if self._closed or self._refs <= 0:
                raise RingClosed("producer: ring handle closed")
            self._refs += 1
            try:
                for i in range(self._geo.lanes):
                    try:
                        fd = self._seg.try_lock(L.lane_base(i), exclusive=True)
                    except RoleBusy:
                        continue
                    try:
                        p = Producer(self, i, fd)
                    except BaseException:
                        Segment.unlock(fd)
                        raise
                    self._handles.append(p)
                    return p
            except BaseException:
                self._refs -= 1
                raise
            self._refs -= 1
        if self._geo.lanes == 1:
            raise RoleBusy("producer: the lane is taken")
        raise RoleBusy("producer: all %d lanes taken" % self._geo.lanes)

    def consumer(self):
        """Claim the consumer role; RoleBusy while another live consumer holds
        it. A new consumer continues from each lane's last released position."""
        if self._seg.read_only:
            raise BadOptions("consumer on a read-only handle")
        with self._mu:
            if self._closed or self._refs <= 0:
                raise RingClosed("consumer: ring handle closed")
            self._refs += 1
            try:
                fd = self._seg.try_lock(L.LOCK_CONSUMER, exclusive=True)
                try:
                    c = Consumer(self, fd)
                except BaseException:
                    Segment.unlock(fd)
                    raise
            except BaseException:
                self._refs -= 1
                raise
            self._handles.append(c)
            return c

    def close(self):
        """Close the roles taken from this handle, drop its locks, and unmap
        the segment once no call is using it. Never removes the segment.
        Calling it again does nothing."""
        with self._mu:
            if self._closed:
                return
            self._closed = True
            locks, handles = self._locks, self._handles
            self._locks, self._handles = [], []
        for h in handles:
            h.close()
        for fd in locks:
            Segment.unlock(fd)
        self._release()

    def unlink(self, force=False):
        """Remove the ring's name. Only the owner (the handle that created the
        ring) may, unless force: a tool that proved the owner dead. Processes
        attached keep using the ring until they close it."""
        if not self._seg.owner and not force:
            raise NotOwner("%s: only the ring's owner unlinks it" % self._seg.name)
        self._seg.unlink()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "<ringwire.Ring %r %s, %d lane(s) of %d bytes%s>" % (
            self._seg.name, self.mode, self._geo.lanes, self._geo.capacity, ", closed" if self._closed else "")

    # ---- inspection ----

    def _role_state(self, word_off, lock_byte):
        """A role's state word combined with its lock (Go: roleState)."""
        before = self._ld32(word_off)
        held = self._seg.locked(lock_byte)
        after = self._ld32(word_off)
        if held:
            return "alive"
        if before == L.STATE_ATTACHED and after == L.STATE_ATTACHED:
            return "dead"
        if after == L.STATE_CLOSED:
            return "closed"
        if after == L.STATE_ATTACHED:
            return "alive"
        return "none"

    def stats(self):
        """The ring's counters and cursors, summed over the lanes (Go: Stats).
        Each side adds to them every 256 messages and whenever it waits or
        closes."""
        if not self._acquire():
            raise RingClosed("stats: ring handle closed")
        try:
            s = dict(received=self._ld64(L.OFF_STAT_RECV_MSGS), received_bytes=self._ld64(L.OFF_STAT_RECV_BYTES),
                     sent=0, sent_bytes=0, full=0, head=0, tail=0)
            for i in range(self._geo.lanes):
                b = L.lane_base(i)
                s["sent"] += self._ld64(b + L.OFF_LANE_SENT_MSGS)
                s["sent_bytes"] += self._ld64(b + L.OFF_LANE_SENT_BYTES)
                s["full"] += self._ld64(b + L.OFF_LANE_FULL)
                s["head"] += self._ld64(b + L.OFF_LANE_HEAD)
                s["tail"] += self._ld64(b + L.OFF_LANE_TAIL)
            return s
        finally:
            self._release()

    def info(self, all_lanes=False):
        """A description of the ring for inspection (Go: Info): geometry, who
        is attached and alive, and each lane that was ever taken (every lane
        with all_lanes). Role states are "none", "alive", "closed", "dead"."""
        if not self._acquire():
            raise RingClosed("info: ring handle closed")
        try:
            g = self._geo
            out = dict(
                name=self.name, mode=self.mode, version=g.version, flags=g.flags, capacity=g.capacity,
                data_offset=g.data_off, segment_size=g.seg_size, max_frame=g.max_frame,
                max_message=g.max_payload, checksum=g.checksum, lanes=g.lanes, created_ns=g.created,
                creator_pid=g.creator, instance=g.instance,
                owner_alive=self._seg.locked(L.LOCK_OWNER), attached=self._seg.locked(L.LOCK_ATTACHED),
                consumer=self._role_state(L.OFF_CONS_STATE, L.LOCK_CONSUMER),
                consumer_state=self._ld32(L.OFF_CONS_STATE), consumer_pid=self._ld32(L.OFF_CONS_PID),
                consumer_parked=self._ld32(L.OFF_CONS_PARKED),
                lane_info=[], stats=self.stats())
            for i in range(g.lanes):
                b = L.lane_base(i)
                st = self._role_state(b + L.OFF_LANE_STATE, b)
                if st != "none" or g.lanes == 1 or all_lanes:
                    out["lane_info"].append(dict(
                        lane=i, state=st, state_word=self._ld32(b + L.OFF_LANE_STATE),
                        pid=self._ld32(b + L.OFF_LANE_PID),
                        head=self._ld64(b + L.OFF_LANE_HEAD), tail=self._ld64(b + L.OFF_LANE_TAIL),
                        sent=self._ld64(b + L.OFF_LANE_SENT_MSGS), sent_bytes=self._ld64(b + L.OFF_LANE_SENT_BYTES),
                        full=self._ld64(b + L.OFF_LANE_FULL), signal=self._ld32(b + L.OFF_LANE_SIGNAL),
                        waiting=self._ld32(b + L.OFF_LANE_WAITING)))
            return out
        finally:
            self._release()

    # ---- waiting (Go: Ring.await) ----

    def _await(self, deadline, w, seq_off):
        """Wait until w._poll() holds, the deadline (time.monotonic) passes
        (TimeoutError), the handle closes, or the peer is found dead or gone.

        The wake-up protocol, which loses no wake-up and costs no system call
        while messages flow. The sleeper: snapshot the futex word, announce
        "I may sleep" (a fenced store), re-check, and futex-wait unless the
        word moved since the snapshot. The waker publishes its change (a
        fenced store), loads the announcement, and only if set adds 1 to the
        word and wakes. Of the two store-then-load pairs at least one load
        sees the other side's store."""
        ws = self.wait
        nat = self._nat
        addr = self._addr + seq_off
        u32 = self._u32
        seq_idx = seq_off >> 2
        now = time.monotonic()
        checked = now
        peer_check = ws.peer_check
        mode = ws.mode
        spin, yields = ws.spin, ws.spin + ws.yields
        i = 0
        poll = w._poll
        while True:
            if poll():
                return
            if mode == "block":
                park = True
            elif mode == "spin":
                park = False
            elif i < spin:
                park = False
            elif i < yields:
                os.sched_yield()
                park = False
            else:
                park = True
            i += 1
            if not park and i & 255:
                continue
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                raise TimeoutError("ring %r: timed out" % self._seg.name)
            try:
                w._ended()
                if now - checked >= peer_check:
                    checked = now
                    w._peer()
            except RingError:
                # Whatever the peer did before it went is still delivered.
                if poll():
                    return
                raise
            if not park:
                continue
            s = u32[seq_idx]
            w._announce()
            try:
                if poll():
                    return
                until = checked + peer_check
                if deadline is not None and deadline < until:
                    until = deadline
                nat.futex_wait(addr, s, int(until * 1e9))
            finally:
                w._retract()


def _check_padding(r, lane, pos, off, n):
    """Validate a padding frame of length n at offset off of a lane (Go:
    Ring.checkPadding). A producer pads only the end of a lane, and only
    when a frame does not fit there, so padding starts past offset 0, runs
    exactly to the end, and is shorter than the largest frame."""
    g = r._geo
    if off == 0:
        msg = "padding at offset 0"
    elif n < 0 or off + n > g.capacity:
        msg = "padding of %d bytes at offset %d runs past the end of the lane" % (n, off)
    elif n != g.capacity - off or n % 8:
        msg = "padding of %d bytes at offset %d does not end the lane" % (n, off)
    elif n >= L.align_up(g.max_frame, 8):
        msg = "padding of %d bytes, as long as the largest frame" % n
    else:
        return
    raise CorruptRing("ring %r: lane %d: position %d: %s" % (r.name, lane, pos, msg))


def _bytes_view(data):
    v = memoryview(data)
    if v.format != "B" or v.ndim != 1 or v.itemsize != 1:
        v = v.cast("B")
    return v


class Producer:
    """Writes messages into its lane of a ring (Go: ring.Producer). It holds
    the lane's producer role until close() or until its process dies. Calls
    must come from one thread at a time; close() may come from any thread,
    and makes a call blocked in this Producer raise RingClosed.

    send(data) copies a bytes-like message in; reserve(n) returns a writable
    memoryview of n bytes in the lane, handed over with commit() or given
    back with abort(): zero-copy sending. A Producer is a context manager."""

    def __init__(self, ring, idx, lockfd):
        r = ring
        g = r._geo
        self._r = r
        self._lock = lockfd
        self._g = _Guard()
        self._own = False
        self.lane = idx
        base = L.lane_base(idx)
        self._o_tail = base + L.OFF_LANE_TAIL
        self._o_state = base + L.OFF_LANE_STATE
        self._o_pid = base + L.OFF_LANE_PID
        self._o_sent = base + L.OFF_LANE_SENT_MSGS
        self._o_sent_bytes = base + L.OFF_LANE_SENT_BYTES
        self._o_full = base + L.OFF_LANE_FULL
        self._i_signal = (base + L.OFF_LANE_SIGNAL) >> 2
        self._o_head = base + L.OFF_LANE_HEAD
        self._o_seq = base + L.OFF_LANE_SEQ
        self._o_waiting = base + L.OFF_LANE_WAITING
        self._data = g.data_off + idx * g.capacity  # the lane's data region, absolute
        self._cap = g.capacity
        self._mask = g.mask
        self._hdr = g.hdr
        self._checksum = g.checksum
        self._max_payload = g.max_payload
        self._max_frame = g.max_frame
        self._ready_off = L.OFF_READY + (idx // 64) * 8
        self._ready_bit = 1 << (idx % 64)
        self._res = None  # (offset in the lane, n, view) of the open reservation
        self._need = 0
        self._msgs = self._bytes = self._fulls = 0
        self._mv, self._u32, self._u64 = r._mv, r._u32, r._u64
        self._addr = r._addr
        self._nat = r._nat
        self._recover_tail()
        r._u32[self._o_pid >> 2] = os.getpid() & 0xFFFFFFFF
        self._nat.store32(self._addr + self._o_state, L.STATE_ATTACHED)
        if self._tail != self._u64[self._o_head >> 3]:
            # The last producer may have died between a commit and its
            # signal: give it now.
            self._signal()

    def _corrupt(self, pos, msg):
        return CorruptRing("ring %r: lane %d: position %d: %s" % (self._r.name, self.lane, pos, msg))

    def _recover_tail(self):
        """Find where the lane's previous producer stopped (Go: recoverTail):
        the published tail may lag its commits, so step over committed
        records, each validated, up to the zero length word after the last
        one; then publish the tail found."""
        u32, u64, mv = self._u32, self._u64, self._mv
        h, t = u64[self._o_head >> 3], u64[self._o_tail >> 3]
        cap = self._cap
        if h % 8 or t % 8:
            raise self._corrupt(t, "cursors not 8-aligned: head %d, tail %d" % (h, t))
        if t > h and t - h > cap:
            raise self._corrupt(t, "tail is more than the capacity ahead of head %d" % h)
        if h > t and h - t > cap:
            # The published tail lags the true one, which head never
            # passes, by less than a lap.
            raise self._corrupt(t, "head %d is more than the capacity past the published tail" % h)
        t = max(t, h)  # records below head were committed and consumed
        fflags = FLAG_CHECKSUM if self._checksum else 0
        for _ in range(cap // 8):
            off = t & self._mask
            a = self._data + off
            n = u32[a >> 2]
            if n == 0:
                break
            if n >= 0x80000000:
                n -= 1 << 32
            typ, flags = _unpack_hh(mv, a + 4)
            if typ == TYPE_PADDING and flags == 0:
                _check_padding(self._r, self.lane, t, off, n)
            elif typ != TYPE_DATA or flags != fflags or n < self._hdr or n > self._max_frame:
                raise self._corrupt(t, "record after the tail: type %d, flags %#x, length %d" % (typ, flags, n))
            elif off + ((n + 7) & ~7) > cap:
                raise self._corrupt(t, "record of %d bytes after the tail crosses the end of the lane" % n)
            t += (n + 7) & ~7
            if t - h > cap - L.NEXT_HEADER_RESERVE:
                raise self._corrupt(t, "committed records beyond head+capacity")
        self._tail, self._hc, self._published = t, h, t
        u64[self._o_tail >> 3] = t

    @property
    def max_message(self):
        return self._max_payload

    @property
    def closed(self):
        return self._g.closed

    @property
    def tail(self):
        """The position after the last record this producer wrote."""
        return self._tail

    # ---- sending ----

    def try_send(self, data):
        """Write data if the lane has room now; RingFull if not."""
        self._send(data, False, None)

    def send(self, data, timeout=None):
        """Write data, waiting while the lane is full (at most timeout
        seconds, then TimeoutError). RingClosed if the consumer closed the
        ring or this producer was closed; PeerDead if the consumer died while
        send waited. Once send returns, the message is in the ring: a crash of
        this process from then on does not lose it."""
        self._send(data, True, None if timeout is None else time.monotonic() + timeout)

    def _send(self, data, wait, deadline):
        src = _bytes_view(data)
        if not self._g.enter():
            self._leave()
            raise RingClosed("send: producer closed")
        try:
            n = len(src)
            off = self._reserve(n)
            if off < 0:
                if not wait:
                    raise RingFull("ring %r: lane %d full" % (self._r.name, self.lane))
                off = self._reserve_wait(n, deadline)
            a = self._data + off + self._hdr
            self._mv[a:a + n] = src
            self._publish(off, n)
        finally:
            self._leave()

    def send_many(self, msgs, timeout=None):
        """send every message of msgs in order; returns how many were sent."""
        k = 0
        for m in msgs:
            self.send(m, timeout)
            k += 1
        return k

    def reserve(self, n, timeout=None):
        """Claim room for an n-byte message and return it as a writable
        memoryview, to be filled in place and handed over with commit(), or
        given back with abort(). Waits while the lane is full, as send does.
        The view is released at commit or abort (unless something, such as a
        NumPy array, still exports it: do not use it after either)."""
        return self._reserve_view(n, True, None if timeout is None else time.monotonic() + timeout)

    def try_reserve(self, n):
        """reserve that raises RingFull instead of waiting."""
        return self._reserve_view(n, False, None)

    def _reserve_view(self, n, wait, deadline):
        if not self._g.enter():
            self._leave()
            raise RingClosed("reserve: producer closed")
        try:
            off = self._reserve(n)
            if off < 0:
                if not wait:
                    raise RingFull("ring %r: lane %d full" % (self._r.name, self.lane))
                off = self._reserve_wait(n, deadline)
            a = self._data + off + self._hdr
            view = self._mv[a:a + n]
            self._res = (off, n, view)
            return view
        finally:
            self._leave()

    def commit(self):
        """Hand the reserved message to the consumer."""
        if not self._g.enter():
            self._leave()
            raise RingClosed("commit: producer closed")
        try:
            if self._res is None:
                raise Pending("commit without a reservation")
            off, n, view = self._res
            self._res = None
            _release_view(view)
            self._publish(off, n)
        finally:
            self._leave()

    def abort(self):
        """Give back the open reservation: the consumer never sees it."""
        if self._res is None:
            raise Pending("abort without a reservation")
        _release_view(self._res[2])
        self._res = None

    def _reserve_wait(self, n, deadline):
        while True:
            off = self._reserve(n)
            if off >= 0:
                return off
            self._fulls += 1
            self._r._await(deadline, self, self._o_seq)

    def _reserve(self, n):
        """Find room for a frame with an n-byte payload; return its offset in
        the lane, or -1 if the lane is full. A frame that would cross the end
        of the lane is preceded by a padding frame and goes at offset 0."""
        if self._res is not None:
            raise Pending("send while a reservation is open")
        if n < 0 or n > self._max_payload:
            raise TooLarge("message of %d bytes, the ring's maximum is %d" % (n, self._max_payload))
        u32 = self._u32
        if u32[L.OFF_CONS_STATE >> 2] == L.STATE_CLOSED:
            raise RingClosed("send: consumer closed")
        cap = self._cap
        size = (self._hdr + n + 7) & ~7
        t = self._tail
        off = t & self._mask
        gap = cap - off if off + size > cap else 0
        need = gap + size + 8
        if t + need - self._hc > cap:
            self._reload_head()
            if t + need - self._hc > cap:
                self._need = need
                return -1
        if gap:
            d = self._data
            u32[d >> 2] = 0  # the record's length word at offset 0, first
            _pack_hh(self._mv, d + off + 4, TYPE_PADDING, 0)
            u32[(d + off) >> 2] = gap  # commits the padding (a release store)
            self._tail += gap
            off = 0
        return off

    def _reload_head(self):
        h = self._u64[self._o_head >> 3]
        t = self._tail
        if h > t or t - h > self._cap or h % 8:
            raise self._corrupt(h, "head is beyond the tail %d or more than the capacity behind it" % t)
        self._hc = h

    def _publish(self, off, n):
        """Seal and commit the frame at off, then tell the consumer if it
        asked: by the lane's ready bit if it stopped polling the lane, by a
        futex wake if it parked (Go: Producer.publish)."""
        a = self._data + off
        mv, u32 = self._mv, self._u32
        hdr = self._hdr
        if self._checksum:
            _pack_hhq(mv, a + 4, TYPE_DATA, FLAG_CHECKSUM, xxh64(mv[a + hdr:a + hdr + n]))
        else:
            _pack_hh(mv, a + 4, TYPE_DATA, 0)
        length = hdr + n
        size = (length + 7) & ~7
        t = self._tail
        u32[(self._data + ((t + size) & self._mask)) >> 2] = 0  # the next length word
        nat = self._nat
        nat.store32(self._addr + a, length)  # publishes the record; a full fence
        self._tail = t = t + size
        self._signal()
        self._msgs += 1
        self._bytes += n
        if self._msgs >= L.FLUSH_EVERY or t - self._published >= self._cap // 2:
            self._flush()

    def _signal(self):
        """Tell the consumer of a commit if it asked to be told: by the lane's
        ready bit if it stopped polling the lane, by a futex wake if it
        parked. Follows the commit's fenced store with loads (see
        Ring._await)."""
        u32, nat = self._u32, self._nat
        if u32[self._i_signal] != 0 and not (self._u64[self._ready_off >> 3] & self._ready_bit):
            nat.or64(self._addr + self._ready_off, self._ready_bit)
        if u32[L.OFF_CONS_PARKED >> 2] != 0:
            addr = self._addr + L.OFF_CONS_SEQ
            nat.add32(addr, 1)
            nat.futex_wake(addr, 1)

    def _flush(self):
        """Publish the tail and add the local counters to the lane's (this
        producer is their only writer). The producer flushes every 256
        records and every half lap, so the published tail lags the true one
        by less than a lap."""
        u64 = self._u64
        u64[self._o_tail >> 3] = self._tail
        self._published = self._tail
        if self._msgs:
            u64[self._o_sent >> 3] = (u64[self._o_sent >> 3] + self._msgs) & 0xFFFFFFFFFFFFFFFF
        if self._bytes:
            u64[self._o_sent_bytes >> 3] = (u64[self._o_sent_bytes >> 3] + self._bytes) & 0xFFFFFFFFFFFFFFFF
        if self._fulls:
            u64[self._o_full >> 3] = (u64[self._o_full >> 3] + self._fulls) & 0xFFFFFFFFFFFFFFFF
        self._msgs = self._bytes = self._fulls = 0

    # ---- as a waiter, for room ----

    def _low_water(self):
        return max(self._need, self._cap // 4)

    def _poll(self):
        if self._g.closed:
            raise RingClosed("send: producer closed")
        if self._u32[L.OFF_CONS_STATE >> 2] == L.STATE_CLOSED:
            raise RingClosed("send: consumer closed")
        self._reload_head()
        return self._tail + self._low_water() - self._hc <= self._cap

    def _ended(self):
        pass

    def _peer(self):
        st = self._r._role_state(L.OFF_CONS_STATE, L.LOCK_CONSUMER)
        if st == "closed":
            raise RingClosed("send: consumer closed")
        if st == "dead":
            raise PeerDead("ring %r: send: the consumer died" % self._r.name)

    def _announce(self):
        self._flush()
        self._nat.store32(self._addr + self._o_waiting, self._low_water())

    def _retract(self):
        self._u32[self._o_waiting >> 2] = 0

    # ---- closing ----

    def close(self):
        """Give up the producer role. A consumer drains what was sent and then
        gets EndOfStream (SPSC), or goes on with the other lanes (MPSC). An
        open reservation is dropped, unseen. May be called from any thread."""
        finalize, first = self._g.close()
        if not first:
            return
        addr = self._addr + self._o_seq
        self._nat.add32(addr, 1)
        self._nat.futex_wake(addr, WAKE_ALL)  # a send parked for room
        if finalize:
            self._finalize()

    def _leave(self):
        if self._g.leave():
            self._finalize()

    def _finalize(self):
        r = self._r
        if self._res is not None:
            _release_view(self._res[2])
            self._res = None
        self._flush()
        nat = self._nat
        nat.store32(self._addr + self._o_state, L.STATE_CLOSED)
        addr = self._addr + L.OFF_CONS_SEQ
        nat.add32(addr, 1)
        nat.futex_wake(addr, 1)
        Segment.unlock(self._lock)
        r._forget(self)
        self._mv = self._u32 = self._u64 = None
        r._release()
        if self._own:
            r.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "<ringwire.Producer lane %d of %r%s>" % (self.lane, self._r.name, ", closed" if self.closed else "")


def _release_view(view):
    try:
        view.release()
    except BufferError:
        pass  # still exported (a NumPy array, say): it dies with its last user


class _CLane:
    """The consumer's view of one lane."""

    __slots__ = ("idx", "data", "head", "released", "hot", "idle", "i_signal", "o_signal", "o_head",
                 "o_seq", "i_waiting", "o_tail", "i_state", "lock")

    def __init__(self, idx, data_off, capacity):
        base = L.lane_base(idx)
        self.idx = idx
        self.data = data_off + idx * capacity
        self.head = self.released = 0
        self.hot = False
        self.idle = 0
        self.o_signal = base + L.OFF_LANE_SIGNAL
        self.i_signal = self.o_signal >> 2
        self.o_head = base + L.OFF_LANE_HEAD
        self.o_seq = base + L.OFF_LANE_SEQ
        self.i_waiting = (base + L.OFF_LANE_WAITING) >> 2
        self.o_tail = base + L.OFF_LANE_TAIL
        self.i_state = (base + L.OFF_LANE_STATE) >> 2
        self.lock = base


class Consumer:
    """Reads messages from every lane of a ring (Go: ring.Consumer): each
    lane's messages in order, each once; no order between lanes. It holds the
    consumer role until close() or until its process dies.

    recv() returns a verified copy (the checksum, if the ring has them, is
    checked on the copy); recv_into(buffer) copies into a buffer; peek()
    returns a read-only memoryview of the message in shared memory, valid
    until release(); recv_array(dtype, shape) is peek as a NumPy array.
    Lanes are served round-robin, at most 64 messages from one lane before
    the next lane's turn. At the end of the stream (SPSC: the producer
    closed; MPSC: no producer attached, at least one closed) and once every
    lane is drained, receives raise EndOfStream. Iterating a Consumer yields
    messages until then. A Consumer is a context manager."""

    def __init__(self, ring, lockfd):
        r = ring
        g = r._geo
        self._r = r
        self._lock = lockfd
        self._g = _Guard()
        self._own = False
        self._mpsc = g.mpsc
        self._cap = g.capacity
        self._mask = g.mask
        self._hdr = g.hdr
        self._checksum = g.checksum
        self._fflags = g.frame_flags
        self._max_frame = g.max_frame
        self._mv, self._u32, self._u64 = r._mv, r._u32, r._u64
        self._addr = r._addr
        self._nat = r._nat
        self._peeked = None  # (lane, record, view)
        self._array = None  # a weak reference to the buffer of recv_array's array
        self._msgs = self._bytes = 0
        self._cur = 0
        self._served = 0
        self._hot = []
        self._ready_words = (g.lanes + 63) // 64
        u32, u64 = self._u32, self._u64
        self._lanes = []
        for i in range(g.lanes):
            cl = _CLane(i, g.data_off, g.capacity)
            cl.head = cl.released = u64[cl.o_head >> 3]
            if cl.head % 8:
                raise CorruptRing("ring %r: lane %d: position %d: head not 8-aligned" % (r.name, i, cl.head))
            t = u64[cl.o_tail >> 3]
            if t > cl.head and t - cl.head > g.capacity:
                raise CorruptRing("ring %r: lane %d: position %d: published tail %d is more than the capacity ahead"
                                  % (r.name, i, cl.head, t))
            u32[cl.i_signal] = 1  # every lane starts cold: ask its producer to signal, then look
            self._lanes.append(cl)
        self._nat.fence()
        for cl in self._lanes:
            # The first lanes stay hot, so that a ring of few lanes is polled
            # without signals until the consumer parks; the others stay cold
            # unless they hold a record.
            if cl.idx < L.HOT_KEEP or u32[(cl.data + (cl.head & self._mask)) >> 2] != 0:
                self._heat(cl)
        u32[L.OFF_CONS_PID >> 2] = os.getpid() & 0xFFFFFFFF
        self._nat.store32(self._addr + L.OFF_CONS_STATE, L.STATE_ATTACHED)

    def _corrupt(self, cl, pos, msg):
        return CorruptRing("ring %r: lane %d: position %d: %s" % (self._r.name, cl.idx, pos, msg))

    @property
    def closed(self):
        return self._g.closed

    # ---- receiving ----

    def recv(self, timeout=None):
        """Return a copy of the next message (bytes), waiting for one (at most
        timeout seconds, then TimeoutError). EndOfStream after the producers
        closed and every message was read; PeerDead if the producer of an SPSC
        ring died."""
        return self._recv(True, None if timeout is None else time.monotonic() + timeout)

    def try_recv(self):
        """recv that raises RingEmpty instead of waiting."""
        return self._recv(False, None)

    def _recv(self, wait, deadline):
        if not self._g.enter():
            self._leave()
            raise RingClosed("receive: consumer closed")
        try:
            cl, a, n, size, pos, want = self._next_wait(wait, deadline)
            data = self._mv[a:a + n].tobytes()
            if self._checksum:
                got = xxh64(data)
                if got != want:
                    raise self._corrupt(cl, pos, "checksum %#018x, frame says %#018x" % (got, want))
            self._consume(cl, pos + size, n)
            return data
        finally:
            self._leave()

    def recv_into(self, buffer, timeout=None):
        """Copy the next message into buffer (a writable bytes-like object)
        and return its length. If the buffer is too small, TooLarge is raised
        and the message stays in the ring."""
        if not self._g.enter():
            self._leave()
            raise RingClosed("receive: consumer closed")
        try:
            dst = _bytes_view(buffer)
            cl, a, n, size, pos, want = self._next_wait(True, None if timeout is None else time.monotonic() + timeout)
            if n > len(dst):
                raise TooLarge("message of %d bytes, buffer of %d" % (n, len(dst)))
            dst[:n] = self._mv[a:a + n]
            if self._checksum:
                got = xxh64(dst[:n])
                if got != want:
                    raise self._corrupt(cl, pos, "checksum %#018x, frame says %#018x" % (got, want))
            self._consume(cl, pos + size, n)
            return n
        finally:
            self._leave()

    def peek(self, timeout=None):
        """Return the next message in place, as a read-only memoryview of
        shared memory, waiting for one as recv does. It is valid until
        release(), which must come before the next receive; release() revokes
        the view. The checksum, if any, is verified over the shared bytes,
        which proves nothing against a hostile writer that changes them
        afterwards: use recv for a verified copy."""
        return self._peek(True, None if timeout is None else time.monotonic() + timeout)

    def try_peek(self):
        """peek that raises RingEmpty instead of waiting."""
        return self._peek(False, None)

    def _peek(self, wait, deadline):
        if not self._g.enter():
            self._leave()
            raise RingClosed("peek: consumer closed")
        try:
            cl, a, n, size, pos, want = self._next_wait(wait, deadline)
            view = self._mv[a:a + n]
            if self._checksum:
                got = xxh64(view)
                if got != want:
                    view.release()
                    raise self._corrupt(cl, pos, "checksum %#018x, frame says %#018x" % (got, want))
            ro = view.toreadonly()
            self._peeked = (cl, pos + size, n, view, ro)
            return ro
        finally:
            self._leave()

    def release(self):
        """Hand the message returned by peek or recv_array back to its
        producer, and revoke peek's view (using it afterwards raises
        ValueError). While a NumPy array returned by recv_array, or any array
        derived from it (a slice, a reshape), is still alive, release refuses
        with BufferError and the message stays held: delete the arrays (or
        keep a copy, arr.copy()) and call release again. This is what keeps
        such an array from ever showing bytes the producer wrote after the
        release."""
        if not self._g.enter():
            self._leave()
            raise RingClosed("release: consumer closed")
        try:
            if self._peeked is None:
                raise Pending("release without a peeked message")
            if self._array is not None:
                if self._array() is not None:
                    raise BufferError("release: a NumPy array from recv_array (or a view of it) is still alive; "
                                      "delete it, or copy it, before release")
                self._array = None
            cl, end, n, view, ro = self._peeked
            self._peeked = None
            _release_view(ro)
            _release_view(view)
            self._consume(cl, end, n)
        finally:
            self._leave()

    def _unpeek(self):
        """Forget the peeked message without releasing it: it comes again."""
        self._array = None
        if self._peeked is not None:
            _, _, _, view, ro = self._peeked
            self._peeked = None
            _release_view(ro)
            _release_view(view)

    def recv_array(self, dtype, shape=None, timeout=None):
        """Peek the next message as a read-only NumPy array of dtype and shape
        (None: one dimension, as many items as the message holds), without
        copying: the array aliases the message in shared memory.

        Lifetime, enforced: the array is valid until release(), which must
        come before the next receive, and release() refuses (BufferError,
        the message stays held) while the array or any view derived from it
        is alive. So the pattern is::

            arr = c.recv_array("f8", (16,))
            total = arr.sum()          # or keep = arr.copy()
            del arr
            c.release()

        A message whose size does not match raises ValueError and stays in
        the ring. If the consumer is closed while an array is alive, the
        message is not released (the next consumer gets it again) and the
        mapping stays until the array dies. Needs NumPy."""
        try:
            import numpy as np
        except ImportError:
            raise RingError("recv_array needs NumPy, which is not installed") from None
        dt = np.dtype(dtype)
        view = self.peek(timeout)
        n = len(view)
        if shape is None:
            if dt.itemsize == 0 or n % dt.itemsize:
                self._unpeek()
                raise ValueError("message of %d bytes is not a whole number of %s" % (n, dt))
            count = n // dt.itemsize
            shape = (count,)
        else:
            if isinstance(shape, int):
                shape = (shape,)
            count = 1
            for d in shape:
                count *= d
            if count * dt.itemsize != n:
                self._unpeek()
                raise ValueError("message of %d bytes, array %s of %s needs %d" % (n, tuple(shape), dt, count * dt.itemsize))
        # NumPy's array refers to its buffer through a memoryview of its own
        # (or through the private one given it): only arrays hold that
        # object, so a weak reference to it says whether any is alive.
        root = np.frombuffer(view[:], dtype=dt, count=count)
        self._array = weakref.ref(root.base if root.base is not None else root)
        return root.reshape(shape)

    def __iter__(self):
        while True:
            try:
                yield self.recv()
            except EndOfStream:
                return

    def _consume(self, cl, end, n):
        cl.head = end
        self._msgs += 1
        self._bytes += n
        if self._msgs >= L.FLUSH_EVERY:
            self._flush()
        self._publish_head(cl)
        self._wake_producer(cl)

    def _next_wait(self, wait, deadline):
        first = True
        while True:
            rec = self._next()
            if rec is not None:
                return rec
            if not wait:
                raise RingEmpty("ring %r: empty" % self._r.name)
            if not first and deadline is not None and time.monotonic() >= deadline:
                # _await saw a record that _next did not take (padding, or a
                # peer rewriting the ring): the deadline still holds.
                raise TimeoutError("ring %r: timed out" % self._r.name)
            first = False
            try:
                self._r._await(deadline, self, L.OFF_CONS_SEQ)
            except BaseException:
                self._flush()
                raise

    def _next(self):
        """The next data record, visiting the hot lanes round-robin, or None
        (Go: Consumer.next). Returns (lane, address, n, size, pos, checksum)."""
        if self._peeked is not None:
            raise Pending("receive before release")
        self._gather()
        hot = self._hot
        lanes = self._lanes
        for _ in range(len(hot)):
            if self._cur >= len(hot):
                self._cur = 0
            if self._served >= L.FAIR_BATCH:
                self._cur, self._served = (self._cur + 1) % len(hot), 0
            cl = lanes[hot[self._cur]]
            rec = self._take(cl)
            if rec is not None:
                cl.idle = 0
                self._served += 1
                return rec
            cl.idle += 1
            if cl.idle >= L.COOL_AFTER and len(hot) > L.HOT_KEEP and self._cool(cl):
                continue  # self._cur now names the next lane
            self._cur += 1
            self._served = 0
        return None

    def _take(self, cl):
        """Validate the record at the lane's read position (Go: take); step
        over a padding frame."""
        u32, mv = self._u32, self._mv
        cap = self._cap
        for _ in range(2):
            off = cl.head & self._mask
            a = cl.data + off
            n = u32[a >> 2]
            if n == 0:
                return None
            if n >= 0x80000000:
                n -= 1 << 32
            typ, flags = _unpack_hh(mv, a + 4)
            if typ == TYPE_PADDING:
                if flags != 0:
                    raise self._corrupt(cl, cl.head, "padding with flags %#06x" % flags)
                _check_padding(self._r, cl.idx, cl.head, off, n)
                cl.head += n
                continue
            if typ != TYPE_DATA:
                raise self._corrupt(cl, cl.head, "frame type %d" % typ)
            if flags != self._fflags:
                raise self._corrupt(cl, cl.head, "frame flags %#06x in a ring whose frames have %#06x" % (flags, self._fflags))
            if n < self._hdr or n > self._max_frame:
                raise self._corrupt(cl, cl.head, "frame length %d outside [%d, %d]" % (n, self._hdr, self._max_frame))
            size = (n + 7) & ~7
            if off + size > cap:
                raise self._corrupt(cl, cl.head, "frame of %d bytes crosses the end of the lane" % size)
            want = _unpack_q(mv, a + 8)[0] if self._checksum else 0
            return (cl, a + self._hdr, n - self._hdr, size, cl.head, want)
        raise self._corrupt(cl, cl.head, "padding after padding")

    def _gather(self):
        """Move the lanes whose ready bits are set to the hot list."""
        u64 = self._u64
        for w in range(self._ready_words):
            off = L.OFF_READY + 8 * w
            if u64[off >> 3] == 0:
                continue
            s = self._nat.swap64(self._addr + off, 0)
            while s:
                low = s & -s
                s ^= low
                i = w * 64 + low.bit_length() - 1
                if i < len(self._lanes):
                    self._heat(self._lanes[i])

    def _heat(self, cl):
        if cl.hot:
            return
        cl.hot, cl.idle = True, 0
        self._u32[cl.i_signal] = 0
        self._hot.append(cl.idx)

    def _cool(self, cl):
        """Ask the lane's producer to signal its next commit, then look once
        more; report whether the lane left the hot list."""
        if cl.head != cl.released:
            return False  # a padding step still to release
        self._nat.store32(self._addr + cl.o_signal, 1)
        if self._u32[(cl.data + (cl.head & self._mask)) >> 2] != 0:
            self._u32[cl.i_signal] = 0
            cl.idle = 0
            return False
        cl.hot = False
        hot = self._hot
        k = hot.index(cl.idx)
        del hot[k]
        if self._cur > k:
            self._cur -= 1
        self._served = 0
        return True

    def _publish_head(self, cl):
        cl.released = cl.head
        self._nat.store64(self._addr + cl.o_head, cl.head)  # a full fence before _wake_producer's load

    def _wake_producer(self, cl):
        w = self._u32[cl.i_waiting]
        if w == 0:
            return
        t = self._u64[cl.o_tail >> 3]  # published before the producer announced
        if t >= cl.released and t - cl.released + w > self._cap:
            return  # not enough room yet
        addr = self._addr + cl.o_seq
        self._nat.add32(addr, 1)
        self._nat.futex_wake(addr, 1)

    def _flush(self):
        u64 = self._u64
        if u64 is None:
            return
        if self._msgs:
            i = L.OFF_STAT_RECV_MSGS >> 3
            u64[i] = (u64[i] + self._msgs) & 0xFFFFFFFFFFFFFFFF
        if self._bytes:
            i = L.OFF_STAT_RECV_BYTES >> 3
            u64[i] = (u64[i] + self._bytes) & 0xFFFFFFFFFFFFFFFF
        self._msgs = self._bytes = 0

    # ---- as a waiter, for a message ----

    def _poll(self):
        if self._g.closed:
            raise RingClosed("receive: consumer closed")
        self._gather()
        u32, mask, lanes = self._u32, self._mask, self._lanes
        for i in self._hot:
            cl = lanes[i]
            if u32[(cl.data + (cl.head & mask)) >> 2] != 0:
                return True
        if not self._mpsc:
            cl = lanes[0]
            if u32[cl.i_state] == L.STATE_CLOSED:
                # The producer's last record was committed before its state
                # changed: look once more, then it is the end.
                if u32[(cl.data + (cl.head & mask)) >> 2] != 0:
                    self._heat(cl)
                    return True
                raise EndOfStream("ring %r: the producer closed" % self._r.name)
        return False

    def _ended(self):
        """Sweep every lane, cold ones included (Go: Consumer.ended): a lane
        with a record at its head goes hot, so that no record waits for a
        signal its producer died before giving; a published tail more than
        the capacity ahead of the head is corruption. Then the end of an
        MPSC stream: no producer attached, at least one closed, every lane
        drained. A dead producer does not end it: another may take its
        lane."""
        u32, u64, mask, cap = self._u32, self._u64, self._mask, self._cap
        attached = closed = busy = False
        for cl in self._lanes:
            t = u64[cl.o_tail >> 3]
            if t > cl.head and t - cl.head > cap:
                raise self._corrupt(cl, cl.head, "published tail %d is more than the capacity ahead" % t)
            if u32[(cl.data + (cl.head & mask)) >> 2] != 0:
                self._heat(cl)
                busy = True
            st = u32[cl.i_state]
            if st == L.STATE_ATTACHED:
                attached = True
            elif st == L.STATE_CLOSED:
                closed = True
        if self._mpsc and closed and not attached and not busy:
            raise EndOfStream("ring %r: every producer closed" % self._r.name)

    def _peer(self):
        if self._mpsc:
            return
        cl = self._lanes[0]
        if self._u32[(cl.data + (cl.head & self._mask)) >> 2] != 0:
            self._heat(cl)  # delivered before the peer's end is reported
            return
        st = self._r._role_state(cl.i_state << 2, cl.lock)
        if st == "closed":
            raise EndOfStream("ring %r: the producer closed" % self._r.name)
        if st == "dead":
            raise PeerDead("ring %r: receive: the producer died" % self._r.name)

    def _announce(self):
        self._flush()
        lanes = self._lanes
        for k in range(len(self._hot) - 1, -1, -1):
            self._cool(lanes[self._hot[k]])
        self._nat.store32(self._addr + L.OFF_CONS_PARKED, 1)

    def _retract(self):
        self._u32[L.OFF_CONS_PARKED >> 2] = 0

    # ---- closing ----

    def close(self):
        """Give up the consumer role. Producers waiting for room, or sending
        afterwards, get RingClosed. A message peeked but not released stays
        in the ring for the next consumer. May be called from any thread."""
        finalize, first = self._g.close()
        if not first:
            return
        addr = self._addr + L.OFF_CONS_SEQ
        self._nat.add32(addr, 1)
        self._nat.futex_wake(addr, WAKE_ALL)  # a receive parked for a message
        if finalize:
            self._finalize()

    def _leave(self):
        if self._g.leave():
            self._finalize()

    def _finalize(self):
        r = self._r
        self._unpeek()
        self._flush()
        nat = self._nat
        nat.store32(self._addr + L.OFF_CONS_STATE, L.STATE_CLOSED)
        u32 = self._u32
        for cl in self._lanes:
            if u32[cl.i_waiting] != 0:
                addr = self._addr + cl.o_seq
                nat.add32(addr, 1)
                nat.futex_wake(addr, WAKE_ALL)
        Segment.unlock(self._lock)
        r._forget(self)
        self._mv = self._u32 = self._u64 = None
        r._release()
        if self._own:
            r.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "<ringwire.Consumer of %r%s>" % (self._r.name, ", closed" if self.closed else "")


def open_producer(name, dir=DEFAULT_DIR, timeout=L.DEFAULT_ATTACH_TIMEOUT, wait=None):
    """Attach to the ring called name and claim a producer role; closing the
    Producer closes the attachment too."""
    r = Ring.open(name, dir=dir, timeout=timeout, wait=wait)
    try:
        p = r.producer()
    except BaseException:
        r.close()
        raise
    p._own = True
    return p


def open_consumer(name, dir=DEFAULT_DIR, timeout=L.DEFAULT_ATTACH_TIMEOUT, wait=None):
    """Attach to the ring called name and claim the consumer role; closing
    the Consumer closes the attachment too."""
    r = Ring.open(name, dir=dir, timeout=timeout, wait=wait)
    try:
        c = r.consumer()
    except BaseException:
        r.close()
        raise
    c._own = True
    return c
