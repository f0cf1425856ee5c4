"""``python -m persist`` (also ``persist``): inspect and maintain go-persist files."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Sequence

from . import _core
from .errors import CorruptWALError, PersistError

__all__ = ["main"]


class _Scan:
    """Every record of a file, read without locking or changing it."""

    def __init__(self, path: str) -> None:
        self.maps: dict[str | None, _core.PersistMap[None]] = {}
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            self.valid_end, self.size, self.records = _core.load(fd, path, self._route)
        finally:
            os.close(fd)

    def _route(self, name: str | None) -> _core.PersistMap[None]:
        m = self.maps.get(name)
        if m is None:
            m = self.maps[name] = _core.PersistMap(None, name, None, None, b"")
        return m

    def items(self) -> Iterator[tuple[str | None, str, bytes, int]]:
        """``(map name, key, JSON bytes, line)`` of every live key."""
        for name, m in self.maps.items():
            for key, data, line in m._raw_items():
                yield name, key, data, line


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _parse(data: bytes) -> object:
    return json.loads(data, parse_constant=_reject_constant)


def cmd_stats(args: argparse.Namespace) -> int:
    scan = _Scan(args.file)
    per_map = {name: len(m._raw_items()) for name, m in scan.maps.items()}
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
    scan = _Scan(args.file)
    for name, key, data, _line in scan.items():
        if args.map is not None and name != args.map:
            continue
        record = {"map": name, "key": key, "value": _parse(data)}
        print(json.dumps(record, ensure_ascii=False))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    try:
        scan = _Scan(args.file)
    except CorruptWALError as exc:
        print(f"corrupt: {exc}")
        return 1
    bad = 0
    for name, key, data, line in scan.items():
        try:
            _parse(data)
        except ValueError as exc:
            bad += 1
            full = key if name is None else f"{name}:{key}"
            print(f"line {line}: value of {full!r} is not valid JSON: {exc}")
    if scan.valid_end < scan.size:
        print(
            f"torn tail: {scan.size - scan.valid_end} bytes after byte "
            f"{scan.valid_end} (a crash mid-append; cut at the next write)"
        )
    print(f"{scan.records} records, {bad} undecodable")
    return 1 if bad else 0


def cmd_shrink(args: argparse.Namespace) -> int:
    from .store import Store

    with Store(args.file) as store:
        before = store.stats()
        store.shrink()
        after = store.stats()
    print(f"wal_records {before.wal_records} -> {after.wal_records}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from . import demo

    return demo.main(args.folder)


def cmd_codegen(args: argparse.Namespace) -> int:
    from . import codegen

    try:
        path = codegen.generate_module(args.module, args.out, build=args.build)
    except (ImportError, ValueError) as exc:
        print(f"persist codegen: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="persist", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, fn, help_text in (
        ("stats", cmd_stats, "key and record counts"),
        ("dump", cmd_dump, "one JSON line per live key"),
        ("check", cmd_check, "validate; report torn tail or corruption"),
        ("shrink", cmd_shrink, "rewrite with one record per live key"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("file")
        p.set_defaults(fn=fn)
        if name == "dump":
            p.add_argument("--map", help='only this map ("" = the single map)')
    p = sub.add_parser("demo", help="run the quickstart in a temporary folder")
    p.add_argument("folder", nargs="?", help="keep the demo's file here instead")
    p.set_defaults(fn=cmd_demo)
    p = sub.add_parser(
        "codegen", help="generate compiled codecs for a module's attrs classes"
    )
    p.add_argument("module", help="dotted name of the module, importable from here")
    p.add_argument(
        "-o", "--out", help="folder for the .pyx (default: the module's own)"
    )
    p.add_argument(
        "--build", action="store_true", help="compile it in place (needs Cython)"
    )
    p.set_defaults(fn=cmd_codegen)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = _parser().parse_args(argv)
    try:
        status: int = args.fn(args)
        return status
    except (OSError, PersistError) as exc:
        print(f"persist {args.command}: {exc}", file=sys.stderr)
        return 1
