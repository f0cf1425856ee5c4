# WAL parser: reads the file in large blocks, splits it into records and
# routes each one by the map name before the first ':' of its key.  Values
# stay raw bytes (_Raw) until first read.

import os

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE, PyBytes_FromStringAndSize
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.string cimport memchr, memcmp

from persist.errors import CorruptWALError

cdef Py_ssize_t BLOCK_SIZE = 16 * 1024 * 1024


cdef class _LoadState:
    """Where the parse is: the map of the last record, counters, the path."""
    cdef object path
    cdef object route
    cdef bytes last_name
    cdef PersistMap last_map
    cdef Py_ssize_t records
    cdef Py_ssize_t line          # line number of the next record's first line
    cdef long long offset        # file offset of the next record

    cdef PersistMap map_for(self, const char* name, Py_ssize_t size):
        if size < 0:
            return self.route(None)     # a bare key: an orphan record
        if (self.last_name is not None and PyBytes_GET_SIZE(self.last_name) == size
                and memcmp(PyBytes_AS_STRING(self.last_name), name, size) == 0):
            return self.last_map
        self.last_name = PyBytes_FromStringAndSize(name, size)
        try:
            decoded = self.last_name.decode()
        except UnicodeDecodeError:
            raise self.corrupt("map name is not valid UTF-8") from None
        self.last_map = self.route(decoded)
        return self.last_map

    cdef object corrupt(self, str reason):
        """The error for the record being parsed (its first line and offset)."""
        return CorruptWALError(str(self.path), self.line, self.offset, reason)

    cdef Py_ssize_t parse(self, const char* buf, Py_ssize_t size) except -1:
        """Apply every complete record in ``buf``; return the bytes consumed."""
        cdef const char* p = buf
        cdef const char* end = buf + size
        cdef const char* nl1
        cdef const char* nl2
        cdef const char* colon
        cdef const char* key
        cdef Py_ssize_t klen, vlen, name_len
        cdef PersistMap target
        cdef char kind
        while p < end:
            nl1 = <const char*>memchr(p, b'\n', end - p)
            if nl1 == NULL:
                break
            nl2 = <const char*>memchr(nl1 + 1, b'\n', end - nl1 - 1)
            if nl2 == NULL:
                break
            kind = p[0]
            if nl1 - p < 2 or p[1] != b' ' or (kind != b'S' and kind != b'D'):
                raise self.corrupt("expected a record line 'S <key>' or 'D <key>'")
            vlen = nl2 - nl1 - 1
            # (a CRLF file's delete record has "\r" there: Go reads it so)
            if kind == b'D' and vlen != 0 and not (vlen == 1 and nl1[1] == b'\r'):
                raise self.corrupt("a delete record's second line must be empty")
            key = p + 2
            klen = nl1 - key
            colon = <const char*>memchr(key, b':', klen)
            if colon == NULL:
                name_len = -1
            else:
                name_len = colon - key
                klen -= name_len + 1
                key = colon + 1
            target = self.map_for(p + 2, name_len)
            # Go may have written a key that is not UTF-8: its bytes come back
            # as surrogates and go out again unchanged (wal_key)
            k = PyUnicode_DecodeUTF8(key, klen, "surrogateescape")
            if kind == b'S':
                target._load_put(
                    k, make_raw(PyBytes_FromStringAndSize(nl1 + 1, vlen), self.line + 1))
            else:
                target._load_delete(k)
            self.records += 1
            self.line += 2
            self.offset += nl2 + 1 - p
            p = nl2 + 1
        return p - buf


def load(int fd, path, route):
    """Read the WAL open at ``fd`` (from its start) into maps.

    :param route: ``route(name)`` returns the PersistMap for records of map
        ``name`` (``None`` for bare keys); called once per run of records
    :returns: ``(valid_end, file_size, records)``: the length of the sound
        prefix (0 for a new file or a torn header), the file's size and the
        number of complete records
    :raises CorruptWALError: a complete record's framing is broken
    """
    cdef _LoadState state = _LoadState.__new__(_LoadState)
    cdef bytes data
    cdef Py_ssize_t used
    state.path = path
    state.route = route
    state.line = 2
    header = HEADER_BYTES
    data = os.read(fd, BLOCK_SIZE)
    file_size = len(data)
    if len(data) < len(header) and header.startswith(data):
        return 0, file_size, 0        # empty, or a crash while creating it
    if data.startswith(header):
        state.offset = len(header)
    elif data.startswith(b"go-persist 1\r\n"):
        state.offset = len(header) + 1
    else:
        raise CorruptWALError(str(path), 1, 0, "not a go-persist file (bad header)")
    data = data[state.offset:]
    while True:
        used = state.parse(PyBytes_AS_STRING(data), len(data))
        chunk = os.read(fd, BLOCK_SIZE)
        if not chunk:
            break
        file_size += len(chunk)
        data = data[used:] + chunk
    return state.offset, file_size, state.records
