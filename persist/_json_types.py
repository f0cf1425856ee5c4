"""JSON rules of types Go has no exact twin for: UUID, Decimal, date, time, timedelta.

Writers return JSON text, readers take what ``ujson.loads`` gave; both raise
:class:`persist._json.PathError`, as the rules in :mod:`persist._json` do.

- ``uuid.UUID``: ``"8-4-4-4-12"`` in lowercase hex, as Go's google/uuid
  marshals it. Read: that form in any case, and the other forms Go's
  ``uuid.Parse`` takes -- ``{8-4-4-4-12}``, ``urn:uuid:8-4-4-4-12`` and 32 hex
  digits without dashes; anything else (dashes elsewhere, the
  ``uuid.UUID`` constructor's looser forms) is refused.
- ``decimal.Decimal``: a JSON string written with ``str(d)`` (``"1.10"`` stays
  ``"1.10"``; Go: shopspring/decimal). Read: a string of a finite decimal
  (``-1.5``, ``1E+3``), read exactly; or a JSON number. ujson parses a number
  with a fraction or exponent into a float, so such a number is read as the
  shortest text of that float (``1.10`` reads as ``Decimal("1.1")``, exact up
  to 15 significant digits) -- write Decimals as strings to keep every digit.
  NaN, infinities and sNaN are refused both ways.
- ``datetime.date``: ``"YYYY-MM-DD"`` (Go: a string, or civil.Date). A datetime
  is not a date here, although it is a subclass.
- ``datetime.time``: ``"HH:MM:SS[.ffffff][±HH:MM]"`` (Go: a string, or
  civil.Time when it has no UTC offset). Read: 1 to 9 fraction digits (Go's
  civil.Time writes nanoseconds; those past microseconds are cut, as for
  datetime) and an optional ``±HH:MM`` or ``Z`` offset.
- ``datetime.timedelta``: an integer of nanoseconds, Go's ``time.Duration``.
  Read: rounded to the nearest microsecond, half to even (as timedelta rounds
  its arguments). A duration outside Go's range (int64 nanoseconds, about 292
  years) is refused both ways.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from persist._json import PathError, int_text, nonfinite_reason

# --- UUID ---------------------------------------------------------------------

_uuid_str = uuid.UUID.__str__
_CANONICAL = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32}",
    re.ASCII | re.IGNORECASE,
)


_new = object.__new__
_set = object.__setattr__
_UNKNOWN = uuid.SafeUUID.unknown


def uuid_from_int(number: int) -> uuid.UUID:
    """Build a UUID as ``UUID(int=number)`` does, without its argument checks.

    ``number`` is known to fit 128 bits; the constructor's checks cost more
    than the rest of reading the value.
    """
    value = _new(uuid.UUID)
    _set(value, "int", number)
    _set(value, "is_safe", _UNKNOWN)
    return value


def write_uuid(value: Any) -> str:
    """Write a UUID as its canonical lowercase string."""
    if isinstance(value, uuid.UUID):
        return '"' + _uuid_str(value) + '"'
    raise PathError.expected("UUID", value)


def read_uuid(value: Any) -> uuid.UUID:
    """Read a UUID string in one of the forms Go's uuid.Parse takes."""
    if type(value) is not str:
        raise PathError.expected("UUID str", value)
    text = value
    if len(text) == 45 and text[:9].lower() == "urn:uuid:":
        text = text[9:]
    elif len(text) == 38 and text[0] == "{" and text[-1] == "}":
        text = text[1:-1]
    if _CANONICAL.fullmatch(text) is None:
        raise PathError(f"invalid UUID {value!r}")
    return uuid_from_int(int(text.replace("-", ""), 16))


# --- Decimal --------------------------------------------------------------------

_decimal_str = Decimal.__str__
_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)


def _nonfinite_decimal(value: Decimal) -> str:
    name = "NaN" if value.is_nan() else ("Infinity" if value > 0 else "-Infinity")
    return f"Decimal {name} is not valid JSON"


def write_decimal(value: Any) -> str:
    """Write a finite Decimal as a JSON string of ``str(d)``."""
    if not isinstance(value, Decimal):
        raise PathError.expected("Decimal", value)
    if not value.is_finite():
        raise PathError(_nonfinite_decimal(value))
    return '"' + _decimal_str(value) + '"'


def read_decimal(value: Any) -> Decimal:
    """Read a Decimal from a string (exactly) or a JSON number."""
    if type(value) is str:
        if _DECIMAL.fullmatch(value) is None:
            raise PathError(f"invalid Decimal {value!r}")
        try:
            return Decimal(value)
        except (InvalidOperation, ValueError):  # an exponent past what Decimal holds
            raise PathError(f"invalid Decimal {value!r}") from None
    if type(value) is int:
        return Decimal(value)
    if type(value) is float:
        if value != value or value in (float("inf"), float("-inf")):
            raise PathError(nonfinite_reason(value))
        return Decimal(float.__repr__(value))
    raise PathError.expected("Decimal str or number", value)


# --- date and time ----------------------------------------------------------------

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_TIME = re.compile(
    r"(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))?",
    re.ASCII,
)
_date_isoformat = date.isoformat
_time_isoformat = time.isoformat


def write_date(value: Any) -> str:
    """Write a date (not a datetime) as ``"YYYY-MM-DD"``."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return '"' + _date_isoformat(value) + '"'
    raise PathError.expected("date", value)


def read_date(value: Any) -> date:
    """Read ``"YYYY-MM-DD"``."""
    if type(value) is not str:
        raise PathError.expected("date str", value)
    if _DATE.fullmatch(value) is None:
        raise PathError(f"invalid date {value!r}")
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise PathError(f"invalid date {value!r}: {error}") from None


def write_time(value: Any) -> str:
    """Write a time as ``"HH:MM:SS[.ffffff][±HH:MM]"``."""
    if not isinstance(value, time):
        raise PathError.expected("time", value)
    text = _time_isoformat(value)
    end = 15 if value.microsecond else 8
    if len(text) not in (end, end + 6):
        raise PathError("UTC offset with seconds cannot be written as HH:MM")
    return '"' + text + '"'


def read_time(value: Any) -> time:
    """Read ``"HH:MM:SS[.f...][Z|±HH:MM]"``; digits past microseconds are cut."""
    if type(value) is not str:
        raise PathError.expected("time str", value)
    match = _TIME.fullmatch(value)
    if match is None:
        raise PathError(f"invalid time {value!r}")
    hour, minute, second, fraction, utc, sign, zone_h, zone_m = match.groups()
    zone = None
    try:
        if utc:
            zone = UTC
        elif sign:
            offset = timedelta(hours=int(zone_h), minutes=int(zone_m))
            zone = timezone(-offset if sign == "-" else offset)
        micro = int((fraction or "").ljust(6, "0")[:6])
        return time(int(hour), int(minute), int(second), micro, zone)
    except ValueError as error:
        raise PathError(f"invalid time {value!r}: {error}") from None


# --- timedelta ----------------------------------------------------------------------

_DURATION_MAX = 2**63 - 1  # Go's time.Duration: int64 nanoseconds
_DURATION_MIN = -(2**63)
_RANGE = "outside Go's time.Duration range (int64 nanoseconds)"


def write_timedelta(value: Any) -> str:
    """Write a timedelta as an integer of nanoseconds."""
    if not isinstance(value, timedelta):
        raise PathError.expected("timedelta", value)
    micro = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    nanoseconds = micro * 1000
    if not _DURATION_MIN <= nanoseconds <= _DURATION_MAX:
        raise PathError(f"timedelta {_RANGE}")
    return int_text(nanoseconds)


def read_timedelta(value: Any) -> timedelta:
    """Read an integer of nanoseconds, rounded to microseconds half to even."""
    if type(value) is not int:
        raise PathError.expected("int of nanoseconds", value)
    if not _DURATION_MIN <= value <= _DURATION_MAX:
        raise PathError(f"duration {_RANGE}")
    micro, rest = divmod(value, 1000)
    if rest > 500 or (rest == 500 and micro % 2):
        micro += 1
    return timedelta(microseconds=micro)
