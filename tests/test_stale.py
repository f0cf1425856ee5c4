"""Compiled codecs that cannot serve: a StaleCodecWarning at the user's line."""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import attrs
import pytest

import persist

SCHEMA = "import attrs\n\n\n@attrs.frozen\nclass Thing:\n    n: int\n"


@pytest.fixture
def package(tmp_path: Path) -> Iterator[Path]:
    """An importable package folder ``stalepkg`` in tmp_path, forgotten afterwards."""
    folder = tmp_path / "stalepkg"
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    sys.path.insert(0, str(tmp_path))
    try:
        yield folder
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n.startswith("stalepkg")]:
            del sys.modules[name]


def _schema(package: Path, name: str, compiled: str | None) -> ModuleType:
    (package / f"{name}.py").write_text(SCHEMA)
    if compiled is not None:
        (package / f"_persist_{name}.py").write_text(compiled)
    importlib.invalidate_caches()
    return importlib.import_module(f"stalepkg.{name}")


def test_stale_codec_is_public_and_points_at_the_caller() -> None:
    """persist.StaleCodecWarning; the warning names this file and the command."""

    @attrs.define
    class Changed:
        n: int

    persist.codecs.register_compiled(
        Changed,
        "0123456789abcdef",
        lambda value: b"{}",
        lambda data: Changed(0),
        lambda value: value,
    )
    with pytest.warns(persist.StaleCodecWarning) as caught:
        codec = persist.codec_for(Changed)
    [warning] = caught.list
    assert warning.filename == __file__
    assert "changed since generation" in str(warning.message)
    assert f"'persist codegen {__name__} --build'" in str(warning.message)
    assert codec.source == "runtime"
    assert codec.encode(Changed(5)) == b'{"n":5}'


def test_a_broken_compiled_module_is_reported(package: Path) -> None:
    """A compiled module that fails to import (a wrong ABI, say) is not silent."""
    module = _schema(
        package, "broken", 'raise ImportError("undefined symbol: PyFoo_Bar")\n'
    )
    with pytest.warns(persist.StaleCodecWarning) as caught:
        codec = persist.codec_for(module.Thing)
    [warning] = caught.list
    assert warning.filename == __file__
    message = str(warning.message)
    assert "stalepkg._persist_broken failed to import" in message
    assert "undefined symbol: PyFoo_Bar" in message
    assert "'persist codegen stalepkg.broken --build'" in message
    assert codec.source == "runtime"
    assert codec.decode(b'{"n":3}') == module.Thing(3)


def test_a_compiled_module_missing_a_dependency_is_reported(package: Path) -> None:
    """ModuleNotFoundError from inside the compiled module is not 'no module'."""
    module = _schema(package, "needs", "import no_such_module_anywhere\n")
    with pytest.warns(persist.StaleCodecWarning, match="no_such_module_anywhere"):
        assert persist.codec_for(module.Thing).source == "runtime"


def test_no_compiled_module_is_no_warning(package: Path) -> None:
    """Nothing compiled for a module: the run-time codec, quietly."""
    module = _schema(package, "plain", None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert persist.codec_for(module.Thing).source == "runtime"
