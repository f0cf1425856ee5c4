# Key validation: a key is a str with no control character (U+0000-U+001F,
# U+007F-U+009F) that encodes to UTF-8 (no lone surrogate).

from cpython.unicode cimport PyUnicode_Check
from persist.errors import InvalidKeyError


cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object s, Py_ssize_t* size) except NULL


cdef const char* key_utf8(object key, Py_ssize_t* size) except NULL:
    """Return the key's UTF-8 bytes (cached in the str), refusing bad keys."""
    cdef const char* p
    cdef const unsigned char* u
    cdef Py_ssize_t i, n
    if not PyUnicode_Check(key):
        raise TypeError(f"key must be str, not {type(key).__name__}")
    try:
        p = PyUnicode_AsUTF8AndSize(key, size)
    except UnicodeEncodeError:
        raise InvalidKeyError(f"key {key!r} is not encodable as UTF-8") from None
    u = <const unsigned char*>p
    n = size[0]
    for i in range(n):
        # C0 and DEL are single bytes; C1 (U+0080-U+009F) is 0xC2 0x80-0x9F.
        if u[i] < 0x20 or u[i] == 0x7F or (
            u[i] == 0xC2 and i + 1 < n and u[i + 1] < 0xA0
        ):
            raise InvalidKeyError(f"key {key!r} contains a control character")
    return p


def check_key(key):
    """Raise TypeError / InvalidKeyError unless ``key`` is a valid key."""
    cdef Py_ssize_t size
    key_utf8(key, &size)
