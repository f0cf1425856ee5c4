# WAL writer: records are appended to one in-memory buffer under a short lock;
# whoever needs them on disk takes the io lock and writes *everything* queued
# with one write(2) (and one fsync when asked).  Threads that queued while the
# previous write ran find their bytes already written when they get the io
# lock: that is the group commit.

from libc.errno cimport errno, EINTR
from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memcpy
from posix.unistd cimport write, fsync, ftruncate
from cpython.pythread cimport (
    PyThread_allocate_lock, PyThread_free_lock, PyThread_acquire_lock,
    PyThread_release_lock, WAIT_LOCK, NOWAIT_LOCK,
)

from persist.errors import NotOpenError

cdef bytes HEADER = b"go-persist 1\n"
HEADER_BYTES = HEADER


cdef inline void lock_wait(PyThread_type_lock lock) noexcept:
    """Take ``lock``, releasing the GIL only if we have to wait."""
    if not PyThread_acquire_lock(lock, NOWAIT_LOCK):
        with nogil:
            PyThread_acquire_lock(lock, WAIT_LOCK)


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


cdef class WalWriter:
    """Appends S/D records to an open WAL file descriptor.

    :param fd: descriptor opened with O_APPEND, locked by the caller
    :param valid_end: length of the file's sound prefix; anything after it is a
        torn tail, cut before the first append (0 with an unusable header
        means the header is rewritten too)
    :param records: complete records already in the file
    """

    def __cinit__(self):
        self.mu = PyThread_allocate_lock()
        self.io = PyThread_allocate_lock()
        if self.mu == NULL or self.io == NULL:
            raise MemoryError()

    def __init__(self, int fd, path, long long valid_end, long long file_size,
                 long long records):
        self.fd = fd
        self.path = path
        self.file_records = records
        self.cut_at = valid_end if valid_end < file_size else -1
        self.header_pending = valid_end == 0
        self.capture = None

    def __dealloc__(self):
        free(self.buf)
        free(self.out)
        if self.mu != NULL:
            PyThread_free_lock(self.mu)
        if self.io != NULL:
            PyThread_free_lock(self.io)

    # -- queueing (called by maps under their shard lock) -------------------

    cdef long long queue_record(self, char kind, bytes prefix, const char* key,
                                Py_ssize_t klen, const char* val,
                                Py_ssize_t vlen) except -1:
        """Append ``S <prefix><key>\\n<val>\\n`` (or a D record); return its end."""
        cdef Py_ssize_t plen = len(prefix)
        cdef Py_ssize_t need = 2 + plen + klen + 1 + vlen + 1
        cdef char* p
        cdef long long end
        lock_wait(self.mu)
        try:
            if self.closed:
                raise NotOpenError("store is closed")
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
            end = self.queued_end
        finally:
            PyThread_release_lock(self.mu)
        return end

    # -- writing (io lock) --------------------------------------------------

    cdef int commit(self, long long end, bint want_fsync) except -1:
        """Return once the bytes up to ``end`` are written (and fsync'd)."""
        lock_wait(self.io)
        try:
            if self.written_end < end:
                self._write_out()
            if want_fsync and self.synced_end < end:
                self._fsync()
        finally:
            PyThread_release_lock(self.io)
        return 0

    cdef int _write_out(self) except -1:
        """Write a leftover batch (from a failed write), then everything queued.

        The io lock is held.  Progress is kept on error, so the rest is retried
        by the next writer and the file never misses or repeats a byte.
        """
        if self.out_pos < self.out_len:
            self._write_batch()
        # Swap buffers: writers keep queueing into the other one meanwhile.
        cdef char* tmp
        cdef Py_ssize_t tmp_cap
        lock_wait(self.mu)
        tmp = self.out
        tmp_cap = self.out_cap
        self.out = self.buf
        self.out_cap = self.buf_cap
        self.out_len = self.buf_len
        self.out_records = self.buf_records
        self.out_pos = 0
        self.buf = tmp
        self.buf_cap = tmp_cap
        self.buf_len = 0
        self.buf_records = 0
        PyThread_release_lock(self.mu)
        if self.out_len:
            self._write_batch()
        return 0

    cdef int _write_batch(self) except -1:
        cdef Py_ssize_t n
        cdef int err = 0
        cdef int fd = self.fd
        if self.closed:
            raise NotOpenError("store is closed")
        self._prepare_file()
        while self.out_pos < self.out_len:
            with nogil:
                n = write(fd, self.out + self.out_pos, self.out_len - self.out_pos)
                if n < 0:
                    err = errno
            if n < 0:
                if err == EINTR:
                    continue
                raise OSError(err, f"write to {self.path} failed")
            if self.capture is not None:
                self.capture += self.out[self.out_pos:self.out_pos + n]
            self.out_pos += n
            self.written_end += n
        self.file_records += self.out_records
        self.out_records = 0
        return 0

    cdef int _prepare_file(self) except -1:
        """Before the first append: cut a torn tail, write a missing header."""
        cdef int err = 0
        cdef int fd = self.fd
        if self.cut_at >= 0:
            with nogil:
                if ftruncate(fd, self.cut_at) != 0:
                    err = errno
            if err:
                raise OSError(err, f"cannot cut the torn tail of {self.path}")
            self.cut_at = -1
        if self.header_pending:
            self._write_all(<const char*>HEADER, len(HEADER))
            self.header_pending = False
        return 0

    cdef int _write_all(self, const char* p, Py_ssize_t size) except -1:
        cdef Py_ssize_t n
        cdef int err = 0
        cdef int fd = self.fd
        while size > 0:
            with nogil:
                n = write(fd, p, size)
                if n < 0:
                    err = errno
            if n < 0:
                if err == EINTR:
                    continue
                raise OSError(err, f"write to {self.path} failed")
            p += n
            size -= n
        return 0

    cdef int _fsync(self) except -1:
        cdef long long target = self.written_end
        cdef int rc
        cdef int err = 0
        cdef int fd = self.fd
        with nogil:
            rc = fsync(fd)
            if rc != 0:
                err = errno
        if rc != 0:
            raise OSError(err, f"fsync of {self.path} failed")
        self.synced_end = target
        return 0

    # -- Python-facing ------------------------------------------------------

    def flush(self, bint fsync=False):
        """Write everything queued so far; fsync too when asked."""
        lock_wait(self.io)
        try:
            self._write_out()
            if fsync and self.synced_end < self.written_end:
                self._fsync()
        finally:
            PyThread_release_lock(self.io)

    def write_header(self):
        """Give a new (empty) file its header line now."""
        lock_wait(self.io)
        try:
            self._prepare_file()
        finally:
            PyThread_release_lock(self.io)

    def has_unsynced(self):
        """Whether records are queued, or written and not fsync'd yet."""
        return self.queued_end > self.synced_end

    def close(self):
        """Refuse further records; the caller flushed and owns the fd."""
        lock_wait(self.io)
        lock_wait(self.mu)
        self.closed = True
        PyThread_release_lock(self.mu)
        PyThread_release_lock(self.io)

    def detach(self):
        """Drop everything queued without writing it (a forked child)."""
        self.closed = True
        self.buf_len = 0
        self.out_len = self.out_pos = 0

    # -- shrink support -----------------------------------------------------

    def start_capture(self):
        """Write what is queued, then record every later write (for shrink)."""
        lock_wait(self.io)
        try:
            self._write_out()
            self.capture = bytearray()
        finally:
            PyThread_release_lock(self.io)

    def abort_capture(self):
        lock_wait(self.io)
        self.capture = None
        PyThread_release_lock(self.io)

    def finish_capture(self, swap):
        """Write what is queued, then call ``swap(captured_bytes)`` with the io
        lock held; ``swap`` installs the new file and returns
        ``(fd, records)`` for it.  Writers wait meanwhile, nobody is lost."""
        cdef bytes captured
        lock_wait(self.io)
        try:
            self._write_out()
            captured = bytes(self.capture)
            fd, records = swap(captured)
            self.fd = fd
            self.file_records = records
            self.cut_at = -1
            self.header_pending = False
            self.synced_end = self.written_end
        finally:
            self.capture = None
            PyThread_release_lock(self.io)
