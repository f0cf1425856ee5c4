"""``persist copy``: a go-persist file into Redis and back (persist.copy), on a
real redis-server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
from conftest import GO_DIR, GoUser
from redis_server import RedisServer, free_port

import persist
from persist import cli
from persist import copy as persist_copy
from persist.redis import RedisStore

HEADER = b"go-persist 1\n"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """argparse's exit 2; the last stderr line."""
    with pytest.raises(SystemExit) as exc:
        cli.main(list(argv))
    assert exc.value.code == 2
    return capsys.readouterr().err.splitlines()[-1]


def live_state(data: bytes) -> dict[str, dict[bytes, bytes]]:
    """What a go-persist file holds, read by hand as Go's OpenSingleMap would:
    ``{map: {key bytes: value bytes}}``, bare keys in the map ``""``."""
    lines = data.split(b"\n")
    assert lines[0] == b"go-persist 1"
    state: dict[str, dict[bytes, bytes]] = {}
    for i in range(1, len(lines) - 1, 2):
        kind, full = lines[i][:1], lines[i][2:]
        name, key = full.split(b":", 1) if b":" in full else (b"", full)
        target = state.setdefault(name.decode(), {})
        if kind == b"S":
            target[key] = lines[i + 1]
        else:
            target.pop(key, None)
    return {name: keys for name, keys in state.items() if keys}


def redis_state(raw: redis.Redis, namespace: str = "persist") -> dict:
    """``{map: {field: value}}`` of the namespace's hashes."""
    prefix = f"{namespace}:".encode()
    return {
        key[len(prefix) :].decode(): raw.hgetall(key) for key in raw.keys(prefix + b"*")
    }


def records(path: Path) -> list[bytes]:
    """The record lines of a file (its header checked), two per record."""
    data = path.read_bytes()
    assert data.startswith(HEADER) and data.endswith(b"\n")
    return data[len(HEADER) : -1].split(b"\n")


def loaded(path: Path, names: list[str]) -> dict[str, dict[str, Any]]:
    """The maps as persist loads them (values decoded, untyped)."""
    with persist.Store(path) as store:
        return {name: dict(store.map(name, Any).items()) for name in names}


@pytest.mark.parametrize(
    "fixture", ["multi_maps.db", "multi_maps_shrunk.db", "single_users.db"]
)
def test_go_fixture_round_trip(
    tmp_path: Path,
    redis_url: str,
    raw: redis.Redis,
    capsys: pytest.CaptureFixture[str],
    fixture: str,
) -> None:
    """A file Go wrote -> Redis -> a new file: every live key, its value's
    bytes unchanged, orphans in the single map; persist loads the new file."""
    source = GO_DIR / fixture
    expected = live_state(source.read_bytes())
    keys = sum(len(m) for m in expected.values())
    maps = "1 map" if len(expected) == 1 else f"{len(expected)} maps"
    assert run(capsys, "copy", str(source), redis_url) == (
        0,
        f"copied {keys} keys of {maps} from {source} to {redis_url}\n",
        "",
    )
    assert redis_state(raw) == expected
    copied = tmp_path / "copied.db"
    assert run(capsys, "copy", redis_url, str(copied)) == (
        0,
        f"copied {keys} keys of {maps} from {redis_url} to {copied}\n",
        "",
    )
    assert live_state(copied.read_bytes()) == expected
    assert len(records(copied)) == 2 * keys  # one record per key, no deletes
    assert records(copied)[0::2] == sorted(records(copied)[0::2], key=_map_of)
    assert loaded(copied, list(expected)) == {
        name: {k.decode(): json.loads(v) for k, v in keys_.items()}
        for name, keys_ in expected.items()
    }
    assert run(capsys, "check", str(copied))[0] == 0


def _map_of(record_line: bytes) -> bytes:
    return record_line[2:].split(b":", 1)[0]


def test_deletes_overwrites_and_bare_keys(
    tmp_path: Path, redis_url: str, raw: redis.Redis
) -> None:
    """The last record of a key wins and deletes are applied; a bare ``k`` and
    ``:k`` are one key of the single map (the later record winning)."""
    source = tmp_path / "f.db"
    source.write_bytes(
        HEADER
        + b"S m:a\n1\nS m:b\n2\nS m:a\n[3]\nD m:b\n\n"
        + b'S k\n"bare"\nS :k\n"single"\n'  # :k wins over bare k
        + b"S :j\n1\nS j\n2\n"  # bare j wins over :j
        + b"S :gone\n1\nD gone\n\n"  # a bare delete removes :gone
        + b"S gone2\n1\nD :gone2\n\n"
        + b"S e:x\n1\nD e:x\n\n"  # a map left empty: no hash
    )
    assert cli.main(["copy", str(source), redis_url]) == 0
    assert redis_state(raw) == {
        "m": {b"a": b"[3]"},
        "": {b"k": b'"single"', b"j": b"2"},
    }
    assert raw.exists("persist:e") == 0


def test_large_file_streams_in_batches(
    tmp_path: Path, redis_url: str, raw: redis.Redis
) -> None:
    """100,000 records: written in MULTI/EXEC batches of BATCH keys and read
    back with HSCAN steps, never one HGETALL of a map."""
    n = 100_000
    source = tmp_path / "big.db"
    with source.open("wb") as f:
        f.write(HEADER)
        for i in range(n):
            f.write(b'S big:k%d\n{"i":%d,"s":"v\\n%d"}\n' % (i % 60_000, i, i))
    raw.config_resetstat()
    assert cli.main(["copy", str(source), redis_url]) == 0
    assert raw.hlen("persist:big") == 60_000
    assert raw.hget("persist:big", "k7") == b'{"i":60007,"s":"v\\n60007"}'
    assert raw.hget("persist:big", "k59999") == b'{"i":59999,"s":"v\\n59999"}'
    copied = tmp_path / "copied.db"
    assert cli.main(["copy", redis_url, str(copied)]) == 0
    stats = raw.info("commandstats")
    assert stats["cmdstat_exec"]["calls"] == 60_000 // persist_copy.BATCH
    assert stats["cmdstat_hscan"]["calls"] > 10
    assert "cmdstat_hgetall" not in stats
    assert live_state(copied.read_bytes()) == live_state(source.read_bytes())
    assert len(records(copied)) == 2 * 60_000


def test_namespace_and_its_glob_characters(
    tmp_path: Path, redis_url: str, raw: redis.Redis
) -> None:
    """--namespace names the prefix; its glob characters match only themselves;
    keys under it that are not hashes are not maps (left out)."""
    raw.hset("a*[b]:m", "k", "1")
    raw.hset("ab:m", "other", "2")
    raw.hset("a*[b]x:m", "other", "3")
    raw.set("a*[b]:lock", "not a map")
    copied = tmp_path / "copied.db"
    assert cli.main(["copy", redis_url, str(copied), "--namespace", "a*[b]"]) == 0
    assert copied.read_bytes() == HEADER + b"S m:k\n1\n"
    source = tmp_path / "f.db"
    source.write_bytes(HEADER + b"S m:k\n5\n")
    assert cli.main(["copy", str(source), redis_url, "--namespace", "n s"]) == 0
    assert raw.hgetall("n s:m") == {b"k": b"5"}


def test_missing_file_and_unreachable_server(
    tmp_path: Path, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """One line naming the file or the URL (password hidden), exit 1."""
    missing = tmp_path / "missing.db"
    assert run(capsys, "copy", str(missing), redis_url) == (
        1,
        "",
        f"persist copy: no such file: {missing}\n",
    )
    port = free_port()
    dead = f"redis://:secret@127.0.0.1:{port}/0"
    code, out, err = run(capsys, "copy", dead, str(tmp_path / "x.db"))
    assert (code, out) == (1, "")
    assert err.startswith(f"persist copy: redis://:***@127.0.0.1:{port}/0: ")
    assert "secret" not in err and len(err.splitlines()) == 1
    source = tmp_path / "f.db"
    source.write_bytes(HEADER)
    code, _, err = run(capsys, "copy", str(source), dead)
    assert code == 1 and "Connection refused" in err and "secret" not in err
    assert not (tmp_path / "x.db").exists()


def test_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two files or two URLs: argparse's usage error, exit 2."""
    expected = (
        "persist copy: error: copy needs one file and one Redis URL "
        "(redis://, rediss://, unix://)"
    )
    assert usage_error(capsys, "copy", "a.db", "b.db") == expected
    assert usage_error(capsys, "copy", "redis://h/0", "unix:///s.sock") == expected
    assert usage_error(capsys, "copy", "a.db").startswith("persist copy: error:")


def test_existing_file_is_refused_unless_force(
    tmp_path: Path,
    redis_url: str,
    raw: redis.Redis,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """DST exists: exit 1, untouched, no temp file left; --force replaces it,
    but not while a Store has it open."""
    raw.hset("persist:m", "k", "1")
    dst = tmp_path / "dst.db"
    dst.write_bytes(b"mine")
    assert run(capsys, "copy", redis_url, str(dst)) == (
        1,
        "",
        f"persist copy: {dst} exists (--force to replace it)\n",
    )
    assert dst.read_bytes() == b"mine"
    assert os.listdir(tmp_path) == ["dst.db"]
    dst.write_bytes(HEADER)
    with persist.Store(dst):
        code, _, err = run(capsys, "copy", redis_url, str(dst), "--force")
        assert code == 1 and "open in a Store" in err
    assert dst.read_bytes() == HEADER
    assert os.listdir(tmp_path) == ["dst.db"]
    assert cli.main(["copy", redis_url, str(dst), "--force"]) == 0
    assert dst.read_bytes() == HEADER + b"S m:k\n1\n"


def test_namespace_holding_maps_is_refused_unless_force(
    tmp_path: Path,
    redis_url: str,
    raw: redis.Redis,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """File -> a namespace that has maps: exit 1, nothing written; --force sets
    the file's keys over it and keeps the others."""
    raw.hset("persist:m", mapping={"k": "1", "other": "2"})
    source = tmp_path / "f.db"
    source.write_bytes(HEADER + b"S m:k\n9\nS n:x\n3\n")
    assert run(capsys, "copy", str(source), redis_url) == (
        1,
        "",
        "persist copy: namespace 'persist' already holds maps "
        "(--force to set over them)\n",
    )
    assert redis_state(raw) == {"m": {b"k": b"1", b"other": b"2"}}
    assert cli.main(["copy", str(source), redis_url, "--force"]) == 0
    assert redis_state(raw) == {
        "m": {b"k": b"9", b"other": b"2"},
        "n": {b"x": b"3"},
    }


@pytest.mark.parametrize(
    ("hash_name", "field", "value", "message"),
    [
        (
            b"persist:m",
            b"a\tb",
            b"1",
            "hash 'persist:m': key 'a\\tb' contains a control character",
        ),
        (b"persist:m", b"a\nb", b"1", "contains a control character"),
        (b"persist:m", b"\xff", b"1", "hash 'persist:m': key b'\\xff' is not UTF-8"),
        (b"persist:a:b", b"k", b"1", "map name 'a:b' must not contain ':'"),
        (b"persist:\x01", b"k", b"1", "contains a control character"),
        (
            b"persist:m",
            b"k",
            b"[1,\n2]",
            "hash 'persist:m' key 'k': the value is not one line",
        ),
        (b"persist:m", b"k", b"{'a': 1}", "the value is not JSON"),
        (b"persist:m", b"k", b"NaN", "the value is not JSON"),
        (b"persist:m", b"k", b"", "the value is not JSON"),
    ],
    ids=[
        "tab",
        "newline",
        "not-utf8",
        "colon-map",
        "control-map",
        "multi-line",
        "not-json",
        "nan",
        "empty",
    ],
)
def test_what_a_file_cannot_hold_is_refused(
    tmp_path: Path,
    raw: redis.Redis,
    redis_url: str,
    capsys: pytest.CaptureFixture[str],
    hash_name: bytes,
    field: bytes,
    value: bytes,
    message: str,
) -> None:
    """A key, map name or value the file cannot hold: exit 1, one line naming
    it, and no file (the half-written one removed)."""
    raw.hset("persist:a", mapping={f"k{i}": str(i) for i in range(3000)})
    raw.hset(hash_name, field, value)
    code, out, err = run(capsys, "copy", redis_url, str(tmp_path / "x.db"))
    assert (code, out) == (1, "")
    assert err.startswith("persist copy: ") and message in err
    assert len(err.splitlines()) == 1
    assert os.listdir(tmp_path) == []


def test_undecodable_file_value_writes_nothing(
    tmp_path: Path,
    redis_url: str,
    raw: redis.Redis,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A file value that is not JSON: exit 1 naming the key, Redis untouched."""
    source = tmp_path / "f.db"
    source.write_bytes(HEADER + b"S m:a\n1\nS m:b\n[1,\n")
    code, out, err = run(capsys, "copy", str(source), redis_url)
    assert (code, out) == (1, "")
    assert err.startswith(f"persist copy: {source}: 'm:b': the value is not JSON")
    assert raw.dbsize() == 0


def test_empty_namespace_is_an_error(
    tmp_path: Path, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "copy", redis_url, str(tmp_path / "x.db")) == (
        1,
        "",
        "persist copy: no map under namespace 'persist': nothing to copy\n",
    )
    assert os.listdir(tmp_path) == []


def test_progress_on_a_terminal_only(
    tmp_path: Path,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Piped (the console script in a child): stderr stays empty. On a
    terminal a bar counts the keys."""
    source = tmp_path / "f.db"
    source.write_bytes(HEADER + b"".join(b"S m:k%d\n%d\n" % (i, i) for i in range(50)))
    done = subprocess.run(
        # -P: the installed persist, not a checkout's source folder in the cwd
        [sys.executable, "-P", "-m", "persist", "copy", str(source), redis_url],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"copied 50 keys of 1 map from {source} to {redis_url}\n"
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    monkeypatch.setattr(cli, "_PROGRESS_FROM", 10)  # a bar from 10 keys on
    assert cli.main(["copy", redis_url, str(tmp_path / "back.db")]) == 0
    err = capsys.readouterr().err
    assert "0/50 [" in err and " keys/s]" in err


def test_redis_store_reads_the_copy_and_the_file_store_reads_it_back(
    tmp_path: Path, redis_url: str
) -> None:
    """A file Go wrote, copied: RedisStore's single map holds the file store's
    values; maps RedisStore wrote, copied: the file store reads them."""
    source = GO_DIR / "single_users.db"
    assert cli.main(["copy", str(source), redis_url]) == 0
    file_map = persist.open_single_map(source, GoUser, readonly=True)
    with RedisStore(redis_url) as store:
        assert dict(store.map("", GoUser).items()) == dict(file_map.items())
        users = store.map("users", GoUser)
        users.set("zoë", GoUser("Zoë", "z@example.com", 3))
        users.set_async("ann", GoUser("Ann <a>", "", -1))
    file_map.store.close()
    copied = tmp_path / "copied.db"
    assert cli.main(["copy", redis_url, str(copied)]) == 0
    with persist.Store(copied) as store:
        assert dict(store.map("users", GoUser).items()) == {
            "zoë": GoUser("Zoë", "z@example.com", 3),
            "ann": GoUser("Ann <a>", "", -1),
        }
        assert len(store.map("", GoUser)) == 4


def test_destination_folder_and_namespace_are_checked_first(
    tmp_path: Path,
    redis_url: str,
    raw: redis.Redis,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No folder for DST, DST a folder, a namespace RedisStore would refuse:
    one line, exit 1, nothing written."""
    raw.hset("persist:m", "k", "1")
    missing = tmp_path / "nowhere"
    assert run(capsys, "copy", redis_url, str(missing / "x.db")) == (
        1,
        "",
        f"persist copy: no such folder: {missing}\n",
    )
    assert run(capsys, "copy", redis_url, str(tmp_path), "--force") == (
        1,
        "",
        f"persist copy: {tmp_path} is a folder\n",
    )
    source = tmp_path / "f.db"
    source.write_bytes(HEADER + b"S m:k\n5\n")
    code, out, err = run(capsys, "copy", str(source), redis_url, "--namespace", "a\nb")
    assert (code, out) == (1, "") and "control character" in err
    code, out, err = run(capsys, "copy", str(source), redis_url, "--namespace", "")
    assert (code, err) == (1, "persist copy: the namespace must not be empty\n")
    assert redis_state(raw) == {"m": {b"k": b"1"}}
    assert sorted(os.listdir(tmp_path)) == ["f.db"]


def test_a_server_refusing_writes_stops_the_copy_between_batches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A server out of memory (maxmemory, no eviction): one line naming the
    URL, exit 1; the keys written are whole MULTI/EXEC batches."""
    server = RedisServer(tmp_path / "redis", maxmemory="3mb")
    server.start()
    try:
        source = tmp_path / "f.db"
        value = b'"' + b"x" * 200 + b'"'
        source.write_bytes(
            HEADER + b"".join(b"S m:k%d\n%s\n" % (i, value) for i in range(50_000))
        )
        code, out, err = run(capsys, "copy", str(source), server.url)
        assert (code, out) == (1, "")
        assert err.startswith(f"persist copy: {server.url}: OutOfMemoryError: ")
        with redis.Redis.from_url(server.url) as client:
            written = client.hlen("persist:m")
        assert 0 < written < 50_000 and written % persist_copy.BATCH == 0
    finally:
        server.stop()
