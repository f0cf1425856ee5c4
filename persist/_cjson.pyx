# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""C-level JSON helpers shared by the compiled schema codecs (hand-written).

Generated modules (``persist.codegen.emit_cython``) and the plan-driven
codecs (``persist._plancodec``) cimport this one: a growable byte buffer with
writers for every JSON value persist writes, and parser primitives that read
a value of a declared type straight from bytes.
Both follow :mod:`persist._json` byte for byte.

Every helper handles the plain case only and raises :class:`Unsupported`
otherwise -- a str subclass, NaN, a lone surrogate, an escaped field name, a
number in a form ujson reads but JSON does not define -- or lets the error of
a Python helper it called propagate (a bad base64 text, a refused Enum value).
:class:`ClassCodec` catches any exception at the entry point and hands the
whole value or document to the run-time codec, which returns the same result
or raises the exact error with its path (it may meet the errors in another
order: it parses the whole document before it reads a field). So compiled code is
correct as long as whatever it accepts, it accepts exactly as the run-time
codec would; it never renders an error. (Except TooDeep: a recursive class
nested past CLASS_DEPTH, see _cjson.pxd.)
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.long cimport PyLong_AsDouble, PyLong_AsLongLongAndOverflow, PyLong_FromLongLong
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.object cimport PyObject, PyTypeObject
from cpython.float cimport PyFloat_AS_DOUBLE, PyFloat_FromDouble
from cpython.ref cimport Py_INCREF, Py_XDECREF
from cpython.unicode cimport PyUnicode_DecodeUTF8
from cpython.datetime cimport (
    datetime,
    datetime_day,
    datetime_hour,
    datetime_microsecond,
    datetime_minute,
    datetime_month,
    datetime_new,
    datetime_second,
    datetime_tzinfo,
    datetime_year,
    get_utc,
    import_datetime,
    timedelta,
    timedelta_days,
    timedelta_microseconds,
    timedelta_new,
    timedelta_seconds,
    timezone_new,
)
from cpython.dict cimport PyDict_GetItem
from libc.math cimport fabs, isfinite, nearbyint
from libc.string cimport memcmp, memcpy, memset, strlen

import binascii
import enum
import types

from persist import _json, codecs
from persist.errors import DecodeError, EncodeError
from persist.codegen.plan import plan_for, recursive

cdef extern from "Python.h":
    int PyUnicode_READY(object) except -1
    bint PyUnicode_IS_ASCII(object)
    int PyUnicode_KIND(object)
    void* PyUnicode_DATA(object)
    Py_ssize_t PyUnicode_GET_LENGTH(object)
    Py_UCS4 PyUnicode_READ(int kind, void* data, Py_ssize_t index)
    object PyUnicode_New(Py_ssize_t size, Py_UCS4 maxchar)
    char* PyOS_double_to_string(
        double value, char code, int precision, int flags, int* kind
    ) except NULL
    double PyOS_string_to_double(const char* text, char** end, PyObject* overflow) except? -1.0
    object PyLong_FromString(const char* text, char** end, int base)
    int Py_DTSF_ADD_DOT_0
    int PyObject_GenericSetAttr(object instance, object name, object value) except -1
    PyTypeObject PyBaseObject_Type
    PyObject* _PyType_Lookup(PyTypeObject* type, object name)  # borrowed, no error

    ctypedef struct PyMemberDef:
        int type
        Py_ssize_t offset
        int flags

    ctypedef struct PyMemberDescrObject:
        PyMemberDef* d_member

cdef extern from "structmember.h":
    int T_OBJECT_EX
    int READONLY


class Unsupported(Exception):
    """Not the plain case compiled code handles; the run-time codec takes over."""


MISSING = object()

cdef object _b2a_base64 = binascii.b2a_base64
cdef object _a2b_base64 = binascii.a2b_base64
import_datetime()
cdef object _UTC = get_utc()
cdef object _EnumType = type(enum.Enum)
cdef str _VALUE_TABLE = "_value2member_map_"
cdef object _ENUM_VALUE = enum.Enum.__dict__["value"]
cdef object _load = _json.load
cdef object _may_be_nonfinite = _json.may_be_nonfinite
cdef object _check_any = _json.check_any
cdef object _copy_any = _json.copy_any
cdef tuple _NO_ARGS = ()


cdef int unsupported() except -1:
    raise Unsupported()


class TooDeep(EncodeError):
    """A recursive class nested deeper than compiled code goes; final, no fallback."""


cdef int too_deep(object cls, bint copying) except -1:
    what = "cannot copy: " if copying else ""
    raise TooDeep(
        f"{cls.__qualname__}: {what}nested deeper than {CLASS_DEPTH} levels, or a cycle"
    )


class TooDeepToDecode(DecodeError):
    """A document nesting a recursive class deeper than compiled code goes; final."""


cdef int too_deep_to_decode(object cls) except -1:
    raise TooDeepToDecode(f"{cls.__qualname__}: nested deeper than {CLASS_DEPTH} levels")


cdef extern from *:
    """
    #if defined(_MSC_VER)
    static __declspec(thread) int persist_open_levels = 0;
    #else
    static __thread int persist_open_levels = 0;
    #endif
    """
    # Levels of recursive classes the run-time codec has open on this thread
    # (ClassCodec.open_level): compiled code counts on from there.
    int open_levels "persist_open_levels"


# --- buffer ---------------------------------------------------------------------


cdef int grow(Buffer* buf, Py_ssize_t extra) except -1:
    """Make room for ``extra`` more bytes: leave the stack, then double."""
    cdef Py_ssize_t capacity = max(buf.capacity * 2, buf.size + extra)
    cdef char* data
    if buf.data == buf.stack:
        data = <char*>PyMem_Malloc(capacity)
        if data != NULL:
            memcpy(data, buf.data, buf.size)
    else:
        data = <char*>PyMem_Realloc(buf.data, capacity)
    if data == NULL:
        raise MemoryError()
    buf.data = data
    buf.capacity = capacity
    return 0


cdef inline void _init(Buffer* buf) noexcept:
    buf.data = buf.stack
    buf.size = 0
    buf.capacity = STACK_SIZE
    buf.depth = open_levels


cdef inline void _release(Buffer* buf) noexcept:
    if buf.data != buf.stack:
        PyMem_Free(buf.data)


# --- writing strings -------------------------------------------------------------
# Escaped exactly as json.encoder.encode_basestring, plus U+2028 and U+2029:
# '"' and '\' with a backslash, \b \f \n \r \t, other controls as \u00XX.

cdef char _ESCAPE[128]  # ASCII char -> the letter after its backslash ('u': \u00XX), or 0
for _c in range(128):
    _ESCAPE[_c] = ord("u") if _c < 0x20 else 0
for _c, _letter in zip(b'\b\f\n\r\t"\\', b'bfnrt"\\'):
    _ESCAPE[_c] = _letter
cdef const char* _HEX = b"0123456789abcdef"


cdef inline char* _escape_ascii(char* out, unsigned int c) noexcept:
    """Write the escape of ASCII ``c`` (which needs one) at ``out``; return the end."""
    out[0] = b'\\'
    out[1] = _ESCAPE[c]
    if out[1] != b'u':
        return out + 2
    out[2] = b'0'
    out[3] = b'0'
    out[4] = _HEX[c >> 4]
    out[5] = _HEX[c & 15]
    return out + 6


cdef int _write_text(Buffer* buf, str text, bint quoted) except -1:
    """Append ``text`` as UTF-8: quoted, a JSON string; else JSON text as it is.

    Both forms escape U+2028/U+2029 (outside strings JSON text is ASCII, so
    unquoted that touches strings only); a lone surrogate is Unsupported.
    """
    PyUnicode_READY(text)
    cdef Py_ssize_t size = PyUnicode_GET_LENGTH(text)
    cdef int kind = PyUnicode_KIND(text)
    cdef void* data = PyUnicode_DATA(text)
    cdef const unsigned char* ascii = <const unsigned char*>data
    cdef Py_ssize_t i = 0
    cdef unsigned int c  # a code point (Py_UCS4 would act as a str in Cython)
    cdef char* out
    if PyUnicode_IS_ASCII(text):
        if quoted:
            while i < size and not _ESCAPE[ascii[i]]:
                i += 1
        else:
            i = size
        if i == size:  # the common case: one copy
            reserve(buf, size + 2)
            out = buf.data + buf.size
            if quoted:
                out[0] = b'"'
                memcpy(out + 1, ascii, size)
                out[size + 1] = b'"'
                buf.size += size + 2
            else:
                memcpy(out, ascii, size)
                buf.size += size
            return 0
    reserve(buf, 6 * size + 2)  # 6 bytes is the most one code point takes
    out = buf.data + buf.size
    if quoted:
        out[0] = b'"'
        out += 1
    for i in range(size):
        c = PyUnicode_READ(kind, data, i)
        if c < 0x80:
            if quoted and _ESCAPE[c]:
                out = _escape_ascii(out, c)
            else:
                out[0] = <char>c
                out += 1
        elif c < 0x800:
            out[0] = <char>(0xC0 | (c >> 6))
            out[1] = <char>(0x80 | (c & 0x3F))
            out += 2
        elif 0xD800 <= c <= 0xDFFF:
            unsupported()  # a lone surrogate has no UTF-8 form
        elif c == 0x2028 or c == 0x2029:
            memcpy(out, b"\\u2028" if c == 0x2028 else b"\\u2029", 6)
            out += 6
        elif c < 0x10000:
            out[0] = <char>(0xE0 | (c >> 12))
            out[1] = <char>(0x80 | ((c >> 6) & 0x3F))
            out[2] = <char>(0x80 | (c & 0x3F))
            out += 3
        else:
            out[0] = <char>(0xF0 | (c >> 18))
            out[1] = <char>(0x80 | ((c >> 12) & 0x3F))
            out[2] = <char>(0x80 | ((c >> 6) & 0x3F))
            out[3] = <char>(0x80 | (c & 0x3F))
            out += 4
    if quoted:
        out[0] = b'"'
        out += 1
    buf.size = out - buf.data
    return 0


cdef int write_str(Buffer* buf, object value) except -1:
    """Write a str (exactly str: a subclass goes to the run-time codec)."""
    if type(value) is not str:
        unsupported()
    return _write_text(buf, value, True)


cdef int write_key(Buffer* buf, object key) except -1:
    """Write a dict key and its colon."""
    if type(key) is not str:
        unsupported()
    _write_text(buf, key, True)
    return write_raw(buf, b":")


# --- writing numbers ---------------------------------------------------------------


cdef int _write_long_long(Buffer* buf, long long value) except -1:
    cdef char digits[24]
    cdef char* end = digits + 24
    cdef char* start = end
    cdef unsigned long long rest = <unsigned long long>value
    if value < 0:
        rest = 0 - rest
    while True:
        start -= 1
        start[0] = <char>(c'0' + rest % 10)
        rest //= 10
        if rest == 0:
            break
    if value < 0:
        start -= 1
        start[0] = b'-'
    return append(buf, start, end - start)


cdef int write_int(Buffer* buf, object value) except -1:
    """Write an int of any size (exactly int: bool and subclasses go elsewhere)."""
    cdef int overflow = 0
    cdef long long small
    if type(value) is not int:
        unsupported()
    small = PyLong_AsLongLongAndOverflow(value, &overflow)
    if overflow == 0:
        return _write_long_long(buf, small)
    return _write_text(buf, repr(value), False)


# Exact powers of ten: every one up to 1e22 is a double. Dividing or multiplying
# an integer below 2**53 by one rounds once, so the result is the correctly
# rounded value of the decimal (Clinger's fast path, for reading and writing).
cdef double _POW10[23]
for _c in range(23):
    _POW10[_c] = 10.0 ** _c
cdef double _EXACT = 9007199254740992.0  # 2**53


cdef bint _short_digits(double value, unsigned long long* digits, int* scale) noexcept:
    """Find the shortest decimal ``digits / 10**scale`` that reads back as ``value`` > 0.

    Tries scales 0..22 while ``value * 10**scale`` stays below 1e15: within
    that range at most one integer lies close enough to round-trip, and the
    check ``digits / 10**scale == value`` is exact, so a result is the
    shortest round-tripping decimal -- float.__repr__'s digits. False: not
    found here (more than 15 digits, huge or tiny); use dtoa.
    """
    cdef double scaled, nearest
    cdef int k
    for k in range(23):
        scaled = value * _POW10[k]
        if scaled >= 1e15:
            return False
        nearest = nearbyint(scaled)
        # 2**-51 of the magnitude bounds the distance of a round-tripping integer
        if nearest != 0 and fabs(scaled - nearest) <= scaled * 4.5e-16:
            if nearest / _POW10[k] == value:
                digits[0] = <unsigned long long>nearest
                scale[0] = k
                return True
    return False


cdef int _write_short(Buffer* buf, bint negative, unsigned long long digits, int scale) except -1:
    """Write ``digits / 10**scale`` in float.__repr__'s layout."""
    cdef char text[24]
    cdef char* end = text + 24
    cdef char* first = end
    cdef char* out
    cdef int count, point, exponent, zeros = 0
    while digits % 10 == 0:  # trailing zeros (only when scale is 0)
        digits //= 10
        zeros += 1
    while digits:
        first -= 1
        first[0] = <char>(c'0' + digits % 10)
        digits //= 10
    count = end - first
    point = count + zeros - scale  # the value is 0.<digits> * 10**point
    reserve(buf, 32 + (point if point > 0 else -point))
    out = buf.data + buf.size
    if negative:
        out[0] = b'-'
        out += 1
    if -4 < point <= 16:
        if point <= 0:
            memcpy(out, b"0.000", 2 - point)
            out += 2 - point
            memcpy(out, first, count)
            out += count
        elif point >= count:
            memcpy(out, first, count)
            out += count
            memset(out, c'0', point - count)
            out += point - count
            memcpy(out, b".0", 2)
            out += 2
        else:
            memcpy(out, first, point)
            out[point] = b'.'
            memcpy(out + point + 1, first + point, count - point)
            out += count + 1
    else:
        exponent = point - 1
        out[0] = first[0]
        out += 1
        if count > 1:
            out[0] = b'.'
            memcpy(out + 1, first + 1, count - 1)
            out += count
        out[0] = b'e'
        out[1] = b'-' if exponent < 0 else b'+'
        exponent = -exponent if exponent < 0 else exponent
        out += 2
        if exponent >= 100:
            out[0] = <char>(c'0' + exponent // 100)
            out += 1
        out[0] = <char>(c'0' + exponent // 10 % 10)
        out[1] = <char>(c'0' + exponent % 10)
        out += 2
    buf.size = out - buf.data
    return 0


cdef int _write_double(Buffer* buf, double value) except -1:
    """Write a finite double as float.__repr__ does (shortest round trip)."""
    cdef unsigned long long digits
    cdef int scale
    if value != 0 and _short_digits(fabs(value), &digits, &scale):
        return _write_short(buf, value < 0, digits, scale)
    cdef char* text = PyOS_double_to_string(value, b'r', 0, Py_DTSF_ADD_DOT_0, NULL)
    try:
        append(buf, text, strlen(text))
    finally:
        PyMem_Free(text)
    return 0


cdef int write_float(Buffer* buf, object value) except -1:
    """Write a finite float, or an int as the float it becomes."""
    cdef double number
    if type(value) is float:
        number = PyFloat_AS_DOUBLE(value)
    elif type(value) is int:
        number = PyLong_AsDouble(value)  # OverflowError: the run-time codec says so
    else:
        unsupported()
    if not isfinite(number):
        unsupported()
    return _write_double(buf, number)


# --- writing other values ---------------------------------------------------------


cdef int write_bool(Buffer* buf, object value) except -1:
    if value is True:
        return write_raw(buf, b"true")
    if value is False:
        return write_raw(buf, b"false")
    unsupported()


cdef int write_none(Buffer* buf, object value) except -1:
    if value is not None:
        unsupported()
    return write_raw(buf, b"null")


cdef int write_bytes(Buffer* buf, object value) except -1:
    """Write bytes as standard base64 with padding."""
    if type(value) is not bytes and type(value) is not bytearray:
        unsupported()
    cdef bytes encoded = _b2a_base64(value, newline=False)
    reserve(buf, PyBytes_GET_SIZE(encoded) + 2)
    write_raw(buf, b'"')
    append(buf, PyBytes_AS_STRING(encoded), PyBytes_GET_SIZE(encoded))
    return write_raw(buf, b'"')


cdef inline char* _two_digits(char* out, int value) noexcept:
    out[0] = <char>(c'0' + value // 10)
    out[1] = <char>(c'0' + value % 10)
    return out + 2


cdef int _offset_minutes(object value) except? -1:
    """The UTC offset of an aware datetime in whole minutes; Unsupported otherwise."""
    tz = datetime_tzinfo(value)
    if tz is _UTC:
        return 0
    if tz is None:
        unsupported()  # naive: the run-time codec says so
    offset = value.utcoffset()  # what isoformat asks the tzinfo too
    if type(offset) is not timedelta:
        unsupported()  # None (naive) or a tzinfo's mistake
    cdef long total = timedelta_days(offset) * 86400 + timedelta_seconds(offset)
    if timedelta_microseconds(offset) or total % 60:
        unsupported()  # seconds in the offset: no RFC 3339 form
    return total // 60


cdef int write_datetime(Buffer* buf, object value) except -1:
    """Write an aware datetime as RFC 3339, byte for byte as persist._json.rfc3339.

    ``YYYY-MM-DDTHH:MM:SS``, the microseconds without trailing zeros, then
    ``Z`` for a zero offset or ``+HH:MM``. Exactly datetime only (a subclass
    may override isoformat); naive values and offsets with seconds are
    Unsupported, so the run-time codec raises its error.
    """
    if type(value) is not datetime:
        unsupported()
    cdef int minutes = _offset_minutes(value)
    cdef char text[40]
    cdef char* out = text
    cdef int year = datetime_year(value), micro = datetime_microsecond(value), digit
    out[0] = b'"'
    out = _two_digits(_two_digits(out + 1, year // 100), year % 100)
    out[0] = b'-'
    out = _two_digits(out + 1, datetime_month(value))
    out[0] = b'-'
    out = _two_digits(out + 1, datetime_day(value))
    out[0] = b'T'
    out = _two_digits(out + 1, datetime_hour(value))
    out[0] = b':'
    out = _two_digits(out + 1, datetime_minute(value))
    out[0] = b':'
    out = _two_digits(out + 1, datetime_second(value))
    if micro:
        out[0] = b'.'
        out += 1
        digit = 100000
        while micro:
            out[0] = <char>(c'0' + micro // digit)
            out += 1
            micro %= digit
            digit //= 10
    if minutes == 0:
        out[0] = b'Z'
        out += 1
    else:
        out[0] = b'-' if minutes < 0 else b'+'
        minutes = -minutes if minutes < 0 else minutes
        out = _two_digits(out + 1, minutes // 60)
        out[0] = b':'
        out = _two_digits(out + 1, minutes % 60)
    out[0] = b'"'
    return append(buf, text, out + 1 - text)


cdef int write_enum(Buffer* buf, object enum_cls, object value) except -1:
    """Write an Enum member as its value: ``_value_``, unless the class has its own ``value``."""
    if type(value) is not enum_cls:  # a member's type is its class, exactly
        unsupported()
    if _PyType_Lookup(<PyTypeObject*>enum_cls, "value") == <PyObject*>_ENUM_VALUE:
        return write_any(buf, value._value_)  # what Enum's value property returns
    return write_any(buf, value.value)


cdef int _write_any(Buffer* buf, object value, int depth) except -1:
    cdef type kind = type(value)
    if kind is str:
        return _write_text(buf, value, True)
    if kind is int:
        return write_int(buf, value)
    if kind is float:
        return write_float(buf, value)
    if value is True or value is False:
        return write_bool(buf, value)
    if value is None:
        return write_raw(buf, b"null")
    if depth > MAX_DEPTH:
        unsupported()
    if kind is list or kind is tuple:
        write_raw(buf, b"[")
        for item in value:
            _write_any(buf, item, depth + 1)
            write_raw(buf, b",")
        return close(buf, b"]")
    if kind is dict:
        write_raw(buf, b"{")
        for key, item in (<dict>value).items():
            write_key(buf, key)
            _write_any(buf, item, depth + 1)
            write_raw(buf, b",")
        return close(buf, b"}")
    unsupported()


cdef int write_any(Buffer* buf, object value) except -1:
    """Write a JSON value built from exact dict, list, tuple, str, int, float, bool, None."""
    return _write_any(buf, value, 0)


cdef int write_part(Buffer* buf, Part part, object value) except -1:
    """Write a value through the registry's codec for its type."""
    return _write_text(buf, part.get().write(value), False)


# --- parser primitives ----------------------------------------------------------------

# String bytes: 0 plain ASCII, 1 ends the fast scan ('"', '\', control), 2 non-ASCII.
cdef unsigned char _STRING[256]
for _c in range(256):
    _STRING[_c] = 1 if _c < 0x20 or _c == 34 or _c == 92 else (2 if _c >= 0x80 else 0)


cdef inline int _expect(Parser* p, unsigned char char) except -1:
    skip_ws(p)
    if p.pos >= p.end or p.pos[0] != char:
        unsupported()
    p.pos += 1
    return 0


cdef inline int _literal(Parser* p, const char* word, Py_ssize_t size) except -1:
    if p.end - p.pos < size or memcmp(p.pos, word, size) != 0:
        unsupported()
    p.pos += size
    return 0


cdef object _utf8(const unsigned char* start, Py_ssize_t size):
    """Decode UTF-8 strictly (invalid bytes or an encoded surrogate: UnicodeDecodeError)."""
    return PyUnicode_DecodeUTF8(<const char*>start, size, NULL)


cdef Py_ssize_t match_key(Parser* p, ClassCodec codec, Py_ssize_t expected) except -2:
    """Consume a member name and its colon; return its field index, -1 if unknown.

    The field after the previous match is compared in place first, so a
    document written in declaration order costs one memcmp per member
    (msgspec's trick). A name with an escape goes to the run-time codec.
    """
    cdef const unsigned char* start
    cdef const unsigned char* s
    cdef Py_ssize_t size, index
    cdef unsigned char kind = 0
    skip_ws(p)
    if p.pos >= p.end or p.pos[0] != b'"':
        unsupported()
    start = p.pos + 1
    if expected < codec.count:
        size = codec.key_sizes[expected]
        if p.end - start > size and start[size] == b'"':
            if memcmp(start, codec.key_data[expected], size) == 0:
                p.pos = start + size + 1
                _expect(p, b':')
                return expected
    s = start
    while s < p.end and _STRING[s[0]] != 1:
        kind |= _STRING[s[0]]
        s += 1
    if s >= p.end or s[0] != b'"':
        unsupported()
    size = s - start
    p.pos = s + 1
    _expect(p, b':')
    for index in range(codec.count):
        if codec.key_sizes[index] == size and memcmp(codec.key_data[index], start, size) == 0:
            return index
    if kind:
        _utf8(start, size)  # an unknown name must still be valid UTF-8
    return -1


# Dict keys repeat from record to record: short ones are kept, as msgspec does,
# which spares an allocation and, for the dict, a hash.
cdef enum:
    KEY_CACHE_SIZE = 512  # a power of two
    KEY_CACHE_MAX = 16    # longest key kept
cdef PyObject* _key_cache[KEY_CACHE_SIZE]


cdef object _cached_key(const unsigned char* start, Py_ssize_t size):
    """The str of ASCII key bytes, from the cache when it holds them."""
    cdef unsigned int hash = 2166136261  # FNV-1a
    cdef Py_ssize_t i
    for i in range(size):
        hash = (hash ^ start[i]) * 16777619
    cdef PyObject** slot = &_key_cache[hash & (KEY_CACHE_SIZE - 1)]
    cdef PyObject* cached = slot[0]
    if cached != NULL and PyUnicode_GET_LENGTH(<object>cached) == size:
        if memcmp(PyUnicode_DATA(<object>cached), start, size) == 0:
            return <object>cached
    key = PyUnicode_New(size, 127)
    memcpy(PyUnicode_DATA(key), start, size)
    Py_INCREF(key)
    Py_XDECREF(slot[0])
    slot[0] = <PyObject*>key
    return key


cdef object read_key(Parser* p):
    """Read an object member name (a dict key) and its colon."""
    cdef const unsigned char* start
    cdef const unsigned char* s
    skip_ws(p)
    if p.pos >= p.end or p.pos[0] != b'"':
        unsupported()
    start = s = p.pos + 1
    while s < p.end and _STRING[s[0]] == 0 and s - start < KEY_CACHE_MAX:
        s += 1
    if s < p.end and s[0] == b'"':
        p.pos = s + 1
        key = _cached_key(start, s - start)
    else:
        key = _read_string(p)
    _expect(p, b':')
    return key


# --- reading strings ----------------------------------------------------------------


cdef inline int _hex4(const unsigned char* s) except -1:
    cdef int value = 0
    cdef int i
    cdef unsigned char c
    for i in range(4):
        c = s[i]
        if b'0' <= c <= b'9':
            value = value * 16 + (c - c'0')
        elif b'a' <= c <= b'f':
            value = value * 16 + (c - c'a' + 10)
        elif b'A' <= c <= b'F':
            value = value * 16 + (c - c'A' + 10)
        else:
            unsupported()
    return value


cdef const unsigned char* _unescape(Parser* p, const unsigned char* s, Buffer* out) except NULL:
    """Decode the escape at ``s`` (just past the backslash) into ``out``; return its end."""
    cdef int code, low
    cdef char* o
    if s >= p.end:
        unsupported()
    if s[0] != b'u':
        if s[0] == b'"' or s[0] == b'\\' or s[0] == b'/':
            code = s[0]
        elif s[0] == b'b':
            code = 8
        elif s[0] == b'f':
            code = 12
        elif s[0] == b'n':
            code = 10
        elif s[0] == b'r':
            code = 13
        elif s[0] == b't':
            code = 9
        else:
            unsupported()
        reserve(out, 1)
        out.data[out.size] = <char>code
        out.size += 1
        return s + 1
    if p.end - s < 5:
        unsupported()
    code = _hex4(s + 1)
    s += 5
    if 0xDC00 <= code <= 0xDFFF:
        unsupported()  # a lone low surrogate: the run-time codec refuses it
    if 0xD800 <= code <= 0xDBFF:  # must be the high half of a pair
        if p.end - s < 6 or s[0] != b'\\' or s[1] != b'u':
            unsupported()
        low = _hex4(s + 2)
        if not 0xDC00 <= low <= 0xDFFF:
            unsupported()
        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
        s += 6
    reserve(out, 4)
    o = out.data + out.size
    if code < 0x80:
        o[0] = <char>code
        out.size += 1
    elif code < 0x800:
        o[0] = <char>(0xC0 | (code >> 6))
        o[1] = <char>(0x80 | (code & 0x3F))
        out.size += 2
    elif code < 0x10000:
        o[0] = <char>(0xE0 | (code >> 12))
        o[1] = <char>(0x80 | ((code >> 6) & 0x3F))
        o[2] = <char>(0x80 | (code & 0x3F))
        out.size += 3
    else:
        o[0] = <char>(0xF0 | (code >> 18))
        o[1] = <char>(0x80 | ((code >> 12) & 0x3F))
        o[2] = <char>(0x80 | ((code >> 6) & 0x3F))
        o[3] = <char>(0x80 | (code & 0x3F))
        out.size += 4
    return s


cdef object _read_escaped(Parser* p, const unsigned char* start):
    """Read the rest of a string that holds escapes; ``start`` is past its quote."""
    cdef Buffer out
    cdef const unsigned char* s = start
    cdef const unsigned char* run
    _init(&out)
    try:
        while True:
            run = s
            while s < p.end and _STRING[s[0]] != 1:
                s += 1
            append(&out, <const char*>run, s - run)
            if s >= p.end or s[0] < 0x20:
                unsupported()
            if s[0] == b'"':
                break
            s = _unescape(p, s + 1, &out)
        p.pos = s + 1
        return _utf8(<const unsigned char*>out.data, out.size)
    finally:
        _release(&out)


cdef inline const unsigned char* _skip_plain(
    const unsigned char* s, const unsigned char* end
) noexcept:
    """Skip plain ASCII (no quote, backslash or control) 8 bytes at a time."""
    cdef unsigned long long word, ones = 0x0101010101010101ULL
    cdef unsigned long long high = 0x8080808080808080ULL
    while end - s >= 8:
        memcpy(&word, s, 8)
        # a high bit per byte that is < 0x20, '"', '\\' or non-ASCII
        if ((word - ones * 0x20) | ((word ^ (ones * 0x22)) - ones)
                | ((word ^ (ones * 0x5C)) - ones) | word) & high:
            break
        s += 8
    return s


cdef object _read_string(Parser* p):
    """Read the string whose opening quote ``p`` is at."""
    cdef const unsigned char* start = p.pos + 1
    cdef const unsigned char* s = _skip_plain(start, p.end)
    cdef unsigned char kind = 0
    cdef Py_ssize_t size
    while s < p.end and _STRING[s[0]] != 1:
        kind |= _STRING[s[0]]
        s += 1
    if s >= p.end or s[0] != b'"':
        if s < p.end and s[0] == b'\\':
            return _read_escaped(p, start)
        unsupported()
    p.pos = s + 1
    size = s - start
    if kind:
        return _utf8(start, size)
    text = PyUnicode_New(size, 127)
    memcpy(PyUnicode_DATA(text), start, size)
    return text


cdef object read_str(Parser* p):
    skip_ws(p)
    if p.pos >= p.end or p.pos[0] != b'"':
        unsupported()
    return _read_string(p)


# --- reading numbers ----------------------------------------------------------------

ctypedef struct Number:
    const unsigned char* start
    const unsigned char* end
    int digits          # digits of the integer part
    bint negative
    bint integer        # no fraction, no exponent


cdef int _scan_number(Parser* p, Number* number) except -1:
    """Check the JSON number grammar at ``p`` and consume the number."""
    cdef const unsigned char* s
    skip_ws(p)
    s = number.start = p.pos
    number.negative = s < p.end and s[0] == b'-'
    if number.negative:
        s += 1
    if s >= p.end or not b'0' <= s[0] <= b'9':
        unsupported()
    if s[0] == b'0':
        s += 1
        if s < p.end and b'0' <= s[0] <= b'9':
            unsupported()  # a leading zero (ujson reads it; JSON does not)
    else:
        while s < p.end and b'0' <= s[0] <= b'9':
            s += 1
    number.digits = s - number.start - number.negative
    number.integer = True
    if s < p.end and s[0] == b'.':
        number.integer = False
        s += 1
        if s >= p.end or not b'0' <= s[0] <= b'9':
            unsupported()
        while s < p.end and b'0' <= s[0] <= b'9':
            s += 1
    if s < p.end and (s[0] == b'e' or s[0] == b'E'):
        number.integer = False
        s += 1
        if s < p.end and (s[0] == b'+' or s[0] == b'-'):
            s += 1
        if s >= p.end or not b'0' <= s[0] <= b'9':
            unsupported()
        while s < p.end and b'0' <= s[0] <= b'9':
            s += 1
    number.end = p.pos = s
    return 0


cdef object _integer(Number* number):
    """The int of a scanned integer (any size; past int's str-conversion limit: ValueError)."""
    cdef const unsigned char* s = number.start + number.negative
    cdef long long value = 0
    cdef char* text
    cdef Py_ssize_t size
    if number.digits <= 18:
        while s < number.end:
            value = value * 10 + (s[0] - c'0')
            s += 1
        return PyLong_FromLongLong(-value if number.negative else value)
    size = number.end - number.start
    text = <char*>PyMem_Malloc(size + 1)
    if text == NULL:
        raise MemoryError()
    try:
        memcpy(text, number.start, size)
        text[size] = 0
        return PyLong_FromString(text, NULL, 10)
    finally:
        PyMem_Free(text)


cdef double _double(Number* number) except? -1.0:
    """The finite double of a scanned number with a fraction or exponent."""
    cdef char text[65]
    cdef Py_ssize_t size = number.end - number.start
    cdef double value
    if _exact_double(number, &value):
        return value
    if size > 64:
        unsupported()  # long mantissas: left to the run-time codec
    memcpy(text, number.start, size)
    text[size] = 0
    value = PyOS_string_to_double(text, NULL, NULL)
    if not isfinite(value):
        unsupported()
    return value


cdef bint _exact_double(Number* number, double* value) noexcept:
    """Clinger's fast path: digits below 2**53 scaled by an exact power of ten."""
    cdef const unsigned char* s = number.start + number.negative
    cdef unsigned long long digits = 0
    cdef int count = 0, scale = 0, exponent = 0, exponent_digits = 0
    cdef bint seen_point = False, exponent_negative = False
    cdef double result
    while s < number.end and s[0] != b'e' and s[0] != b'E':
        if s[0] == b'.':
            seen_point = True
        else:
            if digits or s[0] != b'0':
                count += 1
                if count > 19:
                    return False
                digits = digits * 10 + (s[0] - c'0')
            if seen_point:
                scale -= 1
        s += 1
    if s < number.end:  # the exponent
        s += 1
        if s[0] == b'+' or s[0] == b'-':
            exponent_negative = s[0] == b'-'
            s += 1
        while s < number.end:
            exponent = exponent * 10 + (s[0] - c'0')
            exponent_digits += 1
            s += 1
        if exponent_digits > 4:
            return False
        scale += -exponent if exponent_negative else exponent
    if digits > <unsigned long long>_EXACT:
        return False
    result = <double>digits
    if 0 <= scale <= 22:
        result *= _POW10[scale]
    elif -22 <= scale < 0:
        result /= _POW10[-scale]
    elif digits == 0:
        result = 0.0
    elif 22 < scale <= 22 + 15 and result * _POW10[scale - 22] < _EXACT:
        result = result * _POW10[scale - 22] * _POW10[22]  # the first product is exact
    else:
        return False
    value[0] = -result if number.negative else result
    return True


cdef object read_int(Parser* p):
    """Read a JSON integer (a fraction or exponent is refused, as the run-time codec does)."""
    cdef Number number
    _scan_number(p, &number)
    if not number.integer:
        unsupported()
    return _integer(&number)


cdef object read_float(Parser* p):
    """Read a finite JSON number as a float (an integer as float(int(text)))."""
    cdef Number number
    cdef long long value = 0
    cdef const unsigned char* s
    _scan_number(p, &number)
    if not number.integer:
        return PyFloat_FromDouble(_double(&number))
    if number.digits <= 15:  # exact as a double; "-0" is int 0, so 0.0
        s = number.start + number.negative
        while s < number.end:
            value = value * 10 + (s[0] - c'0')
            s += 1
        return PyFloat_FromDouble(<double>(-value if number.negative else value))
    return PyFloat_FromDouble(PyLong_AsDouble(_integer(&number)))  # or OverflowError


# --- reading other values -------------------------------------------------------------


cdef object read_bool(Parser* p):
    skip_ws(p)
    if p.pos < p.end and p.pos[0] == b't':
        _literal(p, b"true", 4)
        return True
    _literal(p, b"false", 5)
    return False


cdef object read_none(Parser* p):
    if not at_null(p):
        unsupported()
    return None


cdef object read_bytes(Parser* p):
    """Read base64 (strict, padded); null is empty bytes, as Go writes a nil slice."""
    if at_null(p):
        return b""
    return _a2b_base64(read_str(p), strict_mode=True)


cdef inline int _digits(const unsigned char* s, int count) noexcept:
    """The number ``count`` ASCII digits at ``s`` spell, or -1 if one is no digit."""
    cdef int value = 0, i
    for i in range(count):
        if not b'0' <= s[i] <= b'9':
            return -1
        value = value * 10 + (s[i] - c'0')
    return value


cdef inline bint _at(const unsigned char* s, unsigned char expected) noexcept:
    return s[0] == expected


cdef int _days_in(int year, int month) noexcept:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month == 4 or month == 6 or month == 9 or month == 11 else 31


cdef object read_datetime(Parser* p):
    """Read an RFC 3339 datetime as persist._json.read_datetime does.

    The plain form only -- ``"YYYY-MM-DD[Tt]HH:MM:SS[.fraction]([Zz]|±HH:MM)"``
    with every number in range; digits past microseconds are cut. Anything
    else (an escape, hour 24, offset minutes past 59, ...) is Unsupported: the
    run-time rule accepts or refuses it with its message.
    """
    cdef const unsigned char* s
    cdef int year, month, day, hour, minute, second, micro = 0, count = 0
    cdef int zone_hours, zone_minutes, offset = 0
    skip_ws(p)
    s = p.pos
    if p.end - s < 22 or s[0] != b'"':
        unsupported()
    s += 1
    year = _digits(s, 4)
    month = _digits(s + 5, 2)
    day = _digits(s + 8, 2)
    hour = _digits(s + 11, 2)
    minute = _digits(s + 14, 2)
    second = _digits(s + 17, 2)
    if (not _at(s + 4, b'-') or not _at(s + 7, b'-') or not (_at(s + 10, b'T') or _at(s + 10, b't'))
            or not _at(s + 13, b':') or not _at(s + 16, b':')):
        unsupported()
    if (year < 1 or not 1 <= month <= 12 or not 1 <= day <= _days_in(year, month)
            or not 0 <= hour <= 23 or not 0 <= minute <= 59 or not 0 <= second <= 59):
        unsupported()  # also -1: not digits
    s += 19
    if s < p.end and s[0] == b'.':
        s += 1
        while s < p.end and b'0' <= s[0] <= b'9':
            if count < 6:
                micro = micro * 10 + (s[0] - c'0')
            count += 1
            s += 1
        if count == 0:
            unsupported()
        while count < 6:
            micro *= 10
            count += 1
    if s < p.end and (s[0] == b'Z' or s[0] == b'z'):
        s += 1
    elif p.end - s >= 6 and (s[0] == b'+' or s[0] == b'-') and s[3] == b':':
        zone_hours = _digits(s + 1, 2)
        zone_minutes = _digits(s + 4, 2)
        if not 0 <= zone_hours <= 23 or not 0 <= zone_minutes <= 59:
            unsupported()
        offset = (zone_hours * 60 + zone_minutes) * 60
        if s[0] == b'-':
            offset = -offset
        s += 6
    else:
        unsupported()
    if s >= p.end or s[0] != b'"':
        unsupported()
    p.pos = s + 1
    tz = _UTC if offset == 0 else timezone_new(timedelta_new(0, offset, 0))
    return datetime_new(year, month, day, hour, minute, second, micro, tz)


cdef object read_enum(Parser* p, object enum_cls):
    """Read an Enum member from its value: ``enum_cls(value)``.

    A hashable scalar is looked up in the class's own value -> member table
    first, which is what ``Enum.__new__`` does before anything else; a miss
    (or an array, an object, another metaclass) calls the class.
    """
    value = read_any(p)
    cdef type kind = type(value)
    cdef PyObject* table
    cdef PyObject* member
    if type(enum_cls) is _EnumType and (
            kind is str or kind is int or kind is float or kind is bool or value is None):
        # the class's own attribute, without EnumType.__getattr__'s Python hook
        table = _PyType_Lookup(<PyTypeObject*>enum_cls, _VALUE_TABLE)
        if table != NULL and type(<object>table) is dict:
            member = PyDict_GetItem(<object>table, value)
            if member != NULL:
                return <object>member
    return enum_cls(value)


cdef object read_any(Parser* p):
    """Read any JSON value: scalars here, arrays and objects with ujson, as the run-time codec."""
    cdef Number number
    cdef const unsigned char* start
    skip_ws(p)
    if p.pos >= p.end:
        unsupported()
    cdef unsigned char first = p.pos[0]
    if first == b'"':
        return _read_string(p)
    if first == b'-' or b'0' <= first <= b'9':
        _scan_number(p, &number)
        if number.integer:
            return _integer(&number)
        return PyFloat_FromDouble(_double(&number))
    if first == b't' or first == b'f':
        return read_bool(p)
    if first == b'n':
        return read_none(p)
    start = p.pos
    skip_value(p)
    data = PyBytes_FromStringAndSize(<const char*>start, p.pos - start)
    value = _load(data, "")  # lone surrogates: DecodeError
    if _may_be_nonfinite(data):
        _check_any(value)  # NaN, infinities: PathError
    return value


cdef object read_part(Parser* p, Part part):
    """Read a value through the registry's codec for its type."""
    return part.get().read(read_any(p))


# --- skipping -----------------------------------------------------------------------
# Members of unknown name are checked as strictly as they are skipped: what the
# run-time codec might refuse (a lone surrogate, an infinity, bad UTF-8) is
# Unsupported, so the run-time codec decides.


cdef int _skip_string(Parser* p) except -1:
    cdef const unsigned char* start = p.pos + 1
    cdef const unsigned char* s = start
    cdef unsigned char kind = 0
    cdef int code
    while True:
        while s < p.end and _STRING[s[0]] != 1:
            kind |= _STRING[s[0]]
            s += 1
        if s >= p.end or s[0] < 0x20:
            unsupported()
        if s[0] == b'"':
            break
        s += 1  # a backslash
        if s >= p.end:
            unsupported()
        if s[0] == b'u':
            if p.end - s < 5:
                unsupported()
            code = _hex4(s + 1)
            if 0xD800 <= code <= 0xDFFF:
                unsupported()
            s += 5
        elif s[0] in b'"\\/bfnrt':
            s += 1
        else:
            unsupported()
    if kind:
        _utf8(start, s - start)
    p.pos = s + 1
    return 0


cdef int skip_value(Parser* p) except -1:
    """Consume one JSON value of any kind, checking it (see above)."""
    cdef Number number
    skip_ws(p)
    if p.pos >= p.end:
        unsupported()
    cdef unsigned char first = p.pos[0]
    if first == b'"':
        return _skip_string(p)
    if first == b'{':
        if open_object(p):
            while True:
                skip_ws(p)
                if p.pos >= p.end or p.pos[0] != b'"':
                    unsupported()
                _skip_string(p)
                _expect(p, b':')
                skip_value(p)
                if not next_member(p):
                    break
        return 0
    if first == b'[':
        if open_array(p):
            while True:
                skip_value(p)
                if not next_item(p):
                    break
        return 0
    if first == b't':
        return _literal(p, b"true", 4)
    if first == b'f':
        return _literal(p, b"false", 5)
    if first == b'n':
        return _literal(p, b"null", 4)
    _scan_number(p, &number)
    if number.integer:
        if number.digits > 4000:
            unsupported()  # near int's str-conversion limit: let ujson decide
    else:
        _double(&number)
    return 0


include "_cjson_types.pxi"  # UUID, Decimal, date, time, timedelta


# --- copying, field lookups -------------------------------------------------------------


cdef object copy_any(object value):
    return _copy_any(value)


cdef object copy_part(Part part, object value):
    return part.get().copy(value)


cdef object _field(object cls, str name):
    """The FieldPlan ``name`` of ``cls``, or None.

    None when the class no longer has that field: its compiled codec is stale
    and never used, but its module must still import.
    """
    try:
        plan = plan_for(cls)
    except TypeError:
        return None
    for field in getattr(plan, "fields", ()):
        if field.name == name:
            return field
    return None


cdef object _field_node(object cls, str name, int depth):
    """The type node ``depth`` container levels inside field ``name`` of ``cls``, or None."""
    field = _field(cls, name)
    if field is None:
        return None
    node = field.node
    for _ in range(depth):
        node = node.item
    return node


cpdef object field_type(object cls, str name, int depth):
    """The type ``depth`` container levels inside field ``name`` of ``cls`` (an Enum class)."""
    node = _field_node(cls, name, depth)
    return None if node is None else node.type


cpdef object field_default(object cls, str name):
    """The default value, or default factory, of field ``name`` of ``cls``."""
    field = _field(cls, name)
    return None if field is None else field.default_value


# --- codecs -------------------------------------------------------------------------------


cdef class ClassCodec:
    """Entry points, JSON keys and instance building for one compiled attrs class.

    ``fallbacks`` counts the values and documents encode, decode and write
    handed to the run-time codec (reach it as ``codec_for(cls).write.__self__``):
    a count that keeps growing means values the compiled code does not take,
    e.g. str subclasses. (``read`` always delegates: the input is parsed already.)

    Generated modules give it their C ``writer`` and ``reader``;
    ``persist._plancodec`` subclasses it and overrides ``write_value`` and
    ``read_value`` (and ``runtime``) instead, keeping these entry points.
    """

    def __dealloc__(self):
        PyMem_Free(self.offsets)
        PyMem_Free(self.key_data)
        PyMem_Free(self.key_sizes)

    cdef int setup(self, object cls, tuple names, tuple keys) except -1:
        """Record the class, its fields ``names`` and JSON ``keys``, and their slots."""
        cdef Py_ssize_t i
        self.cls = cls
        self.names = names
        self.keys = tuple([key.encode() for key in keys])
        self.count = len(names)
        self.offsets = <Py_ssize_t*>PyMem_Malloc((self.count + 1) * sizeof(Py_ssize_t))
        self.key_sizes = <Py_ssize_t*>PyMem_Malloc((self.count + 1) * sizeof(Py_ssize_t))
        self.key_data = <const char**>PyMem_Malloc((self.count + 1) * sizeof(char*))
        if self.offsets == NULL or self.key_sizes == NULL or self.key_data == NULL:
            raise MemoryError()
        for i in range(self.count):
            self.offsets[i] = _slot_offset(cls, names[i])
            self.key_data[i] = PyBytes_AS_STRING(self.keys[i])  # kept alive by keys
            self.key_sizes[i] = PyBytes_GET_SIZE(self.keys[i])
        return 0

    cdef int write_value(self, Buffer* buf, object value) except -1:
        """Append the JSON of a value (generated code's writer; a subclass may override)."""
        return self.writer(buf, value)

    cdef object read_value(self, Parser* p):
        """Parse a value at the parser's position (generated code's reader, or an override)."""
        return self.reader(p)

    cdef object runtime(self):
        """The run-time codec of the class: it serves whatever compiled code does not.

        Made again after a codec was registered: it binds the parts of the
        nested types when it is made (compiled code looks them up per call).
        """
        generation = codecs._generation
        if self._runtime is None or generation != self._runtime_generation:
            from persist import codegen  # persist.codegen imports persist.codecs

            self._runtime = codegen.make_python_codec(self.cls, resolve=codecs.part_for)
            self._runtime_generation = generation
        return self._runtime

    cdef object written(self, object value):
        """The compiled JSON text of a value, or None: fall back (``write``'s part).

        The buffer lives in this frame only, not in ``write``'s while the
        run-time codec runs: it comes back to ``write`` once per level.
        """
        cdef Buffer buf
        _init(&buf)
        try:
            self.write_value(&buf, value)
            return PyUnicode_DecodeUTF8(buf.data, buf.size, NULL)
        except TooDeep:
            raise
        except Exception:  # Unsupported, or an error the run-time codec reports
            return None
        finally:
            _release(&buf)

    cdef object encode(self, object value):
        cdef Buffer buf
        _init(&buf)
        try:
            self.write_value(&buf, value)
            return PyBytes_FromStringAndSize(buf.data, buf.size)
        except TooDeep:
            raise
        except Exception:  # Unsupported, or an error the run-time codec reports
            self.fallbacks += 1
            self.open_level(False)
            try:
                return self.runtime().encode(value)
            finally:
                self.close_level()
        finally:
            _release(&buf)

    cdef object decode(self, object data):
        cdef Parser p
        if type(data) is not bytes:
            self.fallbacks += 1
            return self.runtime().decode(data)
        p.pos = <const unsigned char*>PyBytes_AS_STRING(data)
        p.end = p.pos + PyBytes_GET_SIZE(data)
        p.depth = 0
        p.trees = open_levels
        try:
            value = self.read_value(&p)
            skip_ws(&p)
            if p.pos != p.end:
                unsupported()
            return value
        except TooDeepToDecode:
            raise
        except Exception:  # Unsupported, or an error the run-time codec reports
            self.fallbacks += 1
            self.open_level(True)
            try:
                return self.runtime().decode(data)
            finally:
                self.close_level()

    cdef int open_level(self, bint decoding) except -1:
        """Count a level the run-time codec is about to read or write (if a tree).

        Its nested values come back through ``read`` and ``write`` on the same
        C stack, one call per level: counted per thread, like compiled code's.
        """
        global open_levels
        if self.recursive:
            if open_levels >= CLASS_DEPTH:
                if decoding:
                    too_deep_to_decode(self.cls)
                too_deep(self.cls, False)
            open_levels += 1
        return 0

    cdef void close_level(self) noexcept:
        global open_levels
        if self.recursive:
            open_levels -= 1

    def dumps(self, value):
        """Encode a value as one line of JSON (bytes): the map's encode."""
        return self.encode(value)

    def loads(self, data):
        """Decode one line of JSON (bytes) into a value: the map's decode."""
        return self.decode(data)

    def write(self, value):
        """Return the JSON text of a value, for a codec that nests this class."""
        text = self.written(value)
        if text is not None:
            return text
        self.fallbacks += 1
        self.open_level(False)
        try:
            return self.runtime().write(value)
        finally:
            self.close_level()

    def read(self, obj):
        """Build a value from the object ujson parsed, for a codec that nests this class."""
        self.open_level(True)
        try:
            return self.runtime().read(obj)
        finally:
            self.close_level()

    cdef object new(self):
        """An instance with no field set: object.__new__(cls)."""
        return PyBaseObject_Type.tp_new(<type>self.cls, <PyObject*>_NO_ARGS, NULL)

    cdef int set(self, object instance, Py_ssize_t index, object value) except -1:
        """Set field ``index`` as object.__setattr__ would (a slot directly)."""
        cdef Py_ssize_t offset = self.offsets[index]
        cdef PyObject** slot
        cdef PyObject* old
        if offset == 0:
            return PyObject_GenericSetAttr(instance, self.names[index], value)
        slot = <PyObject**>((<char*><PyObject*>instance) + offset)
        old = slot[0]
        Py_INCREF(value)
        slot[0] = <PyObject*>value
        Py_XDECREF(old)
        return 0


cdef Py_ssize_t _slot_offset(object cls, str name) except -1:
    """The offset of the writable object slot ``name`` on ``cls``; 0 if it is no such slot."""
    cdef PyMemberDef* member
    for klass in cls.__mro__:
        descriptor = klass.__dict__.get(name)
        if descriptor is None:
            continue
        if type(descriptor) is not types.MemberDescriptorType:
            return 0
        member = (<PyMemberDescrObject*><PyObject*>descriptor).d_member
        if member.type != T_OBJECT_EX or member.flags & READONLY:
            return 0
        return member.offset
    return 0


cdef ClassCodec class_codec(object cls, tuple names, tuple keys, Writer writer, Reader reader):
    """Make the ClassCodec of ``cls`` (fields ``names``, JSON keys ``keys``)."""
    cdef ClassCodec codec = ClassCodec.__new__(ClassCodec)
    codec.setup(cls, names, keys)
    codec.writer = writer
    codec.reader = reader
    codec.recursive = recursive(plan_for(cls))
    return codec


cdef class Part:
    def __init__(self, cls, str name, int depth):
        """The parts for the type ``depth`` container levels inside field ``name`` of ``cls``."""
        self.node = _field_node(cls, name, depth)

    cdef object get(self):
        """The registry's parts, looked up again whenever a codec was registered since."""
        generation = codecs._generation
        if self._part is None or generation != self._generation:
            self._part = codecs.part_for(self.node)
            self._generation = generation
        return self._part


cdef Part part_of(object node):
    """The Part for a type node (a plan's TypeNode) directly."""
    cdef Part part = Part.__new__(Part)
    part.node = node
    return part
