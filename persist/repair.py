"""Repair a go-persist file: keep every readable record, drop the rest, say what.

``repair(path)`` is what ``persist repair FILE`` runs. Under the file's lock
(refused with StoreLockedError while a Store has it open) it reads the file
with a tolerant pass of its own -- the store's parser stops at the first
broken record -- and, if anything has to go, copies the file to
``FILE.bak`` (``FILE.bak.1``, ... if taken), writes the kept records to a
temporary file beside it (created with O_EXCL|O_NOFOLLOW, the original's
mode), fsyncs it, renames it over the file and fsyncs the directory.

What is dropped, each with its line number and reason:

- a line that should start a record but is not ``S <key>`` / ``D <key>``;
- a delete record whose second line is not empty (``\\r`` in a CRLF file);
- a set record whose value the store's ``Any`` decoder refuses (a line that
  looks like the next record is taken as such: the value line was lost);
- a torn tail: what follows the last complete record (a crash mid-append).

Dropping a delete record can bring back the value it deleted; the report
says which lines went, so that can be checked. A file that is not a
go-persist file (bad header) is refused with CorruptWALError, unchanged.
"""

from __future__ import annotations

import fcntl
import os
import typing
from collections.abc import Iterator

import attrs

from . import _core  # pyright: ignore[reportPrivateUsage]  # the package's own private module
from ._files import create_like, lock_file
from .codecs import codec_for
from .errors import CorruptWALError, DecodeError

__all__ = ["RepairReport", "repair"]

HEADERS = (b"go-persist 1\n", b"go-persist 1\r\n")
TEMP_SUFFIX = ".repair-tmp"


@attrs.frozen
class RepairReport:
    """What ``repair`` did.

    :ivar kept: complete records kept
    :ivar dropped: ``(line, reason)`` of every dropped line or record, in file
        order; the line is the record's first, or its value line if the value
        was what could not be read (as ``persist check`` reports it)
    :ivar backup: the path of the copy of the original, None if nothing was changed
    """

    kept: int
    dropped: tuple[tuple[int, str], ...]
    backup: str | None

    @property
    def repaired(self) -> bool:
        """True if the file was rewritten (there was something to drop)."""
        return self.backup is not None


def repair(path: str | os.PathLike[str]) -> RepairReport:
    """Drop what cannot be read from the go-persist file at ``path``, keeping a backup.

    :raises StoreLockedError: a Store has the file open
    :raises CorruptWALError: the file is not a go-persist file (bad header)
    :raises FileNotFoundError: there is no such file
    """
    path = os.fspath(path)
    fd = lock_file(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        original = _read_all(fd)
        kept, count, dropped = _tolerant_pass(original, path)
        if not dropped:
            return RepairReport(count, (), None)
        like = os.fstat(fd)
        backup = _backup(path, original, like.st_mode & 0o7777)
        _replace(path, kept, like)
        return RepairReport(count, tuple(dropped), backup)
    finally:
        os.close(fd)


# --- reading ---------------------------------------------------------------------


def _tolerant_pass(data: bytes, path: str) -> tuple[bytes, int, list[tuple[int, str]]]:
    """Return the kept bytes, how many records they hold, and what was dropped."""
    header = next((h for h in HEADERS if data.startswith(h)), None)
    if header is None:
        if HEADERS[0].startswith(data):
            return data, 0, []  # empty, or a crash while creating it: a new store
        raise CorruptWALError(path, 1, 0, "not a go-persist file (bad header)")
    kept = [header]
    count = 0
    dropped: list[tuple[int, str]] = []
    for line, start, end, reason in _records(data, len(header)):
        if reason is None:
            kept.append(data[start:end])
            count += 1
        else:
            dropped.append((line, reason))
    return b"".join(kept), count, dropped


def _is_head(line: bytes) -> bool:
    """Tell whether a line has the shape of a record's first line."""
    return line[:2] in (b"S ", b"D ")


_TORN = "torn tail: the file ends inside a record"


def _records(data: bytes, pos: int) -> Iterator[tuple[int, int, int, str | None]]:
    """Yield ``(line, start, end, reason)`` per record or dropped line (None: kept).

    A broken record drops only its first line when the line after it may
    start the next record, so one lost line costs one record, not two.
    """
    decode = codec_for(typing.Any).decode  # the store's decoder for an untyped value
    line = 2
    size = len(data)
    while pos < size:
        first_end = data.find(b"\n", pos)
        second_end = data.find(b"\n", first_end + 1) if first_end >= 0 else -1
        if second_end < 0 and (first_end < 0 or _is_head(data[pos:first_end])):
            yield line, pos, size, _TORN
            return
        head = data[pos:first_end]
        second = data[first_end + 1 : second_end]
        reason: str | None = None
        if not _is_head(head):
            reason = "not a record line ('S <key>' or 'D <key>')"
        elif head[:1] == b"D":
            if second not in (b"", b"\r"):
                reason = "delete record without its empty second line"
        elif _is_head(second):
            reason = "set record without a value line"
        else:
            try:
                decode(second)
            except DecodeError as error:
                # reported at the value line, as check and the store report it
                yield line + 1, pos, second_end + 1, f"undecodable value: {error}"
                pos, line = second_end + 1, line + 2
                continue
        if reason is not None:
            yield line, pos, first_end + 1, reason
            pos, line = first_end + 1, line + 1
            continue
        yield line, pos, second_end + 1, None
        pos, line = second_end + 1, line + 2


# --- writing ---------------------------------------------------------------------


def _read_all(fd: int) -> bytes:
    chunks: list[bytes] = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def _create(path: str, mode: int) -> int:
    """Create ``path`` for writing: never an existing file, never through a symlink."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = _core.sys_open(path, flags, mode)
    _core.sys_fchmod(fd, mode)  # what the umask took away
    return fd


def _write_file(fd: int, data: bytes) -> None:
    _core.sys_write(fd, data)
    _core.sys_fsync(fd)


def _backup(path: str, data: bytes, mode: int) -> str:
    """Copy the original to FILE.bak, or FILE.bak.1, FILE.bak.2, ... if taken."""
    number = 0
    while True:
        name = f"{path}.bak" if number == 0 else f"{path}.bak.{number}"
        try:
            fd = _create(name, mode)
        except FileExistsError:
            number += 1
            continue
        try:
            _write_file(fd, data)
        finally:
            os.close(fd)
        return name


def _replace(path: str, data: bytes, like: os.stat_result) -> None:
    """Write ``data`` beside ``path`` (a leftover of a crashed repair is
    removed: we hold the file's lock) and rename it over; crash-safe."""
    temp = path + TEMP_SUFFIX
    fd = create_like(temp, like)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # locked before it is the file
        _write_file(fd, data)
        _core.sys_rename(temp, path)
    except BaseException:
        os.close(fd)
        os.unlink(temp)
        raise
    try:
        _core.sys_fsync_dir(path)
    finally:
        os.close(fd)
