"""The README's quick start runs as written and prints what its comments say."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def quick_start() -> str:
    """The Python blocks of the README's "Quick start" section, as one script."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    return "\n".join(re.findall(r"```python\n(.*?)```", section, re.S))


def test_quick_start_runs_as_written(tmp_path: Path) -> None:
    """Every block, run in a fresh folder and process: the printed lines, exactly."""
    script = quick_start()
    assert "open_single_map" in script and "persist.Store()" in script
    done = subprocess.run(
        [sys.executable, "-P", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == [
        "User(name='Alice', email='alice@example.com', age=28)",
        "41 True 3",
        "Stats(active_keys=2, wal_records=3)",
        "hello",
        "Product(name='Widget', price=19.99)",
        "Product(name='Widget', price=19.99)",
        "RefreshResult(records=0, reloaded=False)",
    ]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["app.db", "users.db"]


if __name__ == "__main__":  # make lint type-checks what this prints
    print(quick_start())
