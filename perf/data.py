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
