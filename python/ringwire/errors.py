"""Exceptions, mirroring the Go package's sentinel errors (ring/ring.go).

Every one is a RingError. ``kind`` is the short name the command-line peers
print (ring/testdata/peer.py). Waits that run out of time raise the built-in
TimeoutError; a missing segment raises FileNotFoundError.
"""


class RingError(Exception):
    """Base class of ringwire's errors."""

    kind = "error"


class RingFull(RingError):
    """try_send or try_reserve found no room in the lane (Go: ErrFull)."""

    kind = "full"


class RingEmpty(RingError):
    """try_recv or try_peek found no message (Go: ErrEmpty)."""

    kind = "empty"


class RingClosed(RingError):
    """This handle was closed, or the consumer closed the ring, as a producer
    sees it (Go: ErrClosed)."""

    kind = "closed"


class EndOfStream(RingError, EOFError):
    """Every producer closed and every message was received (Go: io.EOF).
    Also an EOFError."""

    kind = "eof"


class PeerDead(RingError):
    """The peer this side waits for died: its role lock was dropped by the
    kernel without a clean close (Go: ErrPeerDead)."""

    kind = "peer-dead"


class CorruptRing(RingError):
    """The shared state breaks the layout's rules (Go: ErrCorrupt)."""

    kind = "corrupt"


class VersionMismatch(RingError):
    """The segment is a ring of another layout version (Go: ErrVersion)."""

    kind = "version"


class ForeignSegment(RingError):
    """The segment is not a ringwire ring (Go: ErrForeign)."""

    kind = "foreign"


class NotSegment(ForeignSegment):
    """The name is not a regular file: a directory, symlink, FIFO
    (Go: shm.ErrNotSegment)."""

    kind = "not-segment"


class NotReady(RingError):
    """The header was still unpublished when the attach timeout ran out
    (Go: ErrNotReady)."""

    kind = "not-ready"


class Truncated(RingError):
    """The segment is smaller than its header says (Go: ErrTruncated)."""

    kind = "truncated"


class RoleBusy(RingError):
    """The role is held by a live holder: the consumer, or every producer
    lane (Go: ErrBusy)."""

    kind = "busy"


class TooLarge(RingError):
    """The message exceeds the ring's maximum; nothing was written
    (Go: ErrTooLarge)."""

    kind = "too-large"


class Pending(RingError):
    """A call out of order: send while a reservation is open, commit without
    one, a receive before release (Go: ErrPending)."""

    kind = "pending"


class BadOptions(RingError, ValueError):
    """create was given options it cannot honour (Go: ErrBadOptions)."""

    kind = "bad-options"


class Unsupported(RingError):
    """Rings need Linux on x86-64 with a 64-bit Python."""

    kind = "unsupported"


class NotOwner(RingError):
    """unlink on a handle that did not create the ring."""

    kind = "not-owner"


class Replaced(RingError):
    """unlink found that the name now refers to another segment
    (Go: shm.ErrReplaced), and left it alone."""

    kind = "replaced"
