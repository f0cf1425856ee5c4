# Declarations of the C-level JSON helpers that generated schema codecs cimport.
# Bodies live in _cjson.pyx; the few tiny ones every field calls are inline here.
#
# The contract with generated code: a writer or reader either finishes, or
# raises -- Unsupported (via unsupported()) when the value or the input is not
# the plain case it handles, or whatever a Python call it made raised.
# ClassCodec then hands the whole value or document to the run-time codec,
# which gives the same result or the exact error, so compiled code never has
# to render a message or a path. One exception: a recursive class (a tree)
# nested deeper than CLASS_DEPTH is a TooDeep EncodeError (TooDeepToDecode
# DecodeError) raised here (see enter() and enter_tree() below), as the
# fallback would recurse through this code again.
#
# Depth: the parser counts arrays and objects (MAX_DEPTH, then the run-time
# codec decides), the Any writer counts its levels, class writers of
# recursive classes count theirs in Buffer.depth, their readers in
# Parser.trees, and their copies take the depth as an argument -- every
# recursion in C is bounded, so no input and no value can overflow a thread's
# C stack. The run-time (Python) codec re-enters ClassCodec.read and write once
# per level of a recursive class: those levels are counted per thread
# (open_level) and every entry point starts its own count from there, so all
# of them share the one CLASS_DEPTH limit.

from libc.string cimport memcpy, strlen

cdef enum:
    STACK_SIZE = 512  # encoder output stays on the C stack up to this size
    MAX_DEPTH = 512   # deeper nesting goes to the run-time codec (ujson stops at 1024)
    CLASS_DEPTH = 256  # a recursive class nested deeper is an Encode/DecodeError (C stack)


ctypedef struct Buffer:
    char* data
    Py_ssize_t size
    Py_ssize_t capacity
    int depth  # recursive classes being written (they nest as deep as the data)
    char stack[STACK_SIZE]


ctypedef struct Parser:
    const unsigned char* pos
    const unsigned char* end
    int depth
    int trees  # recursive classes being read (they nest as deep as the data)


ctypedef int (*Writer)(Buffer* buf, object value) except -1
ctypedef object (*Reader)(Parser* p)

cdef object MISSING  # a field not seen in the document (yet)


cdef class ClassCodec:
    """The compiled codec of one attrs class: entry points, keys, instance building."""
    cdef readonly object cls
    cdef Writer writer
    cdef Reader reader
    cdef tuple names             # attribute names, declaration order
    cdef tuple keys              # JSON keys as UTF-8 bytes, same order
    cdef const char** key_data   # their bytes and sizes, for match_key
    cdef Py_ssize_t* key_sizes
    cdef Py_ssize_t count
    cdef Py_ssize_t* offsets     # slot offset of each attribute, or 0: set it generically
    cdef object _runtime         # the run-time codec, made on first need
    cdef object _runtime_generation  # codecs._generation it was made in
    cdef readonly Py_ssize_t fallbacks  # values and documents handed to it
    cdef bint recursive          # a tree: its run-time codec re-enters per level

    cdef int setup(self, object cls, tuple names, tuple keys) except -1
    cdef int write_value(self, Buffer* buf, object value) except -1
    cdef object read_value(self, Parser* p)
    cdef object runtime(self)
    cdef object written(self, object value)
    cdef object encode(self, object value)
    cdef object decode(self, object data)
    cdef int open_level(self, bint decoding) except -1
    cdef void close_level(self) noexcept
    cdef object new(self)
    cdef int set(self, object instance, Py_ssize_t index, object value) except -1


cdef ClassCodec class_codec(
    object cls, tuple names, tuple keys, Writer writer, Reader reader
)


cdef class Part:
    """The registry's write/read/copy for a type compiled code leaves to it."""
    cdef object node
    cdef object _part
    cdef object _generation

    cdef object get(self)


cdef Part part_of(object node)


# --- errors, buffer -------------------------------------------------------------

cdef int unsupported() except -1
cdef int too_deep(object cls, bint copying) except -1
cdef int too_deep_to_decode(object cls) except -1
cdef int grow(Buffer* buf, Py_ssize_t extra) except -1


# Recursive classes (trees) nest as deep as the data goes. Compiled code counts
# their levels and refuses more than CLASS_DEPTH with an EncodeError of its own
# (TooDeep), which is final: handing such a value to the run-time codec would
# come back here for every nested level, on the same C stack. Their readers
# count the same levels and refuse a deeper document with a DecodeError of its
# own (TooDeepToDecode), final for the same reason.

cdef inline int enter(Buffer* buf, object cls) except -1:
    """Count a level of a recursive class being written."""
    buf.depth += 1
    if buf.depth > CLASS_DEPTH:
        too_deep(cls, False)
    return 0


cdef inline void leave(Buffer* buf) noexcept:
    buf.depth -= 1


cdef inline int enter_tree(Parser* p, object cls) except -1:
    """Count a level of a recursive class being read (as enter() does for writing)."""
    p.trees += 1
    if p.trees > CLASS_DEPTH:
        too_deep_to_decode(cls)
    return 0


cdef inline void leave_tree(Parser* p) noexcept:
    p.trees -= 1


cdef inline int check_copy_depth(int depth, object cls) except -1:
    """Refuse to copy a recursive class below ``depth`` levels of recursive classes
    when that makes more than CLASS_DEPTH levels (as enter() counts them)."""
    if depth >= CLASS_DEPTH:
        too_deep(cls, True)
    return 0


cdef inline int reserve(Buffer* buf, Py_ssize_t extra) except -1:
    if buf.size + extra > buf.capacity:
        return grow(buf, extra)
    return 0


cdef inline int append(Buffer* buf, const char* text, Py_ssize_t size) except -1:
    reserve(buf, size)
    memcpy(buf.data + buf.size, text, size)
    buf.size += size
    return 0


cdef inline int write_raw(Buffer* buf, const char* text) except -1:
    """Append a C string literal (the compiler folds strlen of a literal)."""
    return append(buf, text, strlen(text))


cdef inline int close(Buffer* buf, char bracket) except -1:
    """End an array or object: the trailing comma, if any, becomes ``bracket``."""
    if buf.data[buf.size - 1] == b',':
        buf.data[buf.size - 1] = bracket
        return 0
    reserve(buf, 1)
    buf.data[buf.size] = bracket
    buf.size += 1
    return 0


# --- writing values -------------------------------------------------------------

cdef int write_str(Buffer* buf, object value) except -1
cdef int write_key(Buffer* buf, object key) except -1
cdef int write_int(Buffer* buf, object value) except -1
cdef int write_float(Buffer* buf, object value) except -1
cdef int write_bool(Buffer* buf, object value) except -1
cdef int write_none(Buffer* buf, object value) except -1
cdef int write_bytes(Buffer* buf, object value) except -1
cdef int write_datetime(Buffer* buf, object value) except -1
cdef int write_enum(Buffer* buf, object enum_cls, object value) except -1
cdef int write_any(Buffer* buf, object value) except -1
cdef int write_part(Buffer* buf, Part part, object value) except -1


# --- parser primitives ----------------------------------------------------------

cdef inline void skip_ws(Parser* p) noexcept:
    cdef const unsigned char* s = p.pos
    while s < p.end and (s[0] == b' ' or s[0] == b'\n' or s[0] == b'\r' or s[0] == b'\t'):
        s += 1
    p.pos = s


cdef inline bint _open(Parser* p, unsigned char opening, unsigned char closing) except -1:
    skip_ws(p)
    if p.pos >= p.end or p.pos[0] != opening:
        unsupported()
    p.pos += 1
    skip_ws(p)
    if p.pos < p.end and p.pos[0] == closing:
        p.pos += 1
        return False
    p.depth += 1
    if p.depth > MAX_DEPTH:
        unsupported()
    return True


cdef inline bint _next(Parser* p, unsigned char closing) except -1:
    skip_ws(p)
    if p.pos < p.end:
        if p.pos[0] == b',':
            p.pos += 1
            return True
        if p.pos[0] == closing:
            p.pos += 1
            p.depth -= 1
            return False
    unsupported()


cdef inline bint open_object(Parser* p) except -1:
    """Consume ``{``; False if the object is empty (its ``}`` consumed too)."""
    return _open(p, b'{', b'}')


cdef inline bint next_member(Parser* p) except -1:
    """Consume ``,`` (True: another member follows) or the closing ``}`` (False)."""
    return _next(p, b'}')


cdef inline bint open_array(Parser* p) except -1:
    """Consume ``[``; False if the array is empty (its ``]`` consumed too)."""
    return _open(p, b'[', b']')


cdef inline bint next_item(Parser* p) except -1:
    """Consume ``,`` (True: another item follows) or the closing ``]`` (False)."""
    return _next(p, b']')


cdef inline bint at_null(Parser* p) except -1:
    """Consume ``null`` if it comes next; tell whether it did."""
    skip_ws(p)
    if p.end - p.pos >= 4 and p.pos[0] == b'n':
        if p.pos[1] == b'u' and p.pos[2] == b'l' and p.pos[3] == b'l':
            p.pos += 4
            return True
    return False


cdef Py_ssize_t match_key(Parser* p, ClassCodec codec, Py_ssize_t expected) except -2
cdef object read_key(Parser* p)
cdef int skip_value(Parser* p) except -1


# --- reading values -------------------------------------------------------------

cdef object read_str(Parser* p)
cdef object read_int(Parser* p)
cdef object read_float(Parser* p)
cdef object read_bool(Parser* p)
cdef object read_none(Parser* p)
cdef object read_bytes(Parser* p)
cdef object read_datetime(Parser* p)
cdef object read_enum(Parser* p, object enum_cls)
cdef object read_any(Parser* p)
cdef object read_part(Parser* p, Part part)


# --- UUID, Decimal, date, time, timedelta, Literal, unions (_cjson_types.pxi) --------

cdef int write_uuid(Buffer* buf, object value) except -1
cdef int write_decimal(Buffer* buf, object value) except -1
cdef int write_date(Buffer* buf, object value) except -1
cdef int write_time(Buffer* buf, object value) except -1
cdef int write_timedelta(Buffer* buf, object value) except -1
cdef object read_uuid(Parser* p)
cdef object read_decimal(Parser* p)
cdef object read_date(Parser* p)
cdef object read_time(Parser* p)
cdef object read_timedelta(Parser* p)
cdef int write_literal(Buffer* buf, frozenset allowed, object value) except -1
cdef object read_literal(Parser* p, frozenset allowed)
cpdef frozenset literal_values(object cls, str name, tuple path)
cpdef frozenset literal_set(tuple values)
cdef bint in_literal(frozenset allowed, object value) except -1
cpdef object field_type_at(object cls, str name, tuple path)
cpdef Part part_at(object cls, str name, tuple path)


# Unions: the writer picks the member by the value's exact type (value_kind),
# the reader by the JSON kind of what comes next (peek_kind).
cdef enum:
    V_OTHER, V_STR, V_INT, V_FLOAT, V_BOOL, V_NONE, V_BYTES, V_DATETIME, V_UUID
    V_DECIMAL, V_DATE, V_TIME, V_TIMEDELTA, V_LIST, V_TUPLE, V_SET, V_FROZENSET
    V_DICT
cdef enum:
    J_STRING, J_INTEGER, J_FLOAT, J_BOOL, J_NULL, J_ARRAY, J_OBJECT
cdef int value_kind(object value) noexcept
cdef int peek_kind(Parser* p) except -1


# --- copying, and what generated modules look up at import ------------------------

cdef object copy_any(object value)
cdef object copy_part(Part part, object value)
cpdef object field_type(object cls, str name, int depth)
cpdef object field_default(object cls, str name)
