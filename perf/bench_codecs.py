"""Encode and decode one value per schema class: compiled codecs against their rivals.

    python perf/bench_codecs.py -o perf/results/codecs.json [--fast]

Benchmarks are named ``codecs.<encode|decode>.<Class>.<impl>``:

- ``compiled``: ``persist.codec_for(cls)``, the codec persist's build compiled;
- ``runtime``: the codec generated as Python at run time (what serves a class
  nobody compiled);
- ``msgspec``: ``msgspec.json`` Encoder/Decoder on the attrs class itself;
- ``cattrs+ujson``: a plain cattrs Converter with ujson, as a user would write it;
- ``orjson``: orjson with a hand-written dict per class, the fastest by hand.

Each implementation decodes what it encodes (msgspec ignores the JSON aliases).
Run as a script so the installed, compiled persist is measured.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import cattrs
import msgspec
import orjson
import pyperf
import ujson
from persist.schemas.bench import ComplexRecord, Meta, Pair
from persist.schemas.examples import Config, Product, Session, User

import persist
from persist import codegen

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


def _rivals(
    cls: type,
) -> dict[str, tuple[Callable[[Any], bytes], Callable[[bytes], Any]]]:
    """impl -> (encode, decode) for ``cls``."""
    compiled = persist.codec_for(cls)
    assert compiled.source == "compiled", compiled.source
    runtime = codegen.make_python_codec(cls)
    converter = cattrs.Converter()
    to_dict, from_dict = _TO_DICT[cls], _FROM_DICT[cls]
    return {
        "compiled": (compiled.encode, compiled.decode),
        "runtime": (runtime.encode, runtime.decode),
        "msgspec": (msgspec.json.Encoder().encode, msgspec.json.Decoder(cls).decode),
        "cattrs+ujson": (
            lambda value: ujson.dumps(converter.unstructure(value)).encode(),
            lambda data: converter.structure(ujson.loads(data), cls),
        ),
        "orjson": (
            lambda value: orjson.dumps(to_dict(value)),
            lambda data: from_dict(orjson.loads(data)),
        ),
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
    for cls, value in SAMPLES.items():
        for impl, (encode, decode) in _rivals(cls).items():
            data = encode(value)
            assert decode(data) == value, (cls, impl)
            name = cls.__name__
            runner.bench_time_func(
                f"codecs.encode.{name}.{impl}", _timer(encode, value)
            )
            runner.bench_time_func(f"codecs.decode.{name}.{impl}", _timer(decode, data))


if __name__ == "__main__":
    main()
