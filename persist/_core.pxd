# Declarations of the compiled core's classes: fields and cdef methods.
# Bodies live in _core_map.pxi, _core_writer.pxi and _core_parser.pxi.

from cpython.pythread cimport PyThread_type_lock


cdef class _Raw:
    """A value loaded from disk and not decoded yet (lazy decode on first read)."""
    cdef readonly bytes data
    cdef readonly Py_ssize_t line


cdef class _Shard:
    """One slice of a map: a dict, its async changes not yet queued, a lock."""
    cdef dict data
    cdef dict pending          # key -> encoded value (set) or None (delete)
    cdef PyThread_type_lock lock
    cdef unsigned long owner   # thread holding the lock (re-entrant for update fns)
    cdef int depth

    cdef int acquire(self) except -1
    cdef void release(self) noexcept


cdef class WalWriter:
    cdef readonly int fd
    cdef readonly object path
    # records queued by writers, not yet handed to write(2); guarded by mu
    cdef char* buf
    cdef Py_ssize_t buf_len, buf_cap, buf_records
    # the batch being written; guarded by io
    cdef char* out
    cdef Py_ssize_t out_len, out_pos, out_cap, out_records
    cdef long long queued_end      # bytes ever queued
    cdef long long written_end     # bytes ever written
    cdef long long synced_end      # bytes ever fsync'd
    cdef readonly long long file_records
    cdef PyThread_type_lock mu     # protects buf
    cdef PyThread_type_lock io     # one thread at a time writes / fsyncs
    cdef long long cut_at          # torn tail to cut before the first append, or -1
    cdef bint header_pending       # write the header before the first record
    cdef object capture            # bytearray of everything written during a shrink
    cdef public bint async_dirty   # some map holds async changes not queued yet
    cdef readonly bint closed

    cdef long long queue_record(self, char kind, bytes prefix, const char* key,
                                Py_ssize_t klen, const char* val,
                                Py_ssize_t vlen) except -1
    cdef int commit(self, long long end, bint fsync) except -1
    cdef int _write_out(self) except -1
    cdef int _write_batch(self) except -1
    cdef int _prepare_file(self) except -1
    cdef int _write_all(self, const char* p, Py_ssize_t size) except -1
    cdef int _fsync(self) except -1


cdef class PersistMap:
    cdef readonly object store
    cdef readonly object name
    cdef readonly object value_type
    cdef readonly object codec
    cdef bytes prefix              # b"name:", b":" for the single map, b"" for orphans
    cdef object _encode, _decode, _copy
    cdef list shards
    cdef Py_ssize_t mask
    cdef WalWriter writer          # None while the store is not open

    cdef inline _Shard shard_for(self, object key)
    cdef object _decode_raw(self, object key, _Raw raw)
    cdef object _materialize(self, _Shard shard, object key, _Raw raw)
    cdef list _shard_items(self, _Shard shard)
    cdef object _lookup(self, object key, bint *found)
    cdef int _write(self, object key, object value, int durability) except -1
    cdef bint _remove(self, object key, int durability) except -1
    cdef object _update(self, object key, object fn, int durability)
    cdef long long _log(self, WalWriter writer, _Shard shard, object key,
                        const char* k, Py_ssize_t klen, object data,
                        int durability) except -1
    cdef int _queue_pending_key(self, _Shard shard, object key) except -1
    cdef int _before_sync_write(self, WalWriter writer, int durability) except -1
    cdef int _load_put(self, object key, _Raw raw) except -1
    cdef int _load_delete(self, object key) except -1
