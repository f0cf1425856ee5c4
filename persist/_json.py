"""Canonical JSON: the one way persist writes a value, and what it checks on reading.

Every codec (generated, builtin, cattrs fallback, and the compiled ones) writes
through these helpers, so the same value gives the same bytes on every path.

Writing (one line, UTF-8):

- compact, no spaces: ``{"a":1,"b":[1,2]}``; attrs fields in declaration
  order, every field written, ``None`` as ``null``;
- strings as UTF-8, escaping only ``\\"``, ``\\\\``, the short forms
  ``\\b \\f \\n \\r \\t``, other characters below U+0020 as ``\\u00XX`` (lowercase
  hex) -- exactly ``json.encoder.encode_basestring`` -- plus U+2028 and U+2029
  as ``\\u2028`` / ``\\u2029``; DEL (U+007F) is not escaped; a lone surrogate is
  an EncodeError;
- ``int`` as its decimal, any size (``bool`` is not an int here); ``float`` as
  ``float.__repr__`` (``1e+21``, ``1.5e-07``, ``3.0``), an ``int`` given for a
  float written as ``repr(float(v))``; NaN and infinities are EncodeErrors;
- ``bytes`` as standard base64 with padding (Go's ``[]byte``);
- ``datetime`` as RFC 3339 keeping its UTC offset, ``Z`` for offset 0, the
  fraction without trailing zeros and left out when zero; a naive datetime is
  an EncodeError;
- ``Enum`` as its ``.value``; lists, tuples, sets, frozensets as arrays in
  iteration order; ``dict[str, T]`` as an object, a non-str key an EncodeError;
- ``Any``: dicts with str keys, lists, tuples, str, int, float, bool, None;
- UUID, Decimal, date, time and timedelta: see :mod:`persist._json_types`.

Reading: ``ujson.loads``, then what ujson lets through is refused -- NaN,
Infinity and numbers that overflow to infinity, and lone surrogates (escaped
or as raw UTF-8 bytes). Whole-document checks run only when the raw bytes
could hold such a thing, so an ordinary record pays a few ``memchr`` calls.

Hostile input: a value is at most ``MAX_DEPTH`` (1,024) arrays and objects
deep -- ujson reads no deeper -- and every walk over a value (checking,
copying, writing deep values) runs on an explicit stack, not by recursion, so
a deep value or a cycle is an EncodeError/DecodeError in any thread, whatever
its stack size. An int of more decimal digits than Python converts
(``sys.get_int_max_str_digits()``, 4,300) is an EncodeError, as ujson cannot
read it back (DecodeError).

Errors inside a value are raised as :class:`PathError`, which collects the JSON
path on the way out; each codec's entry point turns it into ``TypeError``
(wrong type at the top), ``EncodeError`` or ``DecodeError`` with a message
such as ``Profile.tags[2]: expected str, got int``. Paths name JSON keys.
"""

from __future__ import annotations

import binascii
import json
import re
import sys
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import datetime
from math import isfinite
from typing import Any, cast

import ujson

from persist.errors import DecodeError, EncodeError

# C encode_basestring: the exact escaping rules above, minus U+2028/U+2029,
# which finish() escapes once for the whole text.
quote = json.encoder.encode_basestring
_loads = ujson.loads

MAX_DEPTH = 1024
"""Arrays and objects nested in one document: ujson's limit, so also the writer's."""
_C_DEPTH = 200
"""Values up to this deep go through the C encoder (it recurses on the C stack)."""


def type_name(value: object) -> str:
    """Name the type of ``value`` for error messages (``None`` for None)."""
    return "None" if value is None else type(value).__qualname__


class PathError(Exception):
    """A value failed a check inside a codec; carries the path to the failure.

    Internal to the codecs: raised where the check fails, given one path
    segment per level it passes on the way out, and turned into the public
    error by the codec's entry point. The path is only rendered then.
    """

    def __init__(self, reason: str, *, wrong_type: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wrong_type = wrong_type
        self.too_deep = False
        self.segments: list[str] = []

    @classmethod
    def expected(cls, expected: str, got: object) -> PathError:
        """Make the error for a value of the wrong type."""
        return cls(f"expected {expected}, got {type_name(got)}", wrong_type=True)

    def within(self, key: str) -> PathError:
        """Add the object member ``key`` in front of the path; returns self."""
        if not self.too_deep:  # a path a thousand levels long helps nobody
            self.segments.append("." + key)
        return self

    def at_index(self, index: int) -> PathError:
        """Add the array index in front of the path; returns self."""
        if not self.too_deep:
            self.segments.append(f"[{index}]")
        return self

    @property
    def path(self) -> str:
        """The path from the value's root, e.g. ``.home.city`` or ``.tags[2]``."""
        return "".join(reversed(self.segments))

    def encode_error(self, root: str) -> Exception:
        """Make the public error: TypeError for a wrong top type, else EncodeError."""
        if self.wrong_type and not self.segments:
            return TypeError(self.reason)
        return EncodeError(f"{root}{self.path}: {self.reason}")

    def decode_error(self, root: str) -> DecodeError:
        """Return the public DecodeError naming ``root`` and the path."""
        return DecodeError(f"{root}{self.path}: {self.reason}")


# --- finishing and loading a whole document ---------------------------------


def refused(error: Exception, root: str, *, encoding: bool = True) -> Exception:
    """Make the public error for what a codec raised outside PathError.

    A RecursionError (a recursive attrs class nested too deeply, or a cycle
    of objects) or a ValueError from printing an int past Python's digit
    limit; anything else is returned unchanged for the caller to re-raise.
    """
    if isinstance(error, (EncodeError, DecodeError)):
        return error
    if isinstance(error, RecursionError):
        reason = "nested too deeply, or a cycle"
    elif isinstance(error, ValueError):
        reason = str(error)
    else:
        return error
    return (
        EncodeError(f"{root}: {reason}")
        if encoding
        else DecodeError(f"{root}: {reason}")
    )


def check_depth(text: str, root: str) -> None:
    """Raise EncodeError if JSON ``text`` nests deeper than the decoder reads.

    Fewer than MAX_DEPTH brackets cannot be too deep (two C-level counts);
    otherwise ujson, the decoder itself, decides.
    """
    if text.count("[") + text.count("{") > MAX_DEPTH:
        try:
            _loads(text)
        except ValueError:
            raise EncodeError(f"{root}: {too_deep()}") from None


def finish(text: str, root: str) -> bytes:
    """Return non-ASCII JSON text as bytes, with U+2028/U+2029 escaped.

    Outside strings canonical JSON is ASCII, so the separators can be replaced
    in the whole text. A lone surrogate has no UTF-8 form: EncodeError.
    """
    if "\u2028" in text:
        text = text.replace("\u2028", "\\u2028")
    if "\u2029" in text:
        text = text.replace("\u2029", "\\u2029")
    try:
        return text.encode()
    except UnicodeEncodeError as error:
        where = path_at(text, error.start)
        raise EncodeError(f"{root}{where}: lone surrogate in a str") from None


def load(data: bytes, root: str) -> Any:
    """Parse one JSON document with ujson; refuse bad JSON and lone surrogates.

    A lone surrogate needs an escape (``\\ud800``) or its raw UTF-8 form (lead
    byte 0xED); without either the walk over the strings is skipped.
    """
    try:
        value = _loads(data)
    except ValueError as error:
        raise DecodeError(f"{root}: invalid JSON: {error}") from None
    if 237 in data or (92 in data and (b"\\ud" in data or b"\\uD" in data)):
        try:
            _check_strings(value)
        except PathError as error:
            raise error.decode_error(root) from None
    return value


def may_be_nonfinite(data: bytes) -> bool:
    """Tell whether ujson could have read NaN or an infinity from ``data``.

    It does so only for the literals NaN and (-)Infinity and for numbers with
    an exponent; a False answer lets a decoder skip walking Any values.
    """
    return 78 in data or 73 in data or 101 in data or 69 in data


def _check_strings(value: Any) -> None:
    """Raise PathError for the first str or key holding a lone surrogate."""
    walk(value, _string_children)


def _has_surrogate(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return True
    return False


def _string_children(value: Any) -> Iterable[tuple[Any, Any]] | None:
    if type(value) is str:
        if _has_surrogate(value):
            raise PathError("lone surrogate in a str")
        return None
    if type(value) is dict:
        mapping = cast("dict[str, Any]", value)
        for key in mapping:
            if _has_surrogate(key):
                raise PathError(f"lone surrogate in the key {key!r}")
        return mapping.items()
    if type(value) is list:
        return enumerate(cast("Sequence[Any]", value))
    return None


# --- walking a value without recursion ------------------------------------------


def walk(
    value: Any,
    children: Callable[[Any], Iterable[tuple[Any, Any]] | None],
    room: int = MAX_DEPTH,
) -> int:
    """Visit ``value`` depth first on an explicit stack; return its depth.

    ``children(item)`` checks one item and returns the ``(key or index,
    child)`` pairs still to visit, or None for a leaf; it raises PathError for
    a bad item. Deeper than ``room`` containers (or a cycle) is a PathError;
    every PathError leaves with the path of the item it was raised for.
    """
    path: list[Any] = []  # key or index of each open container's current child
    stack: list[Any] = []
    deepest = 0
    item = value
    try:
        while True:
            inner = children(item)
            if inner is not None:
                if len(stack) >= room:
                    raise too_deep(room)
                stack.append(iter(inner))
                path.append(None)
                deepest = max(deepest, len(stack))
            while stack:
                step = next(stack[-1], None)
                if step is not None:
                    path[-1], item = step
                    break
                stack.pop()
                path.pop()
            else:
                return deepest
    except PathError as error:
        if not error.too_deep:  # a path a thousand levels long helps nobody
            error.segments.extend(
                f"[{label}]" if type(label) is int else f".{label}"
                for label in reversed(path)
            )
        raise


def too_deep(room: int = MAX_DEPTH) -> PathError:
    """Make the error for a value nested deeper than ``room`` levels."""
    error = PathError(f"nested deeper than {room} levels, or a cycle")
    error.too_deep = True
    return error


def path_at(text: str, pos: int) -> str:
    """Return the path of the string that holds ``text[pos]`` in JSON ``text``.

    Used on the error branch only: the writer finds a lone surrogate in the
    finished text, and this scan says which member or item it belongs to.
    """
    stack: list[list[Any]] = []  # per open container: [is_object, key or index]
    expect_key = False
    i = 0
    while i < pos:
        char = text[i]
        if char == '"':
            end = _string_end(text, i)
            if end > pos:
                break
            if expect_key:
                stack[-1][1] = text[i + 1 : end - 1]
            i = end
            continue
        if char in "{[":
            stack.append([char == "{", None if char == "{" else 0])
            expect_key = char == "{"
        elif char in "}]":
            stack.pop()
        elif char == ",":
            frame = stack[-1]
            if frame[0]:
                expect_key = True
            else:
                frame[1] += 1  # the next index
        elif char == ":":
            expect_key = False
        i += 1
    if expect_key:  # inside a key: the path of the object that holds it
        stack[-1][1] = None
    return "".join(
        ("" if label is None else f".{label}") if is_object else f"[{label}]"
        for is_object, label in stack
    )


def _string_end(text: str, start: int) -> int:
    """Return the index just past the JSON string that opens at ``start``."""
    i = start + 1
    while text[i] != '"':
        i += 2 if text[i] == "\\" else 1
    return i + 1


# --- scalars -----------------------------------------------------------------
# write_X(value) -> JSON text, read_X(parsed) -> value; both raise PathError.


def write_str(value: Any) -> str:
    """Write a str (subclasses too)."""
    if isinstance(value, str):
        return quote(value)
    raise PathError.expected("str", value)


def read_str(value: Any) -> str:
    """Read a JSON string."""
    if type(value) is str:
        return value
    raise PathError.expected("str", value)


def write_int(value: Any) -> str:
    """Write an int of any size Python can print; bool is refused."""
    if isinstance(value, int) and not isinstance(value, bool):
        return int_text(value)
    raise PathError.expected("int", value)


def int_text(value: int) -> str:
    """Return the decimal of an int; past Python's digit limit a PathError."""
    try:
        return int.__repr__(value)
    except ValueError:  # what could be written could not be read back
        limit = sys.get_int_max_str_digits()
        raise PathError(f"int has more than {limit} digits") from None


def read_int(value: Any) -> int:
    """Read a JSON integer; a JSON float or bool is refused."""
    if type(value) is int:
        return value
    raise PathError.expected("int", value)


def write_float(value: Any) -> str:
    """Write a finite float, or an int as the float it becomes."""
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            value = float(value)
        except OverflowError:
            raise PathError("int too large for a float") from None
    elif not isinstance(value, float):
        raise PathError.expected("float", value)
    if isfinite(value):
        return float.__repr__(value)
    raise PathError(nonfinite_reason(value))


def read_float(value: Any) -> float:
    """Read a finite JSON number as a float."""
    if type(value) is float:
        if isfinite(value):
            return value
        raise PathError(nonfinite_reason(value))
    if type(value) is int:
        try:
            return float(value)
        except OverflowError:
            raise PathError("number out of float range") from None
    raise PathError.expected("float", value)


def nonfinite_reason(value: float) -> str:
    """Say why a NaN or infinity cannot be JSON."""
    name = "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    return f"{name} is not valid JSON"


def write_bool(value: Any) -> str:
    """Write a bool."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    raise PathError.expected("bool", value)


def read_bool(value: Any) -> bool:
    """Read a JSON boolean."""
    if type(value) is bool:
        return value
    raise PathError.expected("bool", value)


def write_none(value: Any) -> str:
    """Write None."""
    if value is None:
        return "null"
    raise PathError.expected("None", value)


def read_none(value: Any) -> None:
    """Read JSON null."""
    if value is None:
        return None
    raise PathError.expected("null", value)


def base64(value: Any) -> str:
    """Return bytes as standard base64 with padding, as Go writes ``[]byte``."""
    if isinstance(value, (bytes, bytearray)):
        return binascii.b2a_base64(value, newline=False).decode("ascii")
    raise PathError.expected("bytes", value)


def write_bytes(value: Any) -> str:
    """Write bytes as a base64 JSON string."""
    return '"' + base64(value) + '"'


def read_bytes(value: Any) -> bytes:
    """Read base64 (strict, padded); null is empty bytes, as Go writes a nil slice."""
    if type(value) is str:
        try:
            return binascii.a2b_base64(value, strict_mode=True)
        except (binascii.Error, ValueError) as error:
            raise PathError(f"invalid base64: {error}") from None
    if value is None:
        return b""
    raise PathError.expected("base64 str", value)


_isoformat = datetime.isoformat
# RFC 3339 date-time; the group is the fraction. Checked first, so that
# fromisoformat (which takes more than RFC 3339) only sees this shape.
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.(\d+))?(?:[Zz]|[+-]\d{2}:\d{2})",
    re.ASCII,
)


def write_datetime(value: Any) -> str:
    """Write an aware datetime as an RFC 3339 JSON string."""
    return '"' + rfc3339(value) + '"'


def rfc3339(value: Any) -> str:
    """Return an aware datetime as RFC 3339, e.g. ``2020-01-02T03:04:05.5+03:00``.

    Built from the C ``datetime.isoformat`` (not a subclass's override), whose
    layout is fixed: 19 characters, ``.ffffff`` when there are microseconds,
    then ``+HH:MM`` -- with ``:SS`` when the offset has seconds, none if naive.
    """
    if not isinstance(value, datetime):
        raise PathError.expected("datetime", value)
    text = _isoformat(value)
    end = 26 if value.microsecond else 19
    zone = text[end:]
    if not zone:
        raise PathError("naive datetime: RFC 3339 needs a UTC offset")
    if len(zone) != 6:
        raise PathError("UTC offset with seconds cannot be written as RFC 3339")
    stamp = text[:end].rstrip("0") if value.microsecond else text[:end]
    return stamp + ("Z" if zone == "+00:00" else zone)


def read_datetime(value: Any) -> datetime:
    """Read RFC 3339 (``Z``/``z`` or ``±hh:mm``); digits past microseconds are cut."""
    if type(value) is not str:
        raise PathError.expected("RFC 3339 str", value)
    match = _RFC3339.fullmatch(value)
    if match is None:
        raise PathError(f"invalid RFC 3339 datetime {value!r}")
    text = value
    if match.end(1) - match.start(1) > 6:  # nanoseconds (Go): keep microseconds
        text = value[: match.start(1) + 6] + value[match.end(1) :]
    try:
        return datetime.fromisoformat(text.upper())  # it wants "T" and "Z"
    except ValueError as error:
        raise PathError(f"invalid RFC 3339 datetime {value!r}: {error}") from None


# --- Any ---------------------------------------------------------------------

_PLAIN = frozenset({str, int, bool, type(None)})  # JSON leaves that need no check
_STR_ONLY = frozenset({str})


def _not_json(value: Any) -> Any:
    raise TypeError(type_name(value))


# The C encoder behind json.dumps, made once: compact separators, UTF-8 kept,
# NaN refused. It also accepts int, float, bool and None keys (json.dumps turns
# them into strings), so containers are walked by check_any afterwards.
_encode_any: Callable[[Any, int], Sequence[str]] = json.encoder.c_make_encoder(  # type: ignore[attr-defined]
    None, _not_json, quote, None, ":", ",", False, False, False
)


def write_any(value: Any) -> str:
    """Write a JSON value: dict (str keys), list, tuple, str, int, float, bool, None.

    Checked first (on an explicit stack, bounding the depth); shallow values
    then go through the C encoder, deep ones through :func:`_write_deep`.
    """
    if type(value) is str:
        return quote(value)
    if type(value) is int:
        return int_text(value)
    if check_any(value) <= _C_DEPTH:
        try:
            text = _encode_any(value, 0)[0]
        except ValueError:  # an int past the digit limit: say which
            _write_deep(value)
            raise
        except RecursionError:  # the caller was deep already
            return _write_deep(value)
        return text
    return _write_deep(value)


def check_any(value: Any) -> int:
    """Raise PathError unless ``value`` is a JSON value (write_any); return its depth.

    Containers holding only str, int, bool and None are passed by C-level set
    operations; the Python loop runs only where floats or containers are.
    The first ``_RECURSE`` levels are checked by plain recursion (fast for the
    usual shallow value), deeper ones by :func:`walk` on an explicit stack.
    """
    try:
        return _check_any(value, 0)
    except RecursionError:  # the caller was deep already
        return walk(value, _any_children)


_RECURSE = 48
"""Levels the fast recursive helpers go before handing over to the explicit stack."""


def _check_any(value: Any, depth: int) -> int:
    """check_any of a value ``depth`` containers down; items of _PLAIN cost no call."""
    if isinstance(value, dict):
        if depth >= _RECURSE:
            return _check_rest(value, depth)
        mapping = cast("Mapping[Any, Any]", value)
        if not _STR_ONLY.issuperset(map(type, mapping)):
            for key in mapping:
                if not isinstance(key, str):
                    raise PathError(f"dict key must be str, got {type_name(key)}")
        deepest = depth + 1
        if _PLAIN.issuperset(map(type, mapping.values())):
            return deepest
        for key, item in mapping.items():
            if type(item) not in _PLAIN:
                try:
                    inner = _check_any(item, depth + 1)
                except PathError as error:
                    raise error.within(key) from None
                if inner > deepest:
                    deepest = inner
        return deepest
    if isinstance(value, (list, tuple)):
        if depth >= _RECURSE:
            return _check_rest(value, depth)
        items = cast("Sequence[Any]", value)
        deepest = depth + 1
        if _PLAIN.issuperset(map(type, items)):
            return deepest
        for index, item in enumerate(items):
            if type(item) not in _PLAIN:
                try:
                    inner = _check_any(item, depth + 1)
                except PathError as error:
                    raise error.at_index(index) from None
                if inner > deepest:
                    deepest = inner
        return deepest
    if isinstance(value, float):
        if not isfinite(value):
            raise PathError(nonfinite_reason(value))
    elif not isinstance(value, (str, int)) and value is not None:
        raise PathError(f"{type_name(value)} is not a JSON value")
    return depth


def _check_rest(value: Any, depth: int) -> int:
    """Check what lies below ``_RECURSE`` levels with :func:`walk`."""
    try:
        return depth + walk(value, _any_children, MAX_DEPTH - depth)
    except PathError as error:
        raise too_deep() if error.too_deep else error from None


def _any_children(value: Any) -> Iterable[tuple[Any, Any]] | None:
    if isinstance(value, dict):
        mapping = cast("Mapping[Any, Any]", value)
        if not _STR_ONLY.issuperset(map(type, mapping)):
            for key in mapping:
                if not isinstance(key, str):
                    raise PathError(f"dict key must be str, got {type_name(key)}")
        if _PLAIN.issuperset(map(type, mapping.values())):
            return ()
        return [(k, item) for k, item in mapping.items() if type(item) not in _PLAIN]
    if isinstance(value, (list, tuple)):
        items = cast("Sequence[Any]", value)
        if _PLAIN.issuperset(map(type, items)):
            return ()
        return [(i, item) for i, item in enumerate(items) if type(item) not in _PLAIN]
    if isinstance(value, float):
        if not isfinite(value):
            raise PathError(nonfinite_reason(value))
    elif not isinstance(value, (str, int)) and value is not None:
        raise PathError(f"{type_name(value)} is not a JSON value")
    return None


def _write_deep(value: Any) -> str:
    """Write a value check_any passed, on an explicit stack instead of the C stack."""
    out: list[str] = []
    stack: list[
        list[Any]
    ] = []  # per open container: [items, closing, is_dict, any yet]
    item = value
    while True:
        if isinstance(item, dict):
            out.append("{")
            stack.append(
                [iter(cast("Mapping[Any, Any]", item).items()), "}", True, False]
            )
        elif isinstance(item, (list, tuple)):
            out.append("[")
            stack.append([iter(cast("Sequence[Any]", item)), "]", False, False])
        else:
            out.append(_leaf_text(item))
        while stack:
            top = stack[-1]
            step: Any = next(top[0], _END)
            if step is not _END:
                if top[3]:
                    out.append(",")
                top[3] = True
                if top[2]:
                    out.append(quote(step[0]) + ":")
                    item = step[1]
                else:
                    item = step
                break
            out.append(top[1])
            stack.pop()
        else:
            return "".join(out)


_END: Any = object()


def _leaf_text(value: Any) -> str:
    if isinstance(value, str):
        return quote(value)
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return int_text(value)
    return float.__repr__(value)


def copy_any(value: Any) -> Any:
    """Copy the dicts and lists of a JSON value; scalars are immutable and shared.

    On an explicit stack, as deep as a value can be stored (``MAX_DEPTH``);
    a deeper value, or a cycle, is an EncodeError: it could not be stored.
    """
    if type(value) in _PLAIN:  # the usual item of a dict[str, Any]: no more calls
        return value
    try:
        return _copy_any(value, 0)
    except RecursionError:  # the caller was deep already
        return _copy_deep(value, MAX_DEPTH)


def _copy_any(value: Any, depth: int) -> Any:
    """Copy by plain recursion, the first ``_RECURSE`` levels (the usual value)."""
    if isinstance(value, dict):
        if depth >= _RECURSE:
            return _copy_deep(value, MAX_DEPTH - depth)
        depth += 1
        return {
            key: item if type(item) in _PLAIN else _copy_any(item, depth)
            for key, item in cast("Mapping[Any, Any]", value).items()
        }
    if isinstance(value, list):
        if depth >= _RECURSE:
            return _copy_deep(value, MAX_DEPTH - depth)
        depth += 1
        return [
            item if type(item) in _PLAIN else _copy_any(item, depth)
            for item in cast("Sequence[Any]", value)
        ]
    if isinstance(value, tuple):
        if depth >= _RECURSE:
            return _copy_deep(value, MAX_DEPTH - depth)
        depth += 1
        return tuple(
            item if type(item) in _PLAIN else _copy_any(item, depth)
            for item in cast("Sequence[Any]", value)
        )
    return value


def _copy_deep(value: Any, room: int) -> Any:
    """Copy on an explicit stack, at most ``room`` levels deep (else EncodeError)."""
    if not isinstance(value, (dict, list, tuple)):
        return value
    # per open container: [its items, the copies so far, its kind]
    stack: list[list[Any]] = []
    item: Any = cast("Collection[Any]", value)  # a dict, list or tuple
    while True:
        if isinstance(item, dict):
            stack.append([iter(cast("Mapping[Any, Any]", item).items()), {}, dict])
        elif isinstance(item, (list, tuple)):
            kind = tuple if isinstance(item, tuple) else list
            stack.append([iter(cast("Sequence[Any]", item)), [], kind])
        else:
            _add_copy(stack[-1], item)
        if len(stack) > room:
            raise EncodeError(f"cannot copy: {too_deep()}")
        while True:
            top = stack[-1]
            step: Any = next(top[0], _END)
            if step is not _END:
                if top[2] is dict:
                    top[3:] = [step[0]]  # the key the child's copy goes under
                    item = step[1]
                else:
                    item = step
                break
            stack.pop()
            done = top[1] if top[2] is not tuple else tuple(top[1])
            if not stack:
                return done
            _add_copy(stack[-1], done)


def _add_copy(frame: list[Any], copied: Any) -> None:
    if frame[2] is dict:
        frame[1][frame[3]] = copied
    else:
        frame[1].append(copied)


def same(value: Any) -> Any:
    """Return ``value``: the copy of an immutable value."""
    return value
