import unittest

import _helpers  # noqa: F401  (puts the package on sys.path)
from ringwire import codec
from ringwire._xxh64 import xxh64, xxh64_pure

try:
    import xxhash
except ImportError:
    xxhash = None


class XXH64Test(unittest.TestCase):
    def test_vectors(self):
        for f in (xxh64, xxh64_pure):
            self.assertEqual(f(b""), 0xEF46DB3751D8E999)
            self.assertEqual(f(b"hello"), 0x26C7827D889F6DA3)

    @unittest.skipIf(xxhash is None, "the xxhash module is not installed")
    def test_pure_matches_xxhash(self):
        data = bytes(range(256)) * 5
        for n in list(range(0, 70)) + [100, 255, 256, 1000, 1279]:
            self.assertEqual(xxh64_pure(data[:n]), xxhash.xxh64_intdigest(data[:n]), n)

    def test_memoryview(self):
        self.assertEqual(xxh64_pure(memoryview(b"xhellox")[1:6]), 0x26C7827D889F6DA3)


class FrameTest(unittest.TestCase):
    # docs/FRAME.md's test vectors.
    VECTORS = [
        (b"", 0, "08000000 0100 0000"),
        (b"", 1, "10000000 0100 0100 99e9d85137db46ef"),
        (b"hello", 0, "0d000000 0100 0000 68656c6c6f 000000"),
        (b"hello", 1, "15000000 0100 0100 a36d9f887d82c726 68656c6c6f 000000"),
        (b"ringwire", 0, "10000000 0100 0000 72696e6777697265"),
        (b"ringwire", 1, "18000000 0100 0100 835d78613083c149 72696e6777697265"),
    ]

    def test_encode_decode(self):
        for payload, flags, hexs in self.VECTORS:
            want = bytes.fromhex(hexs.replace(" ", ""))
            self.assertEqual(codec.encode(payload, flags), want)
            f = codec.decode(want, 0, 1024)
            self.assertEqual((f.type, f.flags, bytes(f.payload), f.size), (1, flags, payload, len(want)))

    def test_rejects(self):
        for hexs, check in [
            ("00000000 0100 0000 0000000000000000", 3),
            ("f0ffffff 0100 0000 0000000000000000", 3),
            ("0d000000 0300 0000 68656c6c6f000000", 4),
            ("0d000000 0100 0280 68656c6c6f000000", 5),
            ("10000000 0200 0100 0000000000000000", 5),
            ("04000000 0100 0000 0000000000000000", 7),
            ("0c000000 0200 0000 0000000000000000", 7),
            ("15000000 0100 0100 a36d9f887d82c726 48656c6c6f000000", 9),
            ("0d000000 0100 0000 68656c6c6f", 8),
        ]:
            with self.assertRaises(codec.FrameError) as cm:
                codec.decode(bytes.fromhex(hexs.replace(" ", "")), 0, 1024)
            self.assertEqual(cm.exception.check, check, hexs)

    def test_padding(self):
        f = codec.decode(bytes.fromhex("18000000 0200 0000".replace(" ", "")) + b"\xee" * 16, 0, 1024)
        self.assertEqual((f.type, f.size, f.payload), (2, 24, None))


if __name__ == "__main__":
    unittest.main()
