"""ringwire: lock-free message rings in POSIX shared memory, from Python.

A Python implementation of ringwire's segment layout version 2, which Go
producers and consumers (github.com/ringwire/ringwire/ring) share: the two
interoperate through /dev/shm. Standard library only; NumPy (recv_array)
and the xxhash module (faster checksums) are used when installed.

    import ringwire

    with ringwire.Ring.create("orders", capacity=1 << 20) as ring:
        with ring.producer() as p:
            p.send(b"hello")

    # another process
    with ringwire.Ring.open("orders") as ring, ring.consumer() as c:
        for msg in c:          # until every producer closed (EndOfStream)
            print(msg)

Rings need Linux on x86-64 (see _native.py); SharedMemory works on any POSIX
system.
"""

from . import codec, layout
from ._native import supported
from .errors import (BadOptions, CorruptRing, EndOfStream, ForeignSegment, NotOwner, NotReady,
                     NotSegment, Pending, PeerDead, Replaced, RingClosed, RingEmpty, RingError,
                     RingFull, RoleBusy, TooLarge, Truncated, Unsupported, VersionMismatch)
from ._xxh64 import xxh64
from .ring import MPSC, SPSC, Consumer, Producer, Ring, Wait, open_consumer, open_producer, validate
from .shared_memory import SharedMemory

__version__ = "0.2.0"
LAYOUT_VERSION = layout.LAYOUT_VERSION

__all__ = [
    "Ring", "Producer", "Consumer", "Wait", "SPSC", "MPSC", "open_producer", "open_consumer",
    "SharedMemory", "supported", "xxh64", "validate", "codec", "layout", "LAYOUT_VERSION",
    "RingError", "RingFull", "RingEmpty", "RingClosed", "EndOfStream", "PeerDead", "CorruptRing",
    "VersionMismatch", "ForeignSegment", "NotSegment", "NotReady", "Truncated", "RoleBusy",
    "TooLarge", "Pending", "BadOptions", "Unsupported", "NotOwner", "Replaced",
]
