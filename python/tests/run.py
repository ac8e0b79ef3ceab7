"""Run the unit tests and list every skipped test with its reason.

    python3 python/tests/run.py [-v] [pattern...]

Each pattern keeps the tests whose id contains it. Exits 1 on any failure.
"""

import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


def _tests(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from _tests(t)
        else:
            yield t


def main(argv):
    verbosity = 2 if "-v" in argv else 1
    patterns = [a for a in argv if a != "-v"]
    sys.path.insert(0, HERE)
    suite = unittest.defaultTestLoader.discover(HERE, top_level_dir=HERE)
    if patterns:
        suite = unittest.TestSuite(t for t in _tests(suite) if any(p in t.id() for p in patterns))
    res = unittest.TextTestRunner(verbosity=verbosity).run(suite)
    for test, reason in res.skipped:
        print("skipped: %s: %s" % (test.id(), reason))
    return 0 if res.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
