"""Encode and decode one value per class: persist's codecs against their rivals.

    python perf/bench_codecs.py -o perf/results/codecs.json [--fast]

Benchmarks are named ``codecs.<encode|decode>.<Class>.<impl>``:

- ``compiled``: ``persist.codec_for(cls)``, the codec persist's build compiled;
- ``runtime``: the compiled codec driven by the class's plan, what serves a
  class nobody compiled (for the schema classes made as for such a class);
- ``python``: the codec generated as Python at run time (the fallback of
  ``runtime``, which renders its errors);
- ``msgspec``: ``msgspec.json`` Encoder/Decoder on the attrs class itself;
- ``cattrs+ujson``: a plain cattrs Converter with ujson, as a user would write it;
- ``orjson``: orjson with a hand-written dict per class, the fastest by hand.

The classes ``Two``, ``Login`` and ``Event`` are defined here, so nobody
compiled them: ``runtime``, ``python`` and ``msgspec`` only. ``str`` and
``int`` are map value types: ``builtin`` (``persist.codec_for``) against
``python``, the Python entry points that served them before.

Each implementation decodes what it encodes (msgspec ignores the JSON aliases).
Run as a script so the installed, compiled persist is measured.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import attrs
import cattrs
import msgspec
import orjson
import pyperf
import ujson
from persist.codegen.plan import plan_for
from persist.schemas.bench import ComplexRecord, Meta, Pair
from persist.schemas.examples import Config, Product, Session, User

import persist
from persist import codecs, codegen


@attrs.define
class Two:
    name: str
    count: int


@attrs.frozen
class Login:
    name: str
    email: str
    age: int


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@attrs.define
class Event:
    at: datetime
    color: Color


SAMPLES: dict[type, Any] = {
    User: User("Alice Smith", "alice@example.com", 30),
    Product: Product("Widget", 19.99),
    Session: Session("u-1842", 1718557123),
    Config: Config(True, 64, {"region": "eu-west", "retries": 3}),
    Pair: Pair("user:1842", 7),
    ComplexRecord: ComplexRecord(
        123456,
        "record name",
        3.25,
        True,
        ["alpha", "beta", "gamma"],
        {"a": 1, "b": 22, "c": 333},
        Meta(1718557123, "import", 2, {"env": "prod"}),
        0.5,
        None,
        [1.5, 2.25, 0.001],
    ),
}

UNCOMPILED: dict[type, Any] = {
    Two: Two("alice", 42),
    Login: Login("Alice Smith", "alice@example.com", 30),
    Event: Event(datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC), Color.BLUE),
}
BUILTIN: dict[type, Any] = {str: "Alice Smith <alice@example.com>", int: 1718557123}

# orjson: what a user writes by hand for each class, both ways.
_TO_DICT: dict[type, Callable[[Any], dict[str, Any]]] = {
    User: lambda u: {"Name": u.name, "Email": u.email, "Age": u.age},
    Product: lambda p: {"Name": p.name, "Price": p.price},
    Session: lambda s: {"UserID": s.user_id, "Expiration": s.expiration},
    Config: lambda c: {
        "Debug": c.debug,
        "MaxConnections": c.max_connections,
        "Extra": c.extra,
    },
    Pair: lambda p: {"key": p.key, "value": p.value},
    ComplexRecord: lambda r: {
        "id": r.id,
        "name": r.name,
        "score": r.score,
        "active": r.active,
        "tags": r.tags,
        "counts": r.counts,
        "meta": {
            "created": r.meta.created,
            "source": r.meta.source,
            "version": r.meta.version,
            "labels": r.meta.labels,
        },
        "ratio": r.ratio,
        "parent": r.parent,
        "history": r.history,
    },
}
_FROM_DICT: dict[type, Callable[[dict[str, Any]], Any]] = {
    User: lambda d: User(d["Name"], d["Email"], d["Age"]),
    Product: lambda d: Product(d["Name"], float(d["Price"])),
    Session: lambda d: Session(d["UserID"], d["Expiration"]),
    Config: lambda d: Config(d["Debug"], d["MaxConnections"], d["Extra"]),
    Pair: lambda d: Pair(d["key"], d["value"]),
    ComplexRecord: lambda d: ComplexRecord(
        d["id"],
        d["name"],
        float(d["score"]),
        d["active"],
        d["tags"],
        d["counts"],
        Meta(**d["meta"]),
        d["ratio"],
        d["parent"],
        d["history"],
    ),
}


Rivals = dict[str, tuple[Callable[[Any], bytes], Callable[[bytes], Any]]]


def _rivals(cls: type) -> Rivals:
    """impl -> (encode, decode) for a schema class ``cls``."""
    compiled = persist.codec_for(cls)
    assert compiled.source == "compiled", compiled.source
    converter = cattrs.Converter()
    to_dict, from_dict = _TO_DICT[cls], _FROM_DICT[cls]
    return {
        "compiled": (compiled.encode, compiled.decode),
        **_uncompiled_rivals(cls),
        "cattrs+ujson": (
            lambda value: ujson.dumps(converter.unstructure(value)).encode(),
            lambda data: converter.structure(ujson.loads(data), cls),
        ),
        "orjson": (
            lambda value: orjson.dumps(to_dict(value)),
            lambda data: from_dict(orjson.loads(data)),
        ),
    }


def _uncompiled_rivals(cls: type) -> Rivals:
    """impl -> (encode, decode): the run-time tiers of ``cls`` and msgspec."""
    plan = plan_for(cls)
    runtime = codecs._runtime_codec(cls, plan)  # as for a class nobody compiled
    assert runtime.source == "runtime"
    python = codegen.make_python_codec(cls)
    return {
        "runtime": (runtime.encode, runtime.decode),
        "python": (python.encode, python.decode),
        "msgspec": (msgspec.json.Encoder().encode, msgspec.json.Decoder(cls).decode),
    }


def _builtin_rivals(tp: type) -> Rivals:
    """impl -> (encode, decode) of a map value type: compiled nodes, Python."""
    builtin = persist.codec_for(tp)
    python = codecs._python_builtin_codec(plan_for(tp))
    return {
        "builtin": (builtin.encode, builtin.decode),
        "python": (python.encode, python.decode),
        "msgspec": (msgspec.json.Encoder().encode, msgspec.json.Decoder(tp).decode),
    }


def _timer(function: Callable[[Any], Any], argument: Any) -> Callable[[int], float]:
    def time_func(loops: int) -> float:
        t0 = time.perf_counter()
        for _ in range(loops):
            function(argument)
        return time.perf_counter() - t0

    return time_func


def main() -> None:
    runner = pyperf.Runner()
    cases = [
        *((cls, value, _rivals(cls)) for cls, value in SAMPLES.items()),
        *((cls, value, _uncompiled_rivals(cls)) for cls, value in UNCOMPILED.items()),
        *((tp, value, _builtin_rivals(tp)) for tp, value in BUILTIN.items()),
    ]
    for cls, value, rivals in cases:
        for impl, (encode, decode) in rivals.items():
            data = encode(value)
            assert decode(data) == value, (cls, impl)
            name = cls.__name__
            runner.bench_time_func(
                f"codecs.encode.{name}.{impl}", _timer(encode, value)
            )
            runner.bench_time_func(f"codecs.decode.{name}.{impl}", _timer(decode, data))


if __name__ == "__main__":
    main()
