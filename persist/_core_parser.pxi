# WAL parser: reads the file in large blocks, splits it into records and
# routes each one by the map name before the first ':' of its key.  Values
# stay raw bytes (_Raw) until first read.  A read-only store's refresh parses
# what was appended since its last load (load_appended) or a whole replaced
# file into staging maps (load + replace_contents); both change the live maps
# only after the whole parse succeeded, under each shard's lock in turn (a
# reload swaps whole shard dicts).

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
    # ops: None to apply each record at once; else collect map, key, _Raw
    # (None: a delete), flat: no tuple per record for the cyclic GC to chase
    cdef list ops

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
                raw = make_raw(PyBytes_FromStringAndSize(nl1 + 1, vlen), self.line + 1)
            else:
                raw = None
            if self.ops is not None:
                self.ops.append(target)
                self.ops.append(k)
                self.ops.append(raw)
            elif raw is not None:
                target._load_put(k, raw)
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
    state.path = path
    state.route = route
    data = read_header(state, fd)
    if data is None:
        return 0, state.offset, 0     # empty, or a crash while creating it
    file_size = state.offset + len(data)
    file_size += parse_from(state, fd, data)
    return state.offset, file_size, state.records


cdef bytes read_header(_LoadState state, int fd):
    """Read the first block and check the header; return what follows it
    (state.offset: the header's length), or None for an empty file or a torn
    header (state.offset: the bytes read)."""
    header = HEADER_BYTES
    cdef bytes data = os.read(fd, BLOCK_SIZE)
    state.line = 2
    if len(data) < len(header) and header.startswith(data):
        state.offset = len(data)
        return None
    if data.startswith(header):
        state.offset = len(header)
    elif data.startswith(b"go-persist 1\r\n"):
        state.offset = len(header) + 1
    else:
        raise CorruptWALError(str(state.path), 1, 0, "not a go-persist file (bad header)")
    return data[state.offset:]


def scan(int fd, path, route, list totals):
    """Parse the WAL at ``fd`` (from its start) as ``load`` does, without
    applying it: yield the records of each block read, in file order, as one
    flat list ``[map, key, _Raw or None (a delete), ...]`` (``map`` from
    ``route``), so a reader of any file holds about one block at a time.
    When done, ``totals`` holds ``[valid_end, file_size, records]``.

    :raises CorruptWALError: a complete record's framing is broken
    """
    cdef _LoadState state = _LoadState.__new__(_LoadState)
    cdef Py_ssize_t used
    state.path = path
    state.route = route
    data = read_header(state, fd)
    if data is None:
        totals[:] = [0, state.offset, 0]
        return
    cdef long long file_size = state.offset + len(data)
    while True:
        state.ops = []
        used = state.parse(PyBytes_AS_STRING(data), len(data))
        if state.ops:
            yield state.ops
        chunk = os.read(fd, BLOCK_SIZE)
        if not chunk:
            break
        file_size += len(chunk)
        data = data[used:] + chunk
    totals[:] = [state.offset, file_size, state.records]


cdef long long parse_from(_LoadState state, int fd, bytes data) except -1:
    """Parse ``data`` and then the rest of the file at ``fd``; return the
    number of bytes read from ``fd``."""
    cdef Py_ssize_t used
    cdef long long read = 0
    while True:
        used = state.parse(PyBytes_AS_STRING(data), len(data))
        chunk = os.read(fd, BLOCK_SIZE)
        if not chunk:
            return read
        read += len(chunk)
        data = data[used:] + chunk


def load_appended(int fd, path, route, long long start, long long records):
    """Apply the records appended to the WAL at ``fd`` after ``start``, the
    end of an earlier load that counted ``records`` records (a read-only
    store's refresh).  Nothing changes unless every complete record after
    ``start`` parses; a torn tail is left for a later call.  An apply cut
    short (Ctrl-C while waiting for a shard's lock) is redone whole by the
    next call from the same ``start``: replaying sets and deletes in order
    ends in the same state.

    :returns: ``(valid_end, file_size, records)`` as ``load``, counting from
        the file's start
    :raises CorruptWALError: a complete record's framing is broken (its
        line number and offset are the file's)
    """
    cdef _LoadState state = _LoadState.__new__(_LoadState)
    state.path = path
    state.route = route
    state.ops = []
    state.offset = start
    state.records = records
    state.line = 2 + 2 * records    # the header, then two lines per record
    os.lseek(fd, start, os.SEEK_SET)
    file_size = start + parse_from(state, fd, b"")
    cdef list ops = state.ops
    cdef PersistMap target
    cdef _Shard shard
    cdef Py_ssize_t i
    for i in range(0, len(ops), 3):
        target = <PersistMap>ops[i]
        key = ops[i + 1]
        raw = ops[i + 2]
        shard = target.shard_for(key)
        shard.acquire()
        try:
            if raw is None:
                shard.data.pop(key, None)
            else:
                shard.data[key] = raw
        finally:
            shard.release()
    return state.offset, file_size, state.records


def replace_contents(PersistMap target, PersistMap staging):
    """Move the records of ``staging`` (None: none) into ``target``, whose
    own are dropped: each shard's dict is swapped under its lock, so a
    concurrent reader sees a key's old or new value; ``staging`` is left
    empty.  The maps' shard counts must agree."""
    cdef _Shard shard, source
    cdef Py_ssize_t i
    if staging is not None and len(staging.shards) != len(target.shards):
        raise ValueError("the maps' shard counts differ")
    for i in range(len(target.shards)):
        shard = <_Shard>target.shards[i]
        if staging is None:
            new = {}
        else:
            source = <_Shard>staging.shards[i]
            new, source.data = source.data, {}
        shard.acquire()
        try:
            old, shard.data = shard.data, new
        finally:
            shard.release()
        del old     # the old values go after the lock is released
