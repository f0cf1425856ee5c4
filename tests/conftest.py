"""Shared fixtures, schema classes and helpers of the behavioural test suite."""

import datetime
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

# `python -m pytest` puts the checkout's root on sys.path, and with it a
# persist/ folder of sources only (unless built in place with `make build`):
# take it off, so that both `pytest` and `python -m pytest` test the install.
_CHECKOUT = Path(__file__).resolve().parent.parent
if not any((_CHECKOUT / "persist").glob("_core*.so")):
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _CHECKOUT]

# A shell starts background jobs with SIGINT ignored, and a Python started
# with SIGINT ignored never raises KeyboardInterrupt: so would every child the
# tests start (the Ctrl-C tests need it).  Behave as a foreground run does.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

import attrs  # noqa: E402
import pytest  # noqa: E402
import redis_helpers  # noqa: E402
from childlib import fds_of, writes_fail  # noqa: E402, F401 (shared with the children)
from redis_server import RedisServer  # noqa: E402

import persist  # noqa: E402

DATA_DIR = Path(__file__).parent / "data"
GO_DIR = DATA_DIR / "go-persist"

HEADER = b"go-persist 1\n"

# Every C0 and C1 control character: none may appear in a key or map name.
CONTROL_CHARS = [chr(c) for c in range(0x00, 0x20)] + [
    chr(c) for c in range(0x7F, 0xA0)
]


# --------------------------------------------------------------------------
# Schema classes
# --------------------------------------------------------------------------


@attrs.define
class User:
    """A plain mutable record; JSON keys are the field names."""

    name: str
    email: str
    age: int


@attrs.frozen
class FrozenUser:
    """The same record, frozen (the hazard-free way to store values)."""

    name: str
    email: str
    age: int


def _go(name: str) -> dict:
    """Metadata giving a field the JSON key a Go struct uses."""
    return {"json": name}


@attrs.define
class GoUser:
    """go-persist's test struct ``User{Name, Email, Age}``."""

    name: str = attrs.field(metadata=_go("Name"))
    email: str = attrs.field(metadata=_go("Email"))
    age: int = attrs.field(metadata=_go("Age"))


@attrs.define
class Product:
    """``products`` of multi_maps.db."""

    name: str = attrs.field(metadata=_go("Name"))
    price: float = attrs.field(metadata=_go("Price"))


@attrs.define
class Session:
    """``sessions`` of multi_maps.db."""

    user_id: str = attrs.field(metadata=_go("UserID"))
    expiration: int = attrs.field(metadata=_go("Expiration"))


@attrs.define
class SystemConfig:
    """The ``system_config`` orphan of multi_maps.db."""

    debug: bool = attrs.field(metadata=_go("Debug"))
    max_connections: int = attrs.field(metadata=_go("MaxConnections"))


@attrs.define
class Address:
    """Nested struct of ``profiles`` (lower-case JSON tags)."""

    street: str
    city: str


@attrs.define
class Profile:
    """``profiles`` of multi_maps.db: JSON tags, nesting, nil pointer/slice/map,
    []byte, time.Time and omitempty fields."""

    id: int
    nick: str
    score: float
    active: bool
    tags: list[str]
    attributes: dict[str, int] = attrs.field(metadata=_go("attrs"))
    home: Address
    work: Address | None
    avatar: bytes
    created: datetime.datetime
    nickname: str = ""
    extra: dict[str, str] = attrs.field(factory=dict)


# --------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------


@pytest.fixture(autouse=True, scope="session")
def _compiled_core() -> None:
    """Refuse to run the suite against anything but the compiled core."""
    import persist._core as core

    path = getattr(core, "__file__", "") or ""
    if not path.endswith(".so"):
        pytest.fail(f"persist._core is not the compiled extension: {path!r}")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Path of a store file that does not exist yet."""
    return tmp_path / "test.db"


class SeededRandom(random.Random):
    """random.Random whose repr shows its seed, so a failure can be replayed
    with ``PERSIST_TEST_SEED=<seed>``."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.seed_value = seed

    def __repr__(self) -> str:
        return f"SeededRandom(seed={self.seed_value})"


@pytest.fixture
def rng() -> SeededRandom:
    """A seeded random generator (seed from $PERSIST_TEST_SEED or fresh)."""
    env = os.environ.get("PERSIST_TEST_SEED")
    seed = int(env) if env else random.SystemRandom().randrange(2**32)
    return SeededRandom(seed)


@pytest.fixture
def fast_thread_switching() -> Iterator[None]:
    """Switch threads every few microseconds instead of every 5 ms, so that
    concurrent tests interleave their threads many times per call."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


@pytest.fixture
def go_file(tmp_path: Path) -> Callable[[str], Path]:
    """Copy a Go-written fixture into tmp_path and return the copy's path."""

    def copy(name: str) -> Path:
        dest = tmp_path / name
        shutil.copyfile(GO_DIR / name, dest)
        return dest

    return copy


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server for the session (AOF on, ``appendfsync always``).
    Tests that stop, kill or reconfigure a server start their own
    ``RedisServer`` instead."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session server's URL, its data flushed before the test."""
    assert redis_server.command("FLUSHALL") == b"+OK"
    return redis_server.url


@pytest.fixture
def stores(redis_url: str) -> Iterator["redis_helpers.Stores"]:
    """A factory of RedisStores on the session server (1 ms background
    sync), every one closed at the end of the test."""
    made = redis_helpers.Stores(redis_url)
    yield made
    made.close()


@pytest.fixture
def raw(redis_url: str) -> Iterator["redis.Redis"]:  # noqa: F821 (imported here)
    """A plain redis-py client on the session server (bytes in, bytes out)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def read_bytes(path: os.PathLike) -> bytes:
    """The file's current bytes."""
    return Path(path).read_bytes()


def set_record(fullkey: str, value_json: str) -> bytes:
    """The exact bytes of a set record."""
    return f"S {fullkey}\n{value_json}\n".encode()


def delete_record(fullkey: str) -> bytes:
    """The exact bytes of a delete record."""
    return f"D {fullkey}\n\n".encode()


def user_json(name: str, email: str, age: int) -> str:
    """The exact JSON persist writes for User(name, email, age)."""
    return json.dumps(
        {"name": name, "email": email, "age": age},
        separators=(",", ":"),
        ensure_ascii=False,
    )


def parse_wal(data: bytes) -> list[tuple[str, str, bytes]]:
    """Split a complete WAL file into (kind, fullkey, value line) records.

    Splits on b"\\n" only (never on U+2028 and friends) and insists on a
    header and whole records.
    """
    assert data.startswith(HEADER), data[:40]
    body = data[len(HEADER) :]
    if not body:
        return []
    assert body.endswith(b"\n"), body[-40:]
    lines = body[:-1].split(b"\n")
    assert len(lines) % 2 == 0, lines
    records = []
    for head, value in zip(lines[::2], lines[1::2], strict=True):
        kind, key = head.decode().split(" ", 1)
        assert kind in ("S", "D"), head
        records.append((kind, key, value))
    return records


def live_records(data: bytes) -> dict[str, object]:
    """Replay a WAL file: fullkey -> decoded JSON value of its live keys."""
    state: dict[str, object] = {}
    for kind, key, value in parse_wal(data):
        if kind == "S":
            state[key] = json.loads(value)
        else:
            assert value == b""
            state.pop(key, None)
    return state


def wait_until(
    predicate: Callable[[], object], timeout: float = 5.0, what: str = ""
) -> None:
    """Poll predicate until it is true; fail the test after timeout seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(0.01)


def open_quiet(path: os.PathLike) -> "persist.Store":
    """Open a Store whose background sync effectively never runs, so async
    changes stay pending until the test flushes them.

    The interval is set before open: set on an open store it would wake the
    background sync at once, racing with the test's first async write.
    """
    store = persist.Store()
    store.sync_interval = 3600.0
    store.open(path)
    return store


def python_env() -> dict[str, str]:
    """Environment for a child interpreter that imports this persist build."""
    env = dict(os.environ)
    root = str(Path(persist.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_python(
    code: str, *args: str, timeout: float = 60.0
) -> subprocess.CompletedProcess:
    """Run code in a fresh interpreter (with args in sys.argv[1:])."""
    # -P keeps the working directory off sys.path: the child must import the
    # installed, compiled persist, not the source folder of a checkout.
    return subprocess.run(
        [sys.executable, "-P", "-c", code, *args],
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_threads(*targets: Callable[[], object], timeout: float = 120.0) -> list:
    """Run each target in its own thread; re-raise the first exception."""
    import threading

    results: list = [None] * len(targets)
    errors: list[BaseException] = []

    def wrap(i: int, fn: Callable[[], object]) -> None:
        try:
            results[i] = fn()
        except BaseException as exc:  # reported in the test's thread
            errors.append(exc)

    threads = [
        threading.Thread(target=wrap, args=(i, fn), daemon=True)
        for i, fn in enumerate(targets)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
        assert not t.is_alive(), "a worker thread hung"
    if errors:
        raise errors[0]
    return results
