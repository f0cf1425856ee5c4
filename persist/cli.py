"""``python -m persist`` (also ``persist``): inspect and maintain go-persist files.

Exit codes: 0 done, 1 not found or invalid data (one line on stderr naming the
file, never a traceback), 2 a usage error (argparse's). Output piped into a
reader that stops early (``| head``) ends quietly. Long scans of a file show a
progress bar on a terminal (tqdm), nothing when stderr is not one.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from json.encoder import encode_basestring_ascii
from types import TracebackType
from typing import Any, NoReturn, Protocol

from tqdm import tqdm

from . import _core, _json  # pyright: ignore[reportPrivateUsage]  # the package's own private module
from .codecs import codec_for
from .errors import CorruptWALError, DecodeError, PersistError
from .repair import repair

__all__ = ["main"]


class _All:
    """The type of ALL: every map, as opposed to a map's name (or None)."""


ALL = _All()

_PROGRESS_FROM = 100_000  # items; a scan of fewer ends before a bar would help


class _Progress(Protocol):
    """What we use of a tqdm bar (its stub's ``update`` takes a number type
    pyright cannot resolve)."""

    def update(self, n: int = 1, /) -> object: ...
    def __enter__(self) -> _Progress: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
        /,
    ) -> None: ...


def _progress_bar(total: int, unit: str) -> _Progress:
    """A progress bar on stderr for ``total`` units of a long job, shown only
    when stderr is a terminal and the job is long."""
    return tqdm(
        total=total,
        unit=f" {unit}",
        leave=False,
        file=sys.stderr,
        disable=total < _PROGRESS_FROM or not sys.stderr.isatty(),
    )


def _existing(path: str) -> str:
    """``path`` if a file is there; FileNotFoundError (exit 1) otherwise."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path}")
    return path


class _Scan:
    """The live records of a file, read without locking or changing it.

    Two passes over the file, a block (16 MiB) at a time, so a file of any
    size is read with memory for its keys, not its values: the first notes
    the line of each key's last record, ``items`` reads the file again and
    yields each live key's record, in file order.

    :param bare_in_single: bare keys join the single map ``""`` (as when a
        store registers it) instead of staying orphans (map None)
    """

    def __init__(self, path: str, bare_in_single: bool = False) -> None:
        self.path = path
        self._bare_in_single = bare_in_single
        self._maps: dict[str | None, _core.PersistMap[None]] = {}
        #: map name -> key -> the line of its live record's value
        self.live: dict[str | None, dict[str, int]] = {}
        self._file: tuple[int, int] | None = None  # (st_dev, st_ino) of pass 1
        totals: list[int] = []
        for ops in self._blocks(totals):
            for i in range(0, len(ops), 3):
                name, key, raw = ops[i].name, ops[i + 1], ops[i + 2]
                keys = self.live.setdefault(name, {})
                if raw is None:
                    keys.pop(key, None)
                else:
                    keys[key] = raw.line
        self.valid_end, self.size, self.records = totals

    def _route(self, name: str | None) -> _core.PersistMap[None]:
        if name is None and self._bare_in_single:
            name = ""
        m = self._maps.get(name)
        if m is None:
            m = self._maps[name] = _core.PersistMap(None, name, None, None, b"")
        return m

    def _blocks(self, totals: list[int]) -> Iterator[list[Any]]:
        """The file's records, a block at a time (see ``_core.scan``)."""
        fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            st = os.fstat(fd)
            if self._file is None:
                self._file = (st.st_dev, st.st_ino)
            elif self._file != (st.st_dev, st.st_ino):
                raise PersistError(
                    f"{self.path}: the file was replaced (a shrink?) while it was "
                    "read; run the command again"
                )
            yield from _core.scan(fd, self.path, self._route, totals)
        finally:
            os.close(fd)

    def items(
        self, only: str | _All | None = ALL
    ) -> Iterator[tuple[str | None, str, bytes, int]]:
        """``(map name, key, JSON bytes, value line)`` per live key, in file order.

        :param only: just this map's keys (None: the bare keys)
        """
        wanted = sum(
            len(keys) for name, keys in self.live.items() if only is ALL or name == only
        )
        with _progress_bar(wanted, "keys") as bar:
            for ops in self._blocks([]):
                for i in range(0, len(ops), 3):
                    raw = ops[i + 2]
                    name = ops[i].name
                    if raw is None or (only is not ALL and name != only):
                        continue
                    key = ops[i + 1]
                    if self.live[name].get(key) == raw.line:
                        yield name, key, raw.data, raw.line
                        bar.update(1)

    def value(self, name: str | None, key: str) -> bytes | None:
        """The JSON bytes of one live key, or None."""
        line = self.live.get(name, {}).get(key)
        if line is None:
            return None
        for found, k, data, at in self.items(name):
            if at == line and k == key and found == name:
                return data
        return None


def _decode_value(data: bytes) -> Any:
    """Decode a value line as the store decodes an untyped value (or DecodeError)."""
    return codec_for(Any).decode(data)


def _json_str(text: str) -> str:
    """JSON for a str; a key kept with surrogateescape gets ASCII escapes."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return encode_basestring_ascii(text)
    return _json.quote(text)


def _full_key(name: str | None, key: str) -> str:
    return key if name is None else f"{name}:{key}"


def _key_warning(name: str | None, key: str) -> str | None:
    """Say why the key rules would refuse this key for a new record, or None."""
    if name is None and not key:
        return "an empty bare key (Go cannot read it back)"
    for label, text in (("map name", name or ""), ("key", key)):
        for char in text:
            code = ord(char)
            if code < 0x20 or 0x7F <= code <= 0x9F:
                return f"{label} holds the control character U+{code:04X}"
            if 0xD800 <= code <= 0xDFFF:
                return f"{label} is not valid UTF-8"
    return None


def cmd_stats(args: argparse.Namespace) -> int:
    """persist stats FILE: live keys per map, records in the file, their ratio."""
    scan = _Scan(args.file)
    per_map = {name: len(keys) for name, keys in scan.live.items()}
    active = sum(per_map.values())
    print(f"active_keys {active}")
    print(f"wal_records {scan.records}")
    for name in sorted(per_map, key=lambda n: (n is None, n or "")):
        label = "<orphans>" if name is None else repr(name)
        print(f"map {label} {per_map[name]}")
    print(f"file_size {scan.size}")
    print(f"ratio {scan.records / active:.2f}" if active else "ratio -")
    return 0


def cmd_dump(args: argparse.Namespace) -> int:
    """persist dump FILE: one JSON line per live key."""
    scan = _Scan(args.file)
    only: str | _All | None = ALL if args.map is None else args.map
    if only is not ALL and only not in scan.live:
        print(f"persist dump: {args.file}: no map {args.map!r}", file=sys.stderr)
        return 1
    status = 0
    for name, key, data, line in scan.items(only):
        label = "null" if name is None else _json_str(name)
        head = f'{{"map":{label},"key":{_json_str(key)}'
        if args.keys_only:
            sys.stdout.write(head + "}\n")
            continue
        try:
            value = _json.write_any(_decode_value(data))
        except DecodeError as exc:
            print(f"line {line}: {_full_key(name, key)!r}: {exc}", file=sys.stderr)
            status = 1
            continue
        sys.stdout.write(f'{head},"value":{value}}}\n')
    return status


def cmd_check(args: argparse.Namespace) -> int:
    """persist check FILE: validate without changing anything; 0 if all loads."""
    try:
        scan = _Scan(args.file)
    except CorruptWALError as exc:
        print(f"corrupt: {exc}")
        return 1
    bad = warnings = 0
    for name, key, data, line in scan.items():
        full = _full_key(name, key)
        warning = _key_warning(name, key)
        if warning is not None:
            warnings += 1
            print(
                f"line {line - 1}: warning: {full!r}: {warning}; it loads and stays "
                "readable and deletable, but a new record could not use it"
            )
        try:
            _decode_value(data)
        except DecodeError as exc:
            bad += 1
            print(f"line {line}: value of {full!r} cannot be decoded: {exc}")
    if scan.valid_end < scan.size:
        print(
            f"line {2 + 2 * scan.records}: torn tail: {scan.size - scan.valid_end} "
            f"bytes after byte {scan.valid_end} (a crash mid-append; cut at the next "
            "write)"
        )
    print(f"{scan.records} records, {bad} undecodable, {warnings} warnings")
    return 1 if bad else 0


def cmd_get(args: argparse.Namespace) -> int:
    """persist get FILE MAP KEY: print one value's JSON; 1 if the key is absent."""
    scan = _Scan(args.file)
    data = scan.value(args.map, args.key)
    if data is None:
        print(
            f"persist get: {args.file}: no key {args.key!r} in map {args.map!r}",
            file=sys.stderr,
        )
        return 1
    sys.stdout.write(_json.write_any(_decode_value(data)) + "\n")
    return 0


def cmd_repair(args: argparse.Namespace) -> int:
    """persist repair FILE: drop what cannot be read, keeping a backup."""
    report = repair(_existing(args.file))
    for line, reason in report.dropped:
        print(f"line {line}: dropped: {reason}")
    if report.backup is None:
        print(f"nothing to repair: {report.kept} records, all readable")
    else:
        print(
            f"repaired: kept {report.kept} records, dropped {len(report.dropped)}; "
            f"the original is in {report.backup}"
        )
    return 0


def cmd_shrink(args: argparse.Namespace) -> int:
    """persist shrink FILE: rewrite with one record per live key."""
    from .store import Store

    with Store(_existing(args.file)) as store:
        before = store.stats()
        store.shrink()
        after = store.stats()
    print(f"wal_records {before.wal_records} -> {after.wal_records}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """persist demo [FOLDER]: run the README's quick start."""
    from . import demo

    return demo.main(args.folder)


def cmd_codegen(args: argparse.Namespace) -> int:
    """persist codegen MODULE: write (and build) compiled codecs for its classes."""
    from . import codegen
    from .codegen.build import survey

    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # the module is named as from here
    try:
        module = importlib.import_module(args.module)
        plans, skipped = survey(module)
        path = codegen.generate_module(args.module, args.out, build=args.build)
    except (ImportError, ValueError) as exc:
        print(f"persist codegen: {exc}", file=sys.stderr)
        return 1
    for plan in plans:
        print(f"compiled {plan.cls.__qualname__}")
    for name, reason in skipped:
        print(f"skipped {name}: {reason} (served by the run-time codec)")
    print(path)
    return 0


def cmd_copy(args: argparse.Namespace) -> int:
    from . import copy

    try:
        copy.check_sides(args.src, args.dst)
    except ValueError as exc:
        raise _UsageError(str(exc)) from None
    done = copy.copy(args.src, args.dst, args.namespace, args.force)
    src, dst = (copy.shown_url(x) for x in (args.src, args.dst))
    maps = "1 map" if done.maps == 1 else f"{done.maps} maps"
    print(f"copied {done.keys} keys of {maps} from {src} to {dst}")
    return 0


class _UsageError(Exception):
    """Arguments argparse accepted but the command cannot use (exit 2)."""


_COMMANDS = (
    (
        "stats",
        "key and record counts",
        "Count the live keys (per map), the records in the file and their ratio "
        "(what a shrink would reclaim).",
    ),
    (
        "dump",
        "one JSON line per live key",
        'Print {"map": ..., "key": ..., "value": ...} per live key, in file order; '
        "no schema classes needed. A value that cannot be decoded is reported on "
        "stderr (exit 1) and the dump goes on.",
    ),
    (
        "check",
        "validate; report torn tail, corruption, undecodable values",
        "Read the whole file without changing it: exit 0 if every record loads and "
        "decodes (a torn tail from a crash mid-append is only reported), 1 if not.",
    ),
    (
        "shrink",
        "rewrite with one record per live key",
        "Rewrite the file with one record per live key, as Store.shrink() does "
        "(takes the file's lock: not while another process has it open).",
    ),
    (
        "repair",
        "drop what cannot be read, keeping a backup",
        "Rewrite a file that will not open, keeping every readable record and "
        "moving the original to FILE.bak-<time>.",
    ),
)


def _parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="persist",
        description="Inspect and maintain go-persist files (persist-kv).",
        epilog="Exit codes: 0 done, 1 not found or invalid data, 2 usage error. "
        "Run 'persist COMMAND --help' for a command's options.",
    )
    parser.add_argument(
        "--version", action="version", version=f"persist-kv {__version__}"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text, description in _COMMANDS:
        p = sub.add_parser(name, help=help_text, description=description)
        p.add_argument("file", help="the store's file")
        p.set_defaults(fn=globals()[f"cmd_{name}"])
        if name == "dump":
            p.add_argument("--map", help='only this map ("" = the single map)')
            p.add_argument(
                "--keys-only", action="store_true", help="print map and key only"
            )
    p = sub.add_parser(
        "get",
        help="print one value's JSON",
        description="Print the JSON of one value; exit 1 if the key is not there.",
    )
    p.add_argument("file", help="the store's file")
    p.add_argument("map", help='the map\'s name ("" = the single map)')
    p.add_argument("key")
    p.set_defaults(fn=cmd_get)
    p = sub.add_parser(
        "demo",
        help="run the quickstart in a temporary folder",
        description="Run the README's quickstart (open, write, reopen, read).",
    )
    p.add_argument("folder", nargs="?", help="keep the demo's file here instead")
    p.set_defaults(fn=cmd_demo)
    p = sub.add_parser(
        "codegen",
        help="generate compiled codecs for a module's attrs classes",
        description="Write (and with --build compile) the Cython codecs of the "
        "attrs classes of MODULE, beside it as _persist_<module>.pyx; the "
        "store finds them on its own. Lists each class compiled or skipped.",
    )
    p.add_argument("module", help="dotted name of the module, importable from here")
    p.add_argument(
        "-o", "--out", help="folder for the .pyx (default: the module's own)"
    )
    p.add_argument(
        "--build", action="store_true", help="compile it in place (needs Cython)"
    )
    p.set_defaults(fn=cmd_codegen)
    p = sub.add_parser(
        "copy",
        help="copy a file into Redis or Redis into a file",
        description="Copy every live key of a go-persist file into Redis (one hash "
        "per map, <namespace>:<map>, the values' JSON bytes unchanged; bare keys "
        "join the single map), or the maps of a Redis namespace into a new file. "
        "Exactly one of SRC and DST is a redis://, rediss:// or unix:// URL.",
    )
    p.add_argument("src", help="a file or a Redis URL")
    p.add_argument("dst", help="a new file or a Redis URL")
    p.add_argument(
        "--namespace", default="persist", help="the maps' key prefix (persist)"
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="replace an existing file / set keys over a namespace holding maps",
    )
    p.set_defaults(fn=cmd_copy, usage_error=p.error)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = _parser().parse_args(argv)
    try:
        status: int = args.fn(args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return status
    except _UsageError as exc:
        usage_error: Callable[[str], NoReturn] = args.usage_error
        usage_error(str(exc))  # argparse's usage message, exit 2
    except BrokenPipeError:  # the reader stopped early (| head): end quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the exit's flush has nowhere to fail
        os.close(devnull)
        return 1
    except (OSError, PersistError) as exc:
        print(f"persist {args.command}: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug: still one line, never a traceback
        print(f"persist {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
