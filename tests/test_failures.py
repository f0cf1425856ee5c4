"""A full disk: the write fails loudly, nothing is lost, and the file stays sound."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

import persist

resource = pytest.importorskip("resource")

# The child hits a file-size limit (RLIMIT_FSIZE), which makes write(2) fail
# with EFBIG after a partial write -- the same path as ENOSPC on a full disk.
CHILD = textwrap.dedent(
    """
    import errno, json, os, resource, signal, sys
    import persist

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    path = sys.argv[1]
    report = {}
    store = persist.Store(path)
    m = store.map("m", str)
    m.set("a", "x")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (os.path.getsize(path) + 10, hard))
    try:
        m.set("b", "y" * 100)
    except OSError as exc:
        report["errno"] = errno.errorcode[exc.errno]
    report["in_memory"] = m.get("b") == "y" * 100
    report["size_at_limit"] = os.path.getsize(path)
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    m.set("c", "z")        # the queued rest of "b" is written first
    store.close()
    print(json.dumps(report))
    """
)


def test_full_disk_raises_and_loses_nothing(db_path):
    """A write that hits a full disk raises OSError; the record stays queued,
    lands with the next write, and the file reloads with every value."""
    out = subprocess.run(
        [sys.executable, "-P", "-c", CHILD, str(db_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    report = json.loads(out)
    assert report["errno"] == "EFBIG"
    assert report["in_memory"] is True
    header_and_a = len(b'go-persist 1\nS m:a\n"x"\n')
    assert report["size_at_limit"] == header_and_a + 10  # a partial record
    expected = (
        b'go-persist 1\nS m:a\n"x"\n'
        + b'S m:b\n"'
        + b"y" * 100
        + b'"\n'
        + b'S m:c\n"z"\n'
    )
    assert db_path.read_bytes() == expected
    with persist.Store(db_path) as store:
        m = store.map("m", str)
        assert dict(m.items()) == {"a": "x", "b": "y" * 100, "c": "z"}
