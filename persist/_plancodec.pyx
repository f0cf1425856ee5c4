# cython: language_level=3, boundscheck=False, wraparound=False
"""Compiled codecs driven by a plan at run time: no build step, no C compiler.

A class nobody compiled gets a :class:`PlanCodec`: a ``_cjson.ClassCodec``
whose writer and reader walk a table made from the class's ClassPlan -- per
field its JSON key, slot, default and a :class:`Node` (what a generated
module spells out as code). A :class:`ValueCodec` serves a plain type at the
top of a map (``str``, ``list[int]``, ...) with the same nodes. Both call the
helpers of ``persist._cjson`` the generated modules call, so they write the
same bytes and take the same inputs; whatever they do not take goes, as
there, to the run-time Python codec, which renders the exact error.

Nodes handle the kinds of the plan natively; any other kind (opaque types,
registered codecs, kinds added later) goes through the registry's part
(``_cj.Part``). A nested attrs class is served by its own ClassCodec (a
compiled one, or another PlanCodec) given by the registry, bound late:
``PlanCodec.bind`` fills the table after the codec exists, so classes that
contain themselves work. Tables are immutable once bound; until then the
codec hands every value to the run-time codec.
"""

cimport cython
cimport persist._cjson as _cj
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF, Py_XDECREF
from libc.string cimport memcmp, memset

from persist._json import quote
from persist.codegen.emit_cython import json_key_bytes
from persist.codegen.plan import Default, JSONKind, Kind, recursive, union_choices


cdef enum NodeKind:
    STR, INT, FLOAT, BOOL, NONE, BYTES, DATETIME, ENUM, ANY,
    LIST, TUPLE, SET, FROZENSET, DICT, OPTIONAL, CLASS, PART,
    UUID, DECIMAL, DATE, TIME, TIMEDELTA, LITERAL, UNION


cdef dict _KINDS = {
    Kind.STR: STR, Kind.INT: INT, Kind.FLOAT: FLOAT, Kind.BOOL: BOOL,
    Kind.NONE: NONE, Kind.BYTES: BYTES, Kind.DATETIME: DATETIME, Kind.ENUM: ENUM,
    Kind.ANY: ANY, Kind.LIST: LIST, Kind.TUPLE: TUPLE, Kind.SET: SET,
    Kind.FROZENSET: FROZENSET, Kind.DICT: DICT, Kind.OPTIONAL: OPTIONAL,
    Kind.UUID: UUID, Kind.DECIMAL: DECIMAL, Kind.DATE: DATE, Kind.TIME: TIME,
    Kind.TIMEDELTA: TIMEDELTA, Kind.LITERAL: LITERAL, Kind.UNION: UNION,
}
# A union member's claim on a value: the exact-type code _cj.value_kind gives
# (as generated code tests it), or one of these for what the type decides.
cdef enum:
    CLAIM_NEVER = -1, CLAIM_CLASS = -2, CLAIM_ENUM = -3, CLAIM_LITERAL = -4
cdef dict _CLAIMS = {
    Kind.STR: _cj.V_STR, Kind.INT: _cj.V_INT, Kind.FLOAT: _cj.V_FLOAT,
    Kind.BOOL: _cj.V_BOOL, Kind.NONE: _cj.V_NONE, Kind.BYTES: _cj.V_BYTES,
    Kind.DATETIME: _cj.V_DATETIME, Kind.UUID: _cj.V_UUID,
    Kind.DECIMAL: _cj.V_DECIMAL, Kind.DATE: _cj.V_DATE, Kind.TIME: _cj.V_TIME,
    Kind.TIMEDELTA: _cj.V_TIMEDELTA, Kind.LIST: _cj.V_LIST,
    Kind.TUPLE: _cj.V_TUPLE, Kind.SET: _cj.V_SET, Kind.FROZENSET: _cj.V_FROZENSET,
    Kind.DICT: _cj.V_DICT, Kind.CLASS: CLAIM_CLASS, Kind.ENUM: CLAIM_ENUM,
    Kind.LITERAL: CLAIM_LITERAL,
}
cdef dict _JSON_KINDS = {
    JSONKind.STRING: _cj.J_STRING, JSONKind.INTEGER: _cj.J_INTEGER,
    JSONKind.FLOAT: _cj.J_FLOAT, JSONKind.BOOL: _cj.J_BOOL,
    JSONKind.NULL: _cj.J_NULL, JSONKind.ARRAY: _cj.J_ARRAY,
    JSONKind.OBJECT: _cj.J_OBJECT,
}
cdef dict _DEFAULTS = {Default.REQUIRED: 0, Default.VALUE: 1, Default.FACTORY: 2}
cdef enum:
    REQUIRED, VALUE, FACTORY
    STACK_FIELDS = 32  # a class with more fields reads into a heap array


ctypedef struct FieldSpec:
    const char* prefix      # b'{"key":' for the first field, b',"key":' after
    Py_ssize_t prefix_size
    int default_kind        # REQUIRED, VALUE or FACTORY


@cython.final
cdef class Node:
    """How values of one planned type are written, read and copied."""
    cdef int kind
    cdef bint immutable        # shared by a copy (TypeNode.immutable)
    cdef bint copied_shallow   # copied as the container around the same items
    cdef Node item             # list/tuple/set/frozenset item, dict value, Optional's type
    cdef object type           # the Enum class
    cdef tuple texts           # an Enum's str members: (JSON text as bytes, member) pairs
    cdef _cj.ClassCodec codec  # a nested class: its ClassCodec
    cdef _cj.Part part         # the registry's part (PART; a nested class's copy)
    cdef frozenset allowed     # a Literal's (type, value) pairs
    cdef tuple members         # a union's member Nodes
    cdef int claim             # as a union member: which values are its (_CLAIMS)
    cdef int readers[7]        # a union: member index per JSON kind (J_*), or -1


cdef Node make_node(object type_node, object nested, object registered):
    """The Node of a plan's TypeNode.

    :param nested: ``nested(cls)`` gives the ClassCodec of a nested attrs
        class, or None: the registry's part serves it
    :param registered: types with a registered codec (served by their part)
    """
    cdef Node node = Node.__new__(Node)
    node.immutable = type_node.immutable
    node.copied_shallow = type_node.copied_shallow
    node.type = type_node.type
    node.part = _cj.part_of(type_node)
    if type_node.type in registered:
        node.kind = PART
    elif type_node.kind is Kind.CLASS:
        node.codec = nested(type_node.type)
        node.kind = CLASS if node.codec is not None else PART
    else:
        node.kind = _KINDS.get(type_node.kind, PART)
    node.claim = _CLAIMS.get(type_node.kind, CLAIM_NEVER)
    if node.kind == ENUM:
        node.texts = _member_texts(type_node.type)
    elif node.kind == LITERAL:
        node.allowed = _cj.literal_set(type_node.values)
    elif node.kind == UNION:
        node.members = tuple(
            [make_node(member, nested, registered) for member in type_node.members]
        )
        for i in range(7):
            node.readers[i] = -1
        for json_kind, member in union_choices(type_node).items():
            node.readers[<int>_JSON_KINDS[json_kind]] = type_node.members.index(member)
    if node.kind == PART:
        node.part.get()  # a type nothing can store fails now, as the Python codec does
    elif type_node.item is not None:
        node.item = make_node(type_node.item, nested, registered)
    return node


cdef tuple _member_texts(object enum_cls):
    """(JSON text, member) of each member whose value is a str, as the writer spells it."""
    texts = []
    for value, member in getattr(enum_cls, "_value2member_map_", {}).items():
        if type(value) is str:
            text = quote(value).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
            try:
                texts.append((text.encode(), member))
            except UnicodeEncodeError:  # a lone surrogate: never in valid input
                pass
    return tuple(texts)


# --- writing -------------------------------------------------------------------


cdef int write_node(_cj.Buffer* buf, Node node, object value) except -1:
    """Append the JSON of ``value`` as ``node``'s type (as generated code would)."""
    cdef int kind = node.kind
    if kind == STR:
        return _cj.write_str(buf, value)
    elif kind == INT:
        return _cj.write_int(buf, value)
    elif kind == FLOAT:
        return _cj.write_float(buf, value)
    elif kind == BOOL:
        return _cj.write_bool(buf, value)
    elif kind == NONE:
        return _cj.write_none(buf, value)
    elif kind == BYTES:
        return _cj.write_bytes(buf, value)
    elif kind == DATETIME:
        return _cj.write_datetime(buf, value)
    elif kind == ENUM:
        return _cj.write_enum(buf, node.type, value)
    elif kind == ANY:
        return _cj.write_any(buf, value)
    elif kind == CLASS:
        return node.codec.write_value(buf, value)
    elif kind == OPTIONAL:
        if value is None:
            return _cj.write_raw(buf, b"null")
        return write_node(buf, node.item, value)
    elif kind == DICT:
        if type(value) is not dict:
            _cj.unsupported()
        _cj.write_raw(buf, b"{")
        for key, item in (<dict>value).items():
            _cj.write_key(buf, key)
            write_node(buf, node.item, item)
            _cj.write_raw(buf, b",")
        return _cj.close(buf, b"}")
    elif kind == LIST or kind == TUPLE or kind == SET or kind == FROZENSET:
        return _write_array(buf, node, value)
    elif kind == UUID:
        return _cj.write_uuid(buf, value)
    elif kind == DECIMAL:
        return _cj.write_decimal(buf, value)
    elif kind == DATE:
        return _cj.write_date(buf, value)
    elif kind == TIME:
        return _cj.write_time(buf, value)
    elif kind == TIMEDELTA:
        return _cj.write_timedelta(buf, value)
    elif kind == LITERAL:
        return _cj.write_literal(buf, node.allowed, value)
    elif kind == UNION:
        return write_node(buf, _member_of(node, value), value)
    return _cj.write_part(buf, node.part, value)


cdef Node _member_of(Node union, object value):
    """The member of ``union`` that writes ``value``: by its exact type, as
    generated code chooses (Unsupported for a subclass, an int for a float)."""
    cdef int kind = _cj.value_kind(value)
    cdef Node member
    for member in union.members:
        if member.claim >= 0:
            if member.claim == kind:
                return member
        elif member.claim == CLAIM_CLASS:
            if type(value) is member.type:
                return member
        elif member.claim == CLAIM_ENUM:
            if isinstance(value, member.type):
                return member
        elif member.claim == CLAIM_LITERAL:
            if _cj.in_literal(member.allowed, value):
                return member
    _cj.unsupported()


cdef int _write_array(_cj.Buffer* buf, Node node, object value) except -1:
    """Write an exact list, tuple, set or frozenset (lists and tuples by index)."""
    cdef int kind = node.kind
    cdef Node item_node = node.item
    if kind == LIST:
        if type(value) is not list:
            _cj.unsupported()
        _cj.write_raw(buf, b"[")
        for item in <list>value:
            _write_item(buf, item_node, item)
        return _cj.close(buf, b"]")
    if kind == TUPLE:
        if type(value) is not tuple:
            _cj.unsupported()
        _cj.write_raw(buf, b"[")
        for item in <tuple>value:
            _write_item(buf, item_node, item)
        return _cj.close(buf, b"]")
    if type(value) is not (set if kind == SET else frozenset):
        _cj.unsupported()
    _cj.write_raw(buf, b"[")
    for item in value:
        _write_item(buf, item_node, item)
    return _cj.close(buf, b"]")


cdef inline int _write_item(_cj.Buffer* buf, Node node, object item) except -1:
    write_node(buf, node, item)
    return _cj.write_raw(buf, b",")


# --- reading -------------------------------------------------------------------


cdef object read_node(_cj.Parser* p, Node node):
    """Parse a value of ``node``'s type at the parser's position (as generated code would)."""
    cdef int kind = node.kind
    if kind == STR:
        return _cj.read_str(p)
    elif kind == INT:
        return _cj.read_int(p)
    elif kind == FLOAT:
        return _cj.read_float(p)
    elif kind == BOOL:
        return _cj.read_bool(p)
    elif kind == NONE:
        return _cj.read_none(p)
    elif kind == BYTES:
        return _cj.read_bytes(p)
    elif kind == DATETIME:
        return _cj.read_datetime(p)
    elif kind == ENUM:
        return _read_enum(p, node)
    elif kind == ANY:
        return _cj.read_any(p)
    elif kind == CLASS:
        return node.codec.read_value(p)
    elif kind == OPTIONAL:
        if _cj.at_null(p):
            return None
        return read_node(p, node.item)
    elif kind == DICT:
        return _read_dict(p, node.item)
    elif kind == LIST or kind == TUPLE or kind == SET or kind == FROZENSET:
        return _read_array(p, node)
    elif kind == UUID:
        return _cj.read_uuid(p)
    elif kind == DECIMAL:
        return _cj.read_decimal(p)
    elif kind == DATE:
        return _cj.read_date(p)
    elif kind == TIME:
        return _cj.read_time(p)
    elif kind == TIMEDELTA:
        return _cj.read_timedelta(p)
    elif kind == LITERAL:
        return _cj.read_literal(p, node.allowed)
    elif kind == UNION:
        index = node.readers[_cj.peek_kind(p)]
        if index < 0:
            _cj.unsupported()  # the run-time codec says why
        return read_node(p, <Node>node.members[index])
    return _cj.read_part(p, node.part)


cdef object _read_enum(_cj.Parser* p, Node node):
    """Read an Enum member: a str member's exact JSON text is matched in place.

    The closing quote ends the text, so a match is that member's value
    exactly; anything else (numbers, escapes, unknown values) is read by
    ``_cj.read_enum``, as generated code reads it.
    """
    cdef const unsigned char* s
    cdef Py_ssize_t size
    cdef bytes text
    _cj.skip_ws(p)
    s = p.pos
    if s < p.end and s[0] == b'"':
        for pair in node.texts:
            text = <bytes>(<tuple>pair)[0]
            size = PyBytes_GET_SIZE(text)
            if p.end - s >= size and memcmp(s, PyBytes_AS_STRING(text), size) == 0:
                p.pos = s + size
                return (<tuple>pair)[1]
    return _cj.read_enum(p, node.type)


cdef dict _read_dict(_cj.Parser* p, Node item):
    """Parse an object of str keys (null: an empty dict, as Go writes a nil map)."""
    cdef dict items = {}
    if _cj.at_null(p):
        return items
    if _cj.open_object(p):
        while True:
            key = _cj.read_key(p)
            items[key] = read_node(p, item)
            if not _cj.next_member(p):
                break
    return items


cdef object _read_array(_cj.Parser* p, Node node):
    """Parse an array as a list, tuple, set or frozenset (null: an empty one)."""
    cdef list items = []
    if not _cj.at_null(p) and _cj.open_array(p):
        while True:
            items.append(read_node(p, node.item))
            if not _cj.next_item(p):
                break
    if node.kind == LIST:
        return items
    if node.kind == TUPLE:
        return tuple(items)
    if node.kind == SET:
        return set(items)
    return frozenset(items)


# --- copying -------------------------------------------------------------------


cdef object copy_node(Node node, object value, int depth):
    """A copy of ``value`` that update() may mutate, ``depth`` tree levels down."""
    if node.immutable:
        return value
    cdef int kind = node.kind
    if kind == ANY:
        return _cj.copy_any(value)
    if kind == CLASS and isinstance(node.codec, PlanCodec):
        return (<PlanCodec>node.codec).copy_at(value, depth)
    if kind == UNION:
        return copy_node(_member_of(node, value), value, depth)
    if kind == CLASS or kind == PART:
        return _cj.copy_part(node.part, value)
    if kind == OPTIONAL:
        return None if value is None else copy_node(node.item, value, depth)
    if node.copied_shallow:
        if kind == LIST:
            return list(value)
        if kind == SET:
            return set(value)
        return dict(value)
    if kind == DICT:
        return {key: copy_node(node.item, item, depth) for key, item in value.items()}
    copied = [copy_node(node.item, item, depth) for item in value]
    if kind == LIST:
        return copied
    if kind == TUPLE:
        return tuple(copied)
    if kind == SET:
        return set(copied)
    return frozenset(copied)


# --- classes -------------------------------------------------------------------


@cython.final
cdef class PlanCodec(_cj.ClassCodec):
    """The compiled codec of an attrs class, driven by its ClassPlan (see the module)."""
    cdef tuple nodes         # a Node per field; None until bound
    cdef FieldSpec* specs    # per field: written prefix, default kind
    cdef tuple prefixes      # the prefixes' bytes (specs point into them)
    cdef tuple defaults      # per field: the default value or factory
    cdef tuple positional    # field indexes __init__ takes by position
    cdef tuple keywords      # (index, init name) pairs __init__ takes by keyword
    cdef tuple late          # indexes of init=False fields, set after __init__
    cdef bint plain_init, immutable
    cdef object _plan

    def __cinit__(self):
        self.specs = NULL

    def __dealloc__(self):
        PyMem_Free(self.specs)

    def __init__(self, plan):
        """Make the codec of ``plan`` (a ClassPlan); it serves values once bound."""
        fields = plan.fields
        self.setup(plan.cls, tuple([field.name for field in fields]),
                   tuple([field.json_key for field in fields]))
        self.prefixes = tuple([
            (b"{" if number == 0 else b",") + json_key_bytes(field) + b":"
            for number, field in enumerate(fields)
        ])
        self.defaults = tuple([field.default_value for field in fields])
        self.specs = <FieldSpec*>PyMem_Malloc((self.count + 1) * sizeof(FieldSpec))
        if self.specs == NULL:
            raise MemoryError()
        for number, field in enumerate(fields):
            self.specs[number].prefix = PyBytes_AS_STRING(self.prefixes[number])
            self.specs[number].prefix_size = PyBytes_GET_SIZE(self.prefixes[number])
            self.specs[number].default_kind = _DEFAULTS[field.default]
        self.positional = tuple([
            number for number, field in enumerate(fields)
            if field.init_name is not None and not field.kw_only
        ])
        self.keywords = tuple([
            (number, field.init_name) for number, field in enumerate(fields)
            if field.init_name is not None and field.kw_only
        ])
        self.late = tuple([
            number for number, field in enumerate(fields) if field.init_name is None
        ])
        self.plain_init = plan.plain_init
        self.recursive = recursive(plan)
        self.immutable = plan.immutable
        self._plan = plan

    def bind(self, nested, registered):
        """Make the field nodes (see make_node); once, after the codec exists.

        A nested class may be this one, or another still being bound.
        """
        self.nodes = tuple([
            make_node(field.node, nested, registered) for field in self._plan.fields
        ])

    cdef int write_value(self, _cj.Buffer* buf, object value) except -1:
        cdef Py_ssize_t i, offset
        cdef PyObject* slot
        cdef tuple nodes = self.nodes
        if nodes is None or type(value) is not self.cls:
            _cj.unsupported()
        if self.recursive:
            _cj.enter(buf, self.cls)  # a tree: count the levels
        for i in range(self.count):
            _cj.append(buf, self.specs[i].prefix, self.specs[i].prefix_size)
            offset = self.offsets[i]
            if offset:
                slot = (<PyObject**>((<char*><PyObject*>value) + offset))[0]
                if slot == NULL:
                    _cj.unsupported()  # unset: the run-time codec's AttributeError
                write_node(buf, <Node>nodes[i], <object>slot)
            else:
                write_node(buf, <Node>nodes[i], getattr(value, self.names[i]))
        _cj.write_raw(buf, b"}" if self.count else b"{}")
        if self.recursive:
            _cj.leave(buf)
        return 0

    cdef object read_value(self, _cj.Parser* p):
        cdef PyObject* stack[STACK_FIELDS]
        cdef PyObject** values = stack
        cdef Py_ssize_t i
        if self.nodes is None:
            _cj.unsupported()
        if self.recursive:
            _cj.enter_tree(p, self.cls)  # a tree: count the levels
        if self.count > STACK_FIELDS:
            values = <PyObject**>PyMem_Malloc(self.count * sizeof(PyObject*))
            if values == NULL:
                raise MemoryError()
        memset(values, 0, self.count * sizeof(PyObject*))
        try:
            self._read_fields(p, values)
            if self.recursive:
                _cj.leave_tree(p)
            return self._build(values)
        finally:
            for i in range(self.count):
                Py_XDECREF(values[i])
            if values != stack:
                PyMem_Free(values)

    cdef int _read_fields(self, _cj.Parser* p, PyObject** values) except -1:
        """Read the members into ``values`` (new references), then the defaults."""
        cdef Py_ssize_t index = -1, i
        cdef tuple nodes = self.nodes
        if _cj.open_object(p):
            while True:
                index = _cj.match_key(p, self, index + 1)
                if index >= 0:
                    value = read_node(p, <Node>nodes[index])
                    Py_INCREF(value)
                    Py_XDECREF(values[index])
                    values[index] = <PyObject*>value
                else:
                    _cj.skip_value(p)
                if not _cj.next_member(p):
                    break
        for i in range(self.count):
            if values[i] != NULL:
                continue
            if self.specs[i].default_kind == REQUIRED:
                _cj.unsupported()  # the run-time codec says it is missing
            value = self.defaults[i]
            if self.specs[i].default_kind == FACTORY:
                value = value()
            Py_INCREF(value)
            values[i] = <PyObject*>value
        return 0

    cdef object _build(self, PyObject** values):
        """The instance, built as generated code builds it."""
        cdef Py_ssize_t i
        if self.plain_init:
            result = self.new()
            for i in range(self.count):
                self.set(result, i, <object>values[i])
            return result
        arguments = tuple([<object>values[i] for i in self.positional])
        keywords = {name: <object>values[i] for i, name in self.keywords}
        result = self.cls(*arguments, **keywords)  # validators, converters: errors fall back
        for i in self.late:  # init=False: set after __init__, as attrs itself would
            self.set(result, i, <object>values[i])
        return result

    cdef object copy_at(self, object value, int depth):
        """A copy of an instance ``depth`` tree levels down (see emit_cython's copies)."""
        cdef Py_ssize_t i
        cdef tuple nodes = self.nodes
        if self.immutable:
            return value
        if nodes is None:
            return self.runtime().copy(value)
        if self.recursive:
            _cj.check_copy_depth(depth, self.cls)  # a tree
            depth += 1
        result = self.new()
        for i in range(self.count):
            self.set(result, i, copy_node(<Node>nodes[i], getattr(value, self.names[i]), depth))
        return result

    def copy(self, value):
        """Return a copy of an instance that update() may mutate."""
        return self.copy_at(value, 0)


# --- plain types at the top of a map ---------------------------------------------


@cython.final
cdef class ValueCodec(_cj.ClassCodec):
    """The compiled codec of a plain type (``str``, ``dict[str, int]``, ...).

    ``python`` is the builtin Python codec of the type, its run-time codec:
    it takes what the nodes do not and renders the errors.
    """
    cdef Node node
    cdef object python

    def __init__(self, type_node, python, nested, registered):
        """Serve ``type_node``'s type; ``nested``, ``registered``: see make_node."""
        self.setup(type_node.type, (), ())
        self.python = python
        self.node = make_node(type_node, nested, registered)

    cdef object runtime(self):
        return self.python

    cdef int write_value(self, _cj.Buffer* buf, object value) except -1:
        return write_node(buf, self.node, value)

    cdef object read_value(self, _cj.Parser* p):
        return read_node(p, self.node)
