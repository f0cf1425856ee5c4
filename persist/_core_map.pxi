# The sharded in-memory map and its typed facade, PersistMap.
#
# A map is N shards, each a dict plus a lock.  Reads take no lock (a dict
# lookup is atomic under the GIL and under free-threaded CPython's per-object
# locking); writers hold the key's shard lock while they change memory and
# queue the WAL record (or the pending async change), so memory order and file
# order agree per key, and update() is atomic against every other writer of
# its key.  The lock order is written in _core.pxd.

cimport cython
from cpython.dict cimport PyDict_Items, PyDict_Keys, PyDict_Next, PyDict_Values
from cpython.object cimport PyObject
from cpython.pythread cimport (
    NOWAIT_LOCK, WAIT_LOCK, PyThread_acquire_lock, PyThread_allocate_lock,
    PyThread_get_thread_ident, PyThread_release_lock, PyThread_type_lock,
)
from collections.abc import Mapping, MutableMapping
from types import GenericAlias
import gc
import sys
import sysconfig

from persist.errors import DeadlockError, DecodeError, NotOpenError

cdef extern from "<pthread.h>" nogil:
    int pthread_mutex_timedlock(pthread_mutex_t*, const timespec*)

cdef enum Durability:
    MEMORY = 0      # memory only (set_in_memory, update_in_memory)
    ASYNC = 1       # queued by the background sync
    SYNC = 2        # write(2) before return
    FSYNC = 3       # write(2) and fsync before return

cdef enum UpdateState:
    STORE = 0       # store upd.value (fn mutated or assigned it)
    SET = 1         # upd.set(v) was called
    DELETE = 2
    CANCEL = 3

cdef object MISSING = object()
DEFAULT_SHARDS = 16
cdef long SHARD_WAKE_NS = 20000000  # a shard-lock wait wakes this often

# Who waits for which shard, for the deadlock check (guarded by graph_lock).
cdef PyThread_type_lock graph_lock = PyThread_allocate_lock()
cdef dict waiting_for = {}          # thread id -> _Shard


# Bulk reads (values(), items(), range()) decode every raw value of a map:
# millions of new container objects.  Left in the young generation they make
# the cyclic GC run young collections over and over, and, as the survivors
# pile up in the old generation, full collections over the whole heap (about
# half of the time of reading a large file).  So after each decode the young
# objects are moved to the old generation (gc.freeze() + gc.unfreeze(): two
# O(1) list splices, which also reset the allocation count that triggers a
# collection).  Nothing global is switched off, so there is nothing to
# restore: gc.isenabled() and the thresholds are never touched, an exception
# or another thread cannot leave the GC disabled, and garbage made meanwhile
# is still found by the next full collection.  Not done while objects frozen
# by the user exist (unfreeze would thaw them; checked before each move, with
# the GIL held throughout, so a freeze by another thread is never undone) nor
# on the free-threaded build (its GC has no generations; freeze walks the heap).
# Python 3.12 starts with a few hundred objects of its own in the permanent
# generation (immortal tuples of the builtin types): the count found when this
# module is imported on 3.12 is the interpreter's, and thawing those changes
# nothing (so on 3.12, objects frozen before persist is imported get thawed).
cdef bint GENERATIONAL_GC = not sysconfig.get_config_var("Py_GIL_DISABLED")
cdef object gc_freeze = gc.freeze
cdef object gc_unfreeze = gc.unfreeze
cdef object gc_get_freeze_count = gc.get_freeze_count
cdef Py_ssize_t INTERPRETER_FROZEN = (
    gc.get_freeze_count() if sys.version_info[:2] == (3, 12) else 0)


cdef inline bint keep_out_of_young_gc() except -1:
    """Move every young object to the old generation; False (nothing done)
    if the user has frozen objects."""
    cdef Py_ssize_t frozen = gc_get_freeze_count()
    if frozen != 0 and frozen != INTERPRETER_FROZEN:
        return False
    gc_freeze()
    gc_unfreeze()
    return True


cdef inline void lock_wait(PyThread_type_lock lock) noexcept:
    """Take ``lock``, releasing the GIL only if we have to wait."""
    if not PyThread_acquire_lock(lock, NOWAIT_LOCK):
        with nogil:
            PyThread_acquire_lock(lock, WAIT_LOCK)


cdef int refuse_cycle(_Shard shard, unsigned long me) except -1:
    """Raise DeadlockError if the owner of ``shard`` waits, through a chain of
    shard owners, for a shard ``me`` holds (graph_lock held)."""
    cdef unsigned long owner = shard.owner
    cdef Py_ssize_t hops = 0
    while owner != 0 and hops <= len(waiting_for):
        if owner == me:
            raise DeadlockError(
                "an update function holds a key this thread holds and waits for "
                "one this thread's update function holds; waiting would never end")
        nxt = waiting_for.get(owner)
        if nxt is None:
            return 0
        owner = (<_Shard>nxt).owner
        hops += 1
    return 0


@cython.final
@cython.freelist(256)
# no_gc: it holds only bytes, so it cannot be part of a cycle, and loading a
# million of them does not wake the cyclic GC again and again
@cython.no_gc
cdef class _Raw:
    def __repr__(self):
        return f"<raw line {self.line}: {self.data[:60]!r}>"


cdef inline _Raw make_raw(bytes data, Py_ssize_t line):
    cdef _Raw raw = _Raw.__new__(_Raw)
    raw.data = data
    raw.line = line
    return raw


@cython.final
cdef class _Shard:
    # The lock is a bare pthread mutex: an uncontended take and release cost
    # two atomic operations, where PyThread_acquire_lock's timed path costs
    # several times that on every write.  Only its owner releases it.
    def __cinit__(self):
        self.data = {}
        if pthread_mutex_init(&self.mu, NULL) != 0:
            raise MemoryError()

    def __dealloc__(self):
        pthread_mutex_destroy(&self.mu)

    cdef int acquire(self) except -1:
        cdef unsigned long me
        if pthread_mutex_trylock(&self.mu) == 0:
            self.owner = PyThread_get_thread_ident()
            self.depth = 1
            return 0
        me = PyThread_get_thread_ident()
        if self.depth and self.owner == me:
            self.depth += 1     # a write from inside an update fn of this shard
            return 0
        self._wait(me)
        self.owner = me
        self.depth = 1
        return 0

    cdef bint try_lock(self) noexcept:
        """Take the lock if it is free at once (never re-entrant)."""
        return pthread_mutex_trylock(&self.mu) == 0

    cdef int _wait(self, unsigned long me) except -1:
        """Wait for the lock without the GIL, SHARD_WAKE_NS at a time (signal
        handlers run in between), refusing a wait that would never end."""
        cdef int got
        cdef timespec ts
        lock_wait(graph_lock)
        try:
            refuse_cycle(self, me)
            waiting_for[me] = self
        finally:
            PyThread_release_lock(graph_lock)
        try:
            while True:
                with nogil:
                    deadline_in(&ts, SHARD_WAKE_NS)
                    got = pthread_mutex_timedlock(&self.mu, &ts)
                if got == 0:
                    return 0
                PyErr_CheckSignals()
                lock_wait(graph_lock)   # the owner may have started waiting since
                try:
                    refuse_cycle(self, me)
                finally:
                    PyThread_release_lock(graph_lock)
        finally:
            lock_wait(graph_lock)
            waiting_for.pop(me, None)
            PyThread_release_lock(graph_lock)

    cdef void release(self) noexcept:
        self.depth -= 1
        if self.depth == 0:
            self.owner = 0
            pthread_mutex_unlock(&self.mu)


@cython.final
cdef class Update:
    """What an ``update`` function sees: a copy of the value, and its verdict.

    Mutate ``value`` or assign it (or call ``set``) to store; ``delete()`` to
    delete; ``cancel()`` to leave map and file as they were.
    """

    cdef public object value
    """A copy of the stored value (None when there is none): mutate or assign it."""
    cdef readonly bint exists
    """True if the key had a value when the function was called."""
    cdef int state

    def set(self, value):
        """Store ``value`` when the function returns."""
        self.value = value
        self.state = SET

    def delete(self):
        """Delete the key when the function returns."""
        self.state = DELETE

    def cancel(self):
        """Change nothing."""
        self.state = CANCEL

    __class_getitem__ = classmethod(GenericAlias)

    def __repr__(self):
        return f"Update(value={self.value!r}, exists={self.exists})"


@cython.final   # direct (inlinable) calls between its cdef methods on hot paths
cdef class PersistMap:
    """A typed map whose writes go to the store's write-ahead log.

    Made by ``Store.map`` or ``open_single_map``; every method is thread-safe.
    """

    def __init__(self, store, name, value_type, codec, bytes prefix,
                 int shards=DEFAULT_SHARDS):
        if shards < 1 or shards & (shards - 1):
            raise ValueError("shards must be a power of two")
        self.store = store
        self.name = name
        self.value_type = value_type
        self.codec = codec
        self.prefix = prefix
        if codec is not None:
            self._encode = codec.encode
            self._decode = codec.decode
            self._copy = codec.copy
        self.shards = [_Shard() for _ in range(shards)]
        self.mask = shards - 1
        self.writer = None
        self.pending = {}

    __class_getitem__ = classmethod(GenericAlias)

    def __repr__(self):
        tp = getattr(self.value_type, "__qualname__", repr(self.value_type))
        return f"<PersistMap {self.name!r} of {tp}>"

    # -- internals ----------------------------------------------------------

    cdef inline _Shard shard_for(self, object key):
        return <_Shard>self.shards[<size_t>hash(key) & <size_t>self.mask]

    cdef inline WalWriter open_writer(self):
        cdef WalWriter writer = self.writer
        if writer is None:
            self.refuse_closed()
        return writer

    cdef int refuse_closed(self) except -1:
        """Raise the NotOpenError of a map whose store is not open (out of
        line, so the open check inlined into every call stays small)."""
        raise NotOpenError(
            self.why_closed or f"map {self.name!r}: the store is not open")

    cdef object _lookup(self, object key, bint *found):
        self.open_writer()
        if not PyUnicode_Check(key):
            raise TypeError(f"key must be str, not {type(key).__name__}")
        cdef _Shard shard = self.shard_for(key)
        value = shard.data.get(key, MISSING)
        if value is MISSING:
            found[0] = False
            return None
        found[0] = True
        if type(value) is _Raw:
            return self._materialize(shard, key, <_Raw>value)
        return value

    cdef object _decode_raw(self, object key, _Raw raw):
        """Decode a value loaded from disk; errors name the key and line."""
        try:
            return self._decode(raw.data)
        except DecodeError as exc:
            raise DecodeError(
                f"map {self.name!r}, key {key!r} (line {raw.line}): {exc}"
            ) from None

    cdef object _materialize(self, _Shard shard, object key, _Raw raw):
        """Decode a value loaded from disk and keep the result in its place
        if the shard's lock is free at once (a reader never waits for it)."""
        value = self._decode_raw(key, raw)
        if shard.try_lock():
            try:
                current = shard.data.get(key, MISSING)
                if current is raw:
                    shard.data[key] = value
                elif current is not MISSING and type(current) is not _Raw:
                    value = current     # a writer replaced it meanwhile: newest wins
            finally:
                pthread_mutex_unlock(&shard.mu)
        return value

    cdef int _read_shard(self, _Shard shard, list out, bint pairs,
                         bint promote) except -1:
        """Append the values of ``shard`` (``(key, value)`` pairs if ``pairs``)
        to ``out``, raw values decoded (outside the lock, young objects
        promoted after each if ``promote``: see keep_out_of_young_gc) and then
        installed in place under a single try of the lock."""
        cdef dict snapshot = shard.data.copy()    # one atomic copy, no per-item objects
        cdef list raw_keys = [], raws = [], decoded = []
        cdef PyObject* key
        cdef PyObject* item
        cdef Py_ssize_t pos = 0, i
        while PyDict_Next(snapshot, &pos, &key, &item):
            value = <object>item
            if type(value) is _Raw:
                value = self._decode_raw(<object>key, <_Raw>item)
                raw_keys.append(<object>key)
                raws.append(<object>item)
                decoded.append(value)
                if promote:
                    promote = keep_out_of_young_gc()
            out.append((<object>key, value) if pairs else value)
        if decoded and shard.try_lock():
            try:
                for i in range(len(raws)):
                    if shard.data.get(raw_keys[i]) is raws[i]:
                        shard.data[raw_keys[i]] = decoded[i]
            finally:
                pthread_mutex_unlock(&shard.mu)
        return 0

    cdef list _read_all(self, bint pairs):
        """Every value (or item) of the map, decoding what is still raw."""
        self.open_writer()
        cdef list out = []
        cdef _Shard shard
        for shard in self.shards:
            self._read_shard(shard, out, pairs, GENERATIONAL_GC)
        return out

    cdef long long _log(self, WalWriter writer, object key, const char* k,
                        Py_ssize_t klen, object data, int durability) except -1:
        """Record a change of ``key`` (``data`` None = delete) for its
        durability: pending for the background sync, or queued after every
        pending async change.  The shard lock is held.  Returns the queued
        record's end (0: nothing to commit)."""
        if durability == ASYNC:
            writer.put_pending(self, key, data)
            return 0
        if durability == MEMORY:
            return 0
        if data is None:
            return writer.queue_record(b'D', self.prefix, k, klen, b"", 0)
        return writer.queue_record(b'S', self.prefix, k, klen, <bytes>data,
                                   len(<bytes>data))

    cdef int _write(self, object key, object value, int durability) except -1:
        cdef WalWriter writer = self.open_writer()
        cdef Py_ssize_t klen
        cdef const char* k = key_utf8(key, &klen)
        cdef bytes data = self._encode(value)
        cdef _Shard shard = self.shard_for(key)
        cdef long long end = 0
        shard.acquire()
        try:
            end = self._log(writer, key, k, klen, data, durability)
            shard.data[key] = value
        finally:
            shard.release()
        if end:
            writer.commit(end, durability == FSYNC)
        return 0

    cdef bint _remove(self, object key, int durability) except -1:
        return self._take(key, durability, False) is not MISSING

    cdef object _take(self, object key, int durability, bint decode):
        """Delete ``key`` with ``durability``; return its value (decoded first
        if ``decode``: a value that cannot be decoded is a DecodeError and
        stays), or MISSING if there was none."""
        cdef WalWriter writer = self.open_writer()
        cdef Py_ssize_t klen
        cdef const char* k
        cdef bytes loaded
        try:
            k = key_utf8(key, &klen)
        except InvalidKeyError:
            # a key loaded from a file (CRLF, a control character or invalid
            # UTF-8 written by Go) that the key rules refuse: still deletable
            if key not in self.shard_for(key).data:
                raise
            loaded = wal_key(key)
            k = loaded
            klen = len(loaded)
        cdef _Shard shard = self.shard_for(key)
        cdef long long end = 0
        shard.acquire()
        try:
            value = shard.data.get(key, MISSING)
            if value is MISSING:
                return MISSING
            if decode and type(value) is _Raw:
                value = self._decode_raw(key, <_Raw>value)
            end = self._log(writer, key, k, klen, None, durability)
            del shard.data[key]
        finally:
            shard.release()
        if end:
            writer.commit(end, durability == FSYNC)
        return value

    cdef object _update(self, object key, object fn, int durability):
        cdef WalWriter writer = self.open_writer()
        if writer.readonly and durability != MEMORY:
            writer.check_accepting()    # refused before fn runs under the lock
        cdef Py_ssize_t klen
        cdef const char* k = key_utf8(key, &klen)
        cdef _Shard shard = self.shard_for(key)
        cdef long long end = 0
        cdef Update upd = Update.__new__(Update)
        shard.acquire()
        try:
            current = shard.data.get(key, MISSING)
            upd.exists = current is not MISSING
            if type(current) is _Raw:       # we hold the lock: decode in place
                current = self._decode_raw(key, <_Raw>current)
                shard.data[key] = current
            upd.value = self._copy(current) if upd.exists else None
            fn(upd)
            if upd.state == CANCEL:
                return (current if upd.exists else None, upd.exists)
            if upd.state == DELETE:
                if not upd.exists:
                    return (None, False)
                end = self._log(writer, key, k, klen, None, durability)
                del shard.data[key]
                result = (None, False)
            else:
                value = upd.value
                if not upd.exists and value is None and upd.state != SET:
                    return (None, False)
                end = self._log(writer, key, k, klen, self._encode(value),
                                durability)
                shard.data[key] = value
                result = (value, True)
        finally:
            shard.release()
        if end:
            writer.commit(end, durability == FSYNC)
        return result

    # -- reads --------------------------------------------------------------

    @cython.binding(False)   # METH_FASTCALL method, no cyfunction layer
    def get(self, key, default=None):
        """Return the value of ``key``, or ``default``."""
        cdef bint found
        value = self._lookup(key, &found)
        return value if found else default

    def __getitem__(self, key):
        cdef bint found
        value = self._lookup(key, &found)
        if not found:
            raise KeyError(key)
        return value

    def __contains__(self, key):
        self.open_writer()
        if not PyUnicode_Check(key):
            raise TypeError(f"key must be str, not {type(key).__name__}")
        return key in self.shard_for(key).data

    def __len__(self):
        self.open_writer()
        cdef Py_ssize_t n = 0
        cdef _Shard shard
        for shard in self.shards:
            n += len(shard.data)
        return n

    def size(self):
        """Number of keys (same as ``len``)."""
        return len(self)

    def keys(self):
        """A list of the keys (each key present throughout appears once)."""
        self.open_writer()
        cdef list out = []
        cdef _Shard shard
        for shard in self.shards:
            out.extend(PyDict_Keys(shard.data))
        return out

    def items(self):
        """A list of ``(key, value)`` pairs, decoded as ``values()`` decodes."""
        return self._read_all(True)

    def values(self):
        """A list of the values: those still raw from the file are decoded in
        one pass that runs no cyclic-GC collection (the bulk read path)."""
        return self._read_all(False)

    def __iter__(self):
        return iter(self.keys())

    def range(self, fn):
        """Call ``fn(key, value)`` for each item until it returns ``False``."""
        for key, value in self.items():
            if fn(key, value) is False:
                break

    # -- writes -------------------------------------------------------------

    @cython.binding(False)   # METH_FASTCALL method, no cyfunction layer
    def set_async(self, key, value):
        """Set in memory now; the background sync writes it to the WAL."""
        self._write(key, value, ASYNC)

    @cython.binding(False)   # METH_FASTCALL method, no cyfunction layer
    def set(self, key, value):
        """Set and write the record (write(2)) before returning."""
        self._write(key, value, SYNC)

    @cython.binding(False)   # METH_FASTCALL method, no cyfunction layer
    def set_fsync(self, key, value):
        """Set, write and fsync before returning."""
        self._write(key, value, FSYNC)

    @cython.binding(False)   # METH_FASTCALL method, no cyfunction layer
    def set_in_memory(self, key, value):
        """Set in memory only; persisted by a later write of the key or a shrink."""
        self._write(key, value, MEMORY)

    def __setitem__(self, key, value):
        self._write(key, value, SYNC)

    @cython.binding(False)   # METH_FASTCALL method, no cyfunction layer
    def delete_async(self, key):
        """Delete in memory now, in the WAL at the next background sync."""
        return self._remove(key, ASYNC)

    @cython.binding(False)   # METH_FASTCALL method, no cyfunction layer
    def delete(self, key):
        """Delete and write the record before returning; False if absent."""
        return self._remove(key, SYNC)

    @cython.binding(False)   # METH_FASTCALL method, no cyfunction layer
    def delete_fsync(self, key):
        """Delete, write and fsync before returning; False if absent."""
        return self._remove(key, FSYNC)

    def __delitem__(self, key):
        if not self._remove(key, SYNC):
            raise KeyError(key)

    def update_async(self, key, fn):
        """Change the value with ``fn(upd)`` atomically; WAL at the next sync."""
        return self._update(key, fn, ASYNC)

    def update(self, *args, **kwargs):
        """``update(key, fn)``: change one value atomically; or, as
        ``dict.update``, ``update(mapping_or_pairs, **pairs)``: set each pair.

        ``update(key, fn)`` calls ``fn(upd)`` on an :class:`Update` holding a
        copy of the value (holding the key's shard), then stores, deletes or
        leaves the value as ``upd`` says, written before return; returns
        ``(value or None, exists)``.  If ``fn`` raises, nothing changes.
        The forms are told apart by the first argument: a ``str`` is a key
        (no ``dict.update`` argument is a str).  Either way every write has
        the durability of ``set``.
        """
        if args and isinstance(args[0], str):
            if len(args) == 2 and not kwargs:
                return self._update(args[0], args[1], SYNC)
            if len(args) == 1 and kwargs.keys() == {"fn"}:
                return self._update(args[0], kwargs["fn"], SYNC)
            raise TypeError("update(key, fn) takes a key and a function")
        if len(args) > 1:
            raise TypeError(f"update expected at most 1 argument, got {len(args)}")
        if args:
            other = args[0]
            if isinstance(other, Mapping):
                for key in other:
                    self._write(key, other[key], SYNC)
            elif hasattr(other, "keys"):
                for key in other.keys():
                    self._write(key, other[key], SYNC)
            else:
                for key, value in other:
                    self._write(key, value, SYNC)
        for key, value in kwargs.items():
            self._write(key, value, SYNC)

    def update_fsync(self, key, fn):
        """Like ``update``, and fsync'd before returning."""
        return self._update(key, fn, FSYNC)

    def update_in_memory(self, key, fn):
        """Like ``update``, in memory only."""
        return self._update(key, fn, MEMORY)

    # -- the rest of the mapping protocol (MutableMapping) --------------------

    def pop(self, key, default=MISSING):
        """Delete ``key`` (written before return, as ``delete``) and return
        its value; ``default`` if absent, or KeyError without one."""
        value = self._take(key, SYNC, True)
        if value is not MISSING:
            return value
        if default is MISSING:
            raise KeyError(key)
        return default

    def popitem(self):
        """Delete some key (written before return) and return ``(key, value)``;
        KeyError if the map is empty."""
        cdef _Shard shard
        while True:
            self.open_writer()
            for shard in self.shards:
                for key in shard.data:
                    break
                else:
                    continue
                value = self._take(key, SYNC, True)
                if value is not MISSING:
                    return key, value
                break   # another thread took it meanwhile: look again
            else:
                raise KeyError("popitem(): the map is empty")

    def setdefault(self, key, default=None):
        """Return the value of ``key``; if absent, first set it to ``default``
        (written before return), atomically."""
        def keep_or_set(Update upd):
            if upd.exists:
                upd.cancel()
            else:
                upd.set(default)
        return self._update(key, keep_or_set, SYNC)[0]

    def clear(self):
        """Delete every key: written before return (one write for them all)."""
        cdef _Shard shard
        self.open_writer()
        for shard in self.shards:
            for key in list(shard.data):
                self._remove(key, ASYNC)
        self.store.sync()

    def copy(self):
        """A ``dict`` of the items (the values themselves, not copies)."""
        return dict(self.items())

    def __eq__(self, other):
        if isinstance(other, PersistMap) or isinstance(other, Mapping):
            return dict(self.items()) == dict(other.items())
        return NotImplemented

    __hash__ = None     # mutable and compared by contents, as a dict

    def sync(self):
        """Write the pending async changes to the file now (no fsync)."""
        self.store.sync()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.store.close()

    # -- used by Store ------------------------------------------------------

    def _attach(self, WalWriter writer, why_closed=None):
        """Serve ``writer``'s file, or with None refuse calls with ``why_closed``."""
        self.writer = writer
        self.why_closed = why_closed

    def _shard_snapshot(self, Py_ssize_t index):
        """A copy of shard ``index``'s dict, None past the last shard (for
        shrink; a dict copy makes no per-item objects for the GC to chase)."""
        if index >= len(self.shards):
            return None
        return (<_Shard>self.shards[index]).data.copy()

    def _dump_part(self, dict snapshot, Py_ssize_t pos, bytearray out,
                   Py_ssize_t limit):
        """Append one S record per item of ``snapshot`` from position ``pos``
        until ``out`` holds ``limit`` bytes; return ``(next position or -1
        when done, records appended)``."""
        cdef PyObject* key
        cdef PyObject* value
        cdef Py_ssize_t records = 0
        while len(out) < limit:
            if not PyDict_Next(snapshot, &pos, &key, &value):
                return -1, records
            if type(<object>value) is _Raw:
                data = (<_Raw>value).data
            else:
                data = self._encode(<object>value)
            out += b"S "
            out += self.prefix
            out += wal_key(<object>key)
            out += b"\n"
            out += data
            out += b"\n"
            records += 1
        return pos, records

    def _adopt(self, PersistMap other):
        """Take over the records of a raw map (registered after open)."""
        cdef _Shard shard
        cdef PyObject* key
        cdef PyObject* value
        cdef Py_ssize_t pos
        for shard in other.shards:
            pos = 0     # PyDict_Next: no (key, value) tuple for the GC to count
            while PyDict_Next(shard.data, &pos, &key, &value):
                self.shard_for(<object>key).data[<object>key] = <object>value

    def _clear(self):
        cdef _Shard shard
        for shard in self.shards:
            shard.data.clear()
        self.pending.clear()

    def _get_raw(self, key):
        """The stored JSON of ``key`` (bytes) for a raw map, or None."""
        value = self.shard_for(key).data.get(key, MISSING)
        if value is MISSING:
            return None
        return (<_Raw>value).data if type(value) is _Raw else self._encode(value)

    def _raw_items(self):
        """``(key, JSON bytes, line)`` of every record of a raw map (for the CLI)."""
        cdef _Shard shard
        out = []
        for shard in self.shards:
            for key, value in PyDict_Items(shard.data):
                out.append((key, (<_Raw>value).data, (<_Raw>value).line))
        return out

    def _set_raw(self, key, bytes data):
        """Store already-encoded JSON under ``key`` (the plain Store API)."""
        cdef WalWriter writer = self.open_writer()
        cdef Py_ssize_t klen
        cdef const char* k = key_utf8(key, &klen)
        cdef _Shard shard = self.shard_for(key)
        shard.acquire()
        try:
            end = writer.queue_record(b'S', self.prefix, k, klen, data, len(data))
            shard.data[key] = make_raw(data, 0)
        finally:
            shard.release()
        writer.commit(end, False)

    cdef int _load_put(self, object key, _Raw raw) except -1:
        self.shard_for(key).data[key] = raw
        return 0

    cdef int _load_delete(self, object key) except -1:
        self.shard_for(key).data.pop(key, None)
        return 0


def _run_update(fn, current, bint exists, copy):
    """Run an update function the way ``PersistMap.update`` does, for a store
    that keeps its values elsewhere (persist.redis): ``fn`` gets an Update
    holding ``copy(current)``; return ``(verdict, value)``, the verdict being
    0 store ``value``, 1 set ``value``, 2 delete, 3 cancel."""
    cdef Update upd = Update.__new__(Update)
    upd.exists = exists
    upd.value = copy(current) if exists else None
    fn(upd)
    return upd.state, upd.value


def _after_fork_in_child():
    """Forget the deadlock check's state: a parent thread may have held its lock."""
    global graph_lock
    graph_lock = PyThread_allocate_lock()
    waiting_for.clear()


MutableMapping.register(PersistMap)
