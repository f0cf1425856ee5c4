"""The command line: check, dump and repair decode as the store does (persist.cli)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import persist
from persist import cli

HEADER = b"go-persist 1\n"

SOUND = (
    HEADER
    + b'S m:a\n{"x":[1,2.5]}\nS m:b\n"\xc3\xa9"\nS bare\ntrue\nD m:b\n\nS :s\nnull\n'
)

DEEP_OK = b"[" * 1000 + b"]" * 1000


def write(tmp_path: Path, data: bytes, name: str = "f.db") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- check --------------------------------------------------------------------------


def test_check_sound_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A sound file: exit 0, a summary, the file unchanged."""
    path = write(tmp_path, SOUND)
    assert run(capsys, "check", str(path)) == (
        0,
        "5 records, 0 undecodable, 0 warnings\n",
        "",
    )
    assert path.read_bytes() == SOUND


def test_check_torn_tail_is_exit_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only a torn tail: reported with its line, exit 0."""
    path = write(tmp_path, SOUND + b"S m:c\n[1,")
    code, out, _ = run(capsys, "check", str(path))
    assert code == 0
    assert out.splitlines() == [
        f"line 12: torn tail: 9 bytes after byte {len(SOUND)} (a crash mid-append; "
        "cut at the next write)",
        "5 records, 0 undecodable, 0 warnings",
    ]
    assert path.read_bytes() == SOUND + b"S m:c\n[1,"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"[1,", "invalid JSON"),
        (b"NaN", "NaN is not valid JSON"),
        (b'"\\ud800"', "lone surrogate"),
        (b'"\xff"', "invalid JSON"),
        (b"1" * 5000, "invalid JSON"),
        (b"[" * 2000 + b"]" * 2000, "depth limit"),
    ],
    ids=["truncated", "nan", "surrogate", "utf8", "huge-int", "deep"],
)
def test_check_undecodable_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: bytes, reason: str
) -> None:
    """A value the store's Any decoder refuses: its line and key, exit 1."""
    path = write(tmp_path, SOUND + b"S m:bad\n" + value + b"\n")
    code, out, err = run(capsys, "check", str(path))
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith("line 13: value of 'm:bad' cannot be decoded: Any: ")
    assert reason in lines[0]
    assert lines[1:] == ["6 records, 1 undecodable, 0 warnings"]
    assert err == ""


def test_check_accepts_what_the_store_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """1,000 levels deep (json.loads would give up) is sound, as it is for the store."""
    path = write(tmp_path, HEADER + b"S m:deep\n" + DEEP_OK + b"\n")
    assert run(capsys, "check", str(path))[0] == 0
    with persist.Store(path) as store:
        assert persist.codec_for(list).encode(store.map("m", list)["deep"]) == DEEP_OK


def test_check_corrupt(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Broken framing mid-file: CorruptWALError's line and offset, exit 1."""
    path = write(tmp_path, HEADER + b"S m:a\n1\nX m:b\n2\nS m:c\n3\n")
    code, out, _ = run(capsys, "check", str(path))
    assert code == 1
    assert out == (
        f"corrupt: {path}: line 4 (byte 21): "
        "expected a record line 'S <key>' or 'D <key>'\n"
    )


def test_check_warns_about_refused_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Keys from a CRLF file or with a control character: warnings, exit 0."""
    data = (
        b"go-persist 1\r\nS m:crlf\r\n1\r\nS m:ctl\x01\n2\nS m:k\xff\n3\nD m:gone\n\n"
    )
    path = write(tmp_path, data)
    code, out, _ = run(capsys, "check", str(path))
    assert code == 0
    assert out.splitlines() == [
        "line 2: warning: 'm:crlf\\r': key holds the control character U+000D; "
        "it loads "
        "and stays readable and deletable, but a new record could not use it",
        "line 4: warning: 'm:ctl\\x01': key holds the control character U+0001; "
        "it loads "
        "and stays readable and deletable, but a new record could not use it",
        "line 6: warning: 'm:k\\udcff': key is not valid UTF-8; it loads "
        "and stays readable and deletable, but a new record could not use it",
        "4 records, 0 undecodable, 3 warnings",
    ]
    assert path.read_bytes() == data


# --- dump ---------------------------------------------------------------------------


def test_dump(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One JSON line per live key, in file order; map "" and null for an orphan."""
    path = write(tmp_path, SOUND)
    assert run(capsys, "dump", str(path)) == (
        0,
        '{"map":"m","key":"a","value":{"x":[1,2.5]}}\n'
        '{"map":null,"key":"bare","value":true}\n'
        '{"map":"","key":"s","value":null}\n',
        "",
    )


def test_dump_map_and_keys_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--map picks one map; --keys-only leaves the values out."""
    path = write(tmp_path, SOUND)
    assert run(capsys, "dump", str(path), "--map", "") == (
        0,
        '{"map":"","key":"s","value":null}\n',
        "",
    )
    assert run(capsys, "dump", str(path), "--keys-only") == (
        0,
        '{"map":"m","key":"a"}\n{"map":null,"key":"bare"}\n{"map":"","key":"s"}\n',
        "",
    )


def test_dump_goes_on_past_undecodable_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An undecodable value: `line N: ...` on stderr, the other keys dumped, exit 1."""
    data = (
        HEADER + b'S m:a\n"\\udc00"\nS m:deep\n' + DEEP_OK + b"\nS m:c\n[1,\nS m:d\n4\n"
    )
    path = write(tmp_path, data)
    code, out, err = run(capsys, "dump", str(path))
    assert code == 1
    assert out == (
        '{"map":"m","key":"deep","value":' + DEEP_OK.decode() + "}\n"
        '{"map":"m","key":"d","value":4}\n'
    )
    assert err.splitlines() == [
        "line 3: 'm:a': Any: lone surrogate in a str",
        "line 7: 'm:c': Any: invalid JSON: "
        + err.splitlines()[1].split("invalid JSON: ")[1],
    ]
    assert err.splitlines()[1] != "line 7: 'm:c': Any: invalid JSON: "


def test_dump_corrupt_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A corrupt file: one line on stderr, exit 1, no traceback."""
    path = write(tmp_path, HEADER + b"junk\n\n")
    code, out, err = run(capsys, "dump", str(path))
    assert (code, out) == (1, "")
    assert err.startswith("persist dump: ") and err.count("\n") == 1
    assert "Traceback" not in err


def test_missing_file_and_usage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing file is exit 1 with one line; a usage error is exit 2."""
    code, out, err = run(capsys, "check", str(tmp_path / "nope.db"))
    assert (code, out) == (1, "")
    assert err.startswith("persist check: ") and err.count("\n") == 1
    with pytest.raises(SystemExit) as info:
        cli.main(["dump"])
    assert info.value.code == 2


# --- repair -------------------------------------------------------------------------


def test_repair_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """repair says what it dropped and where the backup is; exit 0."""
    data = SOUND + b"S m:c\n[1,\nS m:d\n4\nS m:e\n5"
    path = write(tmp_path, data)
    with pytest.raises(persist.DecodeError) as refused:
        persist.codec_for(Any).decode(b"[1,")  # the store's own verdict
    assert run(capsys, "repair", str(path)) == (
        0,
        f"line 13: dropped: undecodable value: {refused.value}\n"
        "line 16: dropped: torn tail: the file ends inside a record\n"
        f"repaired: kept 6 records, dropped 2; the original is in {path}.bak\n",
        "",
    )
    assert path.read_bytes() == SOUND + b"S m:d\n4\n"
    assert (tmp_path / "f.db.bak").read_bytes() == data


def test_repair_cli_nothing_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A sound file: nothing to repair, no backup, exit 0."""
    path = write(tmp_path, SOUND)
    assert run(capsys, "repair", str(path)) == (
        0,
        "nothing to repair: 5 records, all readable\n",
        "",
    )
    assert sorted(os.listdir(tmp_path)) == ["f.db"]


def test_repair_cli_locked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file open in a Store: one line on stderr, exit 1, file unchanged."""
    data = SOUND + b"S m:c\n[1,\n"
    path = write(tmp_path, data)
    with persist.Store(path):
        code, out, err = run(capsys, "repair", str(path))
    assert (code, out) == (1, "")
    assert err == f"persist repair: {path} is open in a Store\n"
    assert path.read_bytes() == data
    assert sorted(os.listdir(tmp_path)) == ["f.db"]


# --- a real process -------------------------------------------------------------------


def test_subprocess(tmp_path: Path) -> None:
    """python -m persist: the same output and exit codes from a real process."""
    path = write(tmp_path, SOUND + b'S m:bad\n"\\ud800"\n')
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    done = subprocess.run(
        [sys.executable, "-P", "-m", "persist", "dump", str(path)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 1
    assert done.stdout.splitlines()[0] == '{"map":"m","key":"a","value":{"x":[1,2.5]}}'
    assert done.stderr == "line 13: 'm:bad': Any: lone surrogate in a str\n"
    done = subprocess.run(
        [sys.executable, "-P", "-m", "persist", "check", str(path)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert (done.returncode, done.stderr) == (1, "")
    assert done.stdout.splitlines()[-1] == "6 records, 1 undecodable, 0 warnings"


# --- get ----------------------------------------------------------------------------


def test_get(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """get prints one value's canonical JSON; a missing key or bad value is exit 1."""
    path = write(tmp_path, SOUND + b'S m:bad\n"\\ud800"\n')
    assert run(capsys, "get", str(path), "m", "a") == (0, '{"x":[1,2.5]}\n', "")
    assert run(capsys, "get", str(path), "", "s") == (0, "null\n", "")
    assert run(capsys, "get", str(path), "m", "b") == (
        1,
        "",
        f"persist get: {path}: no key 'b' in map 'm'\n",
    )
    assert run(capsys, "get", str(path), "m", "bad") == (
        1,
        "",
        "persist get: Any: lone surrogate in a str\n",
    )


def test_check_warns_about_an_empty_bare_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An orphan with an empty key (Go cannot read it): a warning, exit 0."""
    path = write(tmp_path, HEADER + b"S \n1\n")
    code, out, _ = run(capsys, "check", str(path))
    assert code == 0
    assert out.splitlines()[0].startswith(
        "line 2: warning: '': an empty bare key (Go cannot read it back)"
    )


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """--version prints the distribution's name and version, exit 0."""
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"persist-kv {persist.__version__}\n"


# --- what a newcomer trips over -------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["stats"],
        ["dump"],
        ["check"],
        ["shrink"],
        ["repair"],
        ["get", "{path}", "m", "k"],
    ],
)
def test_a_missing_file_is_an_error_for_every_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    """Exit 1, one line naming the file, and no file made (shrink used to create it)."""
    path = tmp_path / "nope.db"
    args = [argv[0], str(path), *argv[2:]] if len(argv) > 1 else [argv[0], str(path)]
    code, out, err = run(capsys, *args)
    assert (code, out) == (1, "")
    assert err.startswith(f"persist {argv[0]}: ") and str(path) in err
    assert err.count("\n") == 1
    assert os.listdir(tmp_path) == []


def test_dump_of_a_map_not_in_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--map naming no map of the file: exit 1 and a line saying so, not silence."""
    path = write(tmp_path, SOUND)
    assert run(capsys, "dump", str(path), "--map", "nosuch") == (
        1,
        "",
        f"persist dump: {path}: no map 'nosuch'\n",
    )
    assert run(capsys, "dump", str(path), "--map", "", "--keys-only") == (
        0,
        '{"map":"","key":"s"}\n',
        "",
    )


def test_dump_into_a_pipe_closed_early_ends_quietly(tmp_path: Path) -> None:
    """persist dump FILE | head -1: no BrokenPipe traceback or message."""
    records = b"".join(b"S m:k%d\n%d\n" % (i, i) for i in range(50_000))
    path = write(tmp_path, HEADER + records)
    with subprocess.Popen(
        [sys.executable, "-P", "-m", "persist", "dump", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as reader:
        assert reader.stdout is not None and reader.stderr is not None
        assert reader.stdout.readline() == b'{"map":"m","key":"k0","value":0}\n'
        reader.stdout.close()
        assert reader.wait(timeout=60) == 1
        assert reader.stderr.read() == b""


def test_help_is_plain_text(capsys: pytest.CaptureFixture[str]) -> None:
    """--help lists every command with a line of help, without reST markup."""
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for command in (
        "stats",
        "dump",
        "check",
        "shrink",
        "repair",
        "get",
        "codegen",
        "copy",
    ):
        assert f"    {command} " in out
    assert "``" not in out


def test_progress_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Long scans get a bar on a terminal and none when stderr is piped."""
    long = cli._PROGRESS_FROM

    def shown(total: int) -> bool:
        with cli._progress_bar(total, "keys") as bar:
            return not bar.disable  # type: ignore[attr-defined]

    assert not shown(long)  # pytest's stderr is no terminal
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert shown(long)
    assert not shown(long - 1)  # a short job ends before a bar would help


def test_dump_of_a_file_larger_than_a_block(db_path: Path) -> None:
    """The scan reads a block (16 MiB) at a time, twice: a key overwritten and
    deleted across blocks shows its last value once, in file order."""
    big = b"S m:big%d\n" + b'"' + b"x" * 1_000_000 + b'"\n'
    records = [b"S m:a\n1\n", b"S m:gone\n1\n"]
    records += [big % i for i in range(40)]  # about 40 MB: three blocks
    records += [b"S m:a\n2\n", b"D m:gone\n\n", b"S m:late\n3\n"]
    db_path.write_bytes(b"go-persist 1\n" + b"".join(records))
    done = subprocess.run(
        [sys.executable, "-P", "-m", "persist", "dump", "--keys-only", str(db_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    keys = [json.loads(line)["key"] for line in done.stdout.splitlines()]
    assert keys == [*(f"big{i}" for i in range(40)), "a", "late"]
    stats = subprocess.run(
        [sys.executable, "-P", "-m", "persist", "stats", str(db_path)],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    assert "active_keys 42\nwal_records 45\n" in stats
    got = subprocess.run(
        [sys.executable, "-P", "-m", "persist", "get", str(db_path), "m", "a"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (got.returncode, got.stdout) == (0, "2\n")


SCHEMA = """
import attrs

@attrs.frozen
class Point:
    x: int
    y: int

@attrs.define
class Node:
    value: int
    me: "Node | None" = attrs.field(
        default=attrs.Factory(lambda self: None, takes_self=True)
    )
"""


def test_codegen_from_the_project_folder(tmp_path: Path) -> None:
    """Run from the folder holding the module, as the README says: it imports it,
    lists what it compiled and what it skipped (and why), and writes the .pyx."""
    (tmp_path / "myschema.py").write_text(SCHEMA)
    done = subprocess.run(  # -P: no cwd on sys.path, as for the console script
        [sys.executable, "-P", "-m", "persist", "codegen", "myschema"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == [
        "compiled Point",
        "skipped Node: a generic class or a Factory(takes_self=True) default "
        "(served by the run-time codec)",
        str(tmp_path / "_persist_myschema.pyx"),
    ]
