# cython: language_level=3, embedsignature=True, freethreading_compatible=True
# cython: boundscheck=False, wraparound=False, cdivision=True
"""The compiled core of persist: sharded map, WAL writer, WAL parser.

One extension module assembled from the files below (msgpack-python's layout).
Hot paths (get, set_async, set, load) are cdef code with no Python wrapper in
between; everything else (open, lock, shrink, threads) lives in persist.store.
"""

include "_core_sys.pxi"
include "_core_keys.pxi"
include "_core_writer.pxi"
include "_core_map.pxi"
include "_core_parser.pxi"
