"""``persist copy SRC DST``: a go-persist file into Redis, or Redis into a file.

The Redis side has the layout of ``persist.redis.RedisStore``: one hash per map,
``<namespace>:<map>`` (``<namespace>:`` for the single map ``""``), field = the
key as UTF-8, value = the value's JSON bytes exactly as the file holds them.
Values are copied as bytes, never decoded into objects and encoded again; they
are checked to be one line of JSON (as ``persist check`` does) before anything
is written.

File -> Redis: the file is read as ``dump`` reads it (no lock, no schema
classes): the last record of each key wins and deletes are applied; bare keys
join the single map ``""`` (a bare ``k`` and ``:k`` are one key, the later
record winning, as Go's OpenSingleMap reads them). The keys are written with
``HSET`` in batches of ``BATCH`` fields, each batch one MULTI/EXEC (a reader
never sees half a batch; a failed copy leaves whole batches). A namespace that
already holds a map is refused unless ``force``; then the file's keys are set
over it and the other keys stay.

Redis -> file: ``SCAN MATCH <namespace>:*`` (glob characters escaped) finds
the hashes, ``HSCAN`` reads each in steps (never a whole map in one reply), and
the records go to a new file beside DST: header, ``S <map>:<key>`` /
``<value>`` per key (maps in name order), fsync, then linked into place (an
existing DST is refused, also one created meanwhile) or, with ``force``,
renamed over it (under the file's lock: not while a Store has it open); then
the folder is fsynced. A key or map name the file cannot hold (not UTF-8, a
control character, a ``:`` in a map name) or a value that is not one line of
JSON stops the copy and the new file is removed. The copy is not a snapshot:
a namespace written meanwhile gives each key's value as it was scanned.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from . import _core  # pyright: ignore[reportPrivateUsage]  # the package's own private module
from ._files import lock_file
from .cli import _decode_value, _full_key, _progress_bar, _Scan  # pyright: ignore[reportPrivateUsage]  # the file-reading side of `persist dump`
from .errors import DecodeError, InvalidKeyError, PersistError
from .store import _check_map_name  # pyright: ignore[reportPrivateUsage]  # the file store's rule for map names

if TYPE_CHECKING:
    import redis

__all__ = ["BATCH", "Copied", "CopyError", "copy", "is_redis_url"]

BATCH = 1_000  # fields per MULTI/EXEC to Redis, and per HSCAN step
HEADER = b"go-persist 1\n"
_URL_SCHEMES = ("redis://", "rediss://", "unix://")
_GLOB_CHARS = "\\*?[]"


class CopyError(PersistError):
    """The copy cannot be done (a bad key or value, DST taken, no such maps)."""


@dataclass(frozen=True)
class Copied:
    """What a copy wrote."""

    maps: int
    keys: int


def is_redis_url(text: str) -> bool:
    """Whether ``text`` names a Redis server rather than a file."""
    return text.startswith(_URL_SCHEMES)


def shown_url(url: str) -> str:
    """``url`` with its password hidden, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def check_sides(src: str, dst: str) -> None:
    """ValueError unless exactly one of ``src`` and ``dst`` is a Redis URL."""
    if is_redis_url(src) == is_redis_url(dst):
        raise ValueError(
            "copy needs one file and one Redis URL (redis://, rediss://, unix://)"
        )


def copy(src: str, dst: str, namespace: str = "persist", force: bool = False) -> Copied:
    """Copy a file into Redis or Redis into a file (exactly one side a URL).

    :param force: write into a namespace that holds maps / replace a file
    :raises CopyError: a key, map name or value the destination cannot hold,
        DST exists without ``force``, or the server failed a command
    :raises OSError: a missing file, an unreachable server (ConnectionError)
    """
    check_sides(src, dst)
    _core.check_key(namespace)  # RedisStore's rule: no control character
    if not namespace:
        raise InvalidKeyError("the namespace must not be empty")
    try:
        import redis
    except ImportError:
        raise CopyError(
            "a Redis URL needs the redis package: pip install 'persist-kv[redis]'"
        ) from None
    from .redis.wire import client_from_url, ping

    url = dst if is_redis_url(dst) else src
    client = client_from_url(url, socket_connect_timeout=10)
    try:
        ping(client)
    except redis.RedisError as exc:
        raise ConnectionError(f"{shown_url(url)}: {exc}") from None
    try:
        if url == dst:
            return file_to_redis(src, client, namespace, force)
        return redis_to_file(client, dst, namespace, force)
    except redis.RedisError as exc:
        raise CopyError(f"{shown_url(url)}: {type(exc).__name__}: {exc}") from None
    finally:
        client.close()


def hash_name(namespace: str, name: str) -> bytes:
    """The Redis key of map ``name``."""
    return f"{namespace}:{name}".encode()


def _maps_under(client: redis.Redis, namespace: str) -> list[bytes]:
    """The names of the hashes under ``namespace``, sorted."""
    from .redis.wire import hashes_matching

    pattern = "".join("\\" + c if c in _GLOB_CHARS else c for c in namespace)
    return sorted(set(hashes_matching(client, f"{pattern}:*", BATCH)))


def _check_value(data: bytes, where: str) -> None:
    """CopyError unless ``data`` is one line of JSON the store can decode."""
    if b"\n" in data:
        raise CopyError(f"{where}: the value is not one line (it holds a newline)")
    try:
        _decode_value(data)
    except DecodeError as exc:
        raise CopyError(f"{where}: the value is not JSON: {exc}") from None


# --------------------------------------------------------------------------
# File -> Redis
# --------------------------------------------------------------------------


def file_to_redis(
    path: str, client: redis.Redis, namespace: str, force: bool
) -> Copied:
    """Set every live key of the file at ``path`` into ``namespace``'s hashes."""
    from .redis.wire import transaction

    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path}")
    # three passes over the file, a block at a time (any size): the live keys'
    # lines, every value checked (nothing is written if one is bad), the copy
    scan = _Scan(path, bare_in_single=True)
    for name, key, data, _line in scan.items():
        _check_value(data, f"{path}: {_full_key(name, key)!r}")
    if not force and _maps_under(client, namespace):
        raise CopyError(
            f"namespace {namespace!r} already holds maps (--force to set over them)"
        )
    maps: set[str] = set()
    keys = 0
    for batch in _batches(scan.items()):
        with transaction(client) as pipe:
            for name, fields in batch.items():
                pipe.hset(hash_name(namespace, name), items=fields)
            pipe.execute()
        maps.update(batch)
        keys += sum(len(fields) for fields in batch.values()) // 2
    return Copied(len(maps), keys)


def _batches(
    items: Iterable[tuple[str | None, str, bytes, int]],
) -> Iterator[dict[str, list[bytes]]]:
    """``{map: [field, value, field, value, ...]}`` of up to ``BATCH`` keys at
    a time (a key's one record: the fields are distinct)."""
    batch: dict[str, list[bytes]] = {}
    size = 0
    for name, key, data, _line in items:
        # a key Go wrote that is not UTF-8 keeps its bytes (surrogateescape)
        field = key.encode("utf-8", "surrogateescape")
        batch.setdefault(name or "", []).extend((field, data))
        size += 1
        if size == BATCH:
            yield batch
            batch, size = {}, 0
    if batch:
        yield batch


# --------------------------------------------------------------------------
# Redis -> file
# --------------------------------------------------------------------------


def redis_to_file(
    client: redis.Redis, path: str, namespace: str, force: bool
) -> Copied:
    """Write every map of ``namespace`` into a new go-persist file at ``path``."""
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"no such folder: {folder}")
    if os.path.isdir(path):
        raise CopyError(f"{path} is a folder")
    if not force and os.path.lexists(path):
        raise CopyError(f"{path} exists (--force to replace it)")
    hashes = _maps_under(client, namespace)
    if not hashes:
        raise CopyError(f"no map under namespace {namespace!r}: nothing to copy")
    total = sum(client.hlen(h) for h in hashes)
    temp = f"{path}.copy-{os.getpid()}"
    fd = _core.sys_open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC)
    try:
        with open(fd, "wb", closefd=False, buffering=1 << 20) as out:
            out.write(HEADER)
            keys = _write_records(client, hashes, namespace, out, total)
        _core.sys_fsync(fd, temp)
        _put_in_place(temp, path, force)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    finally:
        os.close(fd)
    _core.sys_fsync_dir(path)
    return Copied(len(hashes), keys)


def _write_records(
    client: redis.Redis, hashes: list[bytes], namespace: str, out: Any, total: int
) -> int:
    """Write ``S <map>:<key>`` records of every hash; return the keys written."""
    from .redis.wire import hash_fields

    prefix = len(hash_name(namespace, ""))
    keys = 0
    with _progress_bar(total, "keys") as bar:
        for hashed in hashes:
            shown = repr(hashed.decode(errors="backslashreplace"))
            name = _text(hashed[prefix:], "map name", shown)
            try:
                _check_map_name(name)
            except InvalidKeyError as exc:
                raise CopyError(f"hash {shown}: {exc}") from None
            head = b"S " + name.encode() + b":"
            seen: set[bytes] = set()  # HSCAN may return a field twice
            for field, value in hash_fields(client, hashed, BATCH):
                if field in seen:
                    continue
                seen.add(field)
                key = _text(field, "key", shown)
                try:
                    _core.check_key(key)
                except InvalidKeyError as exc:
                    raise CopyError(f"hash {shown}: {exc}") from None
                _check_value(value, f"hash {shown} key {key!r}")
                out.write(b"%s%s\n%s\n" % (head, field, value))
                bar.update()
            keys += len(seen)
    return keys


def _text(data: bytes, what: str, shown: str) -> str:
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise CopyError(f"hash {shown}: {what} {data!r} is not UTF-8") from None


def _put_in_place(temp: str, path: str, force: bool) -> None:
    """Move the written file to ``path``: never over a file unless ``force``,
    and then not over a file a Store has open (its lock is held meanwhile)."""
    if not force:
        try:
            os.link(temp, path)
        except FileExistsError:
            raise CopyError(f"{path} exists (--force to replace it)") from None
        os.unlink(temp)
        return
    try:
        lock = lock_file(path, os.O_RDONLY)
    except FileNotFoundError:
        _core.sys_rename(temp, path)
        return
    try:
        _core.sys_rename(temp, path)
    finally:
        os.close(lock)
