"""Deterministic inputs shared by every benchmark."""

from __future__ import annotations

import random

from persist.schemas.examples import User

KEYS = 100_000
OPS = 20_000
WRITE_SHARE = 0.2  # go-persist's mixed workload: 80% get, 20% writes


def users(n: int = KEYS) -> dict[str, User]:
    """``n`` keys ``user:<i>`` with small User records."""
    return {
        f"user:{i}": User(f"name {i}", f"u{i}@example.com", i % 90) for i in range(n)
    }


def mixed_ops(keys: list[str], n: int = OPS, seed: int = 7) -> list[tuple[bool, str]]:
    """``(is_write, key)`` pairs, uniformly random keys."""
    rng = random.Random(seed)
    return [(rng.random() < WRITE_SHARE, rng.choice(keys)) for _ in range(n)]


# --- go-persist's own benchmarks (benchmark/main.go, benchmark-load/load.go) ---

GO_STRING = "gq2ip4;9209;4fm2d1d3DJ138D2L38\t2FP2938FP238HFP2H  FDAUWF1\t2"
GO_MAPS = ("map1", "map2", "map3", "map4", "map5")

Op = tuple[str, int]  # (key, i): a write of value number i, or a read when i < 0


def go_ops(keys: int, n: int, write_percent: int, seed: int = 42) -> list[Op]:
    """go-persist's ops: key ``str(randrange(keys))``, ``write_percent``% writes."""
    rng = random.Random(seed)
    pick, roll = rng.randrange, rng.randrange
    return [(str(pick(keys)), i if roll(100) < write_percent else -1) for i in range(n)]


# Go's weighted letters (frequent letters repeated) plus spaces and punctuation in
# the proportions of its generator: words of 3-10 letters, 1 in 10 ending in , or .
_LETTERS = (
    "e" * 12 + "t" * 10 + "a" * 7 + "o" * 7 + "i" * 7 + "n" * 7 + "s" * 6 + "r" * 6
    + "ddd" + "lll" + "uu" + "cc" + "mm" + "ff" + "gg" + "yy" + "ww" + "pp" + "bb"
    + "kk" + "xjvqz" + "abcdefghijklmnopqrstuvwxyz" + "0123456789"
)  # fmt: skip
_TEXT_TABLE = bytes(
    ord((_LETTERS * 2)[i]) if i < 220 else ord(" ") if i < 250 else ord(",."[i % 2])
    for i in range(256)
)


def lorem(rng: random.Random, n: int) -> str:
    """``n`` chars of high-entropy text: one ``randbytes`` mapped through a table."""
    return rng.randbytes(n).translate(_TEXT_TABLE).decode()


def load_records(
    record: type, meta: type, map_name: str, n: int, created: int = 1_750_000_000
) -> list[tuple[str, object]]:
    """``n`` (``key-<i>``, record) pairs of Go's ComplexRecord shape for one map."""
    rng = random.Random(map_name)
    tags = ["tag1", "tag2", "tag3"]
    return [
        (
            f"key-{i}",
            record(
                f"{map_name}-{i}",
                f"Record {i}",
                lorem(rng, 42),
                lorem(rng, 1024),
                meta(created, created, list(tags)),
            ),
        )
        for i in range(n)
    ]


def shuffled(n: int, seed: int = 42) -> list[int]:
    """0 .. n-1 in a seeded random order (the load benchmark's 40,000 gets)."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return order
