"""A PEP 517 build backend for this package, standard library only, so that
`pip install ./python` works without downloading setuptools or wheel (the
package is pure Python: a wheel is a zip of ringwire/ and its metadata)."""

import base64
import hashlib
import io
import os
import tarfile
import zipfile

NAME = "ringwire"
VERSION = "0.2.0"
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TAG = "py3-none-any"

METADATA = """Metadata-Version: 2.1
Name: {name}
Version: {version}
Summary: Lock-free message rings in POSIX shared memory, interoperable with ringwire's Go producers and consumers (layout version 2)
Requires-Python: >=3.8
Classifier: Operating System :: POSIX :: Linux
Classifier: Programming Language :: Python :: 3
Provides-Extra: numpy
Requires-Dist: numpy; extra == "numpy"
Provides-Extra: fast
Requires-Dist: xxhash; extra == "fast"
Description-Content-Type: text/markdown

""".format(name=NAME, version=VERSION)

WHEEL = """Wheel-Version: 1.0
Generator: ringwire_build
Root-Is-Purelib: true
Tag: {tag}
""".format(tag=TAG)


def _sources():
    pkg = os.path.join(HERE, NAME)
    for f in sorted(os.listdir(pkg)):
        if f.endswith(".py"):
            yield "%s/%s" % (NAME, f), os.path.join(pkg, f)


def _metadata():
    readme = os.path.join(HERE, "README.md")
    text = open(readme, encoding="utf-8").read() if os.path.exists(readme) else ""
    return METADATA + text


def _dist_info():
    return "%s-%s.dist-info" % (NAME, VERSION)


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    d = os.path.join(metadata_directory, _dist_info())
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "METADATA"), "w", encoding="utf-8") as f:
        f.write(_metadata())
    with open(os.path.join(d, "WHEEL"), "w", encoding="utf-8") as f:
        f.write(WHEEL)
    return _dist_info()


def _wheel(wheel_directory, files):
    name = "%s-%s-%s.whl" % (NAME, VERSION, TAG)
    di = _dist_info()
    entries = [(arc, open(path, "rb").read()) for arc, path in files]
    entries.append((di + "/METADATA", _metadata().encode()))
    entries.append((di + "/WHEEL", WHEEL.encode()))
    entries.append((di + "/top_level.txt", (NAME + "\n").encode()))
    record = []
    for arc, data in entries:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append("%s,sha256=%s,%d" % (arc, digest, len(data)))
    record.append(di + "/RECORD,,")
    entries.append((di + "/RECORD", ("\n".join(record) + "\n").encode()))
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w", zipfile.ZIP_DEFLATED) as z:
        for arc, data in entries:
            zi = zipfile.ZipInfo(arc, date_time=(2020, 1, 1, 0, 0, 0))
            zi.external_attr = 0o644 << 16
            z.writestr(zi, data, zipfile.ZIP_DEFLATED)
    return name


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    return _wheel(wheel_directory, _sources())


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    # A .pth file that puts this directory on sys.path.
    pth = os.path.join(wheel_directory, "_ringwire_editable.pth.src")
    with open(pth, "w") as f:
        f.write(HERE + "\n")
    try:
        return _wheel(wheel_directory, [("_ringwire_editable.pth", pth)])
    finally:
        os.unlink(pth)


def build_sdist(sdist_directory, config_settings=None):
    base = "%s-%s" % (NAME, VERSION)
    name = base + ".tar.gz"
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz") as t:
        for rel in ["pyproject.toml", "README.md", "_build/ringwire_build.py"] + [a for a, _ in _sources()]:
            p = os.path.join(HERE, rel)
            if os.path.exists(p):
                t.add(p, arcname=base + "/" + rel)
        pkg_info = _metadata().encode()
        ti = tarfile.TarInfo(base + "/PKG-INFO")
        ti.size = len(pkg_info)
        t.addfile(ti, io.BytesIO(pkg_info))
    return name
