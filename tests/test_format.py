"""The go-persist file format: Go-written files, exact bytes, torn tails,
corruption, keys and values that must be refused."""

import base64
import datetime
import json
import math
import typing

import pytest
from conftest import (
    CONTROL_CHARS,
    GO_DIR,
    HEADER,
    Address,
    GoUser,
    Product,
    Profile,
    Session,
    SystemConfig,
    User,
    delete_record,
    open_quiet,
    parse_wal,
    read_bytes,
    set_record,
    user_json,
)

import persist

MULTI_MAP_TYPES = {
    "users": GoUser,
    "products": Product,
    "sessions": Session,
    "profiles": Profile,
    "strings": str,
    "ints": int,
}


def expected_state(name: str) -> dict:
    """The {map: {key: value}} state a Go fixture must load into."""
    return json.loads((GO_DIR / f"{name}.expected.json").read_text("utf-8"))


def go_user(d: dict) -> GoUser:
    """GoUser from its Go JSON object."""
    return GoUser(name=d["Name"], email=d["Email"], age=d["Age"])


UTC = datetime.UTC
PLUS3 = datetime.timezone(datetime.timedelta(hours=3))

EXPECTED_PROFILES = {
    "p-1": Profile(
        id=1,
        nick="neo",
        score=-0.5,
        active=True,
        tags=["a", "b"],
        attributes={"x": 1, "y": -2},
        home=Address(street="Main St 1", city="Zion"),
        work=Address(street="Office", city="Matrix"),
        avatar=b"\x00\x01\x02\xfa\xff",
        # Go wrote nanoseconds (.535897932): truncated to microseconds on load
        created=datetime.datetime(2025, 3, 14, 15, 9, 26, 535897, tzinfo=UTC),
        nickname="the one",
        extra={"k": "v"},
    ),
    "p-2": Profile(
        id=2,
        nick="empty",
        score=0.0,
        active=False,
        tags=[],  # Go nil slice (null) -> empty list
        attributes={},  # Go nil map (null) -> empty dict
        home=Address(street="", city=""),
        work=None,  # nil pointer
        avatar=b"",  # nil []byte -> empty bytes
        created=datetime.datetime(2020, 1, 2, 3, 4, 5, tzinfo=PLUS3),
        nickname="",  # omitempty: missing, attrs default
        extra={},
    ),
}


def write_wal(path, *records: bytes, header: bytes = HEADER) -> bytes:
    """Write a WAL file made of header + records; return its bytes."""
    data = header + b"".join(records)
    path.write_bytes(data)
    return data


# --------------------------------------------------------------------------
# Files written by Go
# --------------------------------------------------------------------------


def test_single_users_loads_typed(go_file):
    """single_users.db loads into the expected GoUser values."""
    path = go_file("single_users.db")
    expected = {k: go_user(v) for k, v in expected_state("single_users")[""].items()}
    with persist.open_single_map(path, GoUser) as users:
        assert dict(users.items()) == expected
        assert len(users) == 4
        assert "dave" not in users  # set, then deleted
        assert users["alice"].age == 29  # the later of two sets wins
        assert users["ключ with spaces"].name == "Key\twith\ttabs\nand newline"
        assert users["bob"].name == "Bob <Builder> & Co"
        assert users["carol"].name == 'Carol "C" Ünïcødé 😀'


def test_single_users_loads_as_any(go_file):
    """single_users.db read with typing.Any equals the expected JSON exactly."""
    path = go_file("single_users.db")
    with persist.Store(path) as store:
        m = store.map("", typing.Any)
        assert dict(m.items()) == expected_state("single_users")[""]


@pytest.mark.parametrize("name", ["multi_maps", "multi_maps_shrunk"])
def test_multi_maps_load_as_any(go_file, name):
    """Every map and orphan of a multi-map Go file equals the expected JSON."""
    path = go_file(f"{name}.db")
    expected = expected_state("multi_maps")
    with persist.Store(path) as store:
        maps = {n: store.map(n, typing.Any) for n in MULTI_MAP_TYPES}
        for n, m in maps.items():
            assert dict(m.items()) == expected[n], n
        for key, value in expected["<orphans>"].items():
            assert store.get(key, typing.Any) == value
        # exact: int above 2**53 and floats written by Go as 1e+21 / 1.5e-07
        assert maps["ints"]["big"] == 9007199254740993
        assert maps["products"]["p2"]["Price"] == 1e21
        assert maps["products"]["p3"]["Price"] == 1.5e-07


@pytest.mark.parametrize("name", ["multi_maps", "multi_maps_shrunk"])
def test_multi_maps_load_typed(go_file, name):
    """Typed maps over a Go file decode every value to the matching attrs class."""
    path = go_file(f"{name}.db")
    expected = expected_state("multi_maps")
    with persist.Store(path) as store:
        maps = {n: store.map(n, t) for n, t in MULTI_MAP_TYPES.items()}
        assert dict(maps["users"].items()) == {
            k: go_user(v) for k, v in expected["users"].items()
        }
        assert dict(maps["products"].items()) == {
            k: Product(name=v["Name"], price=v["Price"])
            for k, v in expected["products"].items()
        }
        assert dict(maps["sessions"].items()) == {
            "sess123": Session(user_id="u1", expiration=1718557123)
        }
        assert dict(maps["strings"].items()) == expected["strings"]
        assert dict(maps["ints"].items()) == {"big": 9007199254740993, "neg": -42}
        profiles = dict(maps["profiles"].items())
        assert profiles == EXPECTED_PROFILES
        assert profiles["p-2"].created.utcoffset() == datetime.timedelta(hours=3)
        assert profiles["p-1"].created.utcoffset() == datetime.timedelta(0)
        assert profiles["p-1"].avatar == base64.b64decode("AAEC+v8=")


def test_multi_maps_orphans_read_typed(go_file):
    """Orphan records of a Go file are read with Store.get and a value type."""
    path = go_file("multi_maps.db")
    with persist.Store(path) as store:
        assert store.get("system_config", SystemConfig) == SystemConfig(
            debug=True, max_connections=100
        )
        # Go's Get[string] returns the raw JSON text; a correct reader decodes.
        assert store.get("plain", str) == "just a string"
        with pytest.raises(persist.KeyNotFoundError):
            store.get("gone", int)  # set, then deleted


def test_unregistered_map_records_read_with_full_key(go_file):
    """Store.get("map:key", T) reads a record of a map nobody registered."""
    path = go_file("multi_maps.db")
    with persist.Store(path) as store:
        assert store.get("users:u1", GoUser) == GoUser("Admin", "", 35)
        assert store.get("strings:s1", str) == "some another plain string"
        assert store.get("ints:big", int) == 9007199254740993
        with pytest.raises(persist.KeyNotFoundError):
            store.get("sessions:old", Session)  # deleted


@pytest.mark.parametrize(
    ("name", "stats"),
    [
        ("single_users", persist.Stats(active_keys=4, wal_records=7)),
        ("multi_maps", persist.Stats(active_keys=13, wal_records=18)),
        ("multi_maps_shrunk", persist.Stats(active_keys=13, wal_records=13)),
    ],
)
@pytest.mark.parametrize("register", [False, True])
def test_go_file_stats(go_file, name, stats, register):
    """stats() of a Go file counts live keys (orphans and unregistered maps
    included) and complete records, whether or not its maps are registered."""
    path = go_file(f"{name}.db")
    with persist.Store(path) as store:
        if register:
            types = {"": GoUser} if name == "single_users" else MULTI_MAP_TYPES
            for n, t in types.items():
                store.map(n, t)
        assert store.stats() == stats


@pytest.mark.parametrize(
    "name", ["single_users.db", "multi_maps.db", "multi_maps_shrunk.db"]
)
def test_go_file_unchanged_by_open_and_close(go_file, name):
    """Opening, reading and closing a Go file leaves it byte-identical."""
    path = go_file(name)
    before = read_bytes(path)
    with persist.Store(path) as store:
        for n in ("", *MULTI_MAP_TYPES):
            m = store.map(n, typing.Any)
            m.items()
    assert read_bytes(path) == before


def test_open_single_map_leaves_go_file_unchanged(go_file):
    """open_single_map on a Go file, read and closed, writes nothing."""
    path = go_file("single_users.db")
    before = read_bytes(path)
    with persist.open_single_map(path, GoUser) as users:
        assert len(users.items()) == 4
    assert read_bytes(path) == before


def test_append_to_go_file(go_file):
    """A write to a Go file appends exactly one Go-format record after its bytes."""
    path = go_file("single_users.db")
    before = read_bytes(path)
    with persist.open_single_map(path, GoUser) as users:
        users.set("eve", GoUser(name="Eve", email="eve@example.com", age=7))
        assert read_bytes(path) == before + set_record(
            ":eve", '{"Name":"Eve","Email":"eve@example.com","Age":7}'
        )
        users.delete("bob")
        assert read_bytes(path).endswith(delete_record(":bob"))
    with persist.open_single_map(path, GoUser) as users:
        assert users["eve"] == GoUser(name="Eve", email="eve@example.com", age=7)
        assert "bob" not in users
        assert users["alice"].age == 29


# --------------------------------------------------------------------------
# Exact bytes written
# --------------------------------------------------------------------------


def test_new_file_gets_header_at_open(db_path):
    """A new store file holds exactly the header line once open."""
    with persist.Store(db_path):
        assert read_bytes(db_path) == HEADER
    assert read_bytes(db_path) == HEADER


def test_set_record_bytes(db_path):
    """map.set writes `S name:key\\n{json}\\n` with compact JSON in field order."""
    with persist.Store(db_path) as store:
        users = store.map("users", User)
        users.set("k", User(name="a", email="b", age=3))
        assert read_bytes(db_path) == HEADER + set_record(
            "users:k", '{"name":"a","email":"b","age":3}'
        )


def test_delete_record_bytes(db_path):
    """map.delete writes `D name:key\\n\\n`."""
    with persist.Store(db_path) as store:
        users = store.map("users", User)
        users.set("k", User("a", "b", 3))
        assert users.delete("k") is True
        assert read_bytes(db_path) == (
            HEADER
            + set_record("users:k", user_json("a", "b", 3))
            + delete_record("users:k")
        )


def test_single_map_record_bytes(db_path):
    """The single map's records are keyed `:key` and a str value is a JSON string."""
    with persist.open_single_map(db_path, str) as m:
        m.set("k", "x")
        m.delete("k")
        assert read_bytes(db_path) == HEADER + b'S :k\n"x"\n' + b"D :k\n\n"


def test_orphan_record_bytes(db_path):
    """Store.set/delete write the bare key (no map prefix)."""
    with persist.Store(db_path) as store:
        store.set("cfg", User("a", "b", 3))
        store.set("n", 5)
        store.delete("cfg")
        assert read_bytes(db_path) == (
            HEADER
            + set_record("cfg", user_json("a", "b", 3))
            + set_record("n", "5")
            + delete_record("cfg")
        )
    with persist.Store(db_path) as store:
        assert store.get("n", int) == 5
        with pytest.raises(persist.KeyNotFoundError):
            store.get("cfg", User)


@pytest.mark.parametrize(
    "value",
    [
        "line1\nline2",
        "tab\there\r\n",
        "\u2028 and \u2029 and \x85 and \x00",
        'quote " backslash \\',
        "ünï 😀",
    ],
)
def test_value_is_one_line(db_path, value):
    """A str value with newlines and separators is written on one JSON line."""
    with persist.open_single_map(db_path, str) as m:
        m.set("k", value)
        ((kind, key, line),) = parse_wal(read_bytes(db_path))
        assert (kind, key) == ("S", ":k")
        assert json.loads(line) == value
    with persist.open_single_map(db_path, str) as m:
        assert m["k"] == value


@pytest.mark.parametrize(
    ("key", "fullkey"),
    [
        ("a:b", "users:a:b"),  # a map key may hold ':'; routing uses the first
        ("", "users:"),
        ("ключ with spaces", "users:ключ with spaces"),
        ("\u2028", "users:\u2028"),  # not a control character
        ("\xa0 \x20 \x7e", "users:\xa0 \x20 \x7e"),  # just outside the ranges
    ],
)
def test_map_key_roundtrip(db_path, key, fullkey):
    """Unusual but valid map keys are written verbatim (UTF-8) and read back."""
    with persist.Store(db_path) as store:
        users = store.map("users", User)
        users.set(key, User("a", "b", 1))
        assert read_bytes(db_path) == HEADER + set_record(
            fullkey, user_json("a", "b", 1)
        )
    with persist.Store(db_path) as store:
        users = store.map("users", User)
        assert users.keys() == [key]
        assert users[key] == User("a", "b", 1)


@pytest.mark.parametrize(("key", "fullkey"), [("", ":"), (":x", "::x")])
def test_single_map_key_roundtrip(db_path, key, fullkey):
    """The single map takes the empty key and keys starting with ':'."""
    with persist.open_single_map(db_path, int) as m:
        m.set(key, 1)
        assert read_bytes(db_path) == HEADER + set_record(fullkey, "1")
    with persist.open_single_map(db_path, int) as m:
        assert dict(m.items()) == {key: 1}


def test_empty_orphan_key_is_refused(db_path):
    """Go cannot open a file holding `S \n`, so the plain API refuses the
    empty key (InvalidKeyError) and writes nothing; maps keep it (`m:`)."""
    with persist.Store(db_path) as store:
        with pytest.raises(persist.InvalidKeyError):
            store.set("", 7)
        with pytest.raises(persist.InvalidKeyError):
            store.delete("")
        assert read_bytes(db_path) == HEADER
        store.map("m", int).set("", 7)
        assert read_bytes(db_path) == HEADER + b"S m:\n7\n"
    with persist.Store(db_path) as store:
        assert store.get("m:", int) == 7


def test_bare_keys_load_into_the_single_map(db_path):
    """Go's OpenSingleMap reads bare keys `S k` into its map; the later record
    of `k` and `:k` wins, and a shrink writes them as `:k`."""
    db_path.write_bytes(HEADER + b"S a\n1\nS :b\n2\nS :a\n3\nS b\n4\nS c\n5\nD c\n\n")
    with persist.open_single_map(db_path, int) as m:
        assert dict(m.items()) == {"a": 3, "b": 4}
        m.store.shrink()
    assert read_bytes(db_path) in (
        HEADER + b"S :a\n3\nS :b\n4\n",
        HEADER + b"S :b\n4\nS :a\n3\n",
    )


@pytest.mark.parametrize("size", [4095, 4096, 10_000, 100_000])
def test_long_lines_roundtrip(db_path, size):
    """Values and keys longer than Go's 4,095-byte line limit round-trip."""
    value = "v" * size
    key = "k" * size
    with persist.Store(db_path) as store:
        users = store.map("users", User)
        strings = store.map("strings", str)
        strings.set(key, value)
        users.set("u", User(name="n" * size, email="e", age=1))
        assert read_bytes(db_path) == HEADER + set_record(
            "strings:" + key, json.dumps(value)
        ) + set_record("users:u", user_json("n" * size, "e", 1))
    with persist.Store(db_path) as store:
        users = store.map("users", User)
        strings = store.map("strings", str)
        assert strings[key] == value
        assert users["u"].name == "n" * size
        assert store.stats() == persist.Stats(active_keys=2, wal_records=2)


# --------------------------------------------------------------------------
# Empty file, header prefix, bad header
# --------------------------------------------------------------------------


@pytest.mark.parametrize("n", range(len(HEADER)))
def test_header_prefix_opens_as_new_store(db_path, n):
    """An empty file or a crash-cut header opens as an empty store and is
    usable: the result is a well-formed file."""
    db_path.write_bytes(HEADER[:n])
    with persist.open_single_map(db_path, str) as m:
        assert len(m) == 0
        assert m.store.stats() == persist.Stats(0, 0)
        m.set("k", "v")
        assert read_bytes(db_path) == HEADER + b'S :k\n"v"\n'
    with persist.open_single_map(db_path, str) as m:
        assert dict(m.items()) == {"k": "v"}


@pytest.mark.parametrize(
    "header",
    [b"go-persist 2\n", b"hello\n", b"GO-PERSIST 1\n", b"\n", b"go-persist 1x\n"],
)
def test_wrong_header_is_corrupt(db_path, header):
    """A file whose first line is not the go-persist 1 header is refused
    (line 1, offset 0) and left unchanged."""
    data = write_wal(db_path, b'S :a\n"1"\n', header=header)
    store = persist.Store()
    with pytest.raises(persist.CorruptWALError) as info:
        store.open(db_path)
    assert (info.value.line, info.value.offset) == (1, 0)
    assert store.closed
    assert read_bytes(db_path) == data


# --------------------------------------------------------------------------
# Torn tails
# --------------------------------------------------------------------------

TORN_PREFIX = b'S :a\n"1"\n'
TORN_LAST = {
    "set": b'S :b\n"22"\n',
    "delete": b"D :a\n\n",
}


# (kind, cut) for every byte offset inside the last record
TORN_CASES = [
    pytest.param(kind, cut, id=f"{kind}-{cut}")
    for kind, last in TORN_LAST.items()
    for cut in range(1, len(last))
]


@pytest.mark.parametrize(("kind", "cut"), TORN_CASES)
def test_torn_tail_ignored_and_file_untouched(db_path, kind, cut):
    """A record cut anywhere before its last newline is ignored on load, and a
    store that writes nothing leaves the file byte-identical."""
    data = write_wal(db_path, TORN_PREFIX, TORN_LAST[kind][:cut])
    with persist.open_single_map(db_path, str) as m:
        assert dict(m.items()) == {"a": "1"}
        assert m.store.stats() == persist.Stats(active_keys=1, wal_records=1)
    assert read_bytes(db_path) == data


@pytest.mark.parametrize(("kind", "cut"), TORN_CASES)
def test_torn_tail_cut_before_append(db_path, kind, cut):
    """The torn part is cut off before the next append, so the new record
    starts on its own line right after the last complete one."""
    write_wal(db_path, TORN_PREFIX, TORN_LAST[kind][:cut])
    with persist.open_single_map(db_path, str) as m:
        m.set("c", "3")
        assert read_bytes(db_path) == HEADER + TORN_PREFIX + b'S :c\n"3"\n'
    with persist.open_single_map(db_path, str) as m:
        assert dict(m.items()) == {"a": "1", "c": "3"}
        assert m.store.stats() == persist.Stats(active_keys=2, wal_records=2)


@pytest.mark.parametrize("cut", range(1, len(HEADER)))
def test_torn_header_untouched_until_the_first_write(db_path, cut):
    """A crash while a new file got its header: the file opens empty, stays
    byte-identical while nothing is written, and the first write puts a whole
    header before its record."""
    db_path.write_bytes(HEADER[:cut])
    with persist.open_single_map(db_path, str) as m:
        assert len(m) == 0
        m.store.fsync_all()
    assert read_bytes(db_path) == HEADER[:cut]
    with persist.open_single_map(db_path, str) as m:
        m.set_async("a", "1")
    assert read_bytes(db_path) == HEADER + b'S :a\n"1"\n'


@pytest.mark.parametrize("write", ["set_async", "delete", "orphan", "shrink"])
def test_torn_tail_cut_before_any_write(db_path, write):
    """Every kind of write (async flush, delete, plain API, shrink) first gets
    rid of a torn tail."""
    write_wal(db_path, TORN_PREFIX, b'S :b\n"2')
    with persist.Store(db_path) as store:
        m = store.map("", str)
        if write == "set_async":
            m.set_async("c", "3")
            m.sync()
            tail = b'S :c\n"3"\n'
        elif write == "delete":
            assert m.delete("a") is True
            tail = b"D :a\n\n"
        elif write == "orphan":
            store.set("o", "3")
            tail = b'S o\n"3"\n'
        else:
            store.shrink()
            tail = b""
        assert read_bytes(db_path) == HEADER + TORN_PREFIX + tail


# --------------------------------------------------------------------------
# Corruption
# --------------------------------------------------------------------------

BAD_RECORDS = {
    "unknown-kind": b'X :c\n"3"\n',
    "lowercase-kind": b's :c\n"3"\n',
    "double-kind": b'SS :c\n"3"\n',
    "no-space": b'S:c\n"3"\n',
    "kind-only": b'S\n"3"\n',
    "empty-header-line": b'\n"3"\n',
    "delete-with-value": b'D :a\n"x"\n',
    "delete-with-space": b"D :a\n \n",
}

# (records before the bad one, records after it, line of the bad one, its offset)
POSITIONS = {
    "first": ([], [b'S :a\n"1"\n'], 2, 13),
    "middle": ([b'S :a\n"1"\n'], [b'S :b\n"2"\n'], 4, 22),
    "last": ([b'S :a\n"1"\n', b'S :b\n"2"\n'], [], 6, 31),
}


@pytest.mark.parametrize("bad", BAD_RECORDS, ids=str)
@pytest.mark.parametrize("where", POSITIONS, ids=str)
def test_corrupt_record_refuses_open(db_path, bad, where):
    """A complete record with broken framing raises CorruptWALError with the
    path, the line number and byte offset where that record starts, and the
    file is left unchanged."""
    before, after, line, offset = POSITIONS[where]
    data = write_wal(db_path, *before, BAD_RECORDS[bad], *after)
    store = persist.Store()
    with pytest.raises(persist.CorruptWALError) as info:
        store.open(db_path)
    err = info.value
    assert isinstance(err, ValueError)
    assert isinstance(err, persist.PersistError)
    assert (err.line, err.offset) == (line, offset)
    assert str(err.path) == str(db_path)
    assert isinstance(err.reason, str)
    assert err.reason
    assert store.closed
    assert read_bytes(db_path) == data


def test_corrupt_open_releases_lock(db_path):
    """A refused open keeps no lock: once the file is fixed it opens at once."""
    write_wal(db_path, b'X :c\n"3"\n')
    with pytest.raises(persist.CorruptWALError):
        persist.Store(db_path)
    with pytest.raises(persist.CorruptWALError):
        persist.open_single_map(db_path, str)
    write_wal(db_path, b'S :c\n"3"\n')
    with persist.open_single_map(db_path, str) as m:
        assert m["c"] == "3"


@pytest.mark.parametrize(
    "bad_value",
    [b"{not json", b'"unterminated', b"1 2", b"[1,", b"nul", b"{'a': 1}"],
)
def test_invalid_json_value_raises_decode_error(db_path, bad_value):
    """A value line that is not JSON (read into a typing.Any map, so only the
    JSON syntax matters) is a DecodeError naming the key, at open or at the
    latest at the first read of that key; other keys are unaffected and
    nothing on disk changes."""
    data = write_wal(
        db_path,
        b'S data:good\n{"x":1}\n',
        b"S data:badkey\n" + bad_value + b"\n",
    )
    store = persist.Store()
    m = store.map("data", typing.Any)
    try:
        store.open(db_path)
    except persist.DecodeError as exc:
        assert "badkey" in str(exc)
    else:
        try:
            with pytest.raises(persist.DecodeError) as info:
                m.get("badkey")
            assert "badkey" in str(info.value)
            assert m.get("good") == {"x": 1}
        finally:
            store.close()
    assert read_bytes(db_path) == data


def test_invalid_json_orphan_raises_decode_error_on_get(db_path):
    """An orphan whose value is not JSON raises DecodeError from Store.get."""
    data = write_wal(db_path, b"S broken\n{oops\n", b"S fine\n1\n")
    with persist.Store(db_path) as store:
        assert store.get("fine", int) == 1
        with pytest.raises(persist.DecodeError):
            store.get("broken", int)
    assert read_bytes(db_path) == data


def test_wrong_typed_value_raises_decode_error(db_path):
    """Valid JSON of the wrong type for the map is a DecodeError by first read."""
    write_wal(db_path, b'S ints:k\n"text"\n')
    store = persist.Store()
    ints = store.map("ints", int)
    try:
        store.open(db_path)
    except persist.DecodeError:
        return
    try:
        with pytest.raises(persist.DecodeError):
            ints.get("k")
    finally:
        store.close()


# --------------------------------------------------------------------------
# Keys that are refused
# --------------------------------------------------------------------------

BAD_KEYS = [pytest.param(c, id=f"U+{ord(c):04X}") for c in CONTROL_CHARS] + [
    pytest.param("ab\ncd", id="embedded-newline"),
    pytest.param("\ud800", id="lone-high-surrogate"),
    pytest.param("x\udfffy", id="lone-low-surrogate"),
]

SOME_BAD_KEYS = ["\x00", "a\nb", "\x1f", "\x7f", "\x85", "\x9f", "\ud800"]

MAP_WRITES = {
    "set": lambda m, k: m.set(k, "v"),
    "setitem": lambda m, k: m.__setitem__(k, "v"),
    "set_async": lambda m, k: m.set_async(k, "v"),
    "set_fsync": lambda m, k: m.set_fsync(k, "v"),
    "set_in_memory": lambda m, k: m.set_in_memory(k, "v"),
    "update": lambda m, k: m.update(k, lambda u: u.set("v")),
    "update_async": lambda m, k: m.update_async(k, lambda u: u.set("v")),
    "update_fsync": lambda m, k: m.update_fsync(k, lambda u: u.set("v")),
    "update_in_memory": lambda m, k: m.update_in_memory(k, lambda u: u.set("v")),
    "delete": lambda m, k: m.delete(k),
    "delete_async": lambda m, k: m.delete_async(k),
    "delete_fsync": lambda m, k: m.delete_fsync(k),
}


def assert_refused(db_path, store, maps, exc_type, call):
    """call raises exc_type and changes neither memory nor the file."""
    before = read_bytes(db_path)
    stats = store.stats()
    with pytest.raises(exc_type):
        call()
    for m in maps:
        m.sync()
    store.fsync_all()
    assert read_bytes(db_path) == before
    assert store.stats() == stats
    for m in maps:
        assert m.keys() == ["ok"]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_control_char_key_refused_by_set(db_path, key):
    """Every control character (and a lone surrogate) in a key is an
    InvalidKeyError (a ValueError) from set, and nothing is written."""
    with persist.open_single_map(db_path, str) as m:
        m.set("ok", "v")
        assert_refused(
            db_path, m.store, [m], persist.InvalidKeyError, lambda: m.set(key, "v")
        )
        assert issubclass(persist.InvalidKeyError, ValueError)


@pytest.mark.parametrize("key", SOME_BAD_KEYS)
@pytest.mark.parametrize("op", MAP_WRITES, ids=str)
def test_bad_key_refused_by_every_map_write(db_path, op, key):
    """Every map write refuses a bad key with InvalidKeyError, writing nothing."""
    with persist.Store(db_path) as store:
        m = store.map("m", str)
        m.set("ok", "v")
        assert_refused(
            db_path, store, [m], persist.InvalidKeyError, lambda: MAP_WRITES[op](m, key)
        )


@pytest.mark.parametrize("key", SOME_BAD_KEYS)
def test_bad_key_within_key_refused(db_path, key):
    """A control character in the middle of a longer key is refused too."""
    with persist.open_single_map(db_path, str) as m:
        m.set("ok", "v")
        assert_refused(
            db_path,
            m.store,
            [m],
            persist.InvalidKeyError,
            lambda: m.set(f"pre{key}post", "v"),
        )


@pytest.mark.parametrize("key", [1, None, b"k", ("a",), 1.5])
@pytest.mark.parametrize("op", MAP_WRITES, ids=str)
def test_non_str_key_is_type_error(db_path, op, key):
    """A key that is not a str is a TypeError from every map write."""
    with persist.Store(db_path) as store:
        m = store.map("m", str)
        m.set("ok", "v")
        assert_refused(db_path, store, [m], TypeError, lambda: MAP_WRITES[op](m, key))


@pytest.mark.parametrize("key", [*SOME_BAD_KEYS, "a:b", ":", "users:k"], ids=repr)
@pytest.mark.parametrize("op", ["set", "delete"])
def test_plain_api_refuses_bad_keys_and_colon(db_path, op, key):
    """Store.set/delete refuse control characters and ':' (so an orphan never
    collides with a map record) with InvalidKeyError."""
    with persist.Store(db_path) as store:
        m = store.map("users", str)
        m.set("ok", "v")
        store.set("o", 1)
        before = read_bytes(db_path)
        with pytest.raises(persist.InvalidKeyError):
            if op == "set":
                store.set(key, 1)
            else:
                store.delete(key)
        assert read_bytes(db_path) == before
        assert m.keys() == ["ok"]
        assert store.get("o", int) == 1


@pytest.mark.parametrize("key", [1, None, b"k"])
def test_plain_api_non_str_key_is_type_error(db_path, key):
    """Store.set/delete with a non-str key raise TypeError and write nothing."""
    with persist.Store(db_path) as store:
        before = read_bytes(db_path)
        with pytest.raises(TypeError):
            store.set(key, 1)
        with pytest.raises(TypeError):
            store.delete(key)
        assert read_bytes(db_path) == before


@pytest.mark.parametrize(
    "name", ["a:b", ":", "users:", "\x00", "a\nb", "\x7f", "\x9f", "\ud800"], ids=repr
)
@pytest.mark.parametrize("opened", [False, True])
def test_bad_map_name_refused(db_path, name, opened):
    """A map name with ':' or a control character is an InvalidKeyError, before
    or after open, and registers nothing."""
    store = persist.Store(db_path) if opened else persist.Store()
    with pytest.raises(persist.InvalidKeyError):
        store.map(name, str)
    if not opened:
        store.open(db_path)
    with store:
        assert read_bytes(db_path) == HEADER
        assert store.stats() == persist.Stats(0, 0)


def test_non_str_map_name_is_type_error(db_path):
    """A map name that is not a str is a TypeError."""
    with persist.Store(db_path) as store:
        with pytest.raises(TypeError):
            store.map(1, str)
        with pytest.raises(TypeError):
            store.map(None, str)


def test_empty_map_name_is_the_single_map(db_path):
    """store.map("", T) is the map open_single_map uses (records `:key`)."""
    with persist.Store(db_path) as store:
        m = store.map("", str)
        assert m.name == ""
        m.set("k", "v")
    with persist.open_single_map(db_path, str) as m:
        assert m["k"] == "v"


# --------------------------------------------------------------------------
# Values that are refused
# --------------------------------------------------------------------------

NON_FINITE = [math.nan, math.inf, -math.inf]

FLOAT_WRITES = {
    "set": lambda m, v: m.set("k", v),
    "set_async": lambda m, v: m.set_async("k", v),
    "set_fsync": lambda m, v: m.set_fsync("k", v),
    "update": lambda m, v: m.update("k", lambda u: u.set(v)),
    "update-assign": lambda m, v: m.update("k", lambda u: setattr(u, "value", v)),
    "update_async": lambda m, v: m.update_async("k", lambda u: u.set(v)),
    "update_fsync": lambda m, v: m.update_fsync("k", lambda u: u.set(v)),
}


@pytest.mark.parametrize("value", NON_FINITE, ids=repr)
@pytest.mark.parametrize("op", FLOAT_WRITES, ids=str)
@pytest.mark.parametrize("existing", [False, True])
def test_non_finite_float_is_encode_error(db_path, op, value, existing):
    """NaN and infinities are an EncodeError at the call; the old value (or
    absence) stays in memory and the file is unchanged."""
    with open_quiet(db_path) as store:
        m = store.map("floats", float)
        m.set("ok", 1.0)
        if existing:
            m.set("k", 2.5)
        before = read_bytes(db_path)
        with pytest.raises(persist.EncodeError):
            FLOAT_WRITES[op](m, value)
        store.fsync_all()
        assert read_bytes(db_path) == before
        assert m.get("k") == (2.5 if existing else None)
        assert ("k" in m) is existing


@pytest.mark.parametrize(
    ("value_type", "value", "exc"),
    [
        (User, "not a user", TypeError),
        (User, GoUser("a", "b", 1), TypeError),
        (User, None, TypeError),
        (User, {"name": "a", "email": "b", "age": 1}, TypeError),
        (int, "1", TypeError),
        (str, 1, TypeError),
        (User, User("a", "b", "not an int"), persist.EncodeError),
        (User, User("a", "b", math.nan), persist.EncodeError),
        (dict[str, float], {"x": math.inf}, persist.EncodeError),
        (dict[str, int], {1: 1}, persist.EncodeError),
        (list[float], [1.0, math.nan], persist.EncodeError),
    ],
    ids=repr,
)
@pytest.mark.parametrize("op", ["set", "set_async", "set_fsync"])
def test_wrong_value_refused(db_path, value_type, value, exc, op):
    """A value of the wrong type is a TypeError, one JSON cannot hold an
    EncodeError; nothing is stored in memory or in the file."""
    with open_quiet(db_path) as store:
        m = store.map("m", value_type)
        before = read_bytes(db_path)
        with pytest.raises(exc):
            getattr(m, op)("k", value)
        store.fsync_all()
        assert read_bytes(db_path) == before
        assert "k" not in m
        assert len(m) == 0


@pytest.mark.parametrize("value", ["not a user", None, GoUser("a", "b", 1)], ids=repr)
def test_set_in_memory_wrong_type_refused(db_path, value):
    """set_in_memory checks the value type like every other write."""
    with persist.Store(db_path) as store:
        m = store.map("m", User)
        with pytest.raises(TypeError):
            m.set_in_memory("k", value)
        assert "k" not in m


@pytest.mark.parametrize(
    ("value", "exc"),
    [
        (math.nan, persist.EncodeError),
        ({1: 2}, persist.EncodeError),
        # no codec can write a bare object: either refusal is fine
        (object(), (TypeError, persist.EncodeError)),
    ],
    ids=repr,
)
def test_plain_api_refuses_unencodable_values(db_path, value, exc):
    """Store.set of a value JSON cannot hold writes and stores nothing."""
    with persist.Store(db_path) as store:
        before = read_bytes(db_path)
        with pytest.raises(exc):
            store.set("k", value)
        assert read_bytes(db_path) == before
        with pytest.raises(persist.KeyNotFoundError):
            store.get("k", typing.Any)
        assert store.stats() == persist.Stats(0, 0)
