# The system-call seam: every call that changes a store's files (open, write,
# fsync, ftruncate, rename, unlink, fchmod/fchown, the directory fsync) goes
# through the functions below, from the writer, Store.open, shrink and repair
# alike.  A test installs a fault hook to make the N-th call fail:
#
#     persist._core._set_fault_hook(hook)      # None removes it
#     hook(name) -> None        proceed
#                -> errno (int) fail with OSError(errno); EINTR is retried,
#                               as the real call would be
#                -> "short"     (write only) write half of the bytes
#
# With no hook installed a call costs one global read more than the raw call.

import os

from cpython.exc cimport PyErr_CheckSignals
from libc.errno cimport errno, EINTR
from posix.unistd cimport write, fsync, ftruncate

cdef object fault_hook = None
cdef Py_ssize_t GIL_FREE_WRITE = 64 * 1024   # smaller writes keep the GIL


def _set_fault_hook(hook):
    """Install (or with None remove) the fault hook of the tests."""
    global fault_hook
    fault_hook = hook


cdef int injected(str name) except -1:
    """0 to proceed, an errno to fail with, or -2 for a short write."""
    cdef object verdict
    while True:
        verdict = fault_hook(name)
        if verdict is None:
            return 0
        if verdict == "short":
            return -2 if name == "write" else 0
        if verdict != EINTR:
            return <int>verdict
        PyErr_CheckSignals()    # an interrupted call is retried, like PEP 475


cdef int write_all(int fd, const char* p, Py_ssize_t size, Py_ssize_t* done,
                   object path) except -1:
    """write(2) ``p[done:size]``, advancing ``done`` as bytes land, so a
    failure keeps the exact progress (the rest is retried, never repeated)."""
    cdef Py_ssize_t n, want
    cdef int err = 0
    cdef int fault
    while done[0] < size:
        want = size - done[0]
        fault = injected("write") if fault_hook is not None else 0
        if fault > 0:
            raise OSError(fault, f"write to {path} failed: {os.strerror(fault)}")
        if fault == -2 and want > 1:
            want //= 2
        if want >= GIL_FREE_WRITE:
            with nogil:
                n = write(fd, p + done[0], want)
                if n < 0:
                    err = errno
        else:
            n = write(fd, p + done[0], want)
            if n < 0:
                err = errno
        if n < 0:
            if err == EINTR:
                PyErr_CheckSignals()
                continue
            raise OSError(err, f"write to {path} failed: {os.strerror(err)}")
        done[0] += n
    return 0


cdef int fsync_fd(int fd, object path) except -1:
    cdef int rc
    cdef int err = 0
    cdef int fault = injected("fsync") if fault_hook is not None else 0
    if fault > 0:
        raise OSError(fault, f"fsync of {path} failed: {os.strerror(fault)}")
    while True:
        with nogil:
            rc = fsync(fd)
            if rc != 0:
                err = errno
        if rc == 0:
            return 0
        if err != EINTR:
            raise OSError(err, f"fsync of {path} failed: {os.strerror(err)}")


cdef int truncate_fd(int fd, long long length, object path) except -1:
    cdef int rc
    cdef int err = 0
    cdef int fault = injected("ftruncate") if fault_hook is not None else 0
    if fault > 0:
        raise OSError(fault, f"cannot cut the torn tail of {path}")
    while True:
        rc = ftruncate(fd, length)
        if rc == 0:
            return 0
        err = errno
        if err != EINTR:
            raise OSError(err, f"cannot cut the torn tail of {path}")


cdef int python_call(str name) except -1:
    """The hook's verdict for a call made through the os module."""
    cdef int fault = injected(name) if fault_hook is not None else 0
    if fault > 0:
        raise OSError(fault, f"{name} failed: {os.strerror(fault)}")
    return 0


# -- the os-module calls of Store.open, shrink and repair -------------------

def sys_open(path, int flags, int mode=0o644):
    python_call("open")
    return os.open(path, flags, mode)


def sys_write(int fd, data):
    """Write all of ``data`` (bytes-like) to ``fd``."""
    cdef const unsigned char[::1] view = data
    cdef Py_ssize_t done = 0
    if view.shape[0]:
        write_all(fd, <const char*>&view[0], view.shape[0], &done, fd)
    return done


def sys_fsync(int fd, path=None):
    fsync_fd(fd, fd if path is None else path)


def sys_fsync_dir(path):
    """fsync the directory holding ``path`` (makes a create or rename durable)."""
    python_call("fsync_dir")
    dfd = os.open(os.path.dirname(os.path.abspath(path)) or ".",
                  os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def sys_rename(src, dst):
    python_call("rename")
    os.rename(src, dst)


def sys_unlink(path):
    python_call("unlink")
    os.unlink(path)


def sys_fchmod(int fd, int mode):
    python_call("fchmod")
    os.fchmod(fd, mode)


def sys_fchown(int fd, int uid, int gid):
    python_call("fchown")
    os.fchown(fd, uid, gid)
