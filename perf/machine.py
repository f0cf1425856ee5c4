"""The machine a benchmark ran on, recorded beside its figures."""

from __future__ import annotations

import contextlib
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
