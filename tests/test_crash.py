"""Crash loops: a child process writes (one or three writer threads) and
acknowledges each write on stdout; the parent kills it with SIGKILL at a
random moment (also while shrinks run, in a loop and as auto-shrink, and
while the child closes and reopens its store) and checks that the file loads,
holds every acknowledged write (or the one call in flight), is accepted by
``persist check``, is left byte for byte by a reopen that writes nothing, and
that no shrink temporary survives the reopen.  The file carries over from
round to round, so each child also starts from a killed predecessor's file.

A plain ``set`` counts as acknowledged once it returns: its write(2) is done,
and the page cache keeps it across a process kill (only a power loss needs
the fsync of ``set_fsync``).
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import python_env, wait_until

import persist
from persist import cli

SHRINK_TMP = ".shrink-tmp"

# The child: argv = path, mode, seed, first sequence number.  Each writer
# thread t (3 in a "threads" mode, else 1) owns its keys (k<t>.<i> of map "m",
# orphans o<t>.<i>).  Before each call it writes "I <t> <seq> <op> <key>" (the
# intent), after it returns "A <t> <seq> <result>" (the acknowledgement), each
# line with one write(2) to a file, which survives the kill.  Values are
# sequence numbers, unique across threads, so every write leaves a distinct
# value.
CHILD = r"""
import os, random, sys, threading, time
import persist

path, mode, seed, seq0 = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
nthreads = 3 if "threads" in mode else 1

def open_store():
    store = persist.Store()
    m = store.map("m", int)
    store.sync_interval = 0.002
    store.open(path)
    if "auto" in mode:
        store.start_auto_shrink(0.005, 1.5)
    return store, m

store, m = open_store()
if "shrink" in mode:
    def shrinker():
        while True:
            try:
                store.shrink()
            except persist.ShrinkInProgressError:
                pass
            time.sleep(0.0005)
    threading.Thread(target=shrinker, daemon=True).start()

def out(line):
    os.write(1, (line + "\n").encode())

ops = ["set", "set", "set_fsync", "update", "update", "update_fsync",
       "update_delete", "delete", "delete_fsync", "async+sync", "store_set",
       "store_delete"]

def writer(t):
    global store, m
    rng = random.Random(seed * 10 + t)
    keys = [f"k{t}.{i}" for i in range(4)]
    orphans = [f"o{t}.{i}" for i in range(2)]
    deadline = time.monotonic() + 30.0  # never outlive a parent that died
    n = 0
    while time.monotonic() < deadline:
        if "reopen" in mode and rng.random() < 0.03:  # one writer only
            out(f"C {t}")  # close and open again: a kill may land in either
            store.close()
            store, m = open_store()
            out(f"O {t}")
        n += 1
        seq = seq0 + n * nthreads + t
        op = rng.choice(ops)
        key = rng.choice(orphans if op.startswith("store_") else keys)
        out(f"I {t} {seq} {op} {key}")
        if op == "set":
            m.set(key, seq)
            res = "-"
        elif op == "set_fsync":
            m.set_fsync(key, seq)
            res = "-"
        elif op in ("update", "update_fsync"):
            def add(upd, seq=seq):
                upd.value = (upd.value or 0) + seq
            value, exists = getattr(m, op)(key, add)
            res = f"{value}"
        elif op == "update_delete":
            value, exists = m.update(key, lambda upd: upd.delete())
            res = f"{value}/{exists}"
        elif op == "async+sync":  # acknowledged once sync() wrote it
            m.set_async(key, seq)
            m.sync()
            res = "-"
        elif op in ("delete", "delete_fsync"):
            res = "1" if getattr(m, op)(key) else "0"
        elif op == "store_set":
            store.set(key, seq)
            res = "-"
        else:
            res = "1" if store.delete(key) else "0"
        out(f"A {t} {seq} {res}")

threads = [threading.Thread(target=writer, args=(t,), daemon=True)
           for t in range(nthreads)]
out("ready")
for th in threads:
    th.start()
for th in threads:
    th.join()
"""

MAX_THREADS = 3
ORPHANS = [f"o{t}.{i}" for t in range(MAX_THREADS) for i in range(2)]


def apply(state: dict[str, int], seq: int, op: str, key: str) -> dict[str, int]:
    """The state after the child's op (map keys as ``m:k``, orphans bare)."""
    new = dict(state)
    full = key if op.startswith("store_") else f"m:{key}"
    if op in ("set", "set_fsync", "async+sync", "store_set"):
        new[full] = seq
    elif op in ("update", "update_fsync"):
        new[full] = new.get(full, 0) + seq
    else:
        new.pop(full, None)
    return new


def owner(full: str) -> int:
    """The writer thread that owns a key (``m:k<t>.<i>`` or ``o<t>.<i>``)."""
    return int(full.removeprefix("m:")[1:].split(".")[0])


def replay_acks(
    lines: list[str], state: dict[str, int]
) -> tuple[dict[str, int], dict[str, int] | None, int]:
    """One writer's lines: apply its acknowledged calls to state (its keys),
    checking each acknowledgement's result. Returns (state after the
    acknowledged calls, the state if its one unacknowledged call also happened
    or None, number of acknowledgements)."""
    pending: tuple[int, str, str] | None = None
    acks = 0
    for line in lines:
        kind, _t, seq_text, *rest = line.split(" ")
        seq = int(seq_text)
        if kind == "I":
            assert pending is None, f"two calls in flight: {pending}, {line}"
            pending = (seq, rest[0], rest[1])
            continue
        assert kind == "A" and pending is not None and pending[0] == seq, line
        _, op, key = pending
        full = key if op.startswith("store_") else f"m:{key}"
        result = rest[0]
        if op in ("update", "update_fsync"):
            assert int(result) == state.get(full, 0) + seq, (line, state.get(full))
        elif op == "update_delete":
            assert result == "None/False", line
        elif op in ("delete", "delete_fsync", "store_delete"):
            assert result == ("1" if full in state else "0"), (line, state)
        state = apply(state, seq, op, key)
        pending = None
        acks += 1
    in_flight = None if pending is None else apply(state, *pending)
    return state, in_flight, acks


def file_state(path: Path) -> dict[str, int]:
    """Open the file: the live keys of map "m" and the orphans."""
    with persist.Store() as store:
        m = store.map("m", int)
        store.open(path)
        state = {f"m:{k}": v for k, v in m.items()}
        for key in ORPHANS:
            with contextlib.suppress(persist.KeyNotFoundError):
                state[key] = store.get(key, int)
        assert store.stats().active_keys == len(state), (store.stats(), state)
    return state


def check_exit_code(path: Path) -> tuple[int, str]:
    """``persist check FILE`` in this process (the CLI's own entry point)."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        code = cli.main(["check", str(path)])
    return code, buf.getvalue()


def kill_round(
    tmp_path: Path,
    path: Path,
    mode: str,
    seed: int,
    seq: int,
    kill_after: float,
    wait_ready: bool,
) -> list[str]:
    """Run the child, SIGKILL it kill_after seconds later; its complete lines."""
    out_path = tmp_path / f"out-{seed}.txt"
    err_path = tmp_path / f"err-{seed}.txt"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-P", "-c", CHILD, str(path), mode, str(seed), str(seq)],
            env=python_env(),
            stdout=out,
            stderr=err,
        )
    try:
        if wait_ready:
            wait_until(
                lambda: (
                    proc.poll() is not None
                    or out_path.read_bytes().startswith(b"ready\n")
                ),
                timeout=30.0,
                what="the child to open the store",
            )
        time.sleep(kill_after)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10.0)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10.0)
    assert proc.returncode == -signal.SIGKILL, (
        f"child exited by itself ({proc.returncode}): {err_path.read_text()}"
    )
    data = out_path.read_bytes()
    return data[: data.rfind(b"\n") + 1].decode().splitlines()  # complete lines


ROUNDS = [
    # (mode, wait for "ready" before the random delay)
    ("plain", True),
    ("shrink", True),
    ("auto", True),
    ("shrink+auto", True),
    ("shrink", True),
    ("shrink+auto", True),
    ("reopen", True),  # closes and opens again now and then
    ("shrink+auto+reopen", True),
    ("threads", True),  # 3 writers: group commit
    ("threads+shrink+auto", True),
    ("plain", False),  # may die while opening / cutting a torn tail
    ("shrink+auto", False),
]


def test_sigkill_keeps_every_acknowledged_write(tmp_path, rng):
    """Kill a writing child at random moments, with and without shrinks
    running: every acknowledged write is in the file, which loads, passes
    check and is left without a shrink temporary by the reopen."""
    path = tmp_path / "crash.db"
    state: dict[str, int] = {}
    seq = 0
    total_acks = 0
    leftovers = 0
    for round_no, (mode, wait_ready) in enumerate(ROUNDS):
        seed = rng.randrange(2**32)
        kill_after = rng.uniform(0.0, 0.25) if wait_ready else rng.uniform(0.1, 0.5)
        where = (
            f"round {round_no} ({mode}, child seed {seed}, "
            f"kill after {kill_after:.3f}s, {rng!r})"
        )
        lines = kill_round(tmp_path, path, mode, seed, seq, kill_after, wait_ready)
        calls = [line for line in lines if line[0] in "IA"]
        # every writer owns its keys: check each one's share of the file
        by_writer: dict[int, list[str]] = {}
        for line in calls:
            by_writer.setdefault(int(line.split(" ")[1]), []).append(line)
        expected = {}
        for t, mine in by_writer.items():
            theirs = {k: v for k, v in state.items() if owner(k) == t}
            acked, in_flight, acks = replay_acks(mine, theirs)
            total_acks += acks
            expected[t] = (acked, in_flight)

        before = None  # the child may die before it creates the file
        if path.exists():
            code, report = check_exit_code(path)
            assert code == 0, f"{where}: persist check: {report}"
            leftovers += os.path.exists(str(path) + SHRINK_TMP)
            before = path.read_bytes()

        try:
            got = file_state(path)
        except persist.CorruptWALError as exc:
            pytest.fail(f"{where}: the killed child's file does not load: {exc}")
        assert not os.path.exists(str(path) + SHRINK_TMP), (
            f"{where}: a shrink temporary survived the reopen"
        )
        if before is not None:
            assert path.read_bytes() == before, (
                f"{where}: a reopen that wrote nothing changed the file"
            )
        for t in range(MAX_THREADS):
            mine = {k: v for k, v in got.items() if owner(k) == t}
            acked, in_flight = expected.get(
                t, ({k: v for k, v in state.items() if owner(k) == t}, None)
            )
            allowed = [acked] if in_flight is None else [acked, in_flight]
            assert mine in allowed, (
                f"{where}: writer {t}'s keys hold {mine}, "
                f"want the acknowledged state {acked}"
                + (
                    ""
                    if in_flight is None
                    else f" or, with the call in flight, {in_flight}"
                )
            )
        state = got
        seq = max([seq, *(int(line.split(" ")[2]) for line in calls)]) + MAX_THREADS
    assert total_acks >= 50, (
        f"only {total_acks} acknowledged writes: the loop did not run"
    )
    print(
        f"{total_acks} acknowledged writes; {leftovers} kills left a shrink temporary"
    )

    # the installed command line agrees about the final file
    result = subprocess.run(
        [sys.executable, "-P", "-m", "persist", "check", str(path)],
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
