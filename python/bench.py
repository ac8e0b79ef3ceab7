#!/usr/bin/env python3
"""Benchmarks of ringwire's Python client, side by side in one run.

    python3 python/bench.py [--quick] [--no-go]

Measures, in this one run, on this machine:
  - round trip (one ping, one pong) p50 and p99 at 64 B: Python <-> Go over
    two rings, Python <-> Python over two rings, and multiprocessing.Pipe
    (send_bytes/recv_bytes) and multiprocessing.Queue between two Python
    processes;
  - stream msgs/s and bytes/s at 64 B and 64 KiB: Python -> Go, Go ->
    Python (recv, a copy; and recv_array, NumPy views in place, released
    one by one), Python -> Python over a ring, and Pipe and Queue (64 KiB:
    NumPy arrays when NumPy is installed, bytes otherwise);
  - XXH64: the pure-Python fallback's MB/s beside the xxhash module's.
and checks the issue's targets: ring round trip p50 at most a quarter of
Pipe's; ring stream at least 5x Queue's msgs/s at 64 B; 64 KiB NumPy arrays
received in place at least 10x Queue's bytes/s.

The Go side is python/bench/peer, built once with `go build -o` into a
temporary directory (needs Go; --no-go or no Go: the Go rows are left out,
and say so). Standard library only; NumPy is used when installed.
Rings are in /dev/shm, created and removed by this script.
"""

import argparse
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import ringwire  # noqa: E402
from ringwire import _xxh64  # noqa: E402

try:
    import numpy as np
except ImportError:
    np = None

SMALL, LARGE = 64, 64 * 1024
now = time.perf_counter_ns


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


# ---- Python children (multiprocessing, spawn) ----

def _pipe_echo(conn, n):
    for _ in range(n):
        conn.send_bytes(conn.recv_bytes())


def _queue_echo(qin, qout, n):
    for _ in range(n):
        qout.put(qin.get())


def _pipe_sink(conn, n, arrays):
    conn.send_bytes(b"ready")
    total = 0
    for _ in range(n):
        b = conn.recv_bytes()
        if arrays:
            a = np.frombuffer(b, dtype=np.uint8)
            total += int(a[0]) + int(a[-1])
        else:
            total += len(b)
    conn.send_bytes(b"done")


def _queue_sink(q, done, n, arrays):
    done.put("ready")
    total = 0
    for _ in range(n):
        m = q.get()
        if arrays:
            total += int(m[0]) + int(m[-1])
        else:
            total += len(m)
    done.put("done")


def _ring_echo(d, ping, pong, n):
    with ringwire.Ring.open(ping, dir=d) as a, ringwire.Ring.open(pong, dir=d) as b:
        with a.consumer() as c, b.producer() as p:
            for _ in range(n):
                p.send(c.recv())


def _ring_sink(d, name, n, done):
    with ringwire.Ring.open(name, dir=d) as r, r.consumer() as c:
        done.send_bytes(b"ready")
        for _ in range(n):
            c.recv()
        done.send_bytes(b"done")


# ---- measurements ----

class Bench:
    def __init__(self, args):
        self.args = args
        self.ctx = mp.get_context("spawn")
        self.dir = "/dev/shm"
        self.tmp = tempfile.mkdtemp(prefix="ringwire-bench-")
        self.peer = None
        self.rows = []  # (what, path, figures...)
        scale = 0.2 if args.quick else 1.0
        self.rtt_n = int(20000 * scale)
        self.small_n = int(200000 * scale)
        self.large_n = int(20000 * scale)

    def close(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def build_peer(self):
        if self.args.no_go:
            return "--no-go"
        go = shutil.which("go")
        if go is None:
            return "go is not installed"
        out = os.path.join(self.tmp, "peer")
        r = subprocess.run([go, "build", "-o", out, "./python/bench/peer"], cwd=os.path.dirname(HERE),
                           capture_output=True, text=True)
        if r.returncode != 0:
            return "go build failed: " + r.stderr.strip()
        self.peer = out
        return None

    def ring(self, capacity):
        return ringwire.Ring.create(None, dir=self.dir, capacity=capacity)

    def go(self, *args):
        p = subprocess.Popen([self.peer] + [str(a) for a in args], stdout=subprocess.PIPE, text=True)
        return p

    # round trips

    def rtt_ring_go(self):
        a, b = self.ring(1 << 20), self.ring(1 << 20)
        try:
            g = self.go("echo", a.path, b.path)
            assert g.stdout.readline().strip() == "ready"
            return self._rtt_rings(a, b, lambda: g.wait(30))
        finally:
            a.unlink(), b.unlink(), a.close(), b.close()

    def rtt_ring_py(self):
        a, b = self.ring(1 << 20), self.ring(1 << 20)
        n = self.rtt_n + self.rtt_n // 10
        try:
            ch = self.ctx.Process(target=_ring_echo, args=(self.dir, a.name, b.name, n))
            ch.start()
            while a.info()["consumer"] != "alive" or b.info()["lane_info"][0]["state"] != "alive":
                time.sleep(0.001)
            return self._rtt_rings(a, b, lambda: ch.join(30))
        finally:
            a.unlink(), b.unlink(), a.close(), b.close()

    def _rtt_rings(self, a, b, join):
        p, c = a.producer(), b.consumer()
        msg = bytes(SMALL)
        warm = self.rtt_n // 10
        lat = []
        for i in range(warm + self.rtt_n):
            t0 = now()
            p.send(msg)
            c.recv()
            if i >= warm:
                lat.append(now() - t0)
        p.close()
        join()
        c.close()
        return lat

    def rtt_pipe(self):
        warm = self.rtt_n // 10
        a, b = self.ctx.Pipe()
        ch = self.ctx.Process(target=_pipe_echo, args=(b, warm + self.rtt_n))
        ch.start()
        msg = bytes(SMALL)
        lat = []
        for i in range(warm + self.rtt_n):
            t0 = now()
            a.send_bytes(msg)
            a.recv_bytes()
            if i >= warm:
                lat.append(now() - t0)
        ch.join()
        return lat

    def rtt_queue(self):
        warm = self.rtt_n // 10
        qa, qb = self.ctx.Queue(), self.ctx.Queue()
        ch = self.ctx.Process(target=_queue_echo, args=(qa, qb, warm + self.rtt_n))
        ch.start()
        msg = bytes(SMALL)
        lat = []
        for i in range(warm + self.rtt_n):
            t0 = now()
            qa.put(msg)
            qb.get()
            if i >= warm:
                lat.append(now() - t0)
        ch.join()
        return lat

    # streams: (messages, seconds)

    def n_of(self, size):
        return self.small_n if size == SMALL else self.large_n

    def cap_of(self, size):
        return 1 << 20 if size == SMALL else 4 << 20

    def stream_py_to_go(self, size):
        n = self.n_of(size)
        r = self.ring(self.cap_of(size))
        try:
            g = self.go("sink", r.path, n)
            assert g.stdout.readline().strip() == "ready"
            p = r.producer()
            msg = bytes(size)
            t0 = now()
            for _ in range(n):
                p.send(msg)
            line = g.stdout.readline().split()
            dt = now() - t0
            assert line[:2] == ["done", str(n)], line
            p.close()
            g.wait(30)
            return n, dt
        finally:
            r.unlink(), r.close()

    def stream_go_to_py(self, size, arrays):
        n = self.n_of(size)
        r = self.ring(self.cap_of(size))
        try:
            c = r.consumer()
            g = self.go("source", r.path, n, size)
            if arrays:
                a = c.recv_array(np.uint8)
                t0 = now()
                del a
                c.release()
                total = 0
                for _ in range(n - 1):
                    a = c.recv_array(np.uint8)
                    total += int(a[0]) + int(a[-1])
                    del a
                    c.release()
            else:
                c.recv()
                t0 = now()
                for _ in range(n - 1):
                    c.recv()
            dt = now() - t0
            g.wait(30)
            c.close()
            return n - 1, dt
        finally:
            r.unlink(), r.close()

    def stream_py_to_py(self, size):
        n = self.n_of(size)
        r = self.ring(self.cap_of(size))
        try:
            a, b = self.ctx.Pipe()
            ch = self.ctx.Process(target=_ring_sink, args=(self.dir, r.name, n, b))
            ch.start()
            assert a.recv_bytes() == b"ready"
            p = r.producer()
            msg = bytes(size)
            t0 = now()
            for _ in range(n):
                p.send(msg)
            assert a.recv_bytes() == b"done"
            dt = now() - t0
            p.close()
            ch.join()
            return n, dt
        finally:
            r.unlink(), r.close()

    def stream_pipe(self, size):
        n = self.n_of(size)
        arrays = size == LARGE and np is not None
        a, b = self.ctx.Pipe()
        ch = self.ctx.Process(target=_pipe_sink, args=(b, n, arrays))
        ch.start()
        assert a.recv_bytes() == b"ready"
        msg = np.arange(size, dtype=np.uint8) if arrays else bytes(size)
        t0 = now()
        for _ in range(n):
            a.send_bytes(msg)
        assert a.recv_bytes() == b"done"
        dt = now() - t0
        ch.join()
        return n, dt

    def stream_queue(self, size):
        n = self.n_of(size)
        arrays = size == LARGE and np is not None
        q, done = self.ctx.Queue(), self.ctx.Queue()
        ch = self.ctx.Process(target=_queue_sink, args=(q, done, n, arrays))
        ch.start()
        assert done.get() == "ready"
        msg = np.arange(size, dtype=np.uint8) if arrays else bytes(size)
        t0 = now()
        for _ in range(n):
            q.put(msg)
        assert done.get() == "done"
        dt = now() - t0
        ch.join()
        return n, dt


def xxh_speeds():
    data = os.urandom(1 << 20)
    t0 = now()
    _xxh64.xxh64_pure(data)
    pure = len(data) / ((now() - t0) / 1e9) / 1e6
    small = os.urandom(SMALL)
    t0 = now()
    for _ in range(2000):
        _xxh64.xxh64_pure(small)
    pure_small_us = (now() - t0) / 2000 / 1e3
    try:
        import xxhash
    except ImportError:
        return pure, pure_small_us, None
    t0 = now()
    for _ in range(200):
        xxhash.xxh64_intdigest(data)
    mod = 200 * len(data) / ((now() - t0) / 1e9) / 1e6
    return pure, pure_small_us, mod


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a fifth of the messages")
    ap.add_argument("--no-go", action="store_true", help="leave out the Go peer")
    args = ap.parse_args(argv)
    if not ringwire.supported():
        print("rings need Linux on x86-64; nothing to measure here")
        return 1
    b = Bench(args)
    try:
        return run(b)
    finally:
        b.close()


def run(b):
    import platform
    print("# ringwire Python benchmarks")
    print("python %s (%s), NumPy %s, xxhash module %s, %d CPUs, %s" % (
        platform.python_version(), sys.executable, np.__version__ if np is not None else "absent",
        "present" if _xxh64.ACCELERATED else "absent", os.cpu_count(), platform.platform()))
    why = b.build_peer()
    if why:
        print("Go rows left out: %s" % why)
    print()

    rtt = {}
    if b.peer:
        rtt["ring, Python <-> Go"] = b.rtt_ring_go()
    rtt["ring, Python <-> Python"] = b.rtt_ring_py()
    rtt["multiprocessing.Pipe"] = b.rtt_pipe()
    rtt["multiprocessing.Queue"] = b.rtt_queue()
    print("## Round trip, 64 B (%d round trips after %d warm-up)" % (b.rtt_n, b.rtt_n // 10))
    print()
    print("| path | p50 | p99 |")
    print("|---|---|---|")
    for k, v in rtt.items():
        print("| %s | %.1f us | %.1f us |" % (k, pct(v, 0.5) / 1e3, pct(v, 0.99) / 1e3))
    print()

    st = {}
    for size in (SMALL, LARGE):
        if b.peer:
            st[("ring, Python -> Go (send)", size)] = b.stream_py_to_go(size)
            st[("ring, Go -> Python (recv, a copy)", size)] = b.stream_go_to_py(size, False)
            if np is not None and size == LARGE:
                st[("ring, Go -> Python (recv_array, in place)", size)] = b.stream_go_to_py(size, True)
        st[("ring, Python -> Python (send, recv)", size)] = b.stream_py_to_py(size)
        big = " (NumPy arrays)" if size == LARGE and np is not None else ""
        st[("multiprocessing.Pipe" + big, size)] = b.stream_pipe(size)
        st[("multiprocessing.Queue" + big, size)] = b.stream_queue(size)
    print("## Streams (%d messages at 64 B, %d at 64 KiB)" % (b.small_n, b.large_n))
    print()
    print("| path | size | msgs/s | MB/s |")
    print("|---|---|---|---|")
    rate = {}
    for (k, size), (n, dt) in st.items():
        r = n / (dt / 1e9)
        rate[(k, size)] = r
        print("| %s | %s | %s | %.0f |" % (k, "64 B" if size == SMALL else "64 KiB", "{:,.0f}".format(r), r * size / 1e6))
    print()

    pure, pure_small, mod = xxh_speeds()
    print("## XXH64 (frame checksums)")
    print()
    print("pure-Python fallback: %.1f MB/s on 1 MiB, %.1f us per 64 B message" % (pure, pure_small))
    if mod is not None:
        print("xxhash module: %.0f MB/s on 1 MiB (%.0fx the fallback)" % (mod, mod / pure))
    else:
        print("xxhash module: not installed")
    print()

    print("## Targets")
    print()
    pipe50 = pct(rtt["multiprocessing.Pipe"], 0.5)
    for k in ("ring, Python <-> Go", "ring, Python <-> Python"):
        if k in rtt:
            v = pct(rtt[k], 0.5)
            print("- round trip p50, %s: %.1f us = %.2f of Pipe's %.1f us (target <= 0.25): %s"
                  % (k, v / 1e3, v / pipe50, pipe50 / 1e3, "met" if v <= pipe50 / 4 else "MISSED"))
    q64 = rate[("multiprocessing.Queue", SMALL)]
    for k in ("ring, Python -> Go (send)", "ring, Python -> Python (send, recv)"):
        if (k, SMALL) in rate:
            x = rate[(k, SMALL)] / q64
            print("- stream 64 B, %s: %.1fx Queue's msgs/s (target >= 5x): %s" % (k, x, "met" if x >= 5 else "MISSED"))
    if np is not None and b.peer:
        qbig = rate[("multiprocessing.Queue (NumPy arrays)", LARGE)]
        x = rate[("ring, Go -> Python (recv_array, in place)", LARGE)] / qbig
        print("- 64 KiB NumPy arrays received in place: %.1fx Queue's bytes/s (target >= 10x): %s"
              % (x, "met" if x >= 10 else "MISSED"))
    else:
        print("- 64 KiB NumPy arrays in place: not measured (%s)" % ("NumPy absent" if np is None else "no Go peer"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
