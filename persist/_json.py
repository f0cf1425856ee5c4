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
- ``Any``: dicts with str keys, lists, tuples, str, int, float, bool, None.

Reading: ``ujson.loads``, then what ujson lets through is refused -- NaN,
Infinity and numbers that overflow to infinity, and lone surrogates (escaped
or as raw UTF-8 bytes). Whole-document checks run only when the raw bytes
could hold such a thing, so an ordinary record pays a few ``memchr`` calls.

Errors inside a value are raised as :class:`PathError`, which collects the JSON
path on the way out; each codec's entry point turns it into ``TypeError``
(wrong type at the top), ``EncodeError`` or ``DecodeError`` with a message
such as ``Profile.tags[2]: expected str, got int``. Paths name JSON keys.
"""

from __future__ import annotations

import binascii
import json
import re
from datetime import datetime
from math import isfinite
from typing import Any

import ujson

from persist.errors import DecodeError, EncodeError

# C encode_basestring: the exact escaping rules above, minus U+2028/U+2029,
# which finish() escapes once for the whole text.
quote = json.encoder.encode_basestring
_loads = ujson.loads


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
        self.segments: list[str] = []

    @classmethod
    def expected(cls, expected: str, got: object) -> PathError:
        """Make the error for a value of the wrong type."""
        return cls(f"expected {expected}, got {type_name(got)}", wrong_type=True)

    def within(self, key: str) -> PathError:
        """Add the object member ``key`` in front of the path; returns self."""
        self.segments.append("." + key)
        return self

    def at_index(self, index: int) -> PathError:
        """Add the array index in front of the path; returns self."""
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
    if type(value) is str:
        if not value.isascii():
            try:
                value.encode()
            except UnicodeEncodeError:
                raise PathError("lone surrogate in a str") from None
    elif type(value) is dict:
        for key, item in value.items():
            try:
                _check_strings(key)
                _check_strings(item)
            except PathError as error:
                raise error.within(key) from None
    elif type(value) is list:
        for index, item in enumerate(value):
            try:
                _check_strings(item)
            except PathError as error:
                raise error.at_index(index) from None


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
            if stack[-1][0]:
                expect_key = True
            else:
                stack[-1][1] += 1
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
    """Write an int of any size; bool is refused."""
    if isinstance(value, int) and not isinstance(value, bool):
        return int.__repr__(value)
    raise PathError.expected("int", value)


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
_encode_any = json.encoder.c_make_encoder(  # type: ignore[attr-defined]
    None, _not_json, quote, None, ":", ",", False, False, False
)


def write_any(value: Any) -> str:
    """Write a JSON value: dict (str keys), list, tuple, str, int, float, bool, None."""
    if type(value) is str:
        return quote(value)
    try:
        text: str = _encode_any(value, 0)[0]
    except RecursionError:
        raise PathError("value nested too deeply, or a cycle") from None
    except (TypeError, ValueError) as error:
        check_any(value)  # raises with the path
        raise PathError(str(error)) from None
    if type(value) not in _PLAIN:
        check_any(value)
    return text


def check_any(value: Any) -> None:
    """Raise PathError unless ``value`` is a JSON value (see write_any); walks it.

    Containers holding only str, int, bool and None are passed by C-level set
    operations; the Python loop runs only where floats or containers are.
    """
    if isinstance(value, dict):
        if not _STR_ONLY.issuperset(map(type, value)):
            for key in value:
                if not isinstance(key, str):
                    raise PathError(f"dict key must be str, got {type_name(key)}")
        if not _PLAIN.issuperset(map(type, value.values())):
            for key, item in value.items():
                try:
                    check_any(item)
                except PathError as error:
                    raise error.within(key) from None
    elif isinstance(value, (list, tuple)):
        if not _PLAIN.issuperset(map(type, value)):
            for index, item in enumerate(value):
                try:
                    check_any(item)
                except PathError as error:
                    raise error.at_index(index) from None
    elif isinstance(value, float):
        if not isfinite(value):
            raise PathError(nonfinite_reason(value))
    elif not isinstance(value, (str, int)) and value is not None:
        raise PathError(f"{type_name(value)} is not a JSON value")


def copy_any(value: Any) -> Any:
    """Copy the dicts and lists of a JSON value; scalars are immutable and shared."""
    if isinstance(value, dict):
        return {key: copy_any(item) for key, item in value.items()}
    if isinstance(value, list):
        return [copy_any(item) for item in value]
    if isinstance(value, tuple):
        return tuple(copy_any(item) for item in value)
    return value


def same(value: Any) -> Any:
    """Return ``value``: the copy of an immutable value."""
    return value
