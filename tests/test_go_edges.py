"""Edges where go-persist and persist must agree, found by differential
testing against the Go library: keys the key rules refuse but Go wrote,
invalid UTF-8 keys, bare keys of the single map, the empty orphan key."""

import pytest
from conftest import HEADER, read_bytes

import persist
from persist.cli import main as cli


def test_invalid_utf8_key_loads_and_is_written_back_byte_for_byte(db_path):
    """A key Go wrote that is not UTF-8 loads (as surrogateescape), reads,
    and a delete and a shrink write its exact bytes back."""
    db_path.write_bytes(HEADER + b"S m:k\xff\n1\nS m:ok\n2\nS m:z\xfe\n3\n")
    key = b"k\xff".decode("utf-8", "surrogateescape")
    with persist.Store(db_path) as store:
        m = store.map("m", int)
        assert m[key] == 1
        assert sorted(m.keys()) == sorted(
            [key, "ok", b"z\xfe".decode("utf-8", "surrogateescape")]
        )
        assert m.delete(key) is True
        assert read_bytes(db_path).endswith(b"D m:k\xff\n\n")
        store.shrink()
        body = read_bytes(db_path)[len(HEADER) :]
        assert sorted(body.split(b"\n")[:-1]) == sorted(
            [b"S m:ok", b"2", b"S m:z\xfe", b"3"]
        )
    with persist.Store(db_path) as store:
        m = store.map("m", int)
        assert dict(m.items()) == {
            "ok": 2,
            b"z\xfe".decode("utf-8", "surrogateescape"): 3,
        }


def test_a_new_key_with_a_lone_surrogate_is_still_refused(db_path):
    """Only keys already in the file escape the rules; a new one is refused
    and nothing is written."""
    with persist.Store(db_path) as store:
        m = store.map("m", int)
        with pytest.raises(persist.InvalidKeyError):
            m.set("k\udcff", 1)
        with pytest.raises(persist.InvalidKeyError):
            m.delete("k\udcff")
    assert read_bytes(db_path) == HEADER


def test_crlf_keys_stay_readable_and_deletable(db_path):
    """A CRLF file loads as Go loads it: the `\\r` stays in each key; such a
    key can be read and deleted (the delete record carries it byte for byte)."""
    db_path.write_bytes(b"go-persist 1\r\nS m:a\r\n1\r\nS m:b\r\n2\r\n")
    with persist.Store(db_path) as store:
        m = store.map("m", int)
        assert sorted(m.keys()) == ["a\r", "b\r"]
        assert m.get("a\r") == 1
        assert m.delete("a\r") is True
        with pytest.raises(persist.InvalidKeyError):
            m.set("c\r", 3)  # a new key with a control character: refused
    assert read_bytes(db_path).endswith(b"D m:a\r\n\n")
    with persist.Store(db_path) as store:
        assert dict(store.map("m", int).items()) == {"b\r": 2}


def test_crlf_delete_record_loads(db_path):
    """A CRLF file's delete record has `\r` as its second line (Go reads it)."""
    db_path.write_bytes(b"go-persist 1\r\nS m:a\r\n1\r\nS m:b\r\n2\r\nD m:a\r\n\r\n")
    with persist.Store(db_path) as store:
        assert dict(store.map("m", int).items()) == {"b\r": 2}
        assert store.stats() == persist.Stats(active_keys=1, wal_records=3)


def test_store_get_names_the_key_of_an_undecodable_value(db_path):
    db_path.write_bytes(HEADER + b"S o\n[1\n")
    with (
        persist.Store(db_path) as store,
        pytest.raises(persist.DecodeError, match="'o'"),
    ):
        store.get("o", int)


def test_go_control_character_key_is_deletable(db_path):
    """Go accepts control characters in keys; persist reads and deletes them."""
    db_path.write_bytes(HEADER + b"S m:a\x01b\n1\n")
    with persist.Store(db_path) as store:
        m = store.map("m", int)
        assert m["a\x01b"] == 1
        assert m.delete("a\x01b") is True
    with persist.Store(db_path) as store:
        assert len(store.map("m", int)) == 0


def test_bare_keys_join_the_single_map_at_load_only(db_path):
    """Bare records load into a map `""` registered before open; registered
    after open, the map leaves them orphans until the next open (the order
    of `k` and `:k` is only known while loading).  Store.get finds them."""
    db_path.write_bytes(HEADER + b"S a\n1\n")
    with persist.Store(db_path) as store:
        m = store.map("", int)
        assert "a" not in m
        assert store.get("a", int) == 1
    store = persist.Store()
    m = store.map("", int)
    with store:
        store.open(db_path)
        assert m.get("a") == 1
        assert store.get("a", int) == 1
        assert store.stats() == persist.Stats(active_keys=1, wal_records=1)


def test_check_accepts_a_file_with_odd_go_keys(db_path):
    """`persist check` reads such a file (exit 0)."""
    db_path.write_bytes(HEADER + b"S m:k\xff\n1\nS m:a\x01\n2\n")
    assert cli(["check", str(db_path)]) == 0


def test_plain_api_beside_the_single_map(db_path):
    """Store.set/get/delete work on a store whose single map `""` is
    registered; after a reopen the bare record belongs to that map (as Go's
    OpenSingleMap reads it)."""
    store = persist.Store()
    m = store.map("", str)
    with store:
        store.open(db_path)
        m.set("a", "1")
        store.set("motd", "hello")
        assert store.get("motd", str) == "hello"
        assert store.delete("motd") is True
        store.set("motd", "again")
    assert read_bytes(db_path) == (
        HEADER + b'S :a\n"1"\nS motd\n"hello"\nD motd\n\nS motd\n"again"\n'
    )
    with persist.open_single_map(db_path, str) as m:
        assert dict(m.items()) == {"a": "1", "motd": "again"}


def test_demo_runs(capsys):
    """`persist demo`, the README's first command, runs to its end."""
    assert cli(["demo"]) == 0
    assert "demo finished" in capsys.readouterr().out
