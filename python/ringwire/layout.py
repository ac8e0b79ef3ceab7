"""Layout version 2 of a ring segment, as ring/layout.go defines it (the one
authoritative definition; this module copies its constants).

    [0, 1024)                         eight 128-byte blocks of ring control fields
    [1024, 1024+lanes*256)            the lane table: two blocks per lane
    [data_off, data_off+lanes*cap)    the lanes' data regions; lane i's at
                                      data_off + i*cap; data_off page-aligned

All integers are little-endian.
"""

BLOCK = 128

# Block 0, the header.
OFF_MAGIC = 0
OFF_VERSION = 8
OFF_FLAGS = 12
OFF_CAPACITY = 16
OFF_DATAOFF = 24
OFF_SEGSIZE = 32
OFF_MAXFRAME = 40
OFF_LANES = 44
OFF_CREATED = 48
OFF_CREATOR = 56
OFF_INSTANCE = 64
HEADER_FIELDS = 72
HEADER_FORMAT = "<IIQQQIIqI4xQ"  # from OFF_VERSION to OFF_INSTANCE+8

# Block 1, consumer signals.
OFF_CONS_SEQ = 1 * BLOCK
OFF_CONS_PARKED = OFF_CONS_SEQ + 4
OFF_CONS_STATE = OFF_CONS_SEQ + 8
OFF_CONS_PID = OFF_CONS_SEQ + 12

# Block 2, consumer statistics.
OFF_STAT_RECV_MSGS = 2 * BLOCK
OFF_STAT_RECV_BYTES = OFF_STAT_RECV_MSGS + 8

# Block 3, the ready set.
OFF_READY = 3 * BLOCK
READY_WORDS = 16

OFF_LANE_TABLE = 8 * BLOCK
LANE_SIZE = 2 * BLOCK

# Producer block of a lane.
OFF_LANE_TAIL = 0
OFF_LANE_STATE = 8
OFF_LANE_PID = 12
OFF_LANE_SENT_MSGS = 16
OFF_LANE_SENT_BYTES = 24
OFF_LANE_FULL = 32
OFF_LANE_SIGNAL = 40

# Consumer block of a lane.
OFF_LANE_HEAD = BLOCK
OFF_LANE_SEQ = BLOCK + 8
OFF_LANE_WAITING = BLOCK + 12

LOCK_OWNER = 0
LOCK_ATTACHED = 1
LOCK_CONSUMER = 2 * BLOCK

MAGIC = 0x45524957474E4952  # "RINGWIRE" as a little-endian u64
LAYOUT_VERSION = 2

FLAG_MPSC = 1 << 0
FLAG_CHECKSUM = 1 << 1
KNOWN_FLAGS = FLAG_MPSC | FLAG_CHECKSUM

PAGE_SIZE = 4096
MIN_CAPACITY = 4096
MAX_CAPACITY = 1 << 40
MAX_LANES = READY_WORDS * 64

NEXT_HEADER_RESERVE = 8

STATE_NONE = 0
STATE_ATTACHED = 1
STATE_CLOSED = 2

DEFAULT_CAPACITY = 1 << 20
DEFAULT_LANES = 16
DEFAULT_ATTACH_TIMEOUT = 1.0
DEFAULT_PEER_CHECK = 0.05

FLUSH_EVERY = 256
FAIR_BATCH = 64
HOT_KEEP = 4
COOL_AFTER = 64


def lane_base(i):
    """Offset of lane i's first block, which is also its producer lock byte."""
    return OFF_LANE_TABLE + i * LANE_SIZE


def align_up(n, a):
    return (n + a - 1) & ~(a - 1)


def data_offset(lanes):
    return align_up(OFF_LANE_TABLE + lanes * LANE_SIZE, PAGE_SIZE)
