# Included by _cjson.pyx: writers and readers of UUID, Decimal, date, time,
# timedelta and Literal, and the dispatch of unions, following
# persist._json_types (and the Literal and union parts of persist.codecs) byte
# for byte. The plain forms are
# handled here in C -- an exact UUID, date, naive time, timedelta -- and the
# rest goes through the Python rule (an aware time, a Decimal's text) or is
# Unsupported, so the run-time codec decides (a UUID in braces, a time with
# an offset, a timedelta past Go's range). Contract: see _cjson.pxd.

from cpython.datetime cimport (
    PyDate_CheckExact,
    PyDelta_CheckExact,
    PyTime_CheckExact,
    date_day,
    date_month,
    date_new,
    date_year,
    import_datetime,
    time_hour,
    time_microsecond,
    time_minute,
    time_new,
    time_second,
    time_tzinfo,
    timedelta_days,
    timedelta_microseconds,
    timedelta_new,
    timedelta_seconds,
)
from cpython.long cimport PyLong_AsUnsignedLongLongMask

import uuid as _uuid
from datetime import date as _date, time as _time, timedelta as _timedelta
from decimal import Decimal as _Decimal

from persist import _json_types

import_datetime()

cdef object _UUID = _uuid.UUID
cdef object _uuid_from_int = _json_types.uuid_from_int
cdef object _Decimal_str = _Decimal.__str__
cdef object _Decimal_is_finite = _Decimal.is_finite
cdef object _read_uuid = _json_types.read_uuid
cdef object _read_decimal = _json_types.read_decimal
cdef object _read_time = _json_types.read_time
cdef object _write_time = _json_types.write_time
cdef object _read_timedelta = _json_types.read_timedelta
cdef object _SHIFT_64 = 64

# A timedelta in microseconds whose nanoseconds fit Go's int64 time.Duration.
cdef long long _MAX_MICROS = 9223372036854775LL
cdef long long _MICROS_PER_DAY = 86400000000LL


cdef inline char* _write_fixed(char* out, int value, int width) noexcept:
    """Write ``value`` as ``width`` decimal digits, zero-padded; return the end."""
    cdef int i
    for i in range(width - 1, -1, -1):
        out[i] = <char>(c'0' + value % 10)
        value //= 10
    return out + width


cdef inline char* _hex_digits(char* out, unsigned long long value, int count) noexcept:
    """Write the low ``count`` hex digits of ``value``, lowercase; return the end."""
    cdef int i
    for i in range(count - 1, -1, -1):
        out[i] = _HEX[value & 15]
        value >>= 4
    return out + count


# --- writing ----------------------------------------------------------------------


cdef int write_uuid(Buffer* buf, object value) except -1:
    """Write an exact UUID as ``"8-4-4-4-12"`` in lowercase hex."""
    cdef char text[38]
    cdef char* s = text
    if type(value) is not _UUID:
        unsupported()
    number = value.int
    cdef unsigned long long high = PyLong_AsUnsignedLongLongMask(number >> _SHIFT_64)
    cdef unsigned long long low = PyLong_AsUnsignedLongLongMask(number)
    s[0] = b'"'
    s = _hex_digits(s + 1, high >> 32, 8)
    s[0] = b'-'
    s = _hex_digits(s + 1, high >> 16, 4)
    s[0] = b'-'
    s = _hex_digits(s + 1, high, 4)
    s[0] = b'-'
    s = _hex_digits(s + 1, low >> 48, 4)
    s[0] = b'-'
    s = _hex_digits(s + 1, low, 12)
    s[0] = b'"'
    return append(buf, text, 38)


cdef int write_decimal(Buffer* buf, object value) except -1:
    """Write an exact, finite Decimal as a JSON string of ``str(d)``."""
    if type(value) is not _Decimal or not _Decimal_is_finite(value):
        unsupported()
    return _write_text(buf, _Decimal_str(value), True)


cdef int write_date(Buffer* buf, object value) except -1:
    """Write an exact date as ``"YYYY-MM-DD"``."""
    cdef char text[12]
    cdef char* s = text
    if not PyDate_CheckExact(value):
        unsupported()
    s[0] = b'"'
    s = _write_fixed(s + 1, date_year(value), 4)
    s[0] = b'-'
    s = _write_fixed(s + 1, date_month(value), 2)
    s[0] = b'-'
    s = _write_fixed(s + 1, date_day(value), 2)
    s[0] = b'"'
    return append(buf, text, 12)


cdef int write_time(Buffer* buf, object value) except -1:
    """Write an exact time as ``"HH:MM:SS[.ffffff][±HH:MM]"``."""
    cdef char text[17]
    cdef char* s = text
    cdef int micro
    if not PyTime_CheckExact(value):
        unsupported()
    if time_tzinfo(value) is not None:  # the offset comes from a Python call
        return _write_text(buf, _write_time(value), False)
    micro = time_microsecond(value)
    s[0] = b'"'
    s = _write_fixed(s + 1, time_hour(value), 2)
    s[0] = b':'
    s = _write_fixed(s + 1, time_minute(value), 2)
    s[0] = b':'
    s = _write_fixed(s + 1, time_second(value), 2)
    if micro:
        s[0] = b'.'
        s = _write_fixed(s + 1, micro, 6)
    s[0] = b'"'
    return append(buf, text, s + 1 - text)


cdef int write_timedelta(Buffer* buf, object value) except -1:
    """Write an exact timedelta as an integer of nanoseconds (Go's time.Duration)."""
    cdef long long days, micros
    if not PyDelta_CheckExact(value):
        unsupported()
    days = timedelta_days(value)
    if days > 106752 or days < -106752:  # past Go's range: the run-time codec says so
        unsupported()
    micros = (
        days * _MICROS_PER_DAY
        + timedelta_seconds(value) * 1000000LL
        + timedelta_microseconds(value)
    )
    if micros > _MAX_MICROS or micros < -_MAX_MICROS:
        unsupported()
    if micros == 0:
        return write_raw(buf, b"0")
    _write_long_long(buf, micros)
    return write_raw(buf, b"000")


# --- reading ----------------------------------------------------------------------


cdef inline int _hex_value(unsigned char c) noexcept:
    """The value of a hex digit, or -1."""
    if b'0' <= c <= b'9':
        return c - c'0'
    if b'a' <= c <= b'f':
        return c - c'a' + 10
    if b'A' <= c <= b'F':
        return c - c'A' + 10
    return -1


cdef inline int _number(const unsigned char* s, int width) noexcept:
    """The value of ``width`` decimal digits at ``s``, or -1."""
    cdef int value = 0
    cdef int i
    for i in range(width):
        if not b'0' <= s[i] <= b'9':
            return -1
        value = value * 10 + (s[i] - c'0')
    return value


cdef object read_uuid(Parser* p):
    """Read a UUID: ``"8-4-4-4-12"`` here (any case), the other forms in Python."""
    cdef const unsigned char* s
    cdef unsigned long long halves[2]
    cdef int i, digit, half = 0
    skip_ws(p)
    if p.end - p.pos < 38 or p.pos[0] != b'"' or p.pos[37] != b'"':
        return _read_uuid(read_str(p))
    s = p.pos + 1
    halves[0] = halves[1] = 0
    for i in range(36):
        if i == 8 or i == 13 or i == 18 or i == 23:
            if s[i] != b'-':
                return _read_uuid(read_str(p))
            continue
        digit = _hex_value(s[i])
        if digit < 0:
            return _read_uuid(read_str(p))
        half = 0 if i < 19 else 1
        halves[half] = (halves[half] << 4) | <unsigned long long>digit
    p.pos += 38
    return _uuid_from_int((<object>halves[0] << _SHIFT_64) | <object>halves[1])


cdef object read_decimal(Parser* p):
    """Read a Decimal from a string or a JSON number (persist._json_types)."""
    return _read_decimal(read_any(p))


cdef object read_date(Parser* p):
    """Read ``"YYYY-MM-DD"``."""
    cdef const unsigned char* s
    cdef int year, month, day
    skip_ws(p)
    if p.end - p.pos < 12 or p.pos[0] != b'"' or p.pos[11] != b'"':
        unsupported()
    s = p.pos + 1
    if s[4] != b'-' or s[7] != b'-':
        unsupported()
    year, month, day = _number(s, 4), _number(s + 5, 2), _number(s + 8, 2)
    if year < 1 or month < 1 or day < 1:
        unsupported()
    result = date_new(year, month, day)  # ValueError for a day past the month's
    p.pos += 12
    return result


cdef object read_time(Parser* p):
    """Read ``"HH:MM:SS[.f...]"`` here; with an offset, in Python."""
    cdef const unsigned char* s
    cdef const unsigned char* end
    cdef int hour, minute, second, micro = 0, digits = 0
    skip_ws(p)
    if p.end - p.pos < 10 or p.pos[0] != b'"':
        unsupported()
    s = p.pos + 1
    if s[2] != b':' or s[5] != b':':
        unsupported()
    hour, minute, second = _number(s, 2), _number(s + 3, 2), _number(s + 6, 2)
    if hour < 0 or minute < 0 or second < 0:
        unsupported()
    end = s + 8
    if end < p.end and end[0] == b'.':
        end += 1
        while end < p.end and b'0' <= end[0] <= b'9':
            if digits < 6:
                micro = micro * 10 + (end[0] - c'0')
            digits += 1
            end += 1
        if digits < 1 or digits > 9:
            unsupported()
        while digits < 6:
            micro *= 10
            digits += 1
    if end >= p.end or end[0] != b'"':
        return _read_time(read_str(p))  # an offset, or not a time: Python decides
    result = time_new(hour, minute, second, micro, None)  # ValueError: out of range
    p.pos = end + 1
    return result


cdef inline long long _floor_div(long long a, long long b) noexcept:
    """``a // b`` rounded down, as Python does (this module divides as C does)."""
    cdef long long q = a / b
    if (a - q * b) < 0:
        q -= 1
    return q


cdef object read_timedelta(Parser* p):
    """Read an integer of nanoseconds, rounded to microseconds half to even."""
    cdef Number number
    cdef const unsigned char* s
    cdef long long nanos = 0, micros, rest, days
    skip_ws(p)
    _scan_number(p, &number)
    if not number.integer:
        unsupported()
    if number.digits > 18:  # maybe past int64: the Python rule checks the range
        return _read_timedelta(_integer(&number))
    s = number.start + number.negative
    while s < number.end:
        nanos = nanos * 10 + (s[0] - c'0')
        s += 1
    if number.negative:
        nanos = -nanos
    micros = _floor_div(nanos, 1000)
    rest = nanos - micros * 1000
    if rest > 500 or (rest == 500 and micros % 2 != 0):
        micros += 1
    days = _floor_div(micros, _MICROS_PER_DAY)
    micros -= days * _MICROS_PER_DAY
    return timedelta_new(days, micros / 1000000, micros % 1000000)


# --- Literal ----------------------------------------------------------------------


cdef object _node_at(object cls, str name, tuple path):
    """The type node at ``path`` inside field ``name`` of ``cls`` (see
    emit_cython.Where: -1 a container's item, ``k`` a union's member), or None
    when the class no longer has it (a stale module: never used, but it must
    import)."""
    field = _field(cls, name)
    node = None if field is None else field.node
    for step in path:
        if node is None:
            return None
        if step < 0:
            node = node.item
        elif step < len(node.members):
            node = node.members[step]
        else:
            return None
    return node


cpdef object field_type_at(object cls, str name, tuple path):
    """The type at ``path`` inside field ``name`` of ``cls`` (an Enum class)."""
    node = _node_at(cls, name, path)
    return None if node is None else node.type


cpdef Part part_at(object cls, str name, tuple path):
    """The registry's parts for the type at ``path`` inside field ``name``."""
    cdef Part part = Part(cls, name, 0)
    part.node = _node_at(cls, name, path)
    return part


cpdef frozenset literal_values(object cls, str name, tuple path):
    """The ``(type, value)`` pairs of the Literal at ``path`` inside field ``name``."""
    node = _node_at(cls, name, path)
    return literal_set(() if node is None else node.values)


cpdef frozenset literal_set(tuple values):
    """The ``(type, value)`` pairs ``in_literal`` looks values up in."""
    return frozenset([(type(value), value) for value in values])


cdef bint in_literal(frozenset allowed, object value) except -1:
    """Whether ``value`` is listed in the Literal (of its very type: 1 is not True)."""
    kind = type(value)
    if kind is not str and kind is not int and kind is not bool and value is not None:
        return False  # also keeps unhashable values out of the set
    return (kind, value) in allowed


cdef int write_literal(Buffer* buf, frozenset allowed, object value) except -1:
    """Write a value listed in the Literal."""
    if not in_literal(allowed, value):
        unsupported()
    return write_any(buf, value)


cdef object read_literal(Parser* p, frozenset allowed):
    """Read a value listed in the Literal."""
    value = read_any(p)
    if not in_literal(allowed, value):
        unsupported()
    return value


# --- unions -----------------------------------------------------------------------

cdef dict _VALUE_KINDS = {
    str: V_STR,
    int: V_INT,
    float: V_FLOAT,
    bool: V_BOOL,
    type(None): V_NONE,
    bytes: V_BYTES,
    datetime: V_DATETIME,
    _UUID: V_UUID,
    _Decimal: V_DECIMAL,
    _date: V_DATE,
    _time: V_TIME,
    _timedelta: V_TIMEDELTA,
    list: V_LIST,
    tuple: V_TUPLE,
    set: V_SET,
    frozenset: V_FROZENSET,
    dict: V_DICT,
}


cdef int value_kind(object value) noexcept:
    """The exact type of ``value`` as a V_ code (V_OTHER for any other type,
    subclasses included: the run-time codec writes those)."""
    cdef object kind = _VALUE_KINDS.get(type(value))
    return V_OTHER if kind is None else <int>kind


cdef int peek_kind(Parser* p) except -1:
    """The JSON kind of the value that comes next (a J_ code), not consuming it.

    A number is J_FLOAT if it has a fraction or an exponent, as ujson reads it.
    """
    cdef const unsigned char* s
    skip_ws(p)
    if p.pos >= p.end:
        unsupported()
    cdef unsigned char first = p.pos[0]
    if first == b'"':
        return J_STRING
    if first == b'-' or b'0' <= first <= b'9':
        s = p.pos + 1
        while s < p.end and b'0' <= s[0] <= b'9':
            s += 1
        if s < p.end and (s[0] == b'.' or s[0] == b'e' or s[0] == b'E'):
            return J_FLOAT
        return J_INTEGER
    if first == b't' or first == b'f':
        return J_BOOL
    if first == b'n':
        return J_NULL
    if first == b'[':
        return J_ARRAY
    if first == b'{':
        return J_OBJECT
    unsupported()
