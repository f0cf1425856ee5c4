"""Opening, locking and creating store files (through the core's syscall seam)."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os

from . import _core  # pyright: ignore[reportPrivateUsage]  # the package's own private module
from .errors import StoreLockedError

__all__ = ["create_like", "descriptors_on", "lock_file"]


def lock_file(path: str, flags: int = os.O_RDWR | os.O_CREAT | os.O_APPEND) -> int:
    """Open ``path`` (by default created if missing) and take its exclusive lock.

    Retries if the file at ``path`` was replaced (a shrink's rename) between
    the open and the lock, so the lock always covers the file at ``path``.

    :raises StoreLockedError: another Store holds the lock
    """
    while True:
        fd = _core.sys_open(path, flags | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreLockedError(f"{path} is open in a Store") from None
        except BaseException:
            os.close(fd)
            raise
        st = os.fstat(fd)
        try:
            now = os.stat(path)
        except FileNotFoundError:
            now = None
        if now is not None and (now.st_ino, now.st_dev) == (st.st_ino, st.st_dev):
            return fd
        os.close(fd)


def create_like(path: str, like: os.stat_result) -> int:
    """Create ``path`` exclusively (never through a planted link) with the
    mode and owner of ``like``; a leftover file or link there is removed first.

    :returns: a descriptor open for appending
    """
    flags = (
        os.O_WRONLY
        | os.O_CREAT
        | os.O_EXCL
        | os.O_NOFOLLOW
        | os.O_APPEND
        | os.O_CLOEXEC
    )
    mode = like.st_mode & 0o7777
    try:
        fd = _core.sys_open(path, flags, mode)
    except FileExistsError:
        _core.sys_unlink(path)  # removes a link itself, never its target
        fd = _core.sys_open(path, flags, mode)
    try:
        _core.sys_fchmod(fd, mode)  # the umask may have narrowed it
        st = os.fstat(fd)
        if (st.st_uid, st.st_gid) != (like.st_uid, like.st_gid):
            _core.sys_fchown(fd, like.st_uid, like.st_gid)
    except BaseException as exc:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(path)
        if isinstance(exc, PermissionError) and exc.errno == errno.EPERM:
            raise PermissionError(
                exc.errno,
                f"cannot give {path} the owner of the store file "
                f"(uid {like.st_uid}); shrink it as that user",
            ) from exc
        raise
    return fd


def descriptors_on(*paths: str) -> list[int]:
    """This process's descriptors open on any of the files at ``paths``
    (for a forked child, which must not keep the parent's store files open:
    it would keep their locks alive)."""
    files: set[tuple[int, int]] = set()
    for path in paths:
        with contextlib.suppress(OSError):
            st = os.stat(path)
            files.add((st.st_dev, st.st_ino))
    try:
        candidates: list[int] | range = [int(n) for n in os.listdir("/proc/self/fd")]
    except OSError:  # no /proc: try every plausible descriptor
        candidates = range(min(os.sysconf("SC_OPEN_MAX"), 65536))
    found: list[int] = []
    for fd in candidates:
        with contextlib.suppress(OSError):
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) in files:
                found.append(fd)
    return found
