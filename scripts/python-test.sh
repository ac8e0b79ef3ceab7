#!/usr/bin/env bash
# The Python package's unit tests (python/tests, unittest). Installs python3
# with apt-get when it is missing and this is a root Debian/Ubuntu machine;
# exits non-zero on any failure.
#
#   scripts/python-test.sh          run the suite with python3
#   PYTHON=python3.12 scripts/python-test.sh
#   scripts/python-test.sh -v       verbose; other arguments select tests by id
#
# Skipped tests are listed at the end with their reasons.
# NumPy and xxhash are optional: the tests that need NumPy skip without it
# (Debian: apt-get install python3-numpy python3-xxhash).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if ! command -v "$PYTHON" >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "$PYTHON missing: installing python3"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 >/dev/null
		PYTHON=python3
	else
		echo "$PYTHON is not installed and cannot be installed here" >&2
		exit 1
	fi
fi
"$PYTHON" --version
"$PYTHON" -c 'import sys; sys.path.insert(0, "python"); import ringwire, ringwire._xxh64 as x; print("ringwire", ringwire.__version__, "| rings supported here:", ringwire.supported(), "| xxhash module:", x.ACCELERATED)'
exec "$PYTHON" python/tests/run.py "$@"
