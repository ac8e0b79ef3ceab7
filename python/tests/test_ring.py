import os
import signal
import struct
import threading
import time
import unittest

import _helpers
import ringwire
from ringwire import layout as L

try:
    import numpy as np
except ImportError:
    np = None


@unittest.skipUnless(ringwire.supported(), "rings need Linux on x86-64")
class RingTestCase(unittest.TestCase):
    def setUp(self):
        self.dir = _helpers.temp_dir()
        self.addCleanup(_helpers.remove_dir, self.dir)

    def create(self, name="r", **kw):
        kw.setdefault("capacity", 4096)
        r = ringwire.Ring.create(name, dir=self.dir, **kw)
        self.addCleanup(r.close)
        return r

    def open(self, name="r", **kw):
        r = ringwire.Ring.open(name, dir=self.dir, **kw)
        self.addCleanup(r.close)
        return r


class SPSCTest(RingTestCase):
    def test_send_recv_wrap(self):
        r = self.create(checksum=True)
        self.assertEqual((r.mode, r.lanes, r.capacity, r.max_message), ("spsc", 1, 4096, 2048 - 16))
        p, c = r.producer(), r.consumer()
        for i in range(3000):  # many laps, every padding size
            m = _helpers.message(i, 4 + (i * 7919) % 1500)
            p.send(m)
            self.assertEqual(c.recv(timeout=5), m)
        p.close()
        c.close()
        st = r.stats()
        self.assertEqual((st["head"], st["sent"], st["received"]), (st["tail"], 3000, 3000))

    def test_full_empty_too_large(self):
        r = self.create()
        p, c = r.producer(), r.consumer()
        with self.assertRaises(ringwire.RingEmpty):
            c.try_recv()
        n = 0
        with self.assertRaises(ringwire.RingFull):
            while True:
                p.try_send(b"x" * 100)
                n += 1
        self.assertEqual(n, (4096 - 8) // 112)
        with self.assertRaises(ringwire.TooLarge):
            p.try_send(bytes(r.max_message + 1))
        with self.assertRaises(TimeoutError):
            p.send(b"x" * 100, timeout=0.05)
        for _ in range(n):
            self.assertEqual(c.try_recv(), b"x" * 100)
        with self.assertRaises(TimeoutError):
            c.recv(timeout=0.05)
        p.send(bytes(r.max_message))  # the largest fits in a drained lane
        self.assertEqual(len(c.recv()), r.max_message)

    def test_reserve_commit_abort(self):
        r = self.create()
        p, c = r.producer(), r.consumer()
        buf = p.reserve(5)
        buf[:] = b"hello"
        with self.assertRaises(ringwire.Pending):
            p.send(b"no")
        p.commit()
        with self.assertRaises(ValueError):
            buf[0]  # released at commit
        buf = p.try_reserve(3)
        buf[:] = b"bad"
        p.abort()
        with self.assertRaises(ringwire.Pending):
            p.commit()
        p.send(b"world")
        self.assertEqual(c.recv(), b"hello")
        self.assertEqual(c.recv(), b"world")
        with self.assertRaises(ringwire.RingEmpty):
            c.try_recv()

    def test_peek_release_recv_into(self):
        r = self.create(checksum=True)
        p, c = r.producer(), r.consumer()
        p.send(b"abcdef")
        p.send(b"0123456789")
        v = c.peek()
        self.assertEqual(bytes(v), b"abcdef")
        self.assertTrue(v.readonly)
        with self.assertRaises(ringwire.Pending):
            c.try_recv()
        c.release()
        with self.assertRaises(ValueError):
            bytes(v)  # revoked
        with self.assertRaises(ringwire.Pending):
            c.release()
        small = bytearray(4)
        with self.assertRaises(ringwire.TooLarge):
            c.recv_into(small)
        buf = bytearray(64)
        self.assertEqual(c.recv_into(buf), 10)
        self.assertEqual(bytes(buf[:10]), b"0123456789")

    @unittest.skipIf(np is None, "NumPy is not installed")
    def test_recv_array(self):
        r = self.create(capacity=1 << 16)
        p, c = r.producer(), r.consumer()
        a = np.arange(12, dtype=np.float64).reshape(3, 4)
        p.send(a)  # any buffer
        buf = p.reserve(a.nbytes)
        np.frombuffer(buf, dtype=np.float64)[:] = 7.0
        p.commit()
        got = c.recv_array(np.float64, (3, 4))
        np.testing.assert_array_equal(got, a)
        self.assertFalse(got.flags.writeable)
        # In place: the array's memory is the message's, in the mapping.
        addr = got.__array_interface__["data"][0]
        base = r._addr + r._geo.data_off
        self.assertTrue(base <= addr < base + r.capacity)
        # The lifetime is enforced: no release while the array, or a view
        # of it, is alive; the message stays held meanwhile.
        row = got[1]
        del got
        with self.assertRaises(BufferError):
            c.release()
        with self.assertRaises(ringwire.Pending):
            c.try_recv()
        np.testing.assert_array_equal(row, a[1])
        del row
        c.release()
        with self.assertRaises(ValueError):
            c.recv_array(np.float64, (5,))  # 96 bytes, not 40: stays
        got = c.recv_array("f8")
        self.assertEqual(got.shape, (12,))
        self.assertTrue((got == 7.0).all())
        keep = got.copy()
        with self.assertRaises(BufferError):
            c.release()
        del got
        c.release()
        self.assertTrue((keep == 7.0).all())
        with self.assertRaises(ringwire.RingEmpty):
            c.try_recv()

    @unittest.skipIf(np is None, "NumPy is not installed")
    def test_recv_array_alive_at_close(self):
        # Closing with an array alive neither releases the message nor
        # unmaps memory under the array.
        r = self.create(capacity=1 << 16)
        p, c = r.producer(), r.consumer()
        p.send(np.arange(4, dtype=np.int64))
        arr = c.recv_array(np.int64)
        c.close()
        r.close()
        self.assertEqual(arr.tolist(), [0, 1, 2, 3])
        del arr
        with ringwire.Ring.open("r", dir=self.dir) as r2, r2.consumer() as c2:
            self.assertEqual(np.frombuffer(c2.recv(timeout=1), np.int64).tolist(), [0, 1, 2, 3])

    def test_eof_and_iteration(self):
        r = self.create()
        p, c = r.producer(), r.consumer()
        for i in range(10):
            p.send(b"%d" % i)
        p.close()
        self.assertEqual(list(c), [b"%d" % i for i in range(10)])
        with self.assertRaises(ringwire.EndOfStream):
            c.recv(timeout=1)
        with self.assertRaises(EOFError):
            c.recv()
        with self.assertRaises(ringwire.RingEmpty):
            c.try_recv()  # as Go's TryRecv: no wait, so no end-of-stream check

    def test_consumer_closed(self):
        r = self.create()
        p, c = r.producer(), r.consumer()
        c.close()
        with self.assertRaises(ringwire.RingClosed):
            p.send(b"x")
        with self.assertRaises(ringwire.RingClosed):
            c.recv()

    def test_roles_busy_and_freed(self):
        r = self.create()
        r2 = self.open()
        p, c = r.producer(), r.consumer()
        with self.assertRaises(ringwire.RoleBusy):
            r2.producer()
        with self.assertRaises(ringwire.RoleBusy):
            r2.consumer()
        p.close()
        c.close()
        r2.producer().close()
        r2.consumer().close()

    def test_info(self):
        r = self.create(max_message=1000, checksum=True)
        p, c = r.producer(), r.consumer()
        for i in range(300):
            p.send(b"%d" % i)
            c.recv()
        i = self.open(read_only=True).info()
        self.assertEqual((i["version"], i["lanes"], i["max_frame"], i["data_offset"]), (2, 1, 1016, 4096))
        self.assertEqual((i["consumer"], i["consumer_pid"]), ("alive", os.getpid()))
        self.assertTrue(i["owner_alive"] and i["attached"])
        (ln,) = i["lane_info"]
        self.assertEqual((ln["state"], ln["pid"]), ("alive", os.getpid()))
        self.assertTrue(0 < ln["sent"] <= 300)  # flushed every 256 messages and every half lap
        self.assertEqual(i["stats"]["received"], 256)
        p.close()
        c.close()
        st = r.stats()
        self.assertEqual((st["sent"], st["received"]), (300, 300))
        self.assertEqual(st["head"], st["tail"])

    def test_close_never_unlinks_and_only_owner_unlinks(self):
        r = self.create()
        o = self.open()
        with self.assertRaises(ringwire.NotOwner):
            o.unlink()
        o.close()
        r.close()
        self.assertTrue(os.path.exists(os.path.join(self.dir, "r")))
        o = self.open()
        self.assertFalse(o.owner)
        o.close()
        r.unlink()
        self.assertFalse(os.path.exists(os.path.join(self.dir, "r")))

    def test_context_managers(self):
        with ringwire.Ring.create("cm", dir=self.dir, capacity=4096) as r:
            with r.producer() as p, r.consumer() as c:
                p.send(b"a")
                self.assertEqual(c.recv(), b"a")
            self.assertTrue(p.closed and c.closed)
        self.assertTrue(r.closed)
        with ringwire.open_consumer("cm", dir=self.dir) as c:
            with ringwire.open_producer("cm", dir=self.dir) as p:
                p.send(b"b")
            self.assertEqual(c.recv(), b"b")
            with self.assertRaises(ringwire.EndOfStream):
                c.recv(timeout=1)

    def test_blocking_wake_and_close_from_another_thread(self):
        r = self.create(wait=ringwire.Wait("block"))
        p, c = r.producer(), r.consumer()
        got = []

        def reader():
            try:
                while True:
                    got.append(c.recv(timeout=10))
            except Exception as e:
                got.append(e)

        t = threading.Thread(target=reader)
        t.start()
        for i in range(2000):
            p.send(b"m%d" % i, timeout=10)
        deadline = time.monotonic() + 10
        while len(got) < 2000 and time.monotonic() < deadline:
            time.sleep(0.001)
        self.assertEqual(got[:2000], [b"m%d" % i for i in range(2000)])
        c.close()  # from this thread, while the reader is parked
        t.join(5)
        self.assertFalse(t.is_alive())
        self.assertIsInstance(got[-1], ringwire.RingClosed)

    def test_idle_wait_parks(self):
        # A receive with nothing to receive must sleep on the futex, not spin.
        r = self.create()
        r.producer()
        c = r.consumer()
        cpu = time.process_time()
        with self.assertRaises(TimeoutError):
            c.recv(timeout=0.5)
        self.assertLess(time.process_time() - cpu, 0.2)
        self.assertEqual(r.info()["consumer_parked"], 0)

    def test_peer_dead_in_process(self):
        # A producer whose lock vanished while its state says attached.
        r = self.create(wait=ringwire.Wait(peer_check=0.01))
        p, c = r.producer(), r.consumer()
        p.send(b"last")
        os.close(p._lock)  # as if its process died: the kernel drops the lock
        p._lock = os.open("/dev/null", os.O_RDONLY)
        self.assertEqual(c.recv(timeout=2), b"last")
        with self.assertRaises(ringwire.PeerDead):
            c.recv(timeout=2)


class PlatformTest(unittest.TestCase):
    def test_unsupported_platform_is_a_clear_error(self):
        from ringwire import _native
        saved = (_native.supported, _native._native)
        _native.supported, _native._native = (lambda: False), None
        try:
            with self.assertRaises(ringwire.Unsupported) as cm:
                ringwire.Ring.open("anything")
            self.assertIn("x86-64", str(cm.exception))
            with self.assertRaises(ringwire.Unsupported):
                ringwire.Ring.create("anything")
        finally:
            _native.supported, _native._native = saved


class ValidateTest(RingTestCase):
    def good(self):
        r = self.create("good")
        r.close()
        with open(os.path.join(self.dir, "good"), "rb") as f:
            return f.read()

    def check(self, data, exc):
        with open(os.path.join(self.dir, "bad"), "wb") as f:
            f.write(data)
        try:
            if exc is None:
                ringwire.Ring.open("bad", dir=self.dir, timeout=0.05).close()
            else:
                with self.assertRaises(exc):
                    ringwire.Ring.open("bad", dir=self.dir, timeout=0.05)
        finally:
            os.unlink(os.path.join(self.dir, "bad"))

    def edit(self, good, fmt, off, val):
        b = bytearray(good)
        struct.pack_into(fmt, b, off, val)
        return bytes(b)

    def test_cases(self):
        g = self.good()
        self.check(g, None)
        self.check(b"\1\2\3\4", ringwire.ForeignSegment)
        self.check(b"", ringwire.NotReady)
        self.check(bytes(8192), ringwire.NotReady)
        self.check(b"NOTARING" + g[8:], ringwire.ForeignSegment)
        self.check(g[:512], ringwire.Truncated)
        self.check(g[:6000], ringwire.Truncated)
        self.check(self.edit(g, "<I", L.OFF_VERSION, 1), ringwire.VersionMismatch)
        self.check(self.edit(g, "<I", L.OFF_FLAGS, 4), ringwire.CorruptRing)
        self.check(self.edit(g, "<Q", L.OFF_CAPACITY, 5000), ringwire.CorruptRing)
        self.check(self.edit(g, "<I", L.OFF_LANES, 2), ringwire.CorruptRing)
        self.check(self.edit(g, "<Q", L.OFF_DATAOFF, 8192), ringwire.CorruptRing)
        self.check(self.edit(g, "<Q", L.OFF_SEGSIZE, 8184), ringwire.CorruptRing)
        self.check(self.edit(g, "<I", L.OFF_MAXFRAME, 2049), ringwire.CorruptRing)
        self.check(self.edit(g, "<Q", L.OFF_MAGIC, 0), ringwire.NotReady)
        b = bytearray(self.edit(g, "<Q", L.OFF_MAGIC, 0))
        struct.pack_into("<I", b, L.OFF_VERSION, 7)
        self.check(bytes(b), ringwire.ForeignSegment)
        self.check(self.edit(self.edit(g, "<Q", L.OFF_MAGIC, 0), "<I", L.OFF_CONS_STATE, 1), ringwire.ForeignSegment)
        with self.assertRaises(FileNotFoundError):
            ringwire.Ring.open("missing", dir=self.dir, timeout=0.05)
        os.mkdir(os.path.join(self.dir, "adir"))
        with self.assertRaises(ringwire.NotSegment):
            ringwire.Ring.open("adir", dir=self.dir, timeout=0.05)

    def test_bad_options(self):
        with self.assertRaises(ringwire.BadOptions):
            ringwire.Ring.create("x", dir=self.dir, mode="spsc", lanes=2)
        with self.assertRaises(ringwire.BadOptions):
            ringwire.Ring.create("x", dir=self.dir, mode="mpsc", lanes=1025)
        with self.assertRaises(ringwire.BadOptions):
            ringwire.Ring.create("x", dir=self.dir, capacity=4096, max_message=4096)
        with self.assertRaises(ValueError):
            ringwire.Ring.create("a/b", dir=self.dir)
        r = self.create("x", capacity=5000)
        self.assertEqual(r.capacity, 8192)
        with self.assertRaises(FileExistsError):
            ringwire.Ring.create("x", dir=self.dir)


class HostileTest(RingTestCase):
    def lane0(self, r):
        return L.lane_base(0), r._geo.data_off

    def test_tail_published_every_half_lap(self):
        r = self.create()
        p = r.producer()
        r.consumer()
        base, _ = self.lane0(r)
        for _ in range(20):  # 20 frames of 112 bytes: past half a lane, far from 256 messages
            p.send(bytes(100))
        self.assertGreaterEqual(r._ld64(base + L.OFF_LANE_TAIL), 2048)

    def test_published_tail_too_far_ahead(self):
        r = self.create()
        base, _ = self.lane0(r)
        r._u64[(base + L.OFF_LANE_TAIL) >> 3] = 4096 + 8
        with self.assertRaises(ringwire.CorruptRing):
            r.consumer()
        with self.assertRaises(ringwire.CorruptRing):
            r.producer()

    def test_bad_padding(self):
        r = self.create()
        p, c = r.producer(), r.consumer()
        _, data = self.lane0(r)
        p.send(b"x")
        struct.pack_into("<HH", r._mv, data + 4, 2, 0)  # turn the record into padding at offset 0
        with self.assertRaises(ringwire.CorruptRing):
            c.try_recv()

    def test_bad_record_after_the_tail(self):
        r = self.create()
        _, data = self.lane0(r)
        struct.pack_into("<iHH", r._mv, data, 24, 9, 0)  # committed length, type 9
        with self.assertRaises(ringwire.CorruptRing):
            r.producer()


class MPSCTest(RingTestCase):
    def test_lanes_and_fairness(self):
        r = self.create(mode="mpsc", lanes=8)
        self.assertEqual(r.lanes, 8)
        ps = [r.producer() for _ in range(8)]
        self.assertEqual([p.lane for p in ps], list(range(8)))
        with self.assertRaises(ringwire.RoleBusy):
            r.producer()
        c = r.consumer()
        for k, p in enumerate(ps):
            for i in range(30):
                p.send(struct.pack("<II", k, i))
        seen = {}
        for _ in range(240):
            k, i = struct.unpack("<II", c.recv(timeout=1))
            self.assertEqual(i, seen.get(k, 0))
            seen[k] = i + 1
        self.assertEqual(seen, {k: 30 for k in range(8)})
        ps[3].close()
        self.assertEqual(r.producer().lane, 3)  # a closed lane is free again

    def test_cold_lanes_signal(self):
        # More lanes than the consumer keeps hot: idle lanes are handed to the
        # ready set, and a commit on one brings it back.
        r = self.create(mode="mpsc", lanes=12, wait=ringwire.Wait("block"))
        ps = [r.producer() for _ in range(12)]
        c = r.consumer()
        for rnd in range(3):
            for k, p in enumerate(ps):
                p.send(b"%d:%d" % (k, rnd))
            got = sorted(c.recv(timeout=1) for _ in range(12))
            self.assertEqual(got, sorted(b"%d:%d" % (k, rnd) for k in range(12)))
            with self.assertRaises(TimeoutError):
                c.recv(timeout=0.05)  # parks: every lane goes cold
            self.assertEqual(len(c._hot), 0)
        # One lane at a time, each after the consumer parked.
        for k in (11, 0, 5):
            def later(k=k):
                time.sleep(0.05)
                ps[k].send(b"late%d" % k)
            t = threading.Thread(target=later)
            t.start()
            self.assertEqual(c.recv(timeout=5), b"late%d" % k)
            t.join()

    def test_eof(self):
        r = self.create(mode="mpsc", lanes=4)
        c = r.consumer()
        with self.assertRaises(TimeoutError):
            c.recv(timeout=0.05)  # nobody ever attached: no end
        a, b = r.producer(), r.producer()
        a.send(b"a")
        a.close()
        self.assertEqual(c.recv(timeout=1), b"a")
        with self.assertRaises(TimeoutError):
            c.recv(timeout=0.05)  # b still attached
        b.send(b"b")
        b.close()
        self.assertEqual(c.recv(timeout=1), b"b")
        with self.assertRaises(ringwire.EndOfStream):
            c.recv(timeout=1)


class ProcessTest(RingTestCase):
    def test_two_processes(self):
        r = self.create(capacity=8192, checksum=True)
        cons = _helpers.child("consume", self.dir, "r")
        self.assertEqual(cons.stdout.readline().split(), ["ready"])
        prod = _helpers.child("produce", self.dir, "r", 0, 5000, 300)
        out, err = prod.communicate(timeout=120)
        self.assertEqual(prod.returncode, 0, err)
        out, err = cons.communicate(timeout=120)
        self.assertEqual(cons.returncode, 0, err)
        lines = out.split("\n")
        self.assertEqual(lines[-2], "eof")
        self.assertEqual([int(x.split()[0]) for x in lines[:-2]], list(range(5000)))
        self.assertEqual(r.stats()["received"], 5000)

    def test_killed_producer_is_replaced(self):
        r = self.create(mode="spsc", wait=ringwire.Wait(peer_check=0.02))
        c = r.consumer()
        first = _helpers.child("produce", self.dir, "r", 0, 100000, 100)
        self.assertEqual(first.stdout.readline().split(), ["ready", "0"])
        got = []
        while len(got) < 500:
            got.append(struct.unpack_from("<I", c.recv(timeout=10))[0])
        first.send_signal(signal.SIGKILL)  # mid-stream, no clean close
        first.communicate(timeout=30)
        # What it committed is delivered, then its death is reported.
        with self.assertRaises(ringwire.PeerDead):
            while True:
                got.append(struct.unpack_from("<I", c.recv(timeout=10))[0])
        self.assertEqual(got, list(range(len(got))))
        self.assertEqual(r.info()["lane_info"][0]["state"], "dead")
        # The replacement takes the lane and continues after the last record
        # the dead one committed.
        n = len(got)
        second = _helpers.child("produce", self.dir, "r", n, 1000, 100)
        while True:
            try:
                got.append(struct.unpack_from("<I", c.recv(timeout=30))[0])
            except ringwire.PeerDead:
                time.sleep(0.01)  # the lane is still the dead producer's
            except ringwire.EndOfStream:
                break
        out, err = second.communicate(timeout=60)
        self.assertEqual(second.returncode, 0, err)
        self.assertEqual(out.split()[:2], ["ready", "0"])
        self.assertEqual(got, list(range(n + 1000)))

    def test_idle_consumer_process_parks_and_wakes(self):
        # An idle consumer in another process uses no CPU (its utime+stime
        # in /proc/PID/stat over 2 s), and the first message wakes it at
        # once: its peer check is 5 s, so only the futex wake-up can.
        if not os.path.exists("/proc/self/stat"):
            self.skipTest("needs /proc/PID/stat to measure CPU time")
        import select
        r = self.create()
        p = r.producer()
        cons = _helpers.child("consume", self.dir, "r", 5.0)
        self.addCleanup(cons.kill)
        self.assertEqual(cons.stdout.readline().split(), ["ready"])

        def cpu_ticks():
            with open("/proc/%d/stat" % cons.pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return int(fields[11]) + int(fields[12])  # utime, stime, in clock ticks

        hz = os.sysconf("SC_CLK_TCK")
        for i, idle in enumerate((2.0, 0.3)):
            time.sleep(0.2)  # past its spinning: parked
            before = cpu_ticks()
            time.sleep(idle)
            used = (cpu_ticks() - before) / hz
            self.assertLess(used, 0.03, "idle consumer used %.3f s of CPU in %.1f s" % (used, idle))
            self.assertEqual(r.info()["consumer_parked"], 1)
            t0 = time.monotonic()
            p.send(_helpers.message(i, 16))
            ready, _, _ = select.select([cons.stdout], [], [], 4.0)
            self.assertTrue(ready, "the consumer did not wake on the message")
            self.assertEqual(cons.stdout.readline().split(), [str(i), "16"])
            woke = time.monotonic() - t0
            self.assertLess(woke, 1.0, "the consumer woke %.3f s after the send" % woke)
        p.close()
        out, err = cons.communicate(timeout=30)
        self.assertEqual(cons.returncode, 0, err)
        self.assertEqual(out.split(), ["eof"])

    def test_killed_consumer_is_replaced(self):
        r = self.create()
        p = r.producer()
        cons = _helpers.child("consume", self.dir, "r")
        self.assertEqual(cons.stdout.readline().split(), ["ready"])
        for i in range(100):
            p.send(_helpers.message(i, 40), timeout=10)
        for i in range(100):
            self.assertEqual(int(cons.stdout.readline().split()[0]), i)
        cons.send_signal(signal.SIGKILL)
        cons.communicate(timeout=30)
        self.assertEqual(r.info()["consumer"], "dead")
        for i in range(100, 150):
            p.send(_helpers.message(i, 40), timeout=10)
        c = r.consumer()  # the dead consumer's lock is gone
        p.close()
        # Released messages are not delivered again; the rest are.
        self.assertEqual([struct.unpack_from("<I", m)[0] for m in c], list(range(100, 150)))


if __name__ == "__main__":
    unittest.main()
