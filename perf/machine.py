"""The machine a benchmark ran on, recorded beside its figures."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys


def machine() -> dict:
    """CPU count, Python, load average, memory and the git revision measured."""
    info = {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "switchinterval_s": sys.getswitchinterval(),
        "loadavg_at_start": os.getloadavg(),
    }
    with contextlib.suppress(OSError):
        info["free_h"] = subprocess.run(
            ["free", "-h"], capture_output=True, text=True, check=False
        ).stdout
    try:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        info["git"] = subprocess.run(
            ["git", "-C", root, "describe", "--always", "--dirty"],
            capture_output=True, text=True, check=False,
        ).stdout.strip()  # fmt: skip
    except OSError:
        pass
    return info


def summary(info: dict) -> str:
    """``machine()`` as the one line a results table is headed with."""
    load = ", ".join(f"{x:.1f}" for x in info["loadavg_at_start"])
    return (
        f"{info['nproc']} CPUs, Python {info['python']}, {info['platform']}, "
        f"load average at start {load}, git {info.get('git', '?')}"
    )


def finish(results: dict, table: str, output: str | None) -> None:
    """Print a benchmark's table and machine line; keep its results as JSON."""
    results["loadavg_at_end"] = os.getloadavg()
    print(table)
    mach = results["machine"]
    print(
        f"\nMachine: {mach['nproc']} CPUs, Python {mach['python']}, "
        f"git {mach.get('git', '?')}; "
        "load average (1/5/15 min) at start "
        + "/".join(f"{x:.1f}" for x in mach["loadavg_at_start"])
        + ", at end "
        + "/".join(f"{x:.1f}" for x in results["loadavg_at_end"])
    )
    if output:
        os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
        with open(output, "w") as f:
            json.dump(results, f, indent=2)
