"""The frame format of docs/FRAME.md (Go: package codec).

A frame: int32 length (header + payload, not padded), uint16 type (1 data,
2 padding), uint16 flags (bit 0: an XXH64 checksum of the payload follows at
offset 8), then the payload at offset 8 or 16; a frame occupies align8(length)
bytes. All integers little-endian.
"""

import struct

from ._xxh64 import xxh64

ALIGN = 8
HEADER_SIZE = 8
CHECKSUM_SIZE = 8
OFF_LENGTH = 0
OFF_TYPE = 4
OFF_FLAGS = 6
OFF_CHECKSUM = 8
MAX_LENGTH = 0x7FFFFFFF

TYPE_DATA = 1
TYPE_PADDING = 2
FLAG_CHECKSUM = 0x0001
FLAGS_RESERVED = 0xFFFE


class FrameError(ValueError):
    """A malformed frame. ``check`` is the row of FRAME.md's validation table
    that failed (1-9)."""

    def __init__(self, check, detail):
        super().__init__("frame check %d: %s" % (check, detail))
        self.check = check


def align_up(n):
    return (n + ALIGN - 1) & ~(ALIGN - 1)


def header_len(flags):
    return HEADER_SIZE + CHECKSUM_SIZE if flags & FLAG_CHECKSUM else HEADER_SIZE


def frame_size(payload_len, flags=0):
    return align_up(header_len(flags) + payload_len)


def encode(payload, flags=0):
    """A complete data frame carrying payload, alignment padding (zeros)
    included."""
    if flags & FLAGS_RESERVED:
        raise FrameError(5, "reserved flags %#x" % flags)
    payload = memoryview(payload).cast("B")
    hl = header_len(flags)
    n = hl + len(payload)
    if n > MAX_LENGTH:
        raise FrameError(7, "frame of %d bytes" % n)
    out = bytearray(align_up(n))
    struct.pack_into("<iHH", out, 0, n, TYPE_DATA, flags)
    if flags & FLAG_CHECKSUM:
        struct.pack_into("<Q", out, OFF_CHECKSUM, xxh64(payload))
    out[hl:n] = payload
    return bytes(out)


class Frame:
    __slots__ = ("type", "flags", "length", "size", "payload")

    def __init__(self, type, flags, length, size, payload):
        self.type, self.flags, self.length, self.size, self.payload = type, flags, length, size, payload

    def __repr__(self):
        return "Frame(type=%d, flags=%d, length=%d, size=%d)" % (self.type, self.flags, self.length, self.size)


def decode(src, off=0, max_length=MAX_LENGTH):
    """Validate and decode the frame at src[off:], making FRAME.md's checks in
    order. The payload is a memoryview of src (None for padding)."""
    src = memoryview(src).cast("B")
    if off < 0 or off > len(src) or off % ALIGN:
        raise FrameError(1, "offset %d" % off)
    room = len(src) - off
    if room < HEADER_SIZE:
        raise FrameError(2, "%d bytes left for an 8-byte header" % room)
    length, typ, flags = struct.unpack_from("<iHH", src, off)
    if length <= 0:
        raise FrameError(3, "length %d" % length)
    if typ == TYPE_DATA:
        if flags & FLAGS_RESERVED:
            raise FrameError(5, "reserved flags %#x" % flags)
    elif typ == TYPE_PADDING:
        if flags:
            raise FrameError(5, "padding frame with flags %#x" % flags)
    else:
        raise FrameError(4, "type %d" % typ)
    hl = header_len(flags)
    if room < hl:
        raise FrameError(6, "%d bytes left for a %d-byte header" % (room, hl))
    if length < hl or length > max_length or (typ == TYPE_PADDING and length % ALIGN):
        raise FrameError(7, "length %d (header %d, max %d)" % (length, hl, max_length))
    size = align_up(length)
    if size > room:
        raise FrameError(8, "frame of %d bytes, %d left" % (size, room))
    if typ == TYPE_PADDING:
        return Frame(typ, flags, length, size, None)
    payload = src[off + hl: off + length]
    if flags & FLAG_CHECKSUM:
        (want,) = struct.unpack_from("<Q", src, off + OFF_CHECKSUM)
        got = xxh64(payload)
        if got != want:
            raise FrameError(9, "checksum %#x, frame says %#x" % (got, want))
    return Frame(typ, flags, length, size, payload)
