import os
import subprocess
import sys
import unittest

import _helpers
import ringwire

try:
    import numpy as np
except ImportError:
    np = None


@unittest.skipUnless(os.path.isdir("/dev/shm"), "needs /dev/shm")
class SharedMemoryTest(unittest.TestCase):
    def setUp(self):
        self.shm = ringwire.SharedMemory(create=True, size=4096)
        self.addCleanup(self._cleanup)

    def _cleanup(self):
        try:
            self.shm.close()
        except BufferError:
            pass
        try:
            self.shm.unlink()
        except FileNotFoundError:
            pass

    def path(self):
        return os.path.join("/dev/shm", self.shm.name)

    def test_interface(self):
        s = self.shm
        self.assertFalse(s.name.startswith("/"))
        self.assertEqual(s.size, 4096)
        self.assertEqual(len(s.buf), 4096)
        s.buf[:5] = b"hello"
        other = ringwire.SharedMemory(s.name)
        self.assertEqual(other.size, 4096)
        self.assertEqual(bytes(other.buf[:5]), b"hello")
        other.close()
        self.assertIsNone(other.buf)
        other.close()  # again: nothing
        self.assertTrue(os.path.exists(self.path()))

    def test_create_existing_and_missing(self):
        with self.assertRaises(FileExistsError):
            ringwire.SharedMemory(self.shm.name, create=True, size=10)
        with self.assertRaises(FileNotFoundError):
            ringwire.SharedMemory("ringwire-no-such-segment-%d" % os.getpid())
        with self.assertRaises(ValueError):
            ringwire.SharedMemory(create=True, size=0)
        with self.assertRaises(ValueError):
            ringwire.SharedMemory()

    def test_attach_in_child_that_exits_leaves_segment(self):
        # The bug this class exists for: an attaching process's resource
        # tracker unlinked the segment when it exited.
        p = _helpers.child("attach-shm", self.shm.name)
        out, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 0, err)
        self.assertNotIn("leaked", err)
        self.assertTrue(os.path.exists(self.path()), "the segment vanished when the attaching process exited")
        self.assertEqual(self.shm.buf[0], 42)
        again = ringwire.SharedMemory(self.shm.name)
        self.assertEqual(again.buf[0], 42)
        again.close()

    def test_attach_via_multiprocessing_child(self):
        # The same through a multiprocessing child, whose resource tracker
        # the standard library's class would use.
        code = (
            "import sys, multiprocessing as mp\n"
            "sys.path.insert(0, %r)\n"
            "import ringwire\n"
            "def work(name):\n"
            "    s = ringwire.SharedMemory(name); s.buf[1] = 7; s.close()\n"
            "if __name__ == '__main__':\n"
            "    ctx = mp.get_context('spawn')\n"
            "    p = ctx.Process(target=work, args=(sys.argv[1],)); p.start(); p.join()\n"
            "    sys.exit(p.exitcode)\n" % _helpers.PKG)
        d = _helpers.temp_dir()
        self.addCleanup(_helpers.remove_dir, d)
        script = os.path.join(d, "mp_child.py")
        with open(script, "w") as f:
            f.write(code)
        r = subprocess.run([sys.executable, script, self.shm.name], capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("leaked", r.stderr)
        self.assertTrue(os.path.exists(self.path()))
        self.assertEqual(self.shm.buf[1], 7)

    def test_owner_close_does_not_unlink(self):
        name = self.shm.name
        self.shm.close()
        self.assertTrue(os.path.exists(self.path()))
        s = ringwire.SharedMemory(name)
        s.close()
        s.unlink()
        self.assertFalse(os.path.exists(self.path()))

    def test_context_manager(self):
        with ringwire.SharedMemory(self.shm.name) as s:
            s.buf[2] = 9
        self.assertIsNone(s.buf)
        self.assertEqual(self.shm.buf[2], 9)
        self.assertTrue(os.path.exists(self.path()))

    def test_close_refuses_with_live_views(self):
        v = self.shm.buf[10:20]
        with self.assertRaises(BufferError):
            self.shm.close()
        v.release()
        self.shm.close()

    @unittest.skipIf(np is None, "NumPy is not installed")
    def test_numpy(self):
        a = np.ndarray((512,), dtype=np.float64, buffer=self.shm.buf)
        a[:] = np.arange(512)
        other = ringwire.SharedMemory(self.shm.name)
        b = np.ndarray((512,), dtype=np.float64, buffer=other.buf)
        self.assertEqual(float(b[511]), 511.0)
        del b
        other.close()
        del a

    @unittest.skipIf(np is None, "NumPy is not installed")
    def test_numpy_across_processes(self):
        # The parent writes through its array, a child process attaches and
        # doubles the values through its own array over the same pages, and
        # exits; the parent's array sees the change and the segment stays.
        a = np.ndarray((512,), dtype=np.float64, buffer=self.shm.buf)
        a[:] = np.arange(512)
        p = _helpers.child("numpy-shm", self.shm.name, 512)
        out, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 0, out + err)
        self.assertEqual(out.split(), ["doubled", str(float(2 * sum(range(512))))])
        self.assertNotIn("leaked", err)
        np.testing.assert_array_equal(a, 2 * np.arange(512))
        self.assertTrue(os.path.exists(self.path()))
        del a

    def test_pickle(self):
        import pickle
        s = pickle.loads(pickle.dumps(self.shm))
        self.assertEqual((s.name, s.size), (self.shm.name, self.shm.size))
        s.close()


if __name__ == "__main__":
    unittest.main()
