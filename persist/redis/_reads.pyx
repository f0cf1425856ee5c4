# cython: language_level=3, embedsignature=True, freethreading_compatible=True
"""The read path of a RedisMap that stays in the process: one dict lookup in
the map's view (this process's unsent changes and the local cache).

A cdef class so that ``get`` of a cached key costs about what the file
store's ``get`` costs; a miss calls the subclass's ``_fetch`` (the server).
"""

cimport cython
from cpython.dict cimport PyDict_GetItem
from cpython.object cimport PyObject
from cpython.unicode cimport PyUnicode_Check
from types import GenericAlias

from persist.errors import NotOpenError

MISSING = object()      # no such key
DELETED = object()      # in a view: deleted by an async change not yet sent
cdef object _MISSING = MISSING
cdef object _DELETED = DELETED


cdef class CachedReads:
    """Base of RedisMap: ``get``, ``[]`` and ``in`` answered from ``_view``
    when the key is there, else by ``self._fetch(key)`` / ``self._exists(key)``.

    ``_open`` is cleared by the store when it closes (``_why_closed`` says why).
    """

    cdef public dict _view
    cdef public bint _open
    cdef public str _why_closed

    def __cinit__(self):
        self._view = {}
        self._open = True
        self._why_closed = ""

    __class_getitem__ = classmethod(GenericAlias)

    cdef inline object _lookup(self, object key):
        if not self._open:
            raise NotOpenError(self._why_closed)
        if not PyUnicode_Check(key):
            raise TypeError(f"key must be str, not {type(key).__name__}")
        cdef PyObject* found = PyDict_GetItem(self._view, key)
        if found is NULL:
            return self._fetch(key)
        if <object>found is _DELETED:
            return _MISSING
        return <object>found

    @cython.binding(False)   # METH_FASTCALL method, no cyfunction layer
    def get(self, key, default=None):
        """Return the value of ``key``, or ``default``: from this process's
        unsent changes or the local cache if there, else from the server."""
        value = self._lookup(key)
        return default if value is _MISSING else value

    def __getitem__(self, key):
        value = self._lookup(key)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def __contains__(self, key):
        if not self._open:
            raise NotOpenError(self._why_closed)
        if not PyUnicode_Check(key):
            raise TypeError(f"key must be str, not {type(key).__name__}")
        cdef PyObject* found = PyDict_GetItem(self._view, key)
        if found is NULL:
            return self._exists(key)
        return <object>found is not _DELETED
