"""Build time: turn the attrs classes of a module into a compiled codec extension.

Convention (persist.codecs relies on it): the compiled codecs of module
``pkg.mod`` are the extension module ``pkg._persist_mod``, built from
``_persist_mod.pyx`` written next to ``pkg/mod.py``. Importing it registers
each class's codec with its fingerprint; ``codec_for`` imports it on first
use of a class of ``pkg.mod``. Generated ``.pyx`` files are build output:
keep them out of version control (``_persist_*.pyx``).

- ``generate_module("pkg.mod", out_dir, build=True)``: what ``python -m persist
  codegen`` runs; with ``build`` it compiles the extension in place.
- ``cythonize_schemas(["pkg.mod", ...])``: Extension objects for a setup.py;
  it imports the names from the project root, so it works under PEP 517
  build isolation, where that folder is not on ``sys.path``.

Cython and setuptools are imported only when compiling.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs

from . import emit_cython
from .fingerprint import fingerprint
from .plan import ClassPlan, plan_for

PREFIX = "_persist_"


def compiled_module_name(module_name: str) -> str:
    """Name the extension holding the compiled codecs of ``module_name``.

    ``pkg.mod`` -> ``pkg._persist_mod``; a top-level ``mod`` -> ``_persist_mod``.
    """
    package, _, name = module_name.rpartition(".")
    return f"{package}.{PREFIX}{name}" if package else PREFIX + name


def schema_plans(module: ModuleType) -> list[ClassPlan]:
    """Return the plans of the attrs classes ``module`` defines, in definition order."""
    return survey(module)[0]


def survey(module: ModuleType) -> tuple[list[ClassPlan], list[tuple[str, str]]]:
    """Return the plans ``module``'s classes compile from, and the ones skipped, why.

    The attrs classes the module defines count, and classes nested in them
    (``Outer.Inner``); imported classes and aliases do not. A class the
    generator cannot plan, or with a JSON key no codec can write, is skipped
    (``(qualified name, reason)``): it is served at run time.
    """
    plans: list[ClassPlan] = []
    skipped: list[tuple[str, str]] = []

    def visit(namespace: object, prefix: str) -> None:
        for value in list(vars(namespace).values()):
            if not (isinstance(value, type) and attrs.has(value)):
                continue
            if value.__module__ != module.__name__:
                continue
            if value.__qualname__ != prefix + value.__name__:
                continue  # an alias of a class planned under its own name
            try:
                plan = plan_for(value)
            except TypeError as error:
                skipped.append((value.__qualname__, str(error)))
                continue
            if not isinstance(plan, ClassPlan):
                skipped.append(
                    (
                        value.__qualname__,
                        "a generic class or a Factory(takes_self=True) default",
                    )
                )
            elif not _keys_encodable(plan):
                skipped.append((value.__qualname__, "a JSON key that is not UTF-8"))
            else:
                plans.append(plan)
            visit(value, value.__qualname__ + ".")

    visit(module, "")
    return plans, skipped


def _keys_encodable(plan: ClassPlan) -> bool:
    try:
        for field in plan.fields:
            emit_cython.json_key_bytes(field)
    except UnicodeEncodeError:
        return False
    return True


def write_module(module: ModuleType, out_dir: str | os.PathLike[str]) -> Path:
    """Write the .pyx of ``module``'s compiled codecs into ``out_dir``; return its path.

    The file is rewritten only when its text changes, so builds stay incremental.
    :raises ValueError: the module defines no attrs class the generator can compile
    """
    plans = schema_plans(module)
    if not plans:
        raise ValueError(f"{module.__name__} defines no attrs class to compile")
    stamps = {plan.cls: fingerprint(plan.cls) for plan in plans}
    source = emit_cython.emit(module.__name__, plans, stamps)
    name = compiled_module_name(module.__name__).rpartition(".")[2]
    path = Path(out_dir) / f"{name}.pyx"
    if not path.exists() or path.read_text(encoding="utf-8") != source:
        path.write_text(source, encoding="utf-8")
    return path


def load_module(name: str, path: str | os.PathLike[str]) -> ModuleType:
    """Run the file at ``path`` as module ``name``, without importing its packages.

    For a setup.py whose schema modules live in a package not built yet.
    """
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path} as {name}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def cythonize_schemas(
    modules: Iterable[str | ModuleType],
    *,
    root: str | os.PathLike[str] = ".",
    **options: Any,
) -> list[Any]:
    """Generate the compiled codecs of ``modules``; return their Extensions for setup().

    Dotted names are imported from the project, not from wherever ``sys.path``
    happens to point: a PEP 517 backend (``pip install .``, ``python -m build``)
    runs setup.py in the project root without putting that folder on
    ``sys.path``, so ``root`` goes in front of it while the names are imported.
    The modules and their packages' ``__init__`` are imported at build time,
    so they may import only what the build requires (persist-kv, attrs).

    :param modules: dotted module names, or module objects
    :param root: the folder holding the top-level packages of those names,
        relative to the current directory (the project root, where setup.py
        runs); ``"src"`` for a src layout
    :param options: passed on to ``Cython.Build.cythonize``
    """
    from Cython.Build import cythonize  # pyright: ignore[reportUnknownVariableType]  # untyped
    from setuptools import Extension

    extensions: list[Extension] = []
    for module in modules:
        if isinstance(module, str):
            module = _import_from(module, Path(root))
        path = write_module(module, _module_dir(module))
        extensions.append(
            Extension(compiled_module_name(module.__name__), [os.path.relpath(path)])
        )
    return list(cythonize(extensions, **options))  # type: ignore[no-untyped-call]


def _import_from(module_name: str, root: Path) -> ModuleType:
    """Import ``module_name`` with ``root`` first on ``sys.path`` meanwhile."""
    folder = str(root.resolve())
    sys.path.insert(0, folder)
    try:
        importlib.invalidate_caches()
        return importlib.import_module(module_name)
    finally:
        sys.path.remove(folder)


def generate_module(
    module_name: str,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    build: bool = False,
) -> Path:
    """Write (and with ``build`` compile) the compiled codecs of ``module_name``.

    :param out_dir: where the .pyx (and the extension) go; by default the
        module's own directory, where ``codec_for`` finds the extension
    :param build: compile with Cython and the C compiler into ``out_dir``
    :returns: the path of the .pyx
    """
    module = importlib.import_module(module_name)
    path = write_module(module, out_dir if out_dir is not None else _module_dir(module))
    if build:
        _build_in_place(path, compiled_module_name(module_name))
    return path


def _module_dir(module: ModuleType) -> Path:
    if module.__file__ is None:
        raise ValueError(f"{module.__name__} has no file to put its codecs beside")
    return Path(module.__file__).parent


def _build_in_place(pyx: Path, name: str) -> Path:
    """Compile ``pyx`` as extension ``name``, beside the .pyx; return its path."""
    from Cython.Build import cythonize  # pyright: ignore[reportUnknownVariableType]  # untyped
    from setuptools import Distribution, Extension
    from setuptools.command.build_ext import build_ext

    with tempfile.TemporaryDirectory(prefix="persist-codegen-") as temp:
        [extension] = cythonize(  # type: ignore[no-untyped-call]
            [Extension(name, [str(pyx)])],
            build_dir=temp,
            quiet=True,
        )
        command = build_ext(Distribution({"ext_modules": [extension]}))
        command.build_lib = os.path.join(temp, "lib")
        command.build_temp = os.path.join(temp, "temp")
        command.ensure_finalized()
        command.run()
        built = Path(command.get_ext_fullpath(name))
        target = pyx.parent / built.name
        # Copy, then rename over: a loaded older build is never overwritten in place.
        staged = target.with_name(target.name + ".new")
        shutil.copyfile(built, staged)
        os.replace(staged, target)
    importlib.invalidate_caches()
    return target
