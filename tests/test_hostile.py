"""Hostile input gives DecodeError/EncodeError, never another exception (issue 7).

Every codec tier -- builtin, runtime (generated Python), compiled (Cython),
registered and cattrs -- gets the same hostile documents and values: nesting
far past the 1,024-level limit, cycles, ints past Python's 4,300-digit
conversion limit, invalid UTF-8, lone surrogates. Nesting to a depth of
1,000 works on every tier, also in a thread with a small stack.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import cattrs
import pytest
from persist.schemas.examples import Config
from persist.schemas.examples import User as CompiledUser

import persist
from persist import codecs, codegen

HEADER = b"go-persist 1\n"
OK_DEPTH = 1000
BAD_DEPTH = 100_000
HUGE = 10**5000  # 5,001 digits: past int's str-conversion limit


# --- values and documents -----------------------------------------------------------


def deep_list(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


def deep_dict(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = {"a": value}
    return value


def deep_list_json(depth: int) -> bytes:
    return b"[" * depth + b"0" + b"]" * depth


def deep_dict_json(depth: int) -> bytes:
    return b'{"a":' * depth + b"0" + b"}" * depth


def cyclic_list() -> Any:
    value: list[Any] = []
    value.append(value)
    return value


def cyclic_dict() -> Any:
    value: dict[str, Any] = {}
    value["a"] = value
    return value


# --- the tiers ----------------------------------------------------------------------


@attrs.define
class Holder:
    """Runtime tier: Any, list[Any] and dict[str, Any] fields."""

    value: Any
    items: list[Any] = attrs.Factory(list)
    extra: dict[str, Any] = attrs.Factory(dict)


@attrs.define
class Outer:
    """Runtime tier: an Any nested one attrs class down."""

    inner: Holder


class Box:
    """A type with a user's codec (registered tier), written with the json module."""

    def __init__(self, value: Any) -> None:
        self.value = value


def _encode_box(box: Box) -> bytes:
    if type(box) is not Box:
        raise TypeError("expected Box")
    return json.dumps(box.value, separators=(",", ":")).encode()


def _decode_box(data: bytes) -> Box:
    return Box(json.loads(data))


persist.register_codec(Box, _encode_box, _decode_box)


@attrs.frozen
class Tier:
    """How one tier's type wraps a payload: its JSON document and its value."""

    name: str
    value_type: Any
    source: str
    document: Callable[[bytes], bytes]
    value: Callable[[Any], Any]
    converter: Any = None
    checks_strings: bool = True  # a user's codec may accept lone surrogates
    any_depth: bool = True  # a user's codec may not read 1,000 levels

    @property
    def codec(self) -> codecs.Codec:
        return persist.codec_for(self.value_type, self.converter)

    def __str__(self) -> str:
        return self.name


TIERS = [
    Tier("builtin-Any", Any, "builtin", lambda p: p, lambda v: v),
    Tier(
        "builtin-list", list[Any], "builtin", lambda p: b"[" + p + b"]", lambda v: [v]
    ),
    Tier(
        "builtin-dict",
        dict[str, Any],
        "builtin",
        lambda p: b'{"a":' + p + b"}",
        lambda v: {"a": v},
    ),
    Tier(
        "runtime-Any",
        Holder,
        "runtime",
        lambda p: b'{"value":' + p + b',"items":[],"extra":{}}',
        Holder,
    ),
    Tier(
        "runtime-list",
        Holder,
        "runtime",
        lambda p: b'{"value":null,"items":[' + p + b'],"extra":{}}',
        lambda v: Holder(None, [v]),
    ),
    Tier(
        "runtime-dict",
        Holder,
        "runtime",
        lambda p: b'{"value":null,"items":[],"extra":{"a":' + p + b"}}",
        lambda v: Holder(None, [], {"a": v}),
    ),
    Tier(
        "runtime-nested",
        Outer,
        "runtime",
        lambda p: b'{"inner":{"value":' + p + b',"items":[],"extra":{}}}',
        lambda v: Outer(Holder(v)),
    ),
    Tier(
        "compiled-dict",
        Config,
        "compiled",
        lambda p: b'{"Debug":false,"MaxConnections":1,"Extra":{"a":' + p + b"}}",
        lambda v: Config(False, 1, {"a": v}),
    ),
    Tier(
        "cattrs-Any",
        Holder,
        "cattrs",
        lambda p: b'{"value":' + p + b',"items":[],"extra":{}}',
        Holder,
        converter=codecs.default_converter,
    ),
    Tier(
        "cattrs-user",
        Holder,
        "cattrs",
        lambda p: b'{"value":' + p + b',"items":[],"extra":{}}',
        Holder,
        converter=cattrs.Converter(),
        any_depth=False,  # a user's converter recurses into Any values by type
    ),
    Tier(
        "registered",
        Box,
        "registered",
        lambda p: p,
        Box,
        checks_strings=False,
        any_depth=False,
    ),
]
STRICT = [tier for tier in TIERS if tier.checks_strings]
DEEP = [tier for tier in TIERS if tier.any_depth]


def test_tiers_are_what_they_claim() -> None:
    """Each tier's type is served by the codec source the tests are named after."""
    assert [tier.codec.source for tier in TIERS] == [tier.source for tier in TIERS]


# --- decoding -----------------------------------------------------------------------

DEEP_DOCUMENTS = {
    "deep-arrays": deep_list_json(BAD_DEPTH),
    "deep-objects": deep_dict_json(BAD_DEPTH),
    "huge-int": b"1" * 5000,
    "huge-negative-int": b"-" + b"9" * 4301,
    "invalid-utf8": b'"\xff\xfe"',
    "truncated-utf8": b'"\xc3"',
}
STRING_DOCUMENTS = {
    "escaped-high-surrogate": b'"\\ud800"',
    "escaped-low-surrogate": b'"\\udc00"',
    "surrogate-as-utf8": b'"\xed\xa0\x80"',
    "surrogate-key": b'{"\\ud800":1}',
    "surrogate-deep-inside": b'[[{"k":["ok","\\udfff"]}]]',
}


@pytest.mark.parametrize("tier", TIERS, ids=str)
@pytest.mark.parametrize("payload", DEEP_DOCUMENTS.values(), ids=DEEP_DOCUMENTS)
def test_decode_hostile_document(tier: Tier, payload: bytes) -> None:
    """Too deep, huge ints, invalid UTF-8: DecodeError on every tier."""
    with pytest.raises(persist.DecodeError):
        tier.codec.decode(tier.document(payload))


@pytest.mark.parametrize("tier", STRICT, ids=str)
@pytest.mark.parametrize("payload", STRING_DOCUMENTS.values(), ids=STRING_DOCUMENTS)
def test_decode_lone_surrogate(tier: Tier, payload: bytes) -> None:
    """A lone surrogate, escaped or as raw UTF-8, in a value or a key: DecodeError."""
    with pytest.raises(persist.DecodeError):
        tier.codec.decode(tier.document(payload))


@pytest.mark.parametrize("tier", DEEP, ids=str)
@pytest.mark.parametrize(
    ("payload", "value"),
    [
        (deep_list_json(OK_DEPTH), deep_list(OK_DEPTH)),
        (deep_dict_json(OK_DEPTH), deep_dict(OK_DEPTH)),
    ],
    ids=["arrays", "objects"],
)
def test_nesting_1000_deep_round_trips(tier: Tier, payload: bytes, value: Any) -> None:
    """A value 1,000 levels deep encodes to the expected bytes and decodes back."""
    data = tier.document(payload)
    codec = tier.codec
    assert codec.encode(tier.value(value)) == data
    assert codec.encode(codec.decode(data)) == data
    assert codec.encode(codec.copy(tier.value(value))) == data


@pytest.mark.parametrize("tier", [t for t in STRICT if t.source != "cattrs"], ids=str)
def test_depth_limit_is_1024_levels(tier: Tier) -> None:
    """A document 1,024 levels deep is read and written; one level more is refused."""
    before = tier.document(b"@").partition(b"@")[0]
    outer = sum(before.count(c) for c in b"[{") - sum(before.count(c) for c in b"]}")
    fits = 1024 - outer
    codec = tier.codec
    data = tier.document(deep_list_json(fits))
    assert codec.encode(codec.decode(data)) == data
    with pytest.raises(persist.DecodeError):
        codec.decode(tier.document(deep_list_json(fits + 1)))
    with pytest.raises(persist.EncodeError):
        codec.encode(tier.value(deep_list(fits + 1)))


# --- encoding and copying -----------------------------------------------------------

HOSTILE_VALUES: dict[str, Callable[[], Any]] = {
    "deep-list": lambda: deep_list(BAD_DEPTH),
    "deep-dict": lambda: deep_dict(BAD_DEPTH),
    "cyclic-list": cyclic_list,
    "cyclic-dict": cyclic_dict,
    "huge-int": lambda: HUGE,
    "huge-int-inside": lambda: [1, {"n": -HUGE}],
}
SURROGATE_VALUES: dict[str, Callable[[], Any]] = {
    "lone-surrogate": lambda: "\ud800",
    "surrogate-key": lambda: {"\udc00": 1},
    "surrogate-inside": lambda: [["ok", {"k": "x\udfffy"}]],
}


@pytest.mark.parametrize("tier", TIERS, ids=str)
@pytest.mark.parametrize("make", HOSTILE_VALUES.values(), ids=HOSTILE_VALUES)
def test_encode_hostile_value(tier: Tier, make: Callable[[], Any]) -> None:
    """Too deep, cycles, huge ints: EncodeError on every tier."""
    with pytest.raises(persist.EncodeError):
        tier.codec.encode(tier.value(make()))


@pytest.mark.parametrize("tier", STRICT, ids=str)
@pytest.mark.parametrize("make", SURROGATE_VALUES.values(), ids=SURROGATE_VALUES)
def test_encode_lone_surrogate(tier: Tier, make: Callable[[], Any]) -> None:
    """A str with a lone surrogate has no UTF-8 form: EncodeError."""
    with pytest.raises(persist.EncodeError):
        tier.codec.encode(tier.value(make()))


@pytest.mark.parametrize("tier", TIERS, ids=str)
@pytest.mark.parametrize(
    "make", [HOSTILE_VALUES[name] for name in ("deep-list", "deep-dict", "cyclic-list")]
)
def test_copy_of_hostile_value(tier: Tier, make: Callable[[], Any]) -> None:
    """update's copy of a value too deep to store: EncodeError, not RecursionError."""
    with pytest.raises(persist.EncodeError):
        tier.codec.copy(tier.value(make()))


class Pretty:
    """A type whose user codec writes pretty-printed, multi-line JSON."""

    def __init__(self, value: Any) -> None:
        self.value = value


persist.register_codec(
    Pretty,
    lambda p: json.dumps(p.value, indent=1).encode(),
    lambda data: Pretty(json.loads(data)),
)


@attrs.define
class HoldsPretty:
    pretty: Pretty


def test_multiline_output_of_a_user_codec(tmp_path: Path) -> None:
    """A registered codec writing more than one line: EncodeError, file unchanged."""
    path = tmp_path / "pretty.db"
    data = write_file(path, b"[1]")
    with persist.Store(path) as store:
        with pytest.raises(persist.EncodeError, match="not one line"):
            store.map("m", Pretty).set("k", Pretty([1, 2]))
        with pytest.raises(
            persist.EncodeError, match=r"HoldsPretty\.pretty: .*one line"
        ):
            store.map("n", HoldsPretty).set("k", HoldsPretty(Pretty([1, 2])))
    assert path.read_bytes() == data
    assert persist.codec_for(Pretty).encode(Pretty(1)) == b"1"


# --- plain types and compiled fields ------------------------------------------------


@pytest.mark.parametrize(
    ("value_type", "data"),
    [
        (str, b'"\\ud800"'),
        (str, b'"\xed\xb0\x80"'),
        (str, b'"\xff"'),
        (int, b"1" * 4301),
        (float, b"1" * 4301),
        (list[int], b"[" + b"2" * 4400 + b"]"),
        (CompiledUser, b'{"Name":"\\udbff","Email":"","Age":1}'),
        (CompiledUser, b'{"Name":"\xc0\xaf","Email":"","Age":1}'),
        (CompiledUser, b'{"Name":"","Email":"","Age":' + b"7" * 4301 + b"}"),
        (
            CompiledUser,
            b'{"Name":"","Email":"","Age":1,"x":' + deep_list_json(2000) + b"}",
        ),
        (CompiledUser, b'{"Name":"","Email":"","Age":1,"\\ud800":0}'),
    ],
)
def test_decode_plain_and_compiled_fields(value_type: Any, data: bytes) -> None:
    """str, int and compiled class fields refuse what the Any tiers refuse."""
    with pytest.raises(persist.DecodeError):
        persist.codec_for(value_type).decode(data)


@pytest.mark.parametrize(
    ("value_type", "value"),
    [
        (str, "\ud800"),
        (int, HUGE),
        (int, -HUGE),
        (list[int], [1, HUGE]),
        (dict[str, int], {"a": HUGE}),
        (CompiledUser, CompiledUser("\udfff", "", 1)),
        (CompiledUser, CompiledUser("", "", HUGE)),
    ],
    ids=["str", "int", "negative-int", "list", "dict", "compiled-str", "compiled-int"],
)
def test_encode_plain_and_compiled_fields(value_type: Any, value: Any) -> None:
    """Lone surrogates and huge ints in plain and compiled fields: EncodeError."""
    with pytest.raises(persist.EncodeError):
        persist.codec_for(value_type).encode(value)


def test_big_ints_within_the_limit_are_written_as_is() -> None:
    """Ints past int64 but within 4,300 digits round-trip exactly (Go would not)."""
    for value in (2**64, -(2**200), int("9" * 4300)):
        data = persist.codec_for(int).encode(value)
        assert data == str(value).encode()
        assert persist.codec_for(int).decode(data) == value
        assert persist.codec_for(Any).decode(data) == value


# --- recursive classes --------------------------------------------------------------


@attrs.define
class Node:
    """A recursive class: its values nest as deep as the data goes."""

    children: list[Node] = attrs.Factory(list)


def chain_of_nodes(depth: int) -> Node:
    node = Node()
    for _ in range(depth):
        node = Node([node])
    return node


def test_recursive_class_too_deep() -> None:
    """A tree deeper than the limit: EncodeError, DecodeError, EncodeError on copy."""
    codec = persist.codec_for(Node)
    assert codec.source == "runtime"
    assert codec.decode(codec.encode(chain_of_nodes(50))) == chain_of_nodes(50)
    # as deep as it writes (255 nested in the top one), and no deeper
    assert codec.decode(codec.encode(chain_of_nodes(255))) == chain_of_nodes(255)
    with pytest.raises(persist.EncodeError):
        codec.encode(chain_of_nodes(256))
    with pytest.raises(persist.DecodeError, match=r"^Node: nested deeper than 256"):
        codec.decode(b'{"children":[' * 256 + b"{}" + b"]}" * 256)
    with pytest.raises(persist.EncodeError):
        codec.encode(chain_of_nodes(BAD_DEPTH))
    with pytest.raises(persist.DecodeError):
        codec.decode(b'{"children":[' * 600 + b"{}" + b"]}" * 600)
    with pytest.raises(persist.EncodeError):
        codec.copy(chain_of_nodes(BAD_DEPTH))
    cycle = Node()
    cycle.children.append(cycle)
    with pytest.raises(persist.EncodeError):
        codec.encode(cycle)


def test_recursive_class_in_small_stack_thread() -> None:
    """A runtime tree too deep, in a 256 KiB-stack thread: errors, never a crash.

    The deep tree is made (and freed) by the test's thread: Python 3.13 frees a chain
    of thousands of objects recursively, past what a 256 KiB stack holds.
    """
    codec = persist.codec_for(Node)
    data = codec.encode(chain_of_nodes(100))
    assert run_in_small_thread(lambda: codec.encode(codec.decode(data))) == data
    deep = chain_of_nodes(BAD_DEPTH)
    for call in (lambda: codec.encode(deep), lambda: codec.copy(deep)):
        with pytest.raises(persist.EncodeError):
            run_in_small_thread(call)
    with pytest.raises(persist.DecodeError):
        run_in_small_thread(
            lambda: codec.decode(b'{"children":[' * 512 + b"{}" + b"]}" * 512)
        )


# --- a thread with a small stack ----------------------------------------------------


@contextlib.contextmanager
def small_stack(size: int = 256 * 1024) -> Iterator[None]:
    previous = threading.stack_size(size)
    try:
        yield
    finally:
        threading.stack_size(previous)


def run_in_small_thread(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` in a thread with a 256 KiB stack; return its result, or raise.

    The error is raised without a reference cycle (error -> traceback -> this
    frame -> outcome -> error), so the values of the caller's frame are freed
    at once, in the caller's thread: collected by the cyclic GC they could be
    freed in a small-stack thread, and Python 3.13 frees a chain of thousands
    of objects recursively, past what a 256 KiB stack holds.
    """
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = fn()
        except BaseException as error:  # handed back to the test
            outcome["error"] = error

    with small_stack():
        thread = threading.Thread(target=target)
        thread.start()
    thread.join()
    if "error" in outcome:
        error = outcome.pop("error")
        try:
            raise error
        finally:
            del error
    return outcome["result"]


@pytest.mark.parametrize("tier", TIERS, ids=str)
def test_small_stack_thread(tier: Tier) -> None:
    """In a 256 KiB-stack thread: 1,000 levels work, 100,000 levels are errors."""
    codec = tier.codec
    if tier.any_depth:
        good = tier.document(deep_list_json(OK_DEPTH))
        assert run_in_small_thread(lambda: codec.encode(codec.decode(good))) == good
        assert run_in_small_thread(
            lambda: codec.encode(tier.value(deep_dict(OK_DEPTH)))
        ) == tier.document(deep_dict_json(OK_DEPTH))
    for depth in (48, 49, 200, 201):  # the recursive checks' and C encoder's limits
        data = tier.document(deep_dict_json(depth))
        assert (
            run_in_small_thread(lambda d=depth: codec.encode(tier.value(deep_dict(d))))
            == data
        )
    if tier.source == "registered" and sys.version_info >= (3, 13):
        pytest.skip(
            "this user codec is the stdlib json module, whose C recursion limit "
            "(10,000 levels from Python 3.13) overflows a 256 KiB stack by itself"
        )
    with pytest.raises(persist.DecodeError):
        run_in_small_thread(
            lambda: codec.decode(tier.document(deep_list_json(BAD_DEPTH)))
        )
    deep = tier.value(deep_list(BAD_DEPTH))  # made and freed here (see above)
    with pytest.raises(persist.EncodeError):
        run_in_small_thread(lambda: codec.encode(deep))
    with pytest.raises(persist.EncodeError):
        run_in_small_thread(lambda: codec.copy(tier.value(cyclic_list())))


# --- through the store --------------------------------------------------------------

HOSTILE_LINES = {
    "deep": deep_list_json(BAD_DEPTH),
    "huge-int": b"1" * 5000,
    "invalid-utf8": b'"\xff"',
    "lone-surrogate": b'"\\ud800"',
}


def write_file(path: Path, value_line: bytes, key: str = "m:k") -> bytes:
    data = HEADER + b"S " + key.encode() + b"\n" + value_line + b"\n"
    path.write_bytes(data)
    return data


@pytest.mark.parametrize("line", HOSTILE_LINES.values(), ids=HOSTILE_LINES)
@pytest.mark.parametrize(
    "value_type", [Any, Holder, Config], ids=["Any", "runtime", "compiled"]
)
def test_store_reads_hostile_line(tmp_path: Path, line: bytes, value_type: Any) -> None:
    """get, iteration and update of a hostile value line: DecodeError naming the key."""
    path = tmp_path / "hostile.db"
    wrap = {Any: lambda p: p, Holder: TIERS[3].document, Config: TIERS[7].document}
    data = write_file(path, wrap[value_type](line))
    with persist.Store(path) as store:
        m = store.map("m", value_type)
        with pytest.raises(persist.DecodeError, match=r"key 'k' \(line 3\)"):
            m.get("k")
        with pytest.raises(persist.DecodeError, match="'k'"):
            m.items()
        with pytest.raises(persist.DecodeError, match="'k'"):
            m.update("k", lambda upd: None)
    assert path.read_bytes() == data


@pytest.mark.parametrize("line", HOSTILE_LINES.values(), ids=HOSTILE_LINES)
def test_store_get_of_hostile_record(tmp_path: Path, line: bytes) -> None:
    """Store.get of an unregistered map's hostile record: DecodeError."""
    path = tmp_path / "hostile.db"
    data = write_file(path, line, key="other:k")
    with persist.Store(path) as store, pytest.raises(persist.DecodeError):
        store.get("other:k", Any)
    assert path.read_bytes() == data


@pytest.mark.parametrize("make", [*HOSTILE_VALUES.values(), *SURROGATE_VALUES.values()])
@pytest.mark.parametrize(
    "value_type", [Any, Holder, Config], ids=["Any", "runtime", "compiled"]
)
def test_store_refuses_hostile_value(
    tmp_path: Path, make: Callable[[], Any], value_type: Any
) -> None:
    """set, set_async and update of a hostile value: EncodeError, file unchanged."""
    path = tmp_path / "hostile.db"
    wrap = {Any: lambda v: v, Holder: Holder, Config: lambda v: Config(extra={"a": v})}
    data = write_file(path, persist.codec_for(value_type).encode(wrap[value_type](1)))
    value = wrap[value_type](make())
    with persist.Store(path) as store:
        m = store.map("m", value_type)
        with pytest.raises(persist.EncodeError):
            m.set("k", value)
        with pytest.raises(persist.EncodeError):
            m.set_async("x", value)
        with pytest.raises(persist.EncodeError):
            m.update("k", lambda upd: upd.set(value))
        assert "x" not in m
    assert path.read_bytes() == data


def test_store_update_copy_of_hostile_value(tmp_path: Path) -> None:
    """update of a stored value mutated into a cycle (memory only): EncodeError."""
    path = tmp_path / "hostile.db"
    write_file(path, b"[1]")
    with persist.Store(path) as store:
        m = store.map("m", Any)
        value = m.get("k")
        value.append(value)  # values are stored by reference
        data = path.read_bytes()
        with pytest.raises(persist.EncodeError):
            m.update("k", lambda upd: None)
        assert m.get("k") is value
    assert path.read_bytes() == data


# --- compiled code: a recursive class and Any fields --------------------------------

COMPILED_MODULE = """
from __future__ import annotations
from typing import Any
import attrs

@attrs.define
class Tree:
    children: list[Tree] = attrs.Factory(list)

@attrs.define
class Bag:
    value: Any
    items: list[Any] = attrs.Factory(list)
"""


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A module of a recursive class and an Any holder, compiled as a user would."""
    root = tmp_path_factory.mktemp("hostile")
    (root / "hostile_pkg").mkdir()
    (root / "hostile_pkg" / "__init__.py").write_text("")
    (root / "hostile_pkg" / "models.py").write_text(COMPILED_MODULE)
    previous = os.environ.get("CFLAGS")
    os.environ["CFLAGS"] = "-O0"
    sys.path.insert(0, str(root))
    try:
        codegen.generate_module("hostile_pkg.models", build=True)
        import hostile_pkg.models as models

        yield models
    finally:
        sys.path.remove(str(root))
        if previous is None:
            del os.environ["CFLAGS"]
        else:
            os.environ["CFLAGS"] = previous


def test_compiled_recursive_class(compiled: Any) -> None:
    """Compiled Tree: deep trees and cycles are errors, never a crash (small stack)."""
    Tree = compiled.Tree
    codec = persist.codec_for(Tree)
    assert codec.source == "compiled"

    def chain(depth: int) -> Any:
        node = Tree()
        for _ in range(depth):
            node = Tree([node])
        return node

    data = b'{"children":[' * 200 + b'{"children":[]}' + b"]}" * 200
    assert run_in_small_thread(lambda: codec.encode(chain(200))) == data
    assert run_in_small_thread(lambda: codec.encode(codec.decode(data))) == data
    assert run_in_small_thread(lambda: codec.encode(codec.copy(chain(200)))) == data
    cycle = Tree()
    cycle.children.append(cycle)
    deep = chain(BAD_DEPTH)  # made and freed here (see above)
    for call in (
        lambda: codec.encode(deep),
        lambda: codec.copy(deep),
        lambda: codec.encode(cycle),
        lambda: codec.copy(cycle),
    ):
        with pytest.raises(persist.EncodeError):
            run_in_small_thread(call)
    for depth in (512, 5000):
        with pytest.raises(persist.DecodeError):
            run_in_small_thread(
                lambda d=depth: codec.decode(b'{"children":[' * d + b"{}" + b"]}" * d)
            )


def test_compiled_any_fields(compiled: Any) -> None:
    """Compiled Any and list[Any] fields: 1,000 levels work, hostile input refused."""
    Bag = compiled.Bag
    codec = persist.codec_for(Bag)
    assert codec.source == "compiled"
    data = (
        b'{"value":'
        + deep_list_json(OK_DEPTH)
        + b',"items":['
        + deep_dict_json(OK_DEPTH)
        + b"]}"
    )
    assert run_in_small_thread(lambda: codec.encode(codec.decode(data))) == data
    for payload in (*DEEP_DOCUMENTS.values(), *STRING_DOCUMENTS.values()):
        with pytest.raises(persist.DecodeError):
            codec.decode(b'{"value":' + payload + b',"items":[]}')
        with pytest.raises(persist.DecodeError):
            codec.decode(b'{"value":null,"items":[' + payload + b"]}")
    for make in (*HOSTILE_VALUES.values(), *SURROGATE_VALUES.values()):
        with pytest.raises(persist.EncodeError):
            run_in_small_thread(lambda make=make: codec.encode(Bag(make())))
        with pytest.raises(persist.EncodeError):
            codec.encode(Bag(None, [make()]))
