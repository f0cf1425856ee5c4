# WAL writer with group commit.
#
# Writers append records to one buffer under ``mu`` and note the end offset
# of their record.  A caller that needs its bytes on disk either finds them
# written already, or takes the leader role if it is free, or sleeps (without
# the GIL) until the leader is done.  The leader takes the whole buffer,
# writes it with one write(2) and, if anyone asked for it, one fsync, then
# wakes everyone; meanwhile new records pile up in the other buffer for the
# next leader.  An fsync leader waits up to GATHER_NS for as many records as
# its last batch held, so batches grow with the number of writers.
#
# Async changes wait in each map's ``pending`` dict (under ``mu``) and are
# queued ahead of the next synchronous record, whoever writes it: the file
# keeps call order across keys and maps without taking any shard lock.
#
# States: accepting -> (stop) refusing -> (release) released; orthogonally
# ``failure`` is set by a failed fsync: nothing is written after it.  A
# read-only store's writer is born refusing (ReadOnlyError) and only holds
# the descriptor the store reads from.

from cpython.bytearray cimport (
    PyByteArray_AS_STRING, PyByteArray_GET_SIZE, PyByteArray_Resize,
)
from libc.stdlib cimport realloc, free
from libc.string cimport memcpy
from posix.time cimport timespec, clock_gettime, CLOCK_REALTIME
from posix.unistd cimport close

from persist.errors import NotOpenError, ReadOnlyError, StoreFailedError

cdef extern from "<pthread.h>" nogil:
    int pthread_mutex_init(pthread_mutex_t*, const void*)
    int pthread_mutex_destroy(pthread_mutex_t*)
    int pthread_mutex_lock(pthread_mutex_t*)
    int pthread_mutex_trylock(pthread_mutex_t*)
    int pthread_mutex_unlock(pthread_mutex_t*)
    int pthread_cond_init(pthread_cond_t*, const void*)
    int pthread_cond_destroy(pthread_cond_t*)
    int pthread_cond_broadcast(pthread_cond_t*)
    int pthread_cond_signal(pthread_cond_t*)
    int pthread_cond_timedwait(pthread_cond_t*, pthread_mutex_t*, const timespec*)

cdef enum ShrinkStep:
    NO_SHRINK = 0
    CAPTURING = 1       # writes are copied into the capture; role free
    INSTALLING = 2      # the shrink holds the leader role until install/abort

cdef bytes HEADER = b"go-persist 1\n"
HEADER_BYTES = HEADER
cdef long WAKE_NS = 20000000        # waits wake this often to run signal handlers
cdef long GATHER_NS = 300000        # longest wait of a leader for a full batch


cdef inline void deadline_in(timespec* ts, long nanos) noexcept nogil:
    clock_gettime(CLOCK_REALTIME, ts)
    ts.tv_nsec += nanos
    if ts.tv_nsec >= 1000000000:
        ts.tv_sec += 1
        ts.tv_nsec -= 1000000000


cdef int grow(char** buf, Py_ssize_t* cap, Py_ssize_t need) except -1:
    cdef Py_ssize_t new_cap = cap[0] * 2 if cap[0] else 65536
    cdef char* p
    while new_cap < need:
        new_cap *= 2
    p = <char*>realloc(buf[0], new_cap)
    if p == NULL:
        raise MemoryError()
    buf[0] = p
    cap[0] = new_cap
    return 0


cdef bytes wal_key(object key):
    """A key's bytes in the file; a key loaded with undecodable bytes
    (surrogateescape) is written back byte for byte."""
    try:
        return (<str>key).encode()
    except UnicodeEncodeError:
        return (<str>key).encode("utf-8", "surrogateescape")


cdef class WalWriter:
    """Appends S/D records to an open WAL file descriptor.

    :param fd: descriptor opened with O_APPEND, locked by the caller
    :param valid_end: length of the file's sound prefix; anything after it is a
        torn tail, cut before the first append (0 with an unusable header
        means the header is written again)
    :param records: complete records already in the file
    :param readonly: a read-only store's: every write is refused with
        ReadOnlyError and nothing is ever written to ``fd``
    """

    def __cinit__(self):
        pthread_mutex_init(&self.mu, NULL)
        pthread_cond_init(&self.changed, NULL)
        pthread_cond_init(&self.arrived, NULL)
        self.dirty = []

    def __init__(self, int fd, path, long long valid_end, long long file_size,
                 long long records, bint readonly=False):
        self.fd = fd
        self.path = path
        self.file_records = records
        self.cut_at = valid_end if valid_end < file_size else -1
        self.header_pending = valid_end == 0
        # a file without records may have just been created (by us, or by an
        # open that failed before it could fsync the directory)
        self.dir_pending = records == 0
        self.readonly = readonly
        self.accepting = not readonly
        if readonly:
            self.refusal_error = ReadOnlyError
            self.refusal = (
                f"{path}: the store is open read-only (readonly=True): another "
                "process owns the file; write through it")

    def __dealloc__(self):
        free(self.buf)
        free(self.out)
        pthread_cond_destroy(&self.arrived)
        pthread_cond_destroy(&self.changed)
        pthread_mutex_destroy(&self.mu)

    @property
    def fd(self):
        return self.fd

    # -- the mutex ----------------------------------------------------------

    cdef void lock(self) noexcept:
        """Take mu.  A thread holding mu may be waiting for the GIL, so never
        block on mu while holding the GIL (see the lock order)."""
        if pthread_mutex_trylock(&self.mu) != 0:
            with nogil:
                pthread_mutex_lock(&self.mu)

    cdef void unlock(self) noexcept:
        pthread_mutex_unlock(&self.mu)

    cdef int wait_changed(self) except -1:
        """With mu held: sleep (no GIL) until woken or WAKE_NS pass, then run
        signal handlers, so Ctrl-C reaches a waiting caller."""
        cdef timespec ts
        with nogil:
            deadline_in(&ts, WAKE_NS)
            pthread_cond_timedwait(&self.changed, &self.mu, &ts)
        PyErr_CheckSignals()
        return 0

    cdef int check_accepting(self) except -1:
        if self.failure is not None:
            raise StoreFailedError(
                f"{self.path}: an fsync failed earlier ({self.failure}); nothing more "
                "is written: close the store and open it again"
            ) from self.failure
        if not self.accepting:
            raise self.refusal_error(self.refusal)
        return 0

    # -- queueing -----------------------------------------------------------

    cdef int append(self, char kind, bytes prefix, const char* key,
                    Py_ssize_t klen, const char* val, Py_ssize_t vlen) except -1:
        """Append ``S <prefix><key>\\n<val>\\n`` (or a D record); mu held."""
        cdef Py_ssize_t plen = len(prefix)
        cdef Py_ssize_t need = 2 + plen + klen + 1 + vlen + 1
        cdef char* p
        if self.header_pending:
            self.queue_header()
        if self.buf_len + need > self.buf_cap:
            grow(&self.buf, &self.buf_cap, self.buf_len + need)
        p = self.buf + self.buf_len
        p[0] = kind
        p[1] = b' '
        p += 2
        memcpy(p, <const char*>prefix, plen)
        p += plen
        memcpy(p, key, klen)
        p += klen
        p[0] = b'\n'
        p += 1
        memcpy(p, val, vlen)
        p += vlen
        p[0] = b'\n'
        self.buf_len += need
        self.buf_records += 1
        self.queued_end += need
        if self.gathering:
            pthread_cond_signal(&self.arrived)
        return 0

    cdef int queue_header(self) except -1:
        """Queue the header line of a new file (or one whose header was torn)
        ahead of its first record; mu held."""
        if self.buf_len + len(HEADER) > self.buf_cap:
            grow(&self.buf, &self.buf_cap, self.buf_len + len(HEADER))
        memcpy(self.buf + self.buf_len, <const char*>HEADER, len(HEADER))
        self.buf_len += len(HEADER)
        self.queued_end += len(HEADER)
        self.header_pending = False
        return 0

    cdef int queue_pending(self) except -1:
        """Queue every map's pending async changes (mu held)."""
        cdef PersistMap m
        cdef const char* k
        cdef Py_ssize_t klen
        cdef bytes loaded
        for m in self.dirty:
            for key, data in m.pending.items():
                try:    # the str's cached UTF-8: no allocation per key
                    k = PyUnicode_AsUTF8AndSize(key, &klen)
                except UnicodeEncodeError:      # a key loaded with surrogates
                    loaded = wal_key(key)
                    k = loaded
                    klen = len(loaded)
                if data is None:
                    self.append(b'D', m.prefix, k, klen, b"", 0)
                else:
                    self.append(b'S', m.prefix, k, klen, <bytes>data,
                                len(<bytes>data))
            m.pending.clear()
        self.dirty = []
        return 0

    cdef long long queue_record(self, char kind, bytes prefix, const char* key,
                                Py_ssize_t klen, const char* val,
                                Py_ssize_t vlen) except -1:
        """Queue a record after every pending async change; return its end."""
        self.lock()
        try:
            self.check_accepting()
            if self.dirty:
                self.queue_pending()
            self.append(kind, prefix, key, klen, val, vlen)
            return self.queued_end
        finally:
            self.unlock()

    cdef int put_pending(self, PersistMap m, object key, object data) except -1:
        """Keep an async change (``data`` None = delete) for the next flush."""
        self.lock()
        try:
            self.check_accepting()
            if not m.pending:
                self.dirty.append(m)
            m.pending[key] = data
        finally:
            self.unlock()
        return 0

    # -- committing ---------------------------------------------------------

    cdef int commit(self, long long end, bint want_fsync) except -1:
        """Return once the bytes up to ``end`` are written (and fsync'd).

        Writing and fsyncing are separate roles: a caller that only needs
        write(2) never waits for an fsync in progress."""
        self.lock()
        if want_fsync:
            self.fsync_callers += 1
            if self.fsync_wanted < end:
                self.fsync_wanted = end
        try:
            while True:
                if self.written_end >= end and (
                        not want_fsync or self.synced_end >= end):
                    return 0
                self.check_written()
                if self.written_end < end:
                    if want_fsync:
                        # the fsync leader writes the queue before its fsync
                        if self.syncing:
                            self.wait_changed()
                        else:
                            self.lead_sync()
                    elif self.writing:
                        self.wait_changed()
                    else:
                        self.lead_write()
                elif self.syncing:
                    self.wait_changed()
                else:
                    self.lead_sync()
        finally:
            if want_fsync:
                self.fsync_callers -= 1
            self.unlock()

    cdef int check_written(self) except -1:
        """Refuse to wait for bytes that will never be written (mu held)."""
        if self.failure is not None:
            self.check_accepting()
        if self.released:
            raise NotOpenError(
                f"{self.path}: the store was closed before this change was written")
        return 0

    cdef int lead_write(self) except -1:
        """As the write leader, write everything queued; mu held on entry
        and exit, released during the I/O."""
        self.writing = True
        try:
            self.unlock()
            try:
                self.write_queued()
            finally:
                self.lock()
        finally:
            self.writing = False
            pthread_cond_broadcast(&self.changed)
        return 0

    cdef int lead_sync(self) except -1:
        """As the fsync leader: gather records briefly, write what is queued
        if no one else is writing, then fsync everything written; mu held on
        entry and exit, released during the I/O."""
        cdef long long target
        self.syncing = True
        try:
            self.gather()
            while self.writing:         # a write leader's batch: let it land
                self.wait_changed()
            if self.buf_len or self.out_pos < self.out_len:
                self.lead_write()
            target = self.written_end
            if target > self.synced_end or self.dir_pending:
                self.unlock()
                try:
                    self.sync_to(target)
                finally:
                    self.lock()
        finally:
            self.syncing = False
            pthread_cond_broadcast(&self.changed)
        return 0

    cdef int sync_to(self, long long target) except -1:
        """fsync the file (and a pending directory entry) as the fsync leader,
        mu not held; a failure fails the store for good."""
        if target > self.synced_end:
            try:
                fsync_fd(self.fd, self.path)
            except OSError as exc:
                self.fail(exc)
        self.sync_dir_if_pending()
        self.lock()
        if target > self.synced_end:
            self.synced_end = target
        # the next batch may gather a record from every caller still waiting
        # or just served: they are about to queue again
        self.last_batch = self.fsync_callers
        self.unlock()
        return 0

    cdef int gather(self) except -1:
        """An fsync leader waits briefly (mu held) for as many records as
        there were fsync callers at the last fsync, so concurrent writers
        share one fsync."""
        cdef timespec ts
        if (self.last_batch <= 1 or self.fsync_wanted <= self.synced_end
                or self.buf_records >= self.last_batch):
            return 0
        self.gathering = True
        with nogil:
            deadline_in(&ts, GATHER_NS)
            while self.buf_records < self.last_batch:
                if pthread_cond_timedwait(&self.arrived, &self.mu, &ts) != 0:
                    break
        self.gathering = False
        return 0

    cdef int take_role(self) except -1:
        """Take both roles, writing and fsyncing, waiting for them (a
        released writer keeps them for good)."""
        self.lock()
        try:
            while self.writing or self.syncing:
                if self.released:
                    raise NotOpenError(f"{self.path}: the store is closed")
                self.wait_changed()
            self.writing = self.syncing = True
        finally:
            self.unlock()
        return 0

    cdef void drop_role(self) noexcept:
        self.lock()
        self.writing = self.syncing = False
        pthread_cond_broadcast(&self.changed)
        self.unlock()

    cdef int write_queued(self) except -1:
        """As the write leader (mu not held): write a batch left by a failed
        write, then everything queued.  A failed write(2) keeps its exact
        progress (retried by the next leader)."""
        cdef char* tmp
        cdef Py_ssize_t tmp_cap, start
        while True:
            if self.out_pos < self.out_len:
                self.prepare_file()
                start = self.out_pos
                try:
                    write_all(self.fd, self.out, self.out_len, &self.out_pos,
                              self.path)
                finally:
                    if self.out_pos > start:
                        if self.capture is not None:
                            self.capture_bytes(self.out + start, self.out_pos - start)
                        self.lock()
                        self.written_end += self.out_pos - start
                        self.unlock()
                self.file_records += self.out_records
                if self.capture is not None:
                    self.capture_records += self.out_records
                self.out_records = 0
            self.lock()
            if self.buf_len == 0:
                self.unlock()
                return 0
            tmp, tmp_cap = self.out, self.out_cap
            self.out, self.out_cap = self.buf, self.buf_cap
            self.out_len, self.out_pos = self.buf_len, 0
            self.out_records = self.buf_records
            self.buf, self.buf_cap = tmp, tmp_cap
            self.buf_len = self.buf_records = 0
            self.unlock()

    cdef int capture_bytes(self, const char* p, Py_ssize_t n) except -1:
        """Append ``p[:n]`` to the shrink's capture; the copy (all of a large
        batch) runs without the GIL."""
        cdef Py_ssize_t size = PyByteArray_GET_SIZE(self.capture)
        cdef char* dst
        PyByteArray_Resize(self.capture, size + n)
        dst = PyByteArray_AS_STRING(self.capture) + size
        with nogil:
            memcpy(dst, p, n)
        return 0

    cdef int prepare_file(self) except -1:
        """Before the first append: cut a torn tail (the leader's job)."""
        if self.cut_at >= 0:
            truncate_fd(self.fd, self.cut_at, self.path)
            self.cut_at = -1
        return 0

    cdef int fail(self, object exc) except -1:
        """Enter the failed state (an fsync failed), wake every waiter and
        raise StoreFailedError from the first failure."""
        self.lock()
        try:
            if self.failure is None:
                self.failure = exc
            pthread_cond_broadcast(&self.changed)
            self.check_accepting()
        finally:
            self.unlock()
        return 0

    # -- Python-facing ------------------------------------------------------

    def flush(self, bint fsync=False):
        """Queue the pending async changes, write everything queued (and fsync)."""
        cdef long long end
        self.lock()
        try:
            self.check_written()
            if self.dirty:
                self.queue_pending()
            end = self.queued_end
        finally:
            self.unlock()
        self.commit(end, fsync)

    def write_header(self):
        """Give a new file its header now (written and fsync'd)."""
        self.lock()
        try:
            if self.header_pending:
                self.queue_header()
        finally:
            self.unlock()
        self.flush(True)

    def needs_flush(self):
        """Whether async changes wait, or records are not fsync'd yet."""
        self.lock()
        try:
            return bool(self.dirty) or self.queued_end > self.synced_end
        finally:
            self.unlock()

    def stop(self, message):
        """Refuse every new record with NotOpenError(message); the pending
        async changes are queued in the same step, so none is lost."""
        self.lock()
        try:
            if self.dirty:
                self.queue_pending()
            self.accepting = False
            self.refusal = message
            self.refusal_error = NotOpenError
        finally:
            self.unlock()

    def check_writable(self):
        """Raise ReadOnlyError if this is a read-only store's writer (for the
        calls that write without queueing a record: sync, shrink)."""
        if self.readonly:
            raise ReadOnlyError(self.refusal)

    def reading(self, int fd, long long records):
        """A read-only store's: read the file at ``fd`` from now on (it holds
        ``records`` complete records); return the old descriptor to close."""
        if not self.readonly:
            raise ValueError(f"{self.path}: only a read-only store switches files")
        old, self.fd = self.fd, fd
        self.file_records = records
        return old

    def release(self):
        """Keep the leader role for good and hand back the descriptor (the
        caller closes it); waiters for unwritten bytes get NotOpenError."""
        self.take_role()
        self.lock()
        fd, self.fd = self.fd, -1
        self.released = True
        pthread_cond_broadcast(&self.changed)
        self.unlock()
        return fd

    def detach(self):
        """In a forked child: forget everything without touching the locks
        (a parent thread may have held them at the fork); return the fd."""
        fd, self.fd = self.fd, -1
        self.accepting = False
        self.released = True
        self.buf_len = self.out_len = self.out_pos = 0
        return fd

    # -- shrink support -----------------------------------------------------
    #
    # A shrink is: start_capture, dump the maps into a new file, end_capture
    # (the role is kept from here), write the capture, install.  The state
    # lives here, not in the caller's locals, so an exception (Ctrl-C) at any
    # point is undone by abort() whatever step it hit.

    cdef int flush_for_capture(self) except -1:
        """Queue the pending async changes and write everything queued (role
        held); refuse if the store is closing or failed."""
        self.lock()
        try:
            self.check_accepting()
            if self.dirty:
                self.queue_pending()
        finally:
            self.unlock()
        self.write_queued()
        return 0

    def start_capture(self):
        """Write everything queued to the current file, then copy every later
        write into the capture."""
        self.take_role()
        try:
            self.flush_for_capture()
            self.capture = bytearray()
            self.capture_records = 0
            self.shrink_step = CAPTURING
        finally:
            self.drop_role()

    def drain_capture(self):
        """Hand over what was captured so far, ``(bytearray, records)``, and
        go on capturing: the shrink copies it to the new file while writers
        run, so the final, exclusive step has little left to copy."""
        self.take_role()
        captured, self.capture = self.capture, bytearray()
        records, self.capture_records = self.capture_records, 0
        self.drop_role()
        return captured, records

    def end_capture(self):
        """Take the leader role and keep it; write what is queued; return
        what was captured since the last drain, ``(bytearray, records)``.
        Follow with ``install`` or ``abort``."""
        self.take_role()
        self.shrink_step = INSTALLING
        self.flush_for_capture()
        captured, self.capture = self.capture, None
        return captured, self.capture_records

    def abort(self):
        """Undo an unfinished shrink at whatever step it stopped."""
        if self.shrink_step == CAPTURING:
            self.take_role()
        elif self.shrink_step != INSTALLING:
            return
        self.capture = None
        self.shrink_step = NO_SHRINK
        self.drop_role()

    def install(self, int fd, long long records, tmp):
        """Rename ``tmp`` (complete and fsync'd) over the store's path and
        append to ``fd`` from then on, in one step nothing interrupts: if the
        rename happened the switch happens, whatever the rename raised (which
        is raised after).  The old descriptor is closed; the directory entry
        is fsync'd by sync_directory() or before the next fsync'd call."""
        cdef object error = None
        cdef int old
        try:
            sys_rename(tmp, self.path)
        except BaseException as exc:
            error = exc
            if not same_file(fd, self.path):
                raise
        old, self.fd = self.fd, fd
        self.file_records = records
        self.cut_at = -1
        self.header_pending = False
        self.dir_pending = True
        self.shrink_step = NO_SHRINK
        self.lock()
        self.synced_end = self.written_end
        self.unlock()
        self.drop_role()
        with nogil:     # the last descriptor of the replaced file: the kernel
            close(old)  # frees its blocks now, which takes a while
        if error is not None:
            raise error

    cdef int sync_dir_if_pending(self) except -1:
        """fsync the directory of a new or switched file (role held); a
        failure fails the store: the file at path may not survive a crash."""
        if not self.dir_pending:
            return 0
        try:
            sys_fsync_dir(self.path)
        except OSError as exc:
            self.fail(exc)
        self.dir_pending = False
        return 0

    def sync_directory(self):
        """Make a new or switched file's directory entry durable now."""
        self.take_role()
        try:
            self.sync_dir_if_pending()
        finally:
            self.drop_role()


cdef bint same_file(int fd, path):
    """Whether ``fd`` is the file at ``path`` now."""
    try:
        a = os.fstat(fd)
        b = os.stat(path)
    except OSError:
        return False
    return (a.st_ino, a.st_dev) == (b.st_ino, b.st_dev)
