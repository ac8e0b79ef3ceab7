#!/usr/bin/env python3
"""A command-line ringwire peer over the Python package (python/ringwire).

ring/python_peer_test.go runs it against the Go implementation: the package
implements layout version 2 (ring/layout.go) on its own, so these runs prove
that the two agree on the bytes and the protocol: header, lanes, records,
padding, the pre-zeroed length word, the ready set, the wake-up protocol,
state words and locks.

Usage:
  peer.py info    PATH [--timeout S]
  peer.py consume PATH [--timeout S] [--check-pattern MAXLEN] [--stamped]
                       [--seed S] [--ack] [--die-after N] [--wait MODE]
  peer.py produce PATH --count N --max-len M [--timeout S] [--die-after N]
                       [--id ID] [--first I] [--zero-copy] [--seed S] [--ack]
                       [--wait MODE]

PATH is the segment file (/dev/shm/NAME, or a file in another directory).

consume takes the consumer role of an SPSC or MPSC ring, reads every message
until the end of the stream (SPSC: the producer closed; MPSC: no producer
attached, at least one closed, every lane drained), and prints
  {"count": N, "bytes": B, "sha256": HEX, "head": H}
where sha256 is over, for each message in order, its length as a
little-endian u32 followed by its payload, and head is the sum of the lanes'
released heads. With --check-pattern it also checks each message against the
test pattern (below) and reports "first_bad", the index of the first message
that differs, or -1. With --stamped, messages carry a stamp (below): the
consumer checks each producer's sequence (in order, none missing, the body
the pattern's) and reports "per_id": {ID: {"count", "bytes", "sha256",
"next"}}, the digest taken over that producer's messages.

produce takes a producer role (the first free lane), sends --count messages
of the test pattern, i = --first .. --first+count-1, and closes; it prints
the same summary of what it sent, and "tail" (its lane's tail) and "lane".
--zero-copy sends through reserve/commit instead of send.

info validates the header and prints its fields, the ring's state and every
lane that was ever taken ("lane_info"); "lanes" is the lane count, and head,
tail and the statistics are summed over the lanes.

The test pattern, shared with the Go test: pool[k] = ((k*131) ^ (k>>3)) & 0xff
for k in [0, 4096+M); message i is pool[s : s+n] with n = (i*7919) % (M+1)
and s = (i*37) % 4096. With --seed S the sizes are random instead:
n = splitmix64((S << 32) + i) % (M+1) (splitmix64 as in Go's tests). A
stamped message (--id) is the u32 producer id and the u32 index i,
little-endian, then pattern message i.

--ack reports progress line by line on stdout, before the final summary:
a consumer takes each message with peek, prints "ack ID SEQ" (stamped) or
"ack I", and only then releases it, so every message released was
acknowledged first; a producer prints "sent I" once send returned. A
process killed mid-stream has thus acknowledged at least what it released
(consumer) and no more than what it committed (producer).

Errors print {"error": KIND, "detail": TEXT} and exit with status 1. KIND is
one of the Go sentinels' names: not-exist, not-segment, not-ready, foreign,
version, truncated, corrupt, busy, closed, peer-dead, too-large,
unsupported, timeout, invalid-name. --die-after N makes the peer exit
abruptly (status 3, no clean close, as if killed) after N messages.
"""

import argparse
import hashlib
import json
import os
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))

import ringwire  # noqa: E402


class Pattern:
    """The deterministic test messages (see the module comment)."""

    def __init__(self, max_len, seed=None):
        self.max_len = max_len
        self.seed = seed
        self.pool = bytes(((k * 131) ^ (k >> 3)) & 0xFF for k in range(4096 + max_len))

    def size(self, i):
        if self.seed is None:
            return (i * 7919) % (self.max_len + 1)
        return splitmix64(((self.seed << 32) + i) & M64) % (self.max_len + 1)

    def msg(self, i):
        n = self.size(i)
        s = (i * 37) % 4096
        return self.pool[s: s + n]


M64 = (1 << 64) - 1


def splitmix64(z):
    z = (z + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


class Digest:
    def __init__(self):
        self.h = hashlib.sha256()
        self.count = 0
        self.bytes = 0

    def add(self, m):
        self.h.update(struct.pack("<I", len(m)))
        self.h.update(m)
        self.count += 1
        self.bytes += len(m)


def split(path):
    return os.path.dirname(path) or ".", os.path.basename(path)


def wait_of(args):
    return ringwire.Wait(args.wait, peer_check=args.peer_check)


def consume(args, out):
    d, name = split(args.path)
    ring = ringwire.Ring.open(name, dir=d, timeout=min(args.timeout, 1.0), wait=wait_of(args))
    try:
        c = ring.consumer()
        deadline = time.monotonic() + args.timeout
        total = Digest()
        pat = Pattern(args.check_pattern, args.seed) if args.check_pattern is not None else None
        first_bad = -1
        per_id = {}
        write = sys.stdout.write
        flush = sys.stdout.flush
        while True:
            try:
                if args.ack:
                    m = bytes(c.peek(timeout=max(0.0, deadline - time.monotonic())))
                else:
                    m = c.recv(timeout=max(0.0, deadline - time.monotonic()))
            except ringwire.EndOfStream:
                break
            except TimeoutError:
                raise TimeoutError("no end of stream after %gs (%d messages)" % (args.timeout, total.count))
            if args.ack:
                if args.stamped and len(m) >= 8:
                    write("ack %d %d\n" % struct.unpack_from("<II", m))
                else:
                    write("ack %d\n" % total.count)
                flush()
                c.release()
            if args.stamped:
                if len(m) < 8:
                    if first_bad < 0:
                        first_bad = total.count
                else:
                    pid, seq = struct.unpack_from("<II", m)
                    st = per_id.setdefault(pid, {"digest": Digest(), "next": None})
                    if st["next"] is None:
                        st["next"] = seq  # a producer may start anywhere (--first)
                    ok = seq == st["next"] and (pat is None or m[8:] == pat.msg(seq))
                    if not ok and first_bad < 0:
                        first_bad = total.count
                    st["next"] = seq + 1
                    st["digest"].add(m)
            elif pat is not None and first_bad < 0 and m != pat.msg(total.count):
                first_bad = total.count
            total.add(m)
            if args.die_after and total.count == args.die_after:
                os._exit(3)
        c.close()
        out.update(count=total.count, bytes=total.bytes, sha256=total.h.hexdigest(),
                   head=ring.stats()["head"])
        if pat is not None or args.stamped:
            out["first_bad"] = first_bad
        if args.stamped:
            out["per_id"] = {str(k): {"count": v["digest"].count, "bytes": v["digest"].bytes,
                                      "sha256": v["digest"].h.hexdigest(), "next": v["next"]}
                             for k, v in per_id.items()}
    finally:
        ring.close()


def produce(args, out):
    d, name = split(args.path)
    ring = ringwire.Ring.open(name, dir=d, timeout=min(args.timeout, 1.0), wait=wait_of(args))
    try:
        p = ring.producer()
        deadline = time.monotonic() + args.timeout
        pat = Pattern(args.max_len, args.seed)
        dg = Digest()
        for k in range(args.count):
            i = args.first + k
            msg = pat.msg(i)
            if args.id is not None:
                msg = struct.pack("<II", args.id, i) + msg
            remaining = max(0.0, deadline - time.monotonic())
            try:
                if args.zero_copy:
                    buf = p.reserve(len(msg), timeout=remaining)
                    buf[:] = msg
                    p.commit()
                else:
                    p.send(msg, timeout=remaining)
            except TimeoutError:
                raise TimeoutError("no room after %gs (%d sent)" % (args.timeout, k))
            dg.add(msg)
            if args.ack:
                sys.stdout.write("sent %d\n" % i)
                sys.stdout.flush()
            if args.die_after and k + 1 == args.die_after:
                os._exit(3)
        tail, lane = p.tail, p.lane
        p.close()
        out.update(count=dg.count, bytes=dg.bytes, sha256=dg.h.hexdigest(), tail=tail, lane=lane)
    finally:
        ring.close()


def info(args, out):
    d, name = split(args.path)
    ring = ringwire.Ring.open(name, dir=d, timeout=args.timeout, read_only=True)
    try:
        i = ring.info()
    finally:
        ring.close()
    st = i["stats"]
    lanes = [dict(lane=l["lane"], state=l["state_word"], alive=l["state"] == "alive", pid=l["pid"],
                  head=l["head"], tail=l["tail"], sent=l["sent"], sent_bytes=l["sent_bytes"], full=l["full"])
             for l in i["lane_info"]]
    out.update(
        version=i["version"], flags=i["flags"], capacity=i["capacity"], data_offset=i["data_offset"],
        segment_size=i["segment_size"], max_frame=i["max_frame"], lanes=i["lanes"],
        created_ns=i["created_ns"], creator_pid=i["creator_pid"], instance=i["instance"],
        max_payload=i["max_message"], consumer_state=i["consumer_state"],
        consumer_alive=i["consumer"] == "alive", consumer_pid=i["consumer_pid"],
        owner_alive=i["owner_alive"], attached=i["attached"],
        head=st["head"], tail=st["tail"], received=st["received"], received_bytes=st["received_bytes"],
        sent=st["sent"], sent_bytes=st["sent_bytes"], full=st["full"], lane_info=lanes,
    )


def kind_of(e):
    if isinstance(e, ringwire.RingError):
        return e.kind
    if isinstance(e, FileNotFoundError):
        return "not-exist"
    if isinstance(e, TimeoutError):
        return "timeout"
    if isinstance(e, ValueError):
        return "invalid-name"
    return None


def main(argv):
    ap = argparse.ArgumentParser(description="ringwire peer over the Python package")
    sub = ap.add_subparsers(dest="mode", required=True)
    pi = sub.add_parser("info")
    pi.add_argument("path")
    pi.add_argument("--timeout", type=float, default=1.0)
    for name in ("consume", "produce"):
        sp = sub.add_parser(name)
        sp.add_argument("path")
        sp.add_argument("--timeout", type=float, default=60.0)
        sp.add_argument("--die-after", type=int, default=0)
        sp.add_argument("--wait", default="adaptive", choices=("adaptive", "block", "spin"))
        sp.add_argument("--peer-check", type=float, default=0.05)
        sp.add_argument("--seed", type=int, help="random message sizes from this seed")
        sp.add_argument("--ack", action="store_true", help="report each message on stdout")
        if name == "consume":
            sp.add_argument("--check-pattern", type=int, metavar="MAXLEN")
            sp.add_argument("--stamped", action="store_true")
        else:
            sp.add_argument("--count", type=int, required=True)
            sp.add_argument("--max-len", type=int, required=True)
            sp.add_argument("--id", type=int)
            sp.add_argument("--first", type=int, default=0)
            sp.add_argument("--zero-copy", action="store_true")
    args = ap.parse_args(argv)

    out = {}
    try:
        {"info": info, "consume": consume, "produce": produce}[args.mode](args, out)
    except Exception as e:
        kind = kind_of(e)
        if kind is None:
            raise
        print(json.dumps({"error": kind, "detail": "%s: %s" % (type(e).__name__, e)}))
        return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
