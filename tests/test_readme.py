"""The README's Python snippets run as written and are type-checked.

Every ```python block of the README is one of:

- a part of the quick start: the blocks of the "Quick start" section, joined
  into one script that this test runs and `make lint` type-checks (mypy
  --strict, pyright strict);
- a part of the Redis section: its blocks follow the quick start (they use
  its classes), run against a real server (the README's URL replaced by the
  test server's) and type-checked with it;
- a file of ``examples/myproject`` shown whole (its first line is ``# <name>``):
  ``tests/test_examples.py`` checks it is that file byte for byte, and `make
  lint` type-checks the file with the other examples;
- a deliberately partial snippet, marked by the line ``<!-- partial snippet -->``
  just above its fence (left out of both checks).

A block that is none of these fails ``test_every_python_block_is_checked``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
MYPROJECT = ROOT / "examples" / "myproject"
PARTIAL = "<!-- partial snippet -->"
REDIS_SECTION = "Beyond one machine: Redis"
README_REDIS_URL = "redis://localhost:6379/0"

_HEADING = re.compile(r"^## (.+)$", re.M)
_BLOCK = re.compile(r"^([^\n]*)\n```python\n(.*?)^```$", re.M | re.S)


def python_blocks(text: str | None = None) -> list[tuple[str, str, str]]:
    """Every ```python block of the README (or ``text``) as ``(section, line
    above the fence, code)``."""
    if text is None:
        text = README.read_text(encoding="utf-8")
    headings = [(m.start(), m.group(1)) for m in _HEADING.finditer(text)]
    blocks: list[tuple[str, str, str]] = []
    for match in _BLOCK.finditer(text):
        section = next(
            (name for start, name in reversed(headings) if start < match.start()), ""
        )
        blocks.append((section, match.group(1), match.group(2)))
    return blocks


def shown_file(code: str) -> Path | None:
    """The examples/myproject file a block shows whole, named on its first line."""
    first = code.split("\n", 1)[0]
    if not first.startswith("# "):
        return None
    path = MYPROJECT / first[2:]
    return path if path.is_file() else None


def quick_start() -> str:
    """The Python blocks of the README's "Quick start" section, as one script."""
    return "\n".join(
        code for section, _, code in python_blocks() if section == "Quick start"
    )


def redis_section() -> str:
    """The Python blocks of the README's Redis section, as the body of a
    function called at once: they reuse the quick start's names (``store``,
    ``users``) for a RedisStore and its maps, which a type checker would
    refuse as a reassignment at the top level."""
    code = "\n".join(
        code for section, _, code in python_blocks() if section == REDIS_SECTION
    )
    body = "".join(f"    {line}\n" if line else "\n" for line in code.splitlines())
    return f"def redis_section() -> None:\n{body}\n\nredis_section()\n"


def unchecked_blocks(text: str | None = None) -> list[str]:
    """The first lines of the blocks that are neither checked nor marked partial."""
    return [
        code.split("\n", 1)[0]
        for section, above, code in python_blocks(text)
        if section not in ("Quick start", REDIS_SECTION)
        and shown_file(code) is None
        and above != PARTIAL
    ]


def test_every_python_block_is_checked() -> None:
    """Each block is run and type-checked, a shipped file, or marked partial."""
    assert unchecked_blocks() == []


def test_an_unmarked_block_outside_the_quick_start_is_reported() -> None:
    """Only the unmarked block of another section fails the check."""
    text = (
        "## Quick start\n\n```python\nx = 1\n```\n\n"
        "## More\n\n```python\n# setup.py\nsetup()\n```\n\n"
        f"{PARTIAL}\n```python\nstore.shrink()  # partial\n```\n\n"
        "Text.\n```python\nm.sync()  # unmarked\n```\n"
    )
    assert [section for section, _, _ in python_blocks(text)] == [
        "Quick start",
        "More",
        "More",
        "More",
    ]
    assert unchecked_blocks(text) == ["m.sync()  # unmarked"]


def test_blocks_are_found() -> None:
    """The extraction sees the quick start's four blocks and myproject's setup.py."""
    blocks = python_blocks()
    assert [section for section, _, _ in blocks].count("Quick start") == 4
    assert [shown_file(code) for _, _, code in blocks].count(
        MYPROJECT / "setup.py"
    ) == 1


QUICK_START_OUTPUT = [
    "User(name='Alice', email='alice@example.com', age=28)",
    "41 True 3",
    "Stats(active_keys=2, wal_records=3)",
    "hello",
    "Product(name='Widget', price=19.99)",
    "Product(name='Widget', price=19.99)",
    "RefreshResult(records=0, reloaded=False)",
]


def run_script(script: str, cwd: Path) -> list[str]:
    """Run ``script`` in a fresh interpreter in ``cwd``; its output lines."""
    done = subprocess.run(
        [sys.executable, "-P", "-c", script],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    return done.stdout.splitlines()


def test_quick_start_runs_as_written(tmp_path: Path) -> None:
    """Every block, run in a fresh folder and process: the printed lines, exactly."""
    script = quick_start()
    assert "open_single_map" in script and "persist.Store()" in script
    assert run_script(script, tmp_path) == QUICK_START_OUTPUT
    assert sorted(path.name for path in tmp_path.iterdir()) == ["app.db", "users.db"]


def test_redis_section_runs_as_written(tmp_path: Path, redis_url: str) -> None:
    """The Redis blocks, after the quick start, on a real server: the quick
    start's lines, then what the Redis blocks print."""
    assert README_REDIS_URL in redis_section()
    script = quick_start() + "\n" + redis_section().replace(README_REDIS_URL, redis_url)
    assert run_script(script, tmp_path) == [*QUICK_START_OUTPUT, "29"]


if __name__ == "__main__":  # make lint type-checks what this prints
    print(quick_start())
    print(redis_section())
