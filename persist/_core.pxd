# Declarations of the compiled core's classes: fields and cdef methods.
# Bodies live in _core_map.pxi, _core_writer.pxi, _core_sys.pxi and
# _core_parser.pxi.
#
# LOCK ORDER.  Each lock, and what its holder may wait for (nothing else):
#
#   Store._close_lock   held for a whole close(): waits for the background
#                       threads (join), Store._shrink_lock,
#                       Store._refresh_lock, the leader role
#   Store._shrink_lock  held for a whole shrink: waits for the leader role
#   _Shard.mu           held while a key's memory changes and its record is
#                       queued, and while an update fn runs (re-entrant for
#                       its owner): the fn may wait for anything, including
#                       the two locks above (a read-only store's fn: see
#                       Store._refresh_lock); a wait for another shard lock
#                       goes through the deadlock check (a waits-for graph
#                       under graph_lock: a cycle raises DeadlockError)
#   Store._refresh_lock held for a whole refresh() of a read-only store, for
#                       a map registration (a refresh fills the raw maps) and
#                       around close()'s release of the descriptor (a refresh
#                       reads from it): waits for shard locks (a refresh
#                       changes a shard under its lock, holding no other),
#                       Store._lock, the leader role (close's release).
#                       So on a read-only store an update fn (refused anyway)
#                       must not call refresh(), map() or close() while
#                       another thread refreshes: that one waits for the fn's
#                       shard
#   Store._lock         map registry and state changes: waits for nothing
#   leader role         a flag under mu, not a lock: its holder writes,
#                       fsyncs or switches files; waits for mu only
#   WalWriter.mu        queue, counters, pending async changes: held for
#                       memcpy-sized work, never across I/O; waits for nothing
#
#   So close() and shrink() never wait for a shard lock or for an update fn,
#   and a write to one map never waits for an update fn on another (shard
#   locks are per map; the async queue lives under mu).
#
#   The GIL: every wait for a shard lock, the role or mu releases it first
#   (try-lock, then wait without it), because a thread holding mu may be
#   waiting for the GIL.  Waits wake every 20 ms to run signal handlers, so
#   Ctrl-C interrupts them.  Readers take none of these locks (a decoded
#   value is installed only if the shard's lock is free at once).
#
# FREE THREADING (built with freethreading_compatible; not tested, the
# machines here run the GIL build): the shared state is guarded by the locks
# above, except these lock-free reads, which would need atomic (relaxed)
# loads to be race-free without the GIL: dict lookups in a shard (safe:
# per-object locks), PersistMap.writer, WalWriter.accepting/failure/
# file_records read outside mu, and _Shard.owner read by the deadlock check.


cdef extern from "<pthread.h>" nogil:
    ctypedef struct pthread_mutex_t:
        pass
    ctypedef struct pthread_cond_t:
        pass


cdef class _Raw:
    """A value loaded from disk and not decoded yet (lazy decode on first read)."""
    cdef readonly bytes data
    cdef readonly Py_ssize_t line


cdef class _Shard:
    """One slice of a map: a dict and the lock its writers hold."""
    cdef dict data
    cdef pthread_mutex_t mu
    cdef unsigned long owner   # thread holding the lock (re-entrant for update fns)
    cdef int depth

    cdef int acquire(self) except -1
    cdef bint try_lock(self) noexcept
    cdef int _wait(self, unsigned long me) except -1
    cdef void release(self) noexcept


cdef class WalWriter:
    cdef int fd
    cdef readonly object path
    cdef pthread_mutex_t mu
    cdef pthread_cond_t changed    # written/synced ends moved, leader role freed
    cdef pthread_cond_t arrived    # a record was queued (a gathering leader waits)
    # -- guarded by mu
    cdef char* buf                 # queued records
    cdef Py_ssize_t buf_len, buf_cap, buf_records
    cdef long long queued_end      # bytes ever queued
    cdef long long written_end     # bytes ever written
    cdef long long synced_end      # bytes ever fsync'd
    cdef long long fsync_wanted    # highest end a caller waits to see fsync'd
    cdef Py_ssize_t fsync_callers  # callers inside commit() waiting for an fsync
    cdef Py_ssize_t last_batch     # records to gather: the last fsync's batch or callers
    cdef list dirty                # maps holding pending async changes
    cdef bint writing              # the write leader role is taken
    cdef bint syncing              # the fsync leader role is taken
    cdef bint gathering            # the leader waits for more records
    cdef bint header_pending       # queue the header before the first record
    cdef readonly bint accepting   # new records are taken (False from close on)
    cdef readonly bint released    # the descriptor was handed back
    cdef readonly object failure   # the fsync error that failed the store
    cdef object refusal            # the message once not accepting
    cdef object refusal_error      # its class: NotOpenError, or ReadOnlyError
    cdef readonly bint readonly    # a read-only store's: never accepting
    # -- owned by the leader
    cdef char* out                 # the batch being written
    cdef Py_ssize_t out_len, out_pos, out_cap, out_records
    cdef long long cut_at          # torn tail to cut before the first append, or -1
    cdef object capture            # bytearray of everything written during a shrink
    cdef Py_ssize_t capture_records
    cdef int shrink_step           # ShrinkStep
    cdef bint dir_pending          # the directory entry of the file is not fsync'd
    cdef readonly long long file_records

    cdef void lock(self) noexcept
    cdef void unlock(self) noexcept
    cdef int wait_changed(self) except -1
    cdef int check_accepting(self) except -1
    cdef int queue_header(self) except -1
    cdef int queue_pending(self) except -1
    cdef int append(self, char kind, bytes prefix, const char* key,
                    Py_ssize_t klen, const char* val, Py_ssize_t vlen) except -1
    cdef long long queue_record(self, char kind, bytes prefix, const char* key,
                                Py_ssize_t klen, const char* val,
                                Py_ssize_t vlen) except -1
    cdef int put_pending(self, PersistMap m, object key, object data) except -1
    cdef int commit(self, long long end, bint want_fsync) except -1
    cdef int check_written(self) except -1
    cdef int take_role(self) except -1
    cdef void drop_role(self) noexcept
    cdef int lead_write(self) except -1
    cdef int lead_sync(self) except -1
    cdef int sync_to(self, long long target) except -1
    cdef int gather(self) except -1
    cdef int write_queued(self) except -1
    cdef int capture_bytes(self, const char* p, Py_ssize_t n) except -1
    cdef int prepare_file(self) except -1
    cdef int fail(self, object exc) except -1
    cdef int flush_for_capture(self) except -1
    cdef int sync_dir_if_pending(self) except -1


cdef class PersistMap:
    # (a string on the line after a public attribute is its docstring)
    cdef readonly object store
    """The Store this map belongs to (its file, sync and close)."""
    cdef readonly object name
    """The map's name: the prefix of its keys in the file ("" for a single map)."""
    cdef readonly object value_type
    """The type of the map's values, as given to ``Store.map``."""
    cdef readonly object codec
    """The persist.Codec that encodes, decodes and copies the values."""
    cdef bytes prefix              # b"name:", b":" for the single map, b"" for orphans
    cdef object _encode, _decode, _copy
    cdef list shards
    cdef Py_ssize_t mask
    cdef WalWriter writer          # None while the store is not open
    cdef object why_closed         # the NotOpenError message while writer is None
    cdef dict pending              # key -> encoded value or None; guarded by writer.mu

    cdef inline _Shard shard_for(self, object key)
    cdef inline WalWriter open_writer(self)
    cdef int refuse_closed(self) except -1
    cdef object _decode_raw(self, object key, _Raw raw)
    cdef object _materialize(self, _Shard shard, object key, _Raw raw)
    cdef int _read_shard(self, _Shard shard, list out, bint pairs,
                         bint promote) except -1
    cdef list _read_all(self, bint pairs)
    cdef object _lookup(self, object key, bint *found)
    cdef int _write(self, object key, object value, int durability) except -1
    cdef bint _remove(self, object key, int durability) except -1
    cdef object _take(self, object key, int durability, bint decode)
    cdef object _update(self, object key, object fn, int durability)
    cdef long long _log(self, WalWriter writer, object key, const char* k,
                        Py_ssize_t klen, object data, int durability) except -1
    cdef int _load_put(self, object key, _Raw raw) except -1
    cdef int _load_delete(self, object key) except -1
