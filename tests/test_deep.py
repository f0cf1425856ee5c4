"""Deep trees through the run-time fallback: an error, never a crash (256 KiB threads).

A document compiled code does not take (an escaped field name) goes to the
run-time codec, which comes back to the compiled class codec once per level
of a recursive class, on the same C stack; so does a value it does not take
(a str subclass). Those levels count against the same 256-level limit as
compiled code's: a tree up to 256 levels deep is read and written, a deeper
one is TooDeepToDecode / TooDeep -- on the main thread and in a thread with a
256 KiB stack. Past 1,024 JSON levels the parser refuses the document.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import pytest
from test_hostile import run_in_small_thread

import persist
from persist._cjson import TooDeep, TooDeepToDecode

LIMIT = 256  # levels of a recursive class (README, _cjson.pxd CLASS_DEPTH)
DEPTHS = [LIMIT - 1, LIMIT, LIMIT + 1, 600, 5_000, 100_000]


@attrs.define
class Link:
    """A recursive class: a chain as long as the data (its name written first)."""

    name: str = ""
    child: Link | None = None


@attrs.define
class Root:
    """A plain class holding a chain."""

    link: Link


class Text(str):
    """A str subclass: compiled code hands a value holding one to the run-time codec."""


def chain(depth: int, name: str = "") -> Link:
    """``depth`` levels of Link, each named ``name``."""
    link = Link(name)
    for _ in range(depth - 1):
        link = Link(name, link)
    return link


def chain_json(depth: int, key: Callable[[int], str]) -> bytes:
    """The JSON of ``chain(depth)`` with level ``i``'s field name written ``key(i)``."""
    opening = "".join(f'{{"{key(level)}":' for level in range(depth - 1))
    return (opening + '{"child":null}' + "}" * (depth - 1)).encode()


FORMS: dict[str, Callable[[int], bytes]] = {
    "escaped-top": lambda depth: chain_json(
        depth, lambda level: "chi\\u006cd" if level == 0 else "child"
    ),
    "escaped-every": lambda depth: chain_json(depth, lambda level: "chi\\u006cd"),
    "spaced": lambda depth: chain_json(depth, lambda level: "child").replace(
        b":", b" :\n\t"
    ),
}


@attrs.frozen
class Tier:
    """A type holding a chain: its document around the chain's, its value around it."""

    name: str
    value_type: Any
    document: Callable[[bytes], bytes]
    value: Callable[[Link], Any]

    def __str__(self) -> str:
        return self.name


TIERS = [
    Tier("runtime", Link, lambda data: data, lambda link: link),
    Tier("runtime-nested", Root, lambda data: b'{"link":' + data + b"}", Root),
    Tier("builtin-list", list[Link], lambda data: b"[" + data + b"]", lambda x: [x]),
    Tier(
        "builtin-dict",
        dict[str, Link],
        lambda data: b'{"a":' + data + b"}",
        lambda link: {"a": link},
    ),
]
THREADS: dict[str, Callable[[Callable[[], Any]], Any]] = {
    "main-thread": lambda call: call(),
    "small-thread": run_in_small_thread,
}


@pytest.mark.parametrize("thread", THREADS)
@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("tier", TIERS, ids=str)
def test_deep_document_decodes_or_is_refused(
    tier: Tier, form: str, depth: int, thread: str
) -> None:
    """Up to 256 levels: the chain; deeper: TooDeepToDecode; past 1,024: DecodeError."""
    codec = persist.codec_for(tier.value_type)
    document = tier.document(FORMS[form](depth))
    run = THREADS[thread]
    if depth <= LIMIT:
        assert run(lambda: codec.decode(document)) == tier.value(chain(depth))
    elif depth < 1_000:
        with pytest.raises(TooDeepToDecode, match=r"^Link: nested deeper than 256 "):
            run(lambda: codec.decode(document))
    else:
        with pytest.raises(persist.DecodeError):
            run(lambda: codec.decode(document))


@pytest.mark.parametrize("thread", THREADS)
@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("tier", TIERS, ids=str)
def test_deep_value_of_str_subclasses_encodes_or_is_refused(
    tier: Tier, depth: int, thread: str
) -> None:
    """A chain named by a str subclass at every level goes to the run-time codec:
    up to 256 levels it is written as the plain chain is, deeper it is TooDeep;
    its copy likewise."""
    codec = persist.codec_for(tier.value_type)
    value = tier.value(chain(depth, Text("x")))  # made and freed by this thread
    run = THREADS[thread]
    if depth <= LIMIT:
        expected = codec.encode(tier.value(chain(depth, "x")))
        assert run(lambda: codec.encode(value)) == expected
        assert run(lambda: codec.copy(value)) == value
    else:
        with pytest.raises(TooDeep, match=r"^Link: .*nested deeper than 256 levels"):
            run(lambda: codec.encode(value))
        with pytest.raises(
            TooDeep, match=r"^Link: cannot copy: nested deeper than 256"
        ):
            run(lambda: codec.copy(value))


def test_levels_are_counted_per_thread_and_released() -> None:
    """A refused document leaves no level counted: the next deep one still decodes."""
    codec = persist.codec_for(Link)
    too_deep = FORMS["escaped-top"](LIMIT + 1)
    fits = FORMS["escaped-top"](LIMIT)
    for _ in range(3):
        with pytest.raises(TooDeepToDecode):
            codec.decode(too_deep)
        assert codec.decode(fits) == chain(LIMIT)
        with pytest.raises(TooDeep):
            codec.encode(chain(LIMIT + 1, Text("x")))
        assert run_in_small_thread(lambda: codec.decode(fits)) == chain(LIMIT)
