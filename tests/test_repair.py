"""persist.repair: keep every readable record, back the original up, say what went."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

import persist
from persist import cli
from persist.repair import TEMP_SUFFIX

HEADER = b"go-persist 1\n"
SOUND = HEADER + b'S m:a\n{"x":1}\nS m:b\n2\nD m:b\n\nS bare\n"o"\n'


def write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "f.db"
    path.write_bytes(data)
    return path


def why(data: bytes) -> str:
    """The store's own reason for refusing a value line."""
    with pytest.raises(persist.DecodeError) as info:
        persist.codec_for(Any).decode(data)
    return f"undecodable value: {info.value}"


@pytest.mark.parametrize(
    ("data", "kept"),
    [
        (SOUND, 4),
        (b"", 0),
        (b"go-pers", 0),
        (HEADER, 0),
        (b"go-persist 1\r\nS m:a\r\n1\r\n", 1),
    ],
    ids=["sound", "empty", "torn-header", "header-only", "crlf"],
)
def test_nothing_to_repair(tmp_path: Path, data: bytes, kept: int) -> None:
    """A sound file: no backup, the file byte for byte as it was, not even renamed."""
    path = write(tmp_path, data)
    before = os.stat(path)
    report = persist.repair(path)
    assert report == persist.RepairReport(kept, (), None)
    assert not report.repaired
    assert path.read_bytes() == data
    assert os.stat(path).st_ino == before.st_ino
    assert sorted(os.listdir(tmp_path)) == ["f.db"]


def test_repair_drops_what_cannot_be_read(tmp_path: Path) -> None:
    """Every kind of damage: the exact bytes kept, the exact report, the backup."""
    data = (
        HEADER
        + b"S m:a\n1\n"  # 2-3 kept
        + b"garbage\n"  # 4 not a record line
        + b"S m:b\n[1,\n"  # 5-6 undecodable value
        + b"S m:c\n"  # 7 lost its value line
        + b"S m:d\n4\n"  # 8-9 kept
        + b"D m:a\nx\n"  # 10 delete without its empty line, 11 not a record
        + b'S m:e\n"\\ud800"\n'  # 12-13 lone surrogate
        + b"S m:f\n"
        + b"[" * 1025
        + b"]" * 1025
        + b"\n"  # 14-15 too deep
        + b"D m:d\n\n"  # 16-17 kept
        + b"S m:g\n7"  # 18 torn tail
    )
    path = write(tmp_path, data)
    report = persist.repair(path)
    assert report == persist.RepairReport(
        kept=3,
        dropped=(
            (4, "not a record line ('S <key>' or 'D <key>')"),
            (6, why(b"[1,")),
            (7, "set record without a value line"),
            (10, "delete record without its empty second line"),
            (11, "not a record line ('S <key>' or 'D <key>')"),
            (13, why(b'"\\ud800"')),
            (15, why(b"[" * 1025 + b"]" * 1025)),
            (18, "torn tail: the file ends inside a record"),
        ),
        backup=f"{path}.bak",
    )
    assert report.repaired
    assert path.read_bytes() == HEADER + b"S m:a\n1\nS m:d\n4\nD m:d\n\n"
    assert (tmp_path / "f.db.bak").read_bytes() == data
    assert sorted(os.listdir(tmp_path)) == ["f.db", "f.db.bak"]
    with persist.Store(path) as store:
        assert store.map("m", int).items() == [("a", 1)]
    assert cli.main(["check", str(path)]) == 0


def test_corrupt_file_opens_after_repair(tmp_path: Path) -> None:
    """A file the store refuses (CorruptWALError) opens after repair."""
    data = HEADER + b"S m:a\n1\nX m:b\n2\nS m:c\n3\n"
    path = write(tmp_path, data)
    with pytest.raises(persist.CorruptWALError):
        persist.Store(path)
    report = persist.repair(path)
    assert report.dropped == (
        (4, "not a record line ('S <key>' or 'D <key>')"),
        (5, "not a record line ('S <key>' or 'D <key>')"),
    )
    assert path.read_bytes() == HEADER + b"S m:a\n1\nS m:c\n3\n"
    with persist.Store(path) as store:
        assert sorted(store.map("m", int).items()) == [("a", 1), ("c", 3)]


def test_crlf_file_keeps_its_line_ends(tmp_path: Path) -> None:
    """A CRLF file: kept records byte for byte, \\r included."""
    data = b"go-persist 1\r\nS m:a\r\n1\r\nS m:b\r\n[\r\nD m:a\r\n\r\n"
    path = write(tmp_path, data)
    report = persist.repair(path)
    assert report.dropped == ((5, why(b"[\r")),)
    assert path.read_bytes() == b"go-persist 1\r\nS m:a\r\n1\r\nD m:a\r\n\r\n"


def test_keys_go_wrote_are_kept_byte_for_byte(tmp_path: Path) -> None:
    """Keys the key rules refuse (invalid UTF-8, a control character) are kept."""
    data = HEADER + b"S m:k\xff\n1\nS m:c\x01\n2\nbroken\n"
    path = write(tmp_path, data)
    report = persist.repair(path)
    assert report.dropped == ((6, "not a record line ('S <key>' or 'D <key>')"),)
    assert path.read_bytes() == HEADER + b"S m:k\xff\n1\nS m:c\x01\n2\n"
    with persist.Store(path) as store:
        assert sorted(store.map("m", int).items()) == [("c\x01", 2), ("k\udcff", 1)]


def test_backup_names_are_never_reused(tmp_path: Path) -> None:
    """FILE.bak taken: FILE.bak.1, then FILE.bak.2; older backups untouched."""
    (tmp_path / "f.db.bak").write_bytes(b"old")
    (tmp_path / "f.db.bak.1").write_bytes(b"older")
    first = HEADER + b"S m:a\n1\njunk\n"
    path = write(tmp_path, first)
    assert persist.repair(path).backup == f"{path}.bak.2"
    second = path.read_bytes() + b"more junk\n"
    path.write_bytes(second)
    assert persist.repair(path).backup == f"{path}.bak.3"
    assert (tmp_path / "f.db.bak").read_bytes() == b"old"
    assert (tmp_path / "f.db.bak.1").read_bytes() == b"older"
    assert (tmp_path / "f.db.bak.2").read_bytes() == first
    assert (tmp_path / "f.db.bak.3").read_bytes() == second
    assert path.read_bytes() == HEADER + b"S m:a\n1\n"


def test_mode_is_kept(tmp_path: Path) -> None:
    """The repaired file and its backup get the original's mode, whatever the umask."""
    path = write(tmp_path, HEADER + b"junk\n")
    os.chmod(path, 0o640)
    old = os.umask(0o077)
    try:
        report = persist.repair(path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert stat.S_IMODE(os.stat(str(report.backup)).st_mode) == 0o640


def test_locked_file_is_refused(tmp_path: Path) -> None:
    """A file open in a Store: StoreLockedError, nothing written, no backup."""
    data = HEADER + b"S m:a\n1\njunk\n"
    path = write(tmp_path, HEADER)
    with persist.Store(path) as store:
        path.write_bytes(data)  # damage appears under an open store
        with pytest.raises(persist.StoreLockedError):
            persist.repair(path)
        assert path.read_bytes() == data
        assert sorted(os.listdir(tmp_path)) == ["f.db"]
        assert not store.closed


def test_stale_temp_file_and_symlink(tmp_path: Path) -> None:
    """A leftover temp file (here a symlink) is replaced, never written through."""
    target = tmp_path / "target"
    target.write_bytes(b"precious")
    path = write(tmp_path, HEADER + b"junk\n")
    os.symlink(target, str(path) + TEMP_SUFFIX)
    persist.repair(path)
    assert target.read_bytes() == b"precious"
    assert path.read_bytes() == HEADER
    assert not os.path.lexists(str(path) + TEMP_SUFFIX)


def test_not_a_go_persist_file(tmp_path: Path) -> None:
    """A bad header: CorruptWALError, the file unchanged, no backup."""
    path = write(tmp_path, b"hello world\nS m:a\n1\n")
    with pytest.raises(persist.CorruptWALError, match="line 1"):
        persist.repair(path)
    assert path.read_bytes() == b"hello world\nS m:a\n1\n"
    assert sorted(os.listdir(tmp_path)) == ["f.db"]


def test_missing_file(tmp_path: Path) -> None:
    """No file: FileNotFoundError, nothing created."""
    with pytest.raises(FileNotFoundError):
        persist.repair(tmp_path / "nope.db")
    assert os.listdir(tmp_path) == []
