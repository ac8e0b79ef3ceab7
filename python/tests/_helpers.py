"""Shared helpers of the unit tests; also a child-process driver:

    python3 _helpers.py produce DIR NAME FIRST COUNT SIZE   (prints "ready" after attaching)
    python3 _helpers.py consume DIR NAME [PEER_CHECK]       (prints one line per message, then "eof")
    python3 _helpers.py attach-shm NAME                     (attaches a SharedMemory, writes, exits)
    python3 _helpers.py numpy-shm NAME COUNT                (a NumPy view of a SharedMemory: checks, doubles, exits)
"""

import os
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PKG = os.path.dirname(HERE)
if PKG not in sys.path:
    sys.path.insert(0, PKG)

import ringwire  # noqa: E402


def temp_dir():
    """A private directory for segments, on tmpfs when there is one."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    return tempfile.mkdtemp(prefix="ringwire-test-", dir=base)


def remove_dir(d):
    shutil.rmtree(d, ignore_errors=True)


def message(i, size):
    """Message i: its index, then a pattern, size bytes in all (at least 4)."""
    body = bytes((i * 31 + k) & 0xFF for k in range(max(0, size - 4)))
    return struct.pack("<I", i) + body


def child(*args, **kw):
    """Start this file as a child process with args."""
    env = dict(os.environ)
    env["PYTHONPATH"] = PKG + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.Popen([sys.executable, os.path.abspath(__file__)] + [str(a) for a in args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, **kw)


def main(argv):
    role = argv[0]
    if role == "produce":
        d, name, first, count, size = argv[1], argv[2], int(argv[3]), int(argv[4]), int(argv[5])
        with ringwire.Ring.open(name, dir=d) as r, r.producer() as p:
            print("ready", p.lane, flush=True)
            for i in range(first, first + count):
                p.send(message(i, size), timeout=30)
            print("sent", first + count, flush=True)
        return 0
    if role == "consume":
        d, name = argv[1], argv[2]
        wait = ringwire.Wait(peer_check=float(argv[3])) if len(argv) > 3 else None
        with ringwire.Ring.open(name, dir=d, wait=wait) as r, r.consumer() as c:
            print("ready", flush=True)
            for m in c:
                (i,) = struct.unpack_from("<I", m)
                print(i, len(m), flush=True)
            print("eof", flush=True)
        return 0
    if role == "attach-shm":
        shm = ringwire.SharedMemory(argv[1])
        shm.buf[0] = 42
        shm.close()
        return 0  # exits: the segment must stay
    if role == "numpy-shm":
        import numpy as np
        shm = ringwire.SharedMemory(argv[1])
        a = np.ndarray((int(argv[2]),), dtype=np.float64, buffer=shm.buf)
        if not (a == np.arange(len(a))).all():
            print("bad", flush=True)
            return 1
        a *= 2  # in place: the parent's view sees it
        print("doubled", float(a.sum()), flush=True)
        del a
        shm.close()
        return 0  # exits: the segment must stay
    raise SystemExit("unknown role %r" % role)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
